//! The `pkiplane` binary as an operator and a CI pipeline use it: real processes, a real
//! SQLite data directory, CSRs from `openssl req`, certificates checked by `openssl verify`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{QUICKSTART, issue_args, text, verify_chain};

fn pkiplane(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkiplane"))
        .args(args)
        .envs(env.iter().copied())
        .env("PKIPLANE_LOG", "warn")
        .output()
        .expect("run pkiplane")
}

/// An ECDSA P-256 CSR from `openssl req` (`san` empty: none).
fn csr(dir: &Path, name: &str, subject: &str, san: &str) -> PathBuf {
    common::p256_csr_with(dir, name, subject, Some(san).filter(|s| !s.is_empty()), common::CsrForm::Pem)
}

fn inventory_json(data: &Path) -> Vec<serde_json::Value> {
    let out = pkiplane(&["inventory", "list", "--data-dir", data.to_str().unwrap(), "-o", "json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn policy_check_exit_codes_and_reasons() {
    let d = tempfile::tempdir().unwrap();
    let good = csr(d.path(), "good", "/CN=web.localhost", "DNS:web.localhost");
    let out = pkiplane(
        &["policy", "check", "-f", QUICKSTART, "--profile", "enterprise-tls-47d", "--csr", good.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("ALLOWED") && t.contains("DNS:web.localhost") && t.contains("(47d)"), "{t}");

    let bad = csr(d.path(), "bad", "/CN=www.evil.test", "DNS:www.evil.test");
    let out = pkiplane(
        &[
            "policy",
            "check",
            "-f",
            QUICKSTART,
            "--profile",
            "pki/enterprise-tls-47d",
            "--csr",
            bad.to_str().unwrap(),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allowed"], false);
    let rules: Vec<&str> = v["violations"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"subjectAltNames.dns.suffixes"), "{rules:?}");

    // Input errors exit 2 with a message naming the problem.
    let junk = d.path().join("junk.csr");
    std::fs::write(&junk, "not a csr").unwrap();
    let out = pkiplane(
        &["policy", "check", "-f", QUICKSTART, "--profile", "enterprise-tls-47d", "--csr", junk.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no PEM block"), "{}", text(&out));
    let out =
        pkiplane(&["policy", "check", "-f", QUICKSTART, "--profile", "nope", "--csr", good.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no CertificateProfile named nope"), "{}", text(&out));
    let out = pkiplane(&["policy", "check", "--profile", "x"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn crash_between_persist_and_sign_leaves_a_consistent_inventory() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let req = csr(d.path(), "dev", "/CN=web.localhost", "DNS:web.localhost");
    let args = issue_args(QUICKSTART, &data, &req, None);

    // The failpoint aborts the process right after the pending record is committed.
    let crashed = pkiplane(&args, &[("PKIPLANE_FAILPOINT", "issuance-after-persist")]);
    assert!(!crashed.status.success());
    assert!(crashed.stdout.is_empty(), "no certificate may leave a crashed issuance");
    let records = inventory_json(&data);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "pending");
    assert!(records[0].get("certificate").is_none());
    let crashed_serial = records[0]["serial"].as_str().unwrap().to_string();

    // Restart (a second later: the store keeps whole seconds) and issue again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = pkiplane(&args, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let chain = d.path().join("chain.pem");
    std::fs::write(&chain, &out.stdout).unwrap();
    let records = inventory_json(&data);
    assert_eq!(records.len(), 2);
    let crashed = records.iter().find(|r| r["serial"] == crashed_serial.as_str()).unwrap();
    assert_eq!(crashed["status"], "abandoned", "start-up recovery marks the interrupted issuance");
    let issued = records.iter().find(|r| r["serial"] != crashed_serial.as_str()).unwrap();
    assert_eq!(issued["status"], "issued");
    assert_eq!(issued["protocol"], "LOCAL");

    // The issued certificate verifies against the stored hierarchy, and `inventory show
    // --pem` returns exactly it.
    let serial = issued["serial"].as_str().unwrap();
    let shown = pkiplane(&["inventory", "show", serial, "--data-dir", data.to_str().unwrap(), "--pem"], &[]);
    assert!(shown.status.success());
    let leaf = d.path().join("leaf.pem");
    std::fs::write(&leaf, &shown.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&*String::from_utf8_lossy(&shown.stdout)));
    let pem = String::from_utf8(out.stdout).unwrap();
    let certs: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert_eq!(certs.len(), 3, "leaf, intermediate, root");
    let (int, root) = (d.path().join("int.pem"), d.path().join("root.pem"));
    std::fs::write(&int, certs[1]).unwrap();
    std::fs::write(&root, certs[2]).unwrap();
    verify_chain(&root, &int, &leaf);

    // Issuers persist across restarts: a third issuance chains to the same root.
    let again = pkiplane(&args, &[]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).ends_with(certs[2]));
}

#[test]
fn inventory_filters_and_output_formats() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let dd = data.to_str().unwrap();
    let web = csr(d.path(), "web", "/CN=web.localhost", "DNS:web.localhost");
    let dev = csr(d.path(), "dev", "/CN=sensor-1", "URI:spiffe://example.org/device/sensor-1");
    for (profile, c) in [("enterprise-tls-47d", &web), ("device-ldevid-1y", &dev)] {
        let out = pkiplane(
            &["issue", "-f", QUICKSTART, "--data-dir", dd, "--profile", profile, "--csr", c.to_str().unwrap()],
            &[],
        );
        assert!(out.status.success(), "{profile}: {}", text(&out));
    }
    let out =
        pkiplane(&["inventory", "list", "--data-dir", dd, "--profile", "pki/device-ldevid-1y", "-o", "json"], &[]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["sans"][0], "URI:spiffe://example.org/device/sensor-1");
    let out = pkiplane(&["inventory", "list", "--data-dir", dd, "--expiring-within", "60d", "-o", "json"], &[]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.len(), 1, "only the 47-day certificate expires within 60 days");
    let out = pkiplane(&["inventory", "list", "--data-dir", dd, "--protocol", "acme", "-o", "json"], &[]);
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap().len(), 0);
    let out = pkiplane(&["inventory", "list", "--data-dir", dd], &[]);
    let t = text(&out);
    assert!(t.starts_with("SERIAL") && t.contains("DNS:web.localhost") && t.contains("LOCAL"), "{t}");
    let out = pkiplane(&["inventory", "list", "--data-dir", dd, "-o", "yaml"], &[]);
    assert!(text(&out).contains("status: issued"));
    let out = pkiplane(&["inventory", "list", "--data-dir", d.path().join("missing").to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no inventory at"));
    let out = pkiplane(&["inventory", "show", "00ff", "--data-dir", dd], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_decision_is_a_json_audit_line() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let audit = d.path().join("audit.jsonl");
    let env = [("PKIPLANE_AUDIT_LOG", audit.to_str().unwrap())];
    let good = csr(d.path(), "good", "/CN=web.localhost", "DNS:web.localhost");
    let bad = csr(d.path(), "bad", "/CN=www.evil.test", "DNS:www.evil.test");
    for (c, code) in [(&good, 0), (&bad, 1)] {
        let out = pkiplane(&issue_args(QUICKSTART, &data, c, Some("alice")), &env);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    }
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&audit).unwrap().lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["decision"], "issued");
    assert_eq!(lines[0]["requester"], "alice");
    assert_eq!(lines[0]["protocol"], "LOCAL");
    assert_eq!(lines[0]["profile"], "pki/enterprise-tls-47d");
    assert_eq!(lines[0]["sans"], "DNS:web.localhost");
    assert!(lines[0]["serial"].as_str().unwrap().len() == 32);
    assert_eq!(lines[1]["decision"], "denied");
    assert!(lines[1]["reasons"].as_str().unwrap().contains("subjectAltNames.dns.suffixes"), "{:?}", lines[1]);
}

#[test]
fn a_data_directory_that_does_not_exist_is_refused_by_every_writing_command() {
    let d = tempfile::tempdir().unwrap();
    let typo = d.path().join("pkiplane-dta");
    let dd = typo.to_str().unwrap();
    let req = csr(d.path(), "web", "/CN=web.localhost", "DNS:web.localhost");
    let commands: [&[&str]; 3] = [
        &[
            "issue",
            "-f",
            QUICKSTART,
            "--data-dir",
            dd,
            "--profile",
            "enterprise-tls-47d",
            "--csr",
            req.to_str().unwrap(),
        ],
        &["revoke", "00ff", "--data-dir", dd],
        &["scep", "challenge", "-f", QUICKSTART, "--data-dir", dd, "--endpoint", "pki/scep"],
    ];
    for args in commands {
        let out = pkiplane(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(&format!("data directory {dd} does not exist")), "{args:?}: {}", text(&out));
        assert!(!typo.exists(), "{args:?} created the mistyped data directory");
    }
    // An existing directory without a database: revoke has nothing to revoke in.
    std::fs::create_dir(&typo).unwrap();
    let out = pkiplane(&["revoke", "00ff", "--data-dir", dd], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no inventory at"), "{}", text(&out));
    assert!(!typo.join("inventory.db").exists());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_data_directory_and_its_private_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let audit = d.path().join("audit.jsonl");
    let req = csr(d.path(), "web", "/CN=web.localhost", "DNS:web.localhost");
    let args = issue_args(QUICKSTART, &data, &req, None);
    let env = [("PKIPLANE_AUDIT_LOG", audit.to_str().unwrap())];
    let out = pkiplane(&args, &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("permissions tightened"), "a looser directory is reported: {}", text(&out));
    assert_eq!(mode(&data), 0o700);
    let db = data.join("inventory.db");
    for f in [db.clone(), data.join("owner.lock"), audit.clone()] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    for f in std::fs::read_dir(&data).unwrap() {
        let f = f.unwrap().path();
        assert_eq!(mode(&f) & 0o077, 0, "{} is readable by others", f.display());
    }

    // Files loosened since (a copy, a careless chmod) are tightened at the next start.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pkiplane(&args, &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("permissions tightened"), "{}", text(&out));
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&audit), 0o600);
}
