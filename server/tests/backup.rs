//! `pkiplane backup` and `pkiplane restore` with the real binary: a backup taken while
//! `pkiplane serve` runs, the data directory wiped, the backup restored; the CA goes on
//! with the same keys, issues, and publishes a CRL whose number is above every CRL
//! published before (also those published after the backup), verified with openssl.
//! The CA keys are sealed with a key-encryption key throughout: the backup holds them
//! sealed, and the restored store opens only with the KEK.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, quickstart_free_ports};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pkiplane(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn sh(dir: &Path, cmd: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `pkiplane issue` of `name`.csr under enterprise-tls-47d into `name`.pem, with the KEK
/// file or without.
fn issue_command(dir: &Path, manifests: &Path, data: &Path, name: &str, with_kek: bool) -> Output {
    let (csr, pem, kek) = (dir.join(format!("{name}.csr")), dir.join(format!("{name}.pem")), dir.join("kek"));
    let mut args = vec!["issue", "-f", manifests.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    args.extend(["--profile", "enterprise-tls-47d", "--csr", csr.to_str().unwrap(), "--out", pem.to_str().unwrap()]);
    if with_kek {
        args.extend(["--kek-file", kek.to_str().unwrap()]);
    }
    pkiplane(&args)
}

/// Issues a certificate for `name` (a new key and CSR); returns its serial (hex).
fn issue(dir: &Path, manifests: &Path, data: &Path, name: &str) -> String {
    sh(
        dir,
        &format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key \
             -subj /CN={name}.localhost -addext subjectAltName=DNS:{name}.localhost -out {name}.csr 2>/dev/null"
        ),
    );
    let out = issue_command(dir, manifests, data, name, true);
    assert!(out.status.success(), "issue {name}: {}", text(&out.stderr));
    sh(dir, &format!("openssl x509 -in {name}.pem -noout -serial")).trim().trim_start_matches("serial=").to_lowercase()
}

fn serve(dir: &Path, manifests: &Path, data: &Path, ready: &str) -> Server {
    let kek = dir.join("kek");
    Server::start_with(manifests, data, &dir.join(ready), &["--kek-file", kek.to_str().unwrap()], None)
}

fn revoke(data: &Path, serial: &str) {
    let out = pkiplane(&["revoke", serial, "--data-dir", data.to_str().unwrap(), "--reason", "keyCompromise"]);
    assert!(out.status.success(), "revoke {serial}: {}", text(&out.stderr));
}

/// Fetches the intermediate's CRL into `name`.pem; returns its number.
fn fetch_crl(dir: &Path, server: &Server, name: &str) -> u64 {
    let url = format!("{}/issuers/pki/example-intermediate/crl", server.publish_url);
    sh(dir, &format!("curl -sSf {url} -o {name}.der && openssl crl -inform DER -in {name}.der -out {name}.pem"));
    let number = sh(dir, &format!("openssl crl -in {name}.pem -noout -crlnumber"));
    let hex = number.trim().trim_start_matches("crlNumber=0x");
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("crlNumber {number}: {e}"))
}

fn verify(dir: &Path, crl: &str, cert: &str) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args([
            "verify",
            "-crl_check",
            "-CAfile",
            "chain.pem",
            "-CRLfile",
            &format!("{crl}.pem"),
            &format!("{cert}.pem"),
        ])
        .output()
        .unwrap()
}

#[test]
fn backup_wipe_restore_then_issue_and_publish_a_higher_crl() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let manifests = quickstart_free_ports(dir);
    let data = dir.join("data");
    let backup = dir.join("backup.db");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(dir.join("kek"), "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
    let a = issue(dir, &manifests, &data, "a");
    let b = issue(dir, &manifests, &data, "b");

    // A backup taken while the server runs.
    let server = serve(dir, &manifests, &data, "ready-1.json");
    let publish = server.publish_url.clone();
    sh(dir, &format!("curl -sSf {publish}/issuers/pki/example-root/ca.pem -o root.pem"));
    sh(dir, &format!("curl -sSf {publish}/issuers/pki/example-intermediate/ca.pem -o int.pem"));
    sh(dir, "cat root.pem int.pem > chain.pem");
    let first = fetch_crl(dir, &server, "crl-1");
    let out = pkiplane(&["backup", "--data-dir", data.to_str().unwrap(), "--out", backup.to_str().unwrap()]);
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(" certificates, schema "), "{}", text(&out.stdout));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    // Restoring into a directory a server runs on is refused.
    let out =
        pkiplane(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--force"]);
    assert!(!out.status.success() && text(&out.stderr).contains("stop it first"), "{}", text(&out.stderr));
    drop(server);

    // After the backup: a revocation and a newer CRL, which the backup does not know.
    revoke(&data, &a);
    let server = serve(dir, &manifests, &data, "ready-2.json");
    let second = fetch_crl(dir, &server, "crl-2");
    assert!(second > first);
    drop(server);

    // The node is lost.
    std::fs::remove_dir_all(&data).unwrap();
    let out = pkiplane(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(out.status.success(), "restore: {}", text(&out.stderr));
    // A second restore over the restored store needs --force.
    let out = pkiplane(&["restore", "--from", backup.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("--force"), "{}", text(&out.stderr));

    // The restored keys are sealed: without the KEK the CA refuses, naming the key.
    let out = issue_command(dir, &manifests, &data, "a", false);
    assert!(!out.status.success() && text(&out.stderr).contains("`k1`"), "{}", text(&out.stderr));

    // The CA goes on: the same keys, a new certificate with a new serial, and a CRL above
    // every number published so far that lists what the restored inventory revoked.
    let c = issue(dir, &manifests, &data, "c");
    assert!(c != a && c != b, "serial reused");
    revoke(&data, &b);
    let server = serve(dir, &manifests, &data, "ready-3.json");
    sh(dir, &format!("curl -sSf {}/issuers/pki/example-intermediate/ca.pem -o int-after.pem", server.publish_url));
    assert_eq!(std::fs::read(dir.join("int.pem")).unwrap(), std::fs::read(dir.join("int-after.pem")).unwrap());
    let third = fetch_crl(dir, &server, "crl-3");
    assert!(third > second, "CRL number {third} after a restore, {second} was published before");
    let ok = verify(dir, "crl-3", "c");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let revoked = verify(dir, "crl-3", "b");
    assert!(!revoked.status.success() && text(&revoked.stderr).contains("certificate revoked"), "{revoked:?}");
    // The inventory has the certificates of the backup and the new one, no serial twice
    // (the serving certificates `serve` issues itself are in it too).
    // Asked of the running server, which owns the data directory.
    let flags = common::admin_flags(&data);
    let mut args = vec!["inventory", "list", "--data-dir", data.to_str().unwrap(), "-o", "json"];
    args.extend(flags.iter().map(String::as_str));
    let out = pkiplane(&args);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let serials: Vec<&str> = records.iter().filter_map(|r| r["serial"].as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = serials.iter().copied().collect();
    assert_eq!(unique.len(), serials.len(), "a serial twice: {serials:?}");
    for serial in [&a, &b, &c] {
        assert!(unique.contains(serial.as_str()), "{serial} missing: {serials:?}");
    }
}
