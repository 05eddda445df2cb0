//! acme_load: full ACME issuances per second against one ACME server on this machine.
//!
//! Each of `--clients` concurrent clients registers its own account (before the clock
//! starts), then repeats the whole RFC 8555 flow until `--count` issuances are done in
//! total or `--max-seconds` pass: newOrder for a fresh DNS name (so no authorization is
//! ever reused) -> fetch the authorization -> answer http-01 (`{}` to the challenge) ->
//! poll the order until ready -> finalize with a new P-256 CSR -> poll until valid ->
//! download the certificate chain. One shared HTTP responder on `--http01-listen`
//! answers every client's http-01 challenges.
//!
//! Polling starts after `--poll-initial-ms` and backs off by 1.5x up to `--poll-max-ms`;
//! it does not wait for a server's `Retry-After` (pkiplane sends 1 s while a validation
//! runs), so the latency measured is the server's, not a politeness delay. Every request
//! is counted, polls included, and reported per issuance.
//!
//! Safety rails: the directory URL and the responder must be on loopback (127.0.0.0/8,
//! ::1 or `localhost`); the run is bounded by count and time and stops by itself.
//!
//! Output: a human summary on stderr and, with `--json`, one JSON line on stdout:
//! `{"label","clients","ok","errors","seconds","per_second","p50_ms","p99_ms",...}`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use clap::Parser;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier, NewAccount,
    NewOrder, Order, OrderStatus,
};
use pkiplane_bench::load::LoadArgs;

#[derive(Parser, Debug)]
#[command(about = "Full ACME issuances per second (newOrder -> http-01 -> finalize -> download) on loopback")]
struct Args {
    /// The ACME directory URL; must point at loopback.
    #[arg(long)]
    directory: String,
    /// PEM file of the CA certificates that verify the server's TLS certificate.
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// Where the shared http-01 responder listens (the server's validation port).
    #[arg(long, default_value = "127.0.0.1:5002")]
    http01_listen: SocketAddr,
    /// DNS suffix of the names ordered (they must resolve to loopback for the server).
    #[arg(long, default_value = "localhost")]
    domain_suffix: String,
    /// ACME profile to ask for in newOrder (the profiles extension), if any.
    #[arg(long)]
    profile: Option<String>,
    /// First delay before polling an order, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_initial_ms: u64,
    /// Longest delay between two polls, in milliseconds.
    #[arg(long, default_value_t = 200)]
    poll_max_ms: u64,
    /// Abort the run when no issuance finishes (successfully or not) for this long.
    #[arg(long, default_value_t = 30)]
    stall_seconds: u64,
    /// pkiplane's admin API (`https://127.0.0.1:PORT`): at the end of the run, the
    /// inventory's certificates for the names this run ordered are compared with the
    /// certificates the clients received (they must be the same, none missing, none extra).
    #[arg(long, requires_all = ["admin_token_file", "admin_ca"])]
    admin_url: Option<String>,
    /// The admin API's bearer token (`DATA_DIR/admin.token` of `pkiplane serve`).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// PEM file of the CA that verifies the admin API's TLS certificate.
    #[arg(long)]
    admin_ca: Option<PathBuf>,
    /// The EnrollmentEndpoint (`namespace/name`) whose inventory is compared.
    #[arg(long, default_value = "pki/acme")]
    inventory_endpoint: String,
    /// Issuances to complete (`--count`) by concurrent clients (`--clients`), each with
    /// its own account and connection; `--rate` is not supported (closed loop only).
    #[command(flatten)]
    load: LoadArgs,
}

/// token -> key authorization, for the shared http-01 responder.
type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The HTTP client of one ACME client: rustls (ring) over HTTP/1.1, counting requests.
struct CountingClient {
    inner: HyperClient<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    requests: Arc<AtomicU64>,
}

impl HttpClient for CountingClient {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        HttpClient::request(&self.inner, req)
    }
}

fn http_client(tls: &rustls::ClientConfig, requests: Arc<AtomicU64>) -> CountingClient {
    let connector = HttpsConnectorBuilder::new().with_tls_config(tls.clone()).https_or_http().enable_http1().build();
    CountingClient { inner: HyperClient::builder(TokioExecutor::new()).build(connector), requests }
}

/// Refuses anything but loopback: this tool only loads servers on this machine.
fn check_loopback(directory: &str, listen: SocketAddr) -> Result<(), String> {
    pkiplane_bench::load::require_loopback(directory)?;
    if !listen.ip().is_loopback() {
        return Err(format!("--http01-listen {listen} is not a loopback address"));
    }
    Ok(())
}

async fn serve_http01(listen: SocketAddr, tokens: Tokens) -> Result<(), String> {
    async fn answer(State(tokens): State<Tokens>, Path(token): Path<String>) -> (StatusCode, String) {
        match tokens.lock().expect("tokens").get(&token) {
            Some(ka) => (StatusCode::OK, ka.clone()),
            None => (StatusCode::NOT_FOUND, String::new()),
        }
    }
    let app = Router::new().route("/.well-known/acme-challenge/{token}", get(answer)).with_state(tokens);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("binding the http-01 responder {listen}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("acme_load: http-01 responder stopped: {e}");
        }
    });
    Ok(())
}

/// A fresh P-256 key and a CSR for `name` (SAN only, empty subject).
fn csr_for(name: &str) -> Result<Vec<u8>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key).map_err(|e| e.to_string())?.der().to_vec())
}

struct Poll {
    initial: Duration,
    max: Duration,
}

impl Poll {
    /// Refreshes `order` until its status leaves `while_in`, with backoff. With `stale`,
    /// the state at hand predates the last change the client made (the challenge
    /// answers), so the first refresh is sent at once.
    async fn until_not(&self, order: &mut Order, while_in: &[OrderStatus], stale: bool) -> Result<OrderStatus, String> {
        let mut delay = self.initial;
        if stale {
            order.refresh().await.map_err(|e| format!("polling the order: {e}"))?;
        }
        loop {
            let status = order.state().status;
            if !while_in.contains(&status) {
                return Ok(status);
            }
            tokio::time::sleep(delay).await;
            delay = delay.mul_f32(1.5).min(self.max);
            order.refresh().await.map_err(|e| format!("polling the order: {e}"))?;
        }
    }
}

/// The steps of one issuance, timed separately (client-side wall time).
const PHASES: [&str; 7] = ["newOrder", "authz", "challenge", "validation", "finalize", "processing", "download"];

/// Wall time per phase of one issuance, indexed like [`PHASES`].
type Phases = [Duration; PHASES.len()];

/// One full issuance for `name`.
async fn issue(
    account: &Account,
    name: &str,
    profile: Option<&str>,
    tokens: &Tokens,
    poll: &Poll,
) -> Result<(Phases, String), String> {
    let mut phases = Phases::default();
    let mut mark = Instant::now();
    let mut lap = |phases: &mut Phases, i: usize| {
        let now = Instant::now();
        phases[i] += now - mark;
        mark = now;
    };
    let ids = [Identifier::Dns(name.to_owned())];
    let mut new = NewOrder::new(&ids);
    if let Some(p) = profile {
        new = new.profile(p);
    }
    let mut order = account.new_order(&new).await.map_err(|e| format!("newOrder: {e}"))?;
    lap(&mut phases, 0);
    let mut answered = Vec::new();
    let outcome = async {
        {
            let mut authzs = order.authorizations();
            while let Some(authz) = authzs.next().await {
                let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
                lap(&mut phases, 1);
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => return Err(format!("authorization is {other:?}")),
                }
                let mut challenge = authz.challenge(ChallengeType::Http01).ok_or("no http-01 challenge offered")?;
                let ka = challenge.key_authorization().as_str().to_owned();
                tokens.lock().expect("tokens").insert(challenge.token.clone(), ka);
                answered.push(challenge.token.clone());
                challenge.set_ready().await.map_err(|e| format!("challenge: {e}"))?;
                lap(&mut phases, 2);
            }
        }
        match poll.until_not(&mut order, &[OrderStatus::Pending], true).await? {
            OrderStatus::Ready => {}
            other => return Err(format!("order became {other:?}: {:?}", order.state().error)),
        }
        lap(&mut phases, 3);
        let csr = csr_for(name)?;
        order.finalize_csr(&csr).await.map_err(|e| format!("finalize: {e}"))?;
        lap(&mut phases, 4);
        match poll.until_not(&mut order, &[OrderStatus::Ready, OrderStatus::Processing], false).await? {
            OrderStatus::Valid => {}
            other => return Err(format!("order became {other:?} after finalize: {:?}", order.state().error)),
        }
        lap(&mut phases, 5);
        let pem = order.certificate().await.map_err(|e| format!("download: {e}"))?.ok_or("no certificate")?;
        let serial = pkiplane_bench::inventory::leaf_serial(&pem).map_err(|e| format!("the download: {e}"))?;
        lap(&mut phases, 6);
        Ok(serial)
    }
    .await;
    let mut map = tokens.lock().expect("tokens");
    for t in answered {
        map.remove(&t);
    }
    outcome.map(|serial| (phases, serial))
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    /// Serials of the certificates the clients received (normalized hex).
    received: Vec<String>,
    phases: Phases,
    errors: Vec<String>,
    /// When the last issuance finished (successfully or not).
    last_done: Option<Instant>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("acme_load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    check_loopback(&args.directory, args.http01_listen)?;
    if args.load.clients == 0 || args.load.count == 0 {
        return Err("--clients and --count must be at least 1".to_owned());
    }
    if args.load.rate > 0.0 {
        return Err("--rate is not supported: each client starts its next issuance when the last one ends".to_owned());
    }
    let label = args.load.label_or("acme");
    let tls = pkiplane_bench::load::tls_client_config(args.ca_bundle.as_deref())?;
    let tokens: Tokens = Arc::default();
    serve_http01(args.http01_listen, tokens.clone()).await?;
    let requests = Arc::new(AtomicU64::new(0));

    // Accounts first, outside the measurement.
    let mut accounts = Vec::new();
    for c in 0..args.load.clients {
        let builder = Account::builder_with_http(Box::new(http_client(&tls, requests.clone())));
        let new = NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
        let created = tokio::time::timeout(Duration::from_secs(30), builder.create(&new, args.directory.clone(), None))
            .await
            .map_err(|_| format!("client {c}: creating the account timed out"))?
            .map_err(|e| format!("client {c}: creating the account: {e}"))?;
        accounts.push(created.0);
    }
    let setup_requests = requests.swap(0, Ordering::Relaxed);

    let run_id = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() % 1_000_000_000;
    let next = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let shared: Arc<Mutex<Outcome>> = Arc::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.load.max_seconds);
    let mut tasks = Vec::new();
    for (c, account) in accounts.into_iter().enumerate() {
        let (next, finished, shared, tokens) = (next.clone(), finished.clone(), shared.clone(), tokens.clone());
        let (suffix, profile) = (args.domain_suffix.clone(), args.profile.clone());
        let poll = Poll {
            initial: Duration::from_millis(args.poll_initial_ms),
            max: Duration::from_millis(args.poll_max_ms.max(args.poll_initial_ms)),
        };
        let count = args.load.count;
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if n >= count || now >= deadline {
                    break;
                }
                let name = format!("b{run_id}-c{c}-n{n}.{suffix}");
                // Each issuance is bounded too: whatever is left of the run, plus a grace.
                let budget = deadline.saturating_duration_since(now) + Duration::from_secs(10);
                let t0 = Instant::now();
                let result =
                    tokio::time::timeout(budget, issue(&account, &name, profile.as_deref(), &tokens, &poll)).await;
                let mut out = shared.lock().expect("outcome");
                match result {
                    Ok(Ok((phases, serial))) => {
                        out.latencies.push(t0.elapsed());
                        out.received.push(serial);
                        for (sum, p) in out.phases.iter_mut().zip(phases) {
                            *sum += p;
                        }
                    }
                    Ok(Err(e)) => out.errors.push(format!("{name}: {e}")),
                    Err(_) => out.errors.push(format!("{name}: timed out")),
                }
                out.last_done = Some(Instant::now());
                finished.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Watchdog: a server that stops answering (for instance one whose locks wedged)
    // ends the run after --stall-seconds without any issuance finishing.
    let stall = Duration::from_secs(args.stall_seconds.max(1));
    let (mut seen, mut since) = (0, Instant::now());
    let mut in_flight_at_stall = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = finished.load(Ordering::Relaxed);
        if done != seen {
            (seen, since) = (done, Instant::now());
        } else if since.elapsed() >= stall {
            in_flight_at_stall = tasks.iter().filter(|t| !t.is_finished()).count();
            for t in &tasks {
                t.abort();
            }
            break;
        }
    }
    for t in tasks {
        if let Err(e) = t.await
            && !e.is_cancelled()
        {
            return Err(format!("a client task failed: {e}"));
        }
    }
    let mut all = std::mem::take(&mut *shared.lock().expect("outcome"));
    let stalled = in_flight_at_stall > 0;
    // The rate is over the time until the last issuance finished (for a stalled run, the
    // last one before the stall).
    let elapsed = all.last_done.unwrap_or(start).duration_since(start).as_secs_f64();
    let ok = all.latencies.len();
    let total_requests = requests.load(Ordering::Relaxed);
    all.latencies.sort();
    let per_second = ok as f64 / elapsed.max(1e-9);
    let (p50, p99) = (percentile(&all.latencies, 50.0), percentile(&all.latencies, 99.0));
    let max = all.latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN);
    let attempts = ok + all.errors.len();
    let per_issuance = if attempts == 0 { f64::NAN } else { total_requests as f64 / attempts as f64 };

    eprintln!(
        "{}: {} clients, {ok} issued, {} failed in {elapsed:.2}s: {per_second:.1}/s, p50 {p50:.1} ms, p99 {p99:.1} ms, \
         max {max:.1} ms, {per_issuance:.1} requests per issuance ({setup_requests} for {} accounts)",
        label,
        args.load.clients,
        all.errors.len(),
        args.load.clients,
    );
    let mean: Vec<(&str, f64)> =
        PHASES.iter().zip(all.phases).map(|(name, sum)| (*name, sum.as_secs_f64() * 1e3 / ok.max(1) as f64)).collect();
    let shown: Vec<String> = mean.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
    let phases: serde_json::Map<String, serde_json::Value> =
        mean.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
    eprintln!("  mean ms per phase: {}", shown.join(", "));
    if stalled {
        eprintln!(
            "  STALLED: nothing finished for {}s; {in_flight_at_stall} issuances were still in flight and were abandoned",
            stall.as_secs()
        );
    }
    for e in all.errors.iter().take(5) {
        eprintln!("  error: {e}");
    }
    let inventory = match &args.admin_url {
        Some(url) => Some(check_inventory(&args, url, &format!("b{run_id}-"), &all.received).await?),
        None => None,
    };
    if args.load.json {
        let mut line = serde_json::json!({
            "label": label, "clients": args.load.clients, "ok": ok, "errors": all.errors.len(),
            "seconds": elapsed, "per_second": per_second, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "requests_per_issuance": per_issuance, "phases_ms": phases,
            "stalled": stalled, "in_flight_at_stall": in_flight_at_stall,
        });
        if let Some(check) = &inventory {
            line["inventory"] = serde_json::json!({
                "issued": check.issued, "other": check.other, "received": ok, "matches": check.matches,
            });
        }
        println!("{line}");
    }
    if ok == 0 {
        return Err("no issuance succeeded".to_owned());
    }
    if inventory.is_some_and(|c| !c.matches) {
        return Err("the inventory does not hold exactly the certificates the clients received".to_owned());
    }
    Ok(())
}

/// The outcome of the end-of-run inventory comparison.
struct InventoryCheck {
    issued: usize,
    other: usize,
    matches: bool,
}

/// Compares the inventory's certificates for this run's names (`name_part`) with the
/// `received` serials, and prints the comparison.
async fn check_inventory(
    args: &Args,
    url: &str,
    name_part: &str,
    received: &[String],
) -> Result<InventoryCheck, String> {
    pkiplane_bench::load::require_loopback(url)?;
    let (token_file, ca) = args
        .admin_token_file
        .as_deref()
        .zip(args.admin_ca.as_deref())
        .ok_or("--admin-url needs --admin-token-file and --admin-ca")?;
    let token = std::fs::read_to_string(token_file).map_err(|e| format!("{}: {e}", token_file.display()))?;
    let api = pkiplane_bench::inventory::AdminApi::new(url, &token, pkiplane_bench::load::tls_client_config(Some(ca))?);
    let held = api.holding(&args.inventory_endpoint, name_part).await?;
    let received: std::collections::BTreeSet<String> = received.iter().cloned().collect();
    let missing = received.difference(&held.issued).count();
    let extra = held.issued.difference(&received).count();
    let matches = missing == 0 && extra == 0 && held.other == 0;
    eprintln!(
        "  inventory of {}: {} certificates issued for this run's names, {} other records (pending, abandoned); \
         clients received {}; missing from the inventory {missing}, issued but not received {extra}: {}",
        args.inventory_endpoint,
        held.issued.len(),
        held.other,
        received.len(),
        if matches { "the inventory holds exactly the certificates received" } else { "MISMATCH" },
    );
    Ok(InventoryCheck { issued: held.issued.len(), other: held.other, matches })
}
