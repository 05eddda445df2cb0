//! The acceptance load run of several CA replicas on one PostgreSQL: three `pkiplane ca`
//! processes share a real PostgreSQL server; EST devices (curl + openssl, through three
//! `pkiplane endpoint` processes, one per replica) and a caller of the internal issuance
//! API spread their requests over the replicas while one replica after the other is
//! killed with SIGKILL and started again, and certificates are revoked meanwhile.
//! Then PostgreSQL itself restarts mid-run.
//!
//! Every certificate a client received must be in the inventory as issued (same DER),
//! serials unique, the CRL numbers each client fetched never going back, nothing left
//! pending after recovery; while PostgreSQL is down clients get 503 with Retry-After and
//! no certificate; afterwards issuance resumes without restarting anything.
//!
//! Bounded: the load phase runs a fixed time (`LOAD_PHASE`) and each client waits at
//! most a few seconds per request; everything listens on 127.0.0.1.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use pkiplane_core::inventory::{CertStatus, Inventory, InventoryFilter, Revocation, RevocationReason};
use pkiplane_core::model::ObjectRef;

use common::free_port;
use common::split::*;

const REPLICAS: usize = 3;
/// How long clients issue while replicas are killed.
const LOAD_PHASE: Duration = Duration::from_secs(40);
/// A replica is killed this often (and started again at once).
const KILL_EVERY: Duration = Duration::from_secs(4);
/// Pending records older than this are swept by the replicas (`--abandon-pending-after`).
const ABANDON_AFTER: &str = "5s";

struct Replica {
    api_port: u16,
    pub_port: u16,
    data: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

fn start_replica(dir: &Path, ca_yaml: &Path, url: &str, r: &mut Replica) {
    let (api, publish) = (format!("127.0.0.1:{}", r.api_port), format!("127.0.0.1:{}", r.pub_port));
    let tls = dir.join("ca-tls");
    let args = [
        "ca",
        "--manifests",
        ca_yaml.to_str().unwrap(),
        "--data-dir",
        r.data.to_str().unwrap(),
        "--store",
        url,
        "--abandon-pending-after",
        ABANDON_AFTER,
        "--listen",
        &api,
        "--publish-listen",
        &publish,
        "--tls-dir",
        tls.to_str().unwrap(),
    ];
    // Appends: the log of every life of the replica.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&r.log).unwrap();
    let child = Command::new(common::BIN).args(args).stdout(std::process::Stdio::null()).stderr(log).spawn().unwrap();
    r.proc = Some(Proc(child));
    wait_ok(&format!("http://127.0.0.1:{}/readyz", r.pub_port), &r.log);
}

/// What one client attempt came to.
#[derive(Debug)]
enum Attempt {
    /// A certificate (PEM file).
    Issued(PathBuf),
    /// HTTP status and whether a Retry-After header came with it.
    Refused(u16, bool),
    /// No HTTP answer (the replica was down).
    NoAnswer,
}

/// An EST simpleenroll through `base`; the CSR is made once per `name`.
fn est_attempt(dir: &Path, base: &str, name: &str) -> Attempt {
    if !dir.join(format!("{name}.csr.b64")).exists() {
        sh(
            dir,
            &format!(
                "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key \
                 -subj /CN={name}.localhost -addext subjectAltName=DNS:{name}.localhost -outform DER \
                 -out {name}.csr.der 2>/dev/null && openssl base64 -in {name}.csr.der > {name}.csr.b64"
            ),
        );
    }
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-s", "-m", "20", "-D", &format!("{name}.hdr"), "-o", &format!("{name}.p7.b64"), "-w", "%{http_code}"])
        .args(["--cacert", "root.pem", "-u", "device-enroller:est-demo-password"])
        .args(["-H", "content-type: application/pkcs10", "--data-binary", &format!("@{name}.csr.b64")])
        .arg(format!("{base}/.well-known/est/tls/simpleenroll"))
        .output()
        .unwrap();
    let code: u16 = text(&out.stdout).trim().parse().unwrap_or(0);
    match code {
        0 => Attempt::NoAnswer,
        200 => {
            sh(
                dir,
                &format!(
                    "openssl base64 -d -in {name}.p7.b64 | openssl pkcs7 -inform DER -print_certs -out {name}.pem"
                ),
            );
            Attempt::Issued(dir.join(format!("{name}.pem")))
        }
        other => {
            let headers = std::fs::read_to_string(dir.join(format!("{name}.hdr"))).unwrap_or_default();
            Attempt::Refused(other, headers.to_lowercase().contains("retry-after:"))
        }
    }
}

/// A serving certificate from the internal API of the replica at `api_port`, asked for
/// directly as the acme endpoint's identity.
fn internal_attempt(dir: &Path, api_port: u16, name: &str) -> Attempt {
    sh(
        dir,
        &format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key \
             -subj /CN=localhost -addext subjectAltName=DNS:localhost -out {name}.csr 2>/dev/null"
        ),
    );
    let csr = std::fs::read_to_string(dir.join(format!("{name}.csr"))).unwrap();
    let body = serde_json::json!({
        "role": "serving-tls",
        "endpoint": {"namespace": "pki", "name": "acme"},
        "issuer": {"namespace": "pki", "name": "example-intermediate"},
        "csrPem": csr,
        "dnsNames": ["localhost"],
    });
    let out = Command::new("curl")
        .current_dir(dir)
        .args(["-s", "-m", "20", "-o", &format!("{name}.json"), "-D", &format!("{name}.hdr"), "-w", "%{http_code}"])
        .args(["--cacert", "ica.crt", "--cert", "acme-tls/tls.crt", "--key", "acme-tls/tls.key"])
        .args(["-H", "content-type: application/json", "--data", &body.to_string()])
        .arg(format!("https://127.0.0.1:{api_port}/v1/internal-certificates"))
        .output()
        .unwrap();
    let code: u16 = text(&out.stdout).trim().parse().unwrap_or(0);
    match code {
        0 => Attempt::NoAnswer,
        200 => {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
            let pem = dir.join(format!("{name}.pem"));
            std::fs::write(&pem, v["certificatePem"].as_str().unwrap()).unwrap();
            Attempt::Issued(pem)
        }
        other => Attempt::Refused(other, false),
    }
}

/// The CRL number of the intermediate's CRL from the replica at `pub_port`, if it answered.
fn crl_number(dir: &Path, pub_port: u16, name: &str) -> Option<u64> {
    let out = Command::new("bash")
        .current_dir(dir)
        .arg("-c")
        .arg(format!(
            "curl -sf -m 10 http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/crl -o {name}.der && \
             openssl crl -inform DER -in {name}.der -noout -crlnumber"
        ))
        .output()
        .unwrap();
    let hex = text(&out.stdout).trim().trim_start_matches("crlNumber=0x").to_owned();
    out.status.success().then(|| u64::from_str_radix(&hex, 16).unwrap())
}

/// (serial lowercase hex, DER) of a PEM certificate.
fn serial_and_der(dir: &Path, pem: &Path) -> (String, Vec<u8>) {
    let serial = text(&sh(dir, &format!("openssl x509 -in {} -noout -serial", pem.display())).stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase();
    let der = sh(dir, &format!("openssl x509 -in {} -outform DER", pem.display())).stdout;
    (serial, der)
}

#[derive(Default)]
struct Outcomes {
    /// Certificates clients received: (issuer, PEM).
    issued: Vec<PathBuf>,
    /// Refusals: (status, with Retry-After).
    refused: Vec<(u16, bool)>,
    no_answer: usize,
}

impl Outcomes {
    fn add(&mut self, a: Attempt) {
        match a {
            Attempt::Issued(p) => self.issued.push(p),
            Attempt::Refused(code, retry) => self.refused.push((code, retry)),
            Attempt::NoAnswer => self.no_answer += 1,
        }
    }
}

#[test]
fn three_replicas_on_one_postgres_survive_kills_and_a_database_restart() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    internal_pki(&dir);
    let mut pg = pkiplane_store::testing::TestPostgres::start();
    let url = pg.url();
    let (ca_yaml, configs) = split_quickstart(&dir, &[("est", &["est-basic-users"])]);

    // Three replicas started at once: one creates the CA keys, the others load them.
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| Replica {
            api_port: free_port(),
            pub_port: free_port(),
            data: dir.join(format!("ca-data-{i}")),
            log: dir.join(format!("ca-{i}.log")),
            proc: None,
        })
        .collect();
    std::thread::scope(|s| {
        for r in replicas.iter_mut() {
            let (dir, ca_yaml, url) = (&dir, &ca_yaml, &url);
            s.spawn(move || start_replica(dir, ca_yaml, url, r));
        }
    });
    let root_of = |r: &Replica, file: &str| {
        let out = sh(&dir, &format!("curl -sSf http://127.0.0.1:{}/issuers/pki/{file}", r.pub_port));
        out.stdout
    };
    for r in &replicas[1..] {
        assert_eq!(root_of(r, "example-root/ca.pem"), root_of(&replicas[0], "example-root/ca.pem"), "one root CA");
        assert_eq!(root_of(r, "example-intermediate/ca.pem"), root_of(&replicas[0], "example-intermediate/ca.pem"));
    }
    std::fs::write(dir.join("root.pem"), root_of(&replicas[0], "example-root/ca.pem")).unwrap();
    std::fs::write(dir.join("int.pem"), root_of(&replicas[0], "example-intermediate/ca.pem")).unwrap();

    // One EST endpoint process per replica.
    let bases: Vec<String> = (0..REPLICAS).map(|_| free_port()).map(|p| format!("https://localhost:{p}")).collect();
    let _endpoints: Vec<Proc> = replicas
        .iter()
        .zip(&bases)
        .enumerate()
        .map(|(i, (r, base))| {
            let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
            let ca_url = format!("https://127.0.0.1:{}", r.api_port);
            start_endpoint(&dir, &ca_url, "est", &configs[0], port, free_port()).tap(|_| {
                let _ = std::fs::rename(dir.join("est.log"), dir.join(format!("est-{i}.log")));
            })
        })
        .collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(pkiplane_store::PostgresStore::connect(&url)).unwrap();
    let intermediate = ObjectRef::new("pki", "example-intermediate");

    // The load phase: clients on every replica, a replica killed every few seconds.
    let stop = Arc::new(AtomicBool::new(false));
    let est = Arc::new(Mutex::new(Outcomes::default()));
    let internal = Arc::new(Mutex::new(Outcomes::default()));
    let crls: Arc<Mutex<Vec<u64>>> = Arc::default();
    let api_ports: Vec<u16> = replicas.iter().map(|r| r.api_port).collect();
    let pub_ports: Vec<u16> = replicas.iter().map(|r| r.pub_port).collect();
    let started = Instant::now();
    let kills = std::thread::scope(|s| {
        let (dir, stop) = (&dir, &stop);
        for client in 0..2 {
            let (est, bases) = (est.clone(), &bases);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let a = est_attempt(dir, &bases[n % REPLICAS], &format!("est-{client}-{n}"));
                    let failed = !matches!(a, Attempt::Issued(_));
                    est.lock().unwrap().add(a);
                    n += 1;
                    if failed {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            });
        }
        {
            let (internal, api_ports) = (internal.clone(), &api_ports);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let a = internal_attempt(dir, api_ports[n % REPLICAS], &format!("int-{n}"));
                    let failed = !matches!(a, Attempt::Issued(_));
                    internal.lock().unwrap().add(a);
                    n += 1;
                    if failed {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            });
        }
        {
            // One relying party fetching the CRL from replica after replica, and
            // revoking a received certificate now and then so that CRLs change.
            let (crls, pub_ports, est, store, runtime, intermediate) =
                (crls.clone(), &pub_ports, est.clone(), &store, &runtime, &intermediate);
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(number) = crl_number(dir, pub_ports[n % REPLICAS], "crl") {
                        crls.lock().unwrap().push(number);
                    }
                    if n % 5 == 4 {
                        let last = est.lock().unwrap().issued.last().cloned();
                        if let Some(pem) = last {
                            let (serial, _) = serial_and_der(dir, &pem);
                            let at = SystemTime::now();
                            let _ = runtime.block_on(store.revoke(
                                intermediate,
                                &serial,
                                Revocation { reason: RevocationReason::Superseded, at },
                            ));
                        }
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(300));
                }
            });
        }
        // The killer: SIGKILL one replica, start it again, move to the next.
        let mut kills = 0;
        while started.elapsed() < LOAD_PHASE {
            std::thread::sleep(KILL_EVERY);
            let r = &mut replicas[kills % REPLICAS];
            drop(r.proc.take()); // SIGKILL, then reaped
            start_replica(dir, &ca_yaml, &url, r);
            kills += 1;
        }
        stop.store(true, Ordering::Relaxed);
        kills
    });
    let est = std::mem::take(&mut *est.lock().unwrap());
    let internal = std::mem::take(&mut *internal.lock().unwrap());
    let crls = std::mem::take(&mut *crls.lock().unwrap());
    eprintln!(
        "load phase: {kills} kills, EST {} issued / {} refused / {} unanswered, internal API {} issued / {} refused / \
         {} unanswered, {} CRLs fetched",
        est.issued.len(),
        est.refused.len(),
        est.no_answer,
        internal.issued.len(),
        internal.refused.len(),
        internal.no_answer,
        crls.len()
    );
    assert!(kills >= 4, "only {kills} kills");
    assert!(est.issued.len() >= 10 && internal.issued.len() >= 10, "too little got through");
    // A device whose replica died mid-request is told to come back, never given a bare 500.
    for (code, retry) in &est.refused {
        assert!(*code == 503 && *retry, "EST refusal {code} (Retry-After: {retry})");
    }
    assert!(crls.len() >= 10, "{crls:?}");
    assert!(crls.windows(2).all(|w| w[0] <= w[1]), "CRL numbers went back: {crls:?}");
    assert!(crls.last() > crls.first(), "the revocations never changed the CRL: {crls:?}");

    // PostgreSQL restarts: while it is down, 503 + Retry-After and no certificate.
    pg.stop();
    let mut down = Outcomes::default();
    for (i, base) in bases.iter().enumerate() {
        down.add(est_attempt(&dir, base, &format!("down-{i}")));
    }
    assert!(down.issued.is_empty() && down.no_answer == 0, "{:?}", down.issued);
    for (code, retry) in &down.refused {
        assert!(*code == 503 && *retry, "EST while PostgreSQL is down: {code} (Retry-After: {retry})");
    }
    match internal_attempt(&dir, api_ports[0], "int-down") {
        Attempt::Refused(503, _) => {}
        other => panic!("internal API while PostgreSQL is down: {other:?}"),
    }
    pg.start_again();
    // Service resumes on every replica without restarting anything.
    let mut after = Outcomes::default();
    for (i, base) in bases.iter().enumerate() {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            match est_attempt(&dir, base, &format!("after-{i}")) {
                Attempt::Issued(p) => {
                    after.issued.push(p);
                    break;
                }
                other => assert!(Instant::now() < until, "replica {i} did not resume: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // Every certificate a client received is in the inventory as issued, with its DER
    // (read through a new connection pool: the old one's connections died with the server).
    let store = runtime.block_on(pkiplane_store::PostgresStore::connect(&url)).unwrap();
    let received: Vec<&PathBuf> = est.issued.iter().chain(&internal.issued).chain(&after.issued).collect();
    let mut serials = BTreeSet::new();
    for pem in &received {
        let (serial, der) = serial_and_der(&dir, pem);
        assert!(serials.insert(serial.clone()), "serial {serial} issued twice");
        let record = runtime
            .block_on(store.get(&intermediate, &serial))
            .unwrap()
            .unwrap_or_else(|| panic!("{} (serial {serial}) left without a record", pem.display()));
        assert!(matches!(record.status, CertStatus::Issued | CertStatus::Revoked), "{serial}: {:?}", record.status);
        assert_eq!(record.der.as_deref(), Some(der.as_slice()), "{serial}: another certificate on record");
    }
    for pem in [&received[0], received.last().unwrap()] {
        sh(&dir, &format!("openssl verify -CAfile root.pem -untrusted int.pem {}", pem.display()));
    }
    // Nothing pending once the replicas swept what the kills interrupted.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let records = runtime.block_on(store.list(&InventoryFilter::default())).unwrap();
        let pending: Vec<&str> =
            records.iter().filter(|r| r.status == CertStatus::Pending).map(|r| r.serial.as_str()).collect();
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        for r in &records {
            *by_status.entry(format!("{:?}", r.status)).or_default() += 1;
        }
        if pending.is_empty() {
            eprintln!("inventory after recovery: {by_status:?}");
            break;
        }
        assert!(Instant::now() < until, "still pending after recovery: {pending:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(replicas);
}

/// `value.tap(f)`: runs `f` on the value and returns it.
trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&Self)) -> Self {
        f(&self);
        self
    }
}
impl<T> Tap for T {}
