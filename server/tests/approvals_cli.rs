//! Per-request approval with the `pkiplane` binary on a data directory (every command a
//! new process: the records survive restarts): `issue` under a profile that requires
//! approval waits (exit 3) and names the request; `approvals list`, `approve ID`,
//! `deny ID --reason` decide one request each; the approved request's next `issue` gets
//! its certificate (verified with `openssl verify`), the waiting one still waits, the
//! denied one is refused with the reason; a decision is final.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{QUICKSTART, text, verify_chain};

fn pkiplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkiplane"))
        .args(args)
        .env("PKIPLANE_LOG", "warn")
        .env_remove("PKIPLANE_DATA_DIR")
        .output()
        .expect("run pkiplane")
}

/// The quickstart manifests with enterprise-tls-47d requiring approval.
fn manifests(dir: &Path) -> PathBuf {
    let yaml = std::fs::read_to_string(QUICKSTART).unwrap();
    let marker = "  description: TLS server and client certificates, 47 days\n";
    assert!(yaml.contains(marker), "the quickstart profile changed");
    let path = dir.join("manifests.yaml");
    std::fs::write(&path, yaml.replace(marker, &format!("{marker}  approval:\n    required: true\n"))).unwrap();
    path
}

fn csr(dir: &Path, name: &str) -> PathBuf {
    let san = format!("DNS:{name}.example.com");
    common::p256_csr_with(dir, name, &format!("/CN={name}.example.com"), Some(&san), common::CsrForm::Pem)
}

fn issue(manifests: &Path, data: &Path, csr: &Path) -> Output {
    pkiplane(&common::issue_args(manifests.to_str().unwrap(), data, csr, Some("ops")))
}

/// The request id an `issue` that waits names.
fn request_id(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(3), "{}", text(out));
    let t = text(out);
    let after = t.split("pkiplane approve ").nth(1).unwrap_or_else(|| panic!("no request id in: {t}"));
    after.split('`').next().unwrap().to_owned()
}

fn list(data: &Path, state: &str) -> Vec<serde_json::Value> {
    let out = pkiplane(&["approvals", "list", "--data-dir", data.to_str().unwrap(), "--state", state, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn one_request_is_approved_by_id_one_waits_and_one_is_denied() {
    let d = tempfile::tempdir().unwrap();
    let (m, data) = (manifests(d.path()), d.path().join("data"));
    std::fs::create_dir(&data).unwrap();
    let dd = data.to_str().unwrap();
    let (a, b, c) = (csr(d.path(), "a"), csr(d.path(), "b"), csr(d.path(), "c"));
    let ids = [request_id(&issue(&m, &data, &a)), request_id(&issue(&m, &data, &b)), request_id(&issue(&m, &data, &c))];
    // Asking again before a decision: the same request, still waiting.
    assert_eq!(request_id(&issue(&m, &data, &a)), ids[0]);

    let waiting = list(&data, "waiting");
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    let a_view = waiting.iter().find(|r| r["id"] == ids[0].as_str()).unwrap();
    assert_eq!(a_view["requester"], "ops");
    assert_eq!(a_view["protocol"], "LOCAL");
    assert_eq!(a_view["profile"], "pki/enterprise-tls-47d");
    assert_eq!(a_view["sans"], serde_json::json!(["DNS:a.example.com"]));
    assert_eq!(a_view["keyAlgorithm"], "ECDSA P-256");

    let out = pkiplane(&["approve", &ids[0], "--data-dir", dd, "--reason", "ticket OPS-7", "--identity", "alice"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pkiplane(&["deny", &ids[2], "--data-dir", dd, "--reason", "unknown host", "--identity", "alice"]);
    assert!(out.status.success(), "{}", text(&out));
    // Decisions are final.
    let out = pkiplane(&["approve", &ids[0], "--data-dir", dd]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already approved by alice"), "{}", text(&out));
    let out = pkiplane(&["approve", &ids[2], "--data-dir", dd]);
    assert!(text(&out).contains("already denied by alice"), "{}", text(&out));
    let out = pkiplane(&["deny", &ids[1], "--data-dir", dd, "--reason", ""]);
    assert!(!out.status.success(), "a denial needs a reason: {}", text(&out));

    // The approved request: its certificate, once, verified against the chain.
    let out = issue(&m, &data, &a);
    assert!(out.status.success(), "{}", text(&out));
    let pem = String::from_utf8(out.stdout).unwrap();
    let certs: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert_eq!(certs.len(), 3, "leaf, intermediate, root");
    let (leaf, int, root) = (d.path().join("leaf.pem"), d.path().join("int.pem"), d.path().join("root.pem"));
    for (p, c) in [(&leaf, certs[0]), (&int, certs[1]), (&root, certs[2])] {
        std::fs::write(p, c).unwrap();
    }
    verify_chain(&root, &int, &leaf);
    let again = issue(&m, &data, &a);
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).starts_with(certs[0]), "the same certificate again");

    // The waiting one waits; the denied one is refused with the reason.
    assert_eq!(request_id(&issue(&m, &data, &b)), ids[1]);
    let out = issue(&m, &data, &c);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unknown host"), "{}", text(&out));

    let inventory = pkiplane(&["inventory", "list", "--data-dir", dd, "-o", "json"]);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&inventory.stdout).unwrap();
    let leaves: Vec<_> = records.iter().filter(|r| r["profile"] == "pki/enterprise-tls-47d").collect();
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(list(&data, "waiting").len(), 1);
    let all = list(&data, "all");
    let approved = all.iter().find(|r| r["id"] == ids[0].as_str()).unwrap();
    assert_eq!((approved["state"].as_str(), approved["decidedBy"].as_str()), (Some("approved"), Some("alice")));
    assert_eq!(approved["serial"], leaves[0]["serial"]);
}
