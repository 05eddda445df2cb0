//! `pkiplane ca` and `pkiplane endpoint` as separate processes: an internal CA made here
//! with openssl, the quickstart split into the CA's manifests and per-endpoint configs,
//! a curl + openssl EST device enrolling through an endpoint pod that holds no CA key,
//! and the internal API's refusals.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pkiplane_caservice::wire::state::CmpCall;
use pkiplane_cmp::state::{CmpAuth, CmpTransaction, TransactionKind, TransactionStart, TransactionState};
use pkiplane_core::inventory::{Inventory, InventoryFilter};
use pkiplane_core::model::ObjectRef;

use common::split::*;
use common::{BIN, free_port};

#[test]
fn endpoints_enroll_through_the_ca_service_over_mtls() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    internal_pki(dir);
    let (ca_yaml, configs) = split_quickstart(dir, &[("est", &["est-basic-users"]), ("acme", &[])]);
    let (api_port, pub_port, est_port, est_health, acme_port, acme_health) =
        (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
    let data = dir.join("ca-data");
    let ca_metrics_port = free_port();
    let _ca = start_ca(dir, &ca_yaml, &data, (api_port, pub_port), None, None, Some(ca_metrics_port));
    let ca_url = format!("https://127.0.0.1:{api_port}");
    let endpoint =
        |name: &str, config: &Path, port: u16, health: u16| start_endpoint(dir, &ca_url, name, config, port, health);
    let _est = endpoint("est", &configs[0], est_port, est_health);
    let _acme = endpoint("acme", &configs[1], acme_port, acme_health);
    sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-root/ca.pem -o root.pem"));
    sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/ca.pem -o int.pem"));

    // The ACME endpoint pod serves its directory over TLS with a CA-issued certificate.
    sh(dir, &format!("curl -sSf --cacert root.pem https://localhost:{acme_port}/directory -o directory.json"));

    // An EST device enrolls through the endpoint pod; the chain verifies.
    let base = format!("https://localhost:{est_port}");
    let first = est_enroll(dir, &base, "web1");
    sh(dir, &format!("openssl verify -CAfile root.pem -untrusted int.pem {}", first.display()));
    assert!((46..=48).contains(&not_after_days(dir, &first)), "47d profile");

    // The CA service answers OCSP for it on its publication listener, signed by the
    // issuing CA's delegated responder.
    let ocsp = sh(
        dir,
        &format!(
            "openssl ocsp -url http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/ocsp -issuer int.pem \
             -cert {} -CAfile root.pem -verify_other int.pem 2>&1",
            first.display()
        ),
    );
    let ocsp = text(&ocsp.stdout);
    assert!(ocsp.contains("Response verify OK") && ocsp.contains("web1.pem: good"), "{ocsp}");

    // The CA's inventory has it, attributed to the endpoint.
    let est = common::inventory(&data, "EST");
    let rec = est.iter().find(|r| r["subject"].as_str() == Some("CN=web1.localhost")).expect("in the inventory");
    assert_eq!(rec["endpoint"], "pki/est", "{rec}");

    // Both processes' /metrics pass promtool: the CA service counted the certificate
    // under the endpoint that asked, the endpoint pod counted its answers.
    let promtool = common::tool_path("promtool.sh");
    let scrape = |url: String| text(&sh(dir, &format!("curl -sSf {url}")).stdout);
    let ca_metrics = scrape(format!("http://127.0.0.1:{ca_metrics_port}/metrics"));
    common::metrics::promtool_check_metrics(&promtool, &ca_metrics);
    let public = sh(dir, &format!("curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{pub_port}/metrics"));
    assert_eq!(text(&public.stdout), "404", "the CA's publication listener must not serve /metrics");
    let issued = [("profile", "pki/enterprise-tls-47d"), ("protocol", "EST"), ("endpoint", "pki/est")];
    assert_eq!(common::metrics::sample(&ca_metrics, "pkiplane_certificates_issued_total", &issued), 1.0);
    let ep_metrics = scrape(format!("http://127.0.0.1:{est_health}/metrics"));
    common::metrics::promtool_check_metrics(&promtool, &ep_metrics);
    let answered = [("listener", "endpoint"), ("endpoint", "pki/est"), ("code", "2xx")];
    assert!(common::metrics::sample(&ep_metrics, "pkiplane_http_requests_total", &answered) >= 1.0, "{ep_metrics}");

    // The summary counts it per endpoint and profile.
    let (ok, code, body) =
        api(dir, "est-tls", "GET", &format!("{ca_url}/v1/summary?expiringWithinSeconds=86400"), None);
    assert!(ok && code == "200", "{code} {body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ep = summary["endpointProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "pki/est|pki/enterprise-tls-47d")
        .unwrap_or_else(|| panic!("{body}"));
    assert!(ep["issued"].as_u64().unwrap() >= 1 && ep["active"].as_u64().unwrap() >= 1, "{ep}");
    let (_, code, body) = api(dir, "est-tls", "GET", &format!("{ca_url}/v1/issuers"), None);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"name\":\"example-intermediate\"") && body.contains("\"fingerprint\""), "{body}");

    // A client certificate from another CA is refused in the TLS handshake.
    let (ok, code, _) = api(dir, "rogue-tls", "GET", &format!("{ca_url}/v1/summary"), None);
    assert!(!ok && code == "000", "rogue client got HTTP {code}");

    // The est identity may not ask for another endpoint's certificates.
    sh(
        dir,
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost -out other.csr 2>/dev/null",
    );
    let csr = std::fs::read_to_string(dir.join("other.csr")).unwrap();
    let req = |endpoint: &str| {
        serde_json::json!({
            "role": "serving-tls",
            "endpoint": {"namespace": "pki", "name": endpoint},
            "issuer": {"namespace": "pki", "name": "example-intermediate"},
            "csrPem": csr,
            "dnsNames": ["localhost"],
            "ipAddresses": [],
        })
        .to_string()
    };
    let (_, code, body) =
        api(dir, "est-tls", "POST", &format!("{ca_url}/v1/internal-certificates"), Some(&req("acme")));
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("\"kind\":\"forbidden\""), "{body}");
    let (_, code, body) = api(dir, "est-tls", "POST", &format!("{ca_url}/v1/internal-certificates"), Some(&req("est")));
    assert_eq!(code, "200", "{body}");

    // ACME state belongs to the endpoint that wrote it: the est identity neither reads
    // the acme endpoint's account (by id or key) nor overwrites it, nor takes its nonce.
    let account = serde_json::json!({
        "id": "acct-1", "status": "valid", "jwk": "{}", "thumbprint": "tp-1", "contact": [],
        "terms_agreed": true, "eab_kid": null, "created_at": 1_700_000_000u64, "version": 0,
    });
    let state_call = |identity: &str, store: &str, call: &serde_json::Value| {
        api(dir, identity, "POST", &format!("{ca_url}/v1/state/{store}"), Some(&call.to_string()))
    };
    let state_in = |identity: &str, store: &str, call: serde_json::Value| {
        let (_, code, body) = state_call(identity, store, &call);
        assert_eq!(code, "200", "{call}: {body}");
        body
    };
    let state = |identity: &str, call: serde_json::Value| state_in(identity, "acme", call);
    let created = state("acme-tls", serde_json::json!({"call": "createAccount", "account": account, "eab": null}));
    assert!(created.contains("created"), "{created}");
    let by_id = serde_json::json!({"call": "account", "id": "acct-1"});
    let by_key = serde_json::json!({"call": "accountByThumbprint", "thumbprint": "tp-1"});
    assert!(state("acme-tls", by_id.clone()).contains("acct-1"));
    assert_eq!(state("est-tls", by_id.clone()), "null", "another endpoint reads the account");
    assert_eq!(state("est-tls", by_key), "null", "another endpoint finds the account by key");
    let mut hijack = account.clone();
    hijack["contact"] = serde_json::json!(["mailto:mallory@example.com"]);
    let update = serde_json::json!({"call": "updateAccount", "account": hijack});
    assert!(state("est-tls", update).contains("conflict"), "another endpoint overwrote the account");
    assert!(!state("acme-tls", by_id).contains("mallory"));
    let expires = std::time::SystemTime::now() + Duration::from_secs(300);
    state("acme-tls", serde_json::json!({"call": "addNonce", "nonce": "n-1", "expires": expires}));
    let take = |who: &str| {
        state(who, serde_json::json!({"call": "takeNonce", "nonce": "n-1", "now": std::time::SystemTime::now()}))
    };
    assert_eq!(take("est-tls"), "false", "another endpoint consumed the nonce");
    assert_eq!(take("acme-tls"), "true");
    // CMP's first message in one call (`startTransaction`, what endpoint pods send): the
    // transaction and its senderNonce. The same transactionID again is refused with
    // nothing written; a new transactionID with a seen nonce is created and reported as
    // a replay; and an endpoint may not start transactions for another.
    let start = |id: &str, nonce: &str| {
        let call = CmpCall::StartTransaction { tx: cmp_transaction(id), nonce: nonce.into(), nonce_expires: expires };
        serde_json::to_value(call).unwrap()
    };
    let answer = |identity: &str, id: &str, nonce: &str| {
        let body = state_in(identity, "cmp", start(id, nonce));
        serde_json::from_str::<TransactionStart>(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    assert_eq!(answer("acme-tls", "aa01", "n-cmp-1"), TransactionStart::Started);
    assert_eq!(answer("acme-tls", "aa01", "n-cmp-2"), TransactionStart::TransactionIdInUse);
    assert_eq!(answer("acme-tls", "aa02", "n-cmp-1"), TransactionStart::NonceReused);
    let (_, code, body) = state_call("est-tls", "cmp", &start("aa03", "n-cmp-3"));
    assert_eq!(code, "403", "{body}");
    let stored = |id: &str| {
        let call = CmpCall::Transaction { endpoint: ObjectRef::new("pki", "acme"), transaction_id: id.into() };
        let body = state_in("acme-tls", "cmp", serde_json::to_value(call).unwrap());
        serde_json::from_str::<Option<CmpTransaction>>(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    let first = stored("aa01").expect("the started transaction is stored");
    assert_eq!((first.state, first.requester.as_str()), (TransactionState::AwaitingConfirmation, "device-1"));
    assert!(stored("aa02").is_some(), "a replayed nonce still creates its transaction");
    assert!(stored("aa03").is_none(), "the refused call wrote nothing");
    // The nonce the refused transactionID carried was not recorded either.
    assert_eq!(answer("acme-tls", "aa04", "n-cmp-2"), TransactionStart::Started);

    // Approvals over the internal API: an endpoint lists its own requests and asks about
    // them, but never decides (the operator's identity only).
    let (_, code, body) = api(dir, "est-tls", "POST", &format!("{ca_url}/v1/approvals/list"), Some("{}"));
    assert_eq!((code.as_str(), body.trim()), ("200", "[]"), "{body}");
    let decide = r#"{"requestId":"00ff","approve":true,"approver":"est","reason":null}"#;
    let (_, code, body) = api(dir, "est-tls", "POST", &format!("{ca_url}/v1/approvals/decide"), Some(decide));
    assert_eq!(code, "403", "{body}");
    let (_, code, body) =
        api(dir, "est-tls", "POST", &format!("{ca_url}/v1/approvals/outcome"), Some(r#"{"requestId":"00ff"}"#));
    assert_eq!(code, "404", "{body}");

    // The snapshot endpoint pods keep current: an ETag, 304 for the copy held, and a
    // request held with ?wait ends with the new snapshot as soon as a profile changes.
    let (code, held, body) = snapshot_get(dir, &ca_url, "first", None, 0).output();
    assert_eq!(code, "200", "{body}");
    let held = held.expect("an ETag on the snapshot");
    assert!(body.contains("enterprise-tls-47d"), "{body}");
    let (code, etag, body) = snapshot_get(dir, &ca_url, "same", Some(&held), 0).output();
    assert_eq!((code.as_str(), etag.as_deref(), body.as_str()), ("304", Some(held.as_str()), ""));
    let (code, _, _) = snapshot_get(dir, &ca_url, "short", Some(&held), 1).output();
    assert_eq!(code, "304", "nothing changed within the wait");
    // The longest wait the CA service grants (30 s): only the edit below can end it
    // with a 200; had the wait run out, the answer would be 304 and the test fails.
    let waiting = snapshot_get(dir, &ca_url, "held", Some(&held), 3600).spawn();

    // A profile edit in the CA's manifests applies to the next certificate, with the
    // endpoint left running.
    let edited = std::fs::read_to_string(&ca_yaml).unwrap().replacen("duration: 47d", "duration: 10d", 1);
    std::fs::write(&ca_yaml, edited).unwrap();
    let (code, changed, body) = waiting.finish();
    assert_eq!(code, "200", "the held request ended without the change: {body}");
    assert!(changed.as_deref().is_some_and(|c| c != held), "a new ETag: {changed:?} after {held}");
    assert!(body.contains(&(10 * 86_400).to_string()), "the new snapshot has the 10-day validity: {body}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let next = est_enroll(dir, &base, "web2");
        let days = not_after_days(dir, &next);
        if (9..=11).contains(&days) {
            break;
        }
        assert!(Instant::now() < until, "the edited profile never applied (still {days} days)");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A CMP enrollment transaction of endpoint pki/acme as an endpoint pod starts it.
fn cmp_transaction(id: &str) -> CmpTransaction {
    let now = std::time::SystemTime::now();
    CmpTransaction {
        endpoint: ObjectRef::new("pki", "acme"),
        transaction_id: id.into(),
        kind: TransactionKind::Enrollment,
        state: TransactionState::AwaitingConfirmation,
        requester: "device-1".into(),
        auth: CmpAuth::Mac { kid: "device-1".into() },
        profile_label: "tls".into(),
        pvno: 2,
        server_nonce: String::new(),
        certificates: Vec::new(),
        pending_request: None,
        deadline: Some(now + Duration::from_secs(300)),
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

/// `GET /v1/snapshot` with curl as the endpoint identity `est-tls`, optionally
/// conditional on `held` and waiting `wait` seconds: the status, the ETag and the body.
struct SnapshotGet {
    cmd: Command,
    dir: std::path::PathBuf,
    tag: String,
}

fn snapshot_get(dir: &Path, ca_url: &str, tag: &str, held: Option<&str>, wait: u64) -> SnapshotGet {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir).args(["-s", "-D", &format!("snap-{tag}.hdr"), "-o", &format!("snap-{tag}.out")]);
    cmd.args(["-w", "%{http_code}", "--cacert", "ica.crt", "--cert", "est-tls/tls.crt", "--key", "est-tls/tls.key"]);
    if let Some(etag) = held {
        cmd.args(["-H", &format!("if-none-match: {etag}")]);
    }
    cmd.arg(format!("{ca_url}/v1/snapshot?wait={wait}"));
    SnapshotGet { cmd, dir: dir.to_path_buf(), tag: tag.to_owned() }
}

impl SnapshotGet {
    fn output(mut self) -> (String, Option<String>, String) {
        let out = self.cmd.output().unwrap();
        self.read(&out.stdout)
    }

    fn spawn(mut self) -> RunningSnapshotGet {
        let child = self.cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        RunningSnapshotGet { get: self, child }
    }

    fn read(&self, stdout: &[u8]) -> (String, Option<String>, String) {
        let file =
            |ext: &str| std::fs::read_to_string(self.dir.join(format!("snap-{}.{ext}", self.tag))).unwrap_or_default();
        let etag = file("hdr").lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("etag").then(|| value.trim().to_owned())
        });
        (text(stdout), etag, file("out"))
    }
}

struct RunningSnapshotGet {
    get: SnapshotGet,
    child: std::process::Child,
}

impl RunningSnapshotGet {
    fn finish(self) -> (String, Option<String>, String) {
        let out = self.child.wait_with_output().unwrap();
        self.get.read(&out.stdout)
    }
}

/// `pkiplane ca --store postgres://...` on a real PostgreSQL server: the inventory and the
/// CA keys live in the database, so a CA started afresh (a new data directory, as a new
/// pod) on the same database is the same CA, and its CRL numbers go on increasing.
#[test]
fn the_ca_keeps_its_inventory_and_keys_in_postgres() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    internal_pki(dir);
    let mut pg = pkiplane_store::testing::TestPostgres::start();
    let url = pg.url();
    let (ca_yaml, configs) = split_quickstart(dir, &[("est", &["est-basic-users"])]);
    let (api_port, pub_port, est_port, est_health) = (free_port(), free_port(), free_port(), free_port());
    let ca_url = format!("https://127.0.0.1:{api_port}");
    let base = format!("https://localhost:{est_port}");
    let crl = |name: &str| {
        sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/crl -o {name}.der"));
        let out = sh(dir, &format!("openssl crl -inform DER -in {name}.der -noout -crlnumber"));
        let hex = text(&out.stdout).trim().trim_start_matches("crlNumber=0x").to_owned();
        u64::from_str_radix(&hex, 16).unwrap_or_else(|e| panic!("crlNumber {hex}: {e}"))
    };

    // The CA keys are sealed with a KEK from a file from the first start on.
    let (k1, k2) =
        ("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
    std::fs::write(dir.join("kek-1"), format!("{k1}\n")).unwrap();
    std::fs::write(dir.join("kek-2"), format!("{k2}\n{k1}\n")).unwrap();
    let kek_ids = |store: &pkiplane_store::PostgresStore, runtime: &tokio::runtime::Runtime| {
        use pkiplane_store::sealing::{SealableRows, is_sealed, sealed_with};
        let rows = runtime.block_on(store.private_key_rows()).unwrap();
        assert!(!rows.is_empty());
        let ids: std::collections::BTreeSet<String> = rows
            .iter()
            .map(|r| if is_sealed(&r.stored) { sealed_with(&r.stored).unwrap().to_owned() } else { "plain".into() })
            .collect();
        ids
    };
    let ca =
        start_ca(dir, &ca_yaml, &dir.join("data-1"), (api_port, pub_port), Some(&url), Some(&dir.join("kek-1")), None);
    let est = start_endpoint(dir, &ca_url, "est", &configs[0], est_port, est_health);
    sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-root/ca.pem -o root.pem"));
    sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/ca.pem -o int.pem"));
    let first = est_enroll(dir, &base, "pg1");
    sh(dir, &format!("openssl verify -CAfile root.pem -untrusted int.pem {}", first.display()));
    let first_crl = crl("crl1");
    drop(est);
    drop(ca);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(pkiplane_store::PostgresStore::connect(&url)).unwrap();
    assert_eq!(kek_ids(&store, &runtime), ["k1".to_owned()].into());

    // Without the KEK the CA refuses to start, naming the key it needs.
    let refused = Command::new("timeout")
        .args(["60", BIN, "ca", "--manifests", ca_yaml.to_str().unwrap(), "--store", &url, "--tls-dir"])
        .arg(dir.join("ca-tls"))
        .arg("--data-dir")
        .arg(dir.join("data-x"))
        .args(["--listen", &format!("127.0.0.1:{api_port}"), "--publish-listen", &format!("127.0.0.1:{pub_port}")])
        .output()
        .unwrap();
    let stderr = text(&refused.stderr);
    assert!(refused.status.code() == Some(2) && stderr.contains("`k1`") && stderr.contains("--kek-file"), "{stderr}");

    // A new CA process with an empty data directory, on the same database, with a rotated
    // KEK file (k2 first, k1 kept for reading): the same CA, its keys rewrapped to k2.
    let _ca =
        start_ca(dir, &ca_yaml, &dir.join("data-2"), (api_port, pub_port), Some(&url), Some(&dir.join("kek-2")), None);
    assert_eq!(kek_ids(&store, &runtime), ["k2".to_owned()].into());
    let rekey = Command::new(BIN)
        .args(["store", "rekey", "--store", &url, "--kek-file"])
        .arg(dir.join("kek-2"))
        .output()
        .unwrap();
    let said = text(&rekey.stdout);
    assert!(rekey.status.success() && said.contains("rewrapped 0 keys to `k2`"), "{said} {}", text(&rekey.stderr));
    let _est = start_endpoint(dir, &ca_url, "est", &configs[0], est_port, est_health);
    sh(dir, &format!("curl -sSf http://127.0.0.1:{pub_port}/issuers/pki/example-intermediate/ca.pem -o int2.pem"));
    assert_eq!(std::fs::read(dir.join("int.pem")).unwrap(), std::fs::read(dir.join("int2.pem")).unwrap(), "same CA");
    let second = est_enroll(dir, &base, "pg2");
    sh(dir, &format!("openssl verify -CAfile root.pem -untrusted int.pem {}", second.display()));

    // PostgreSQL crashes: the device gets 503 with Retry-After (no certificate without a
    // record), and enrolls again once the database is back, with no CA restart.
    pg.crash();
    sh(
        dir,
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout down.key \
         -subj /CN=down.localhost -addext subjectAltName=DNS:down.localhost -outform DER -out down.csr.der 2>/dev/null && \
         openssl base64 -in down.csr.der > down.csr.b64",
    );
    let refused = text(
        &sh(
            dir,
            &format!(
                "curl -s -D - -o /dev/null --cacert root.pem -u device-enroller:est-demo-password \
             -H 'content-type: application/pkcs10' --data-binary @down.csr.b64 \
             {base}/.well-known/est/tls/simpleenroll"
            ),
        )
        .stdout,
    );
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_lowercase().contains("retry-after:"), "{refused}");
    pg.start_again();
    let until = Instant::now() + Duration::from_secs(30);
    let third = loop {
        let out = Command::new("bash")
            .current_dir(dir)
            .arg("-c")
            .arg(format!(
                "curl -sSf --cacert root.pem -u device-enroller:est-demo-password -H 'content-type: application/pkcs10' \
                 --data-binary @down.csr.b64 {base}/.well-known/est/tls/simpleenroll -o down.p7.b64 && \
                 openssl base64 -d -in down.p7.b64 | openssl pkcs7 -inform DER -print_certs -out down.pem"
            ))
            .output()
            .unwrap();
        if out.status.success() {
            break dir.join("down.pem");
        }
        assert!(Instant::now() < until, "no enrollment after PostgreSQL came back: {}", text(&out.stderr));
        std::thread::sleep(Duration::from_millis(300));
    };
    sh(dir, &format!("openssl verify -CAfile root.pem -untrusted int.pem {}", third.display()));

    // Revoking the first makes the next CRL list it, with a higher number.
    let serial = text(&sh(dir, &format!("openssl x509 -in {} -noout -serial", first.display())).stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_lowercase();
    let records = runtime.block_on(store.list(&InventoryFilter::default())).unwrap();
    let subjects: Vec<&str> = records.iter().map(|r| r.subject.as_str()).collect();
    // The operator's view: `pkiplane inventory` on the same database.
    let listed = Command::new(BIN).args(["inventory", "list", "--store", &url, "-o", "json"]).output().unwrap();
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.len(), records.len());
    for subject in ["CN=pg1.localhost", "CN=pg2.localhost", "CN=down.localhost"] {
        assert!(subjects.contains(&subject), "{subject} missing: {subjects:?}");
    }
    // Nothing the outage cut off is left pending once issuance resumed.
    assert!(records.iter().all(|r| r.status != pkiplane_core::inventory::CertStatus::Pending), "{records:?}");
    let issuer = pkiplane_core::model::ObjectRef::new("pki", "example-intermediate");
    let reason = pkiplane_core::inventory::RevocationReason::KeyCompromise;
    runtime
        .block_on(store.revoke(
            &issuer,
            &serial,
            pkiplane_core::inventory::Revocation { reason, at: std::time::SystemTime::now() },
        ))
        .unwrap();
    let (_, code, body) = api(
        dir,
        "est-tls",
        "POST",
        &format!("{ca_url}/v1/crl"),
        Some(r#"{"issuer": {"namespace": "pki", "name": "example-intermediate"}}"#),
    );
    assert_eq!(code, "200", "{body}");
    let wire: serde_json::Value = serde_json::from_str(&body).unwrap();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.decode(wire["der"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join("crl2.der"), der).unwrap();
    let out = sh(dir, "openssl crl -inform DER -in crl2.der -noout -crlnumber -text");
    let listing = text(&out.stdout);
    let hex = listing.lines().next().unwrap().trim().trim_start_matches("crlNumber=0x").to_owned();
    let second_crl = u64::from_str_radix(&hex, 16).unwrap();
    assert!(second_crl > first_crl, "CRL number {second_crl} after {first_crl}");
    assert!(listing.to_lowercase().contains(&format!("serial number: {serial}")), "{listing}");
    sh(dir, "openssl crl -inform DER -in crl2.der -out crl2.pem && cat root.pem int.pem > chain.pem");
    sh(dir, &format!("openssl verify -crl_check -CAfile chain.pem -CRLfile crl2.pem {}", second.display()));
    let revoked = Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-crl_check", "-CAfile", "chain.pem", "-CRLfile", "crl2.pem"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(!revoked.status.success() && text(&revoked.stderr).contains("certificate revoked"), "{revoked:?}");
}
