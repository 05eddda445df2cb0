//! The admin API of `pkiplane serve`, with real clients (the pkiplane CLI, curl,
//! openssl): the local token is required and compared, the CLI lists, shows and revokes
//! through `--server`, the offline CLI refuses a data directory the server owns and
//! names the flags to use, errors are JSON with a specific message, and a revocation
//! shows in the next CRL (`openssl crl`) and OCSP answer (`openssl ocsp`) of the
//! publication listener. `sign-crl` moves the CRL number on.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, Server, quickstart_free_ports, text};

fn run(dir: &Path, cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).current_dir(dir).env("PKIPLANE_LOG", "warn").output().unwrap()
}

fn ok(dir: &Path, cmd: &str, args: &[&str]) -> String {
    let out = run(dir, cmd, args);
    assert!(out.status.success(), "{cmd} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Admin {
    dir: PathBuf,
    url: String,
    ca_file: String,
    token_file: String,
}

impl Admin {
    /// curl against the admin API: (HTTP status, body).
    fn curl(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> (String, String) {
        let url = format!("{}{path}", self.url);
        let mut args = vec!["-sS", "-o", "body.out", "-w", "%{http_code}", "--cacert", &self.ca_file, "-X", method];
        let header;
        if let Some(token) = auth {
            header = format!("Authorization: Bearer {token}");
            args.extend(["-H", &header]);
        }
        if let Some(b) = body {
            args.extend(["-H", "content-type: application/json", "--data-binary", b]);
        }
        args.push(&url);
        let code = ok(&self.dir, "curl", &args);
        (code, std::fs::read_to_string(self.dir.join("body.out")).unwrap())
    }

    /// `pkiplane <args> --server ... --ca-file ... --token-file ...`.
    fn cli(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url, "--ca-file", &self.ca_file, "--token-file", &self.token_file]);
        run(&self.dir, BIN, &all)
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn serve_admin_api_lists_and_revokes_with_the_local_token_and_crl_and_ocsp_show_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let manifests = quickstart_free_ports(&dir);
    let csr = common::p256_csr(&dir, "leaf", "web.localhost");
    let serial = common::issue_with_cli(&manifests, &data, "enterprise-tls-47d", &csr, &dir.join("leaf.pem"));
    let serial_hex = serial.to_ascii_lowercase();
    let server = Server::start(&manifests, &data, &dir.join("ready.json"));
    for (issuer, file) in [("example-root", "root.pem"), ("example-intermediate", "int.pem")] {
        ok(&dir, "curl", &["-sSf", "-o", file, &format!("{}/issuers/pki/{issuer}/ca.pem", server.publish_url)]);
    }

    // The token was generated into the data directory, private.
    let token_file = data.join("admin.token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    let admin = Admin {
        dir: dir.clone(),
        url: server.admin_url.clone(),
        ca_file: data.join("admin-tls/ca.crt").to_str().unwrap().to_owned(),
        token_file: token_file.to_str().unwrap().to_owned(),
    };

    // No token, a malformed header, the wrong token: 401 with a JSON reason.
    let (code, body) = admin.curl("GET", "/admin/v1/certificates", None, None);
    assert_eq!(code, "401", "{body}");
    assert_eq!(json(&body)["error"], "unauthorized");
    assert!(json(&body)["message"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    let wrong = "f".repeat(64);
    let (code, body) = admin.curl("GET", "/admin/v1/certificates", Some(&wrong), None);
    assert_eq!(code, "401", "{body}");
    assert!(body.contains("not the admin token"), "{body}");
    let refused =
        run(&dir, BIN, &["inventory", "list", "--server", &admin.url, "--ca-file", &admin.ca_file, "--token", &wrong]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).contains("401") && text(&refused).contains("not the admin token"), "{}", text(&refused));
    // The publication listener has no admin routes.
    let code = ok(
        &dir,
        "curl",
        &["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/admin/v1/certificates", server.publish_url)],
    );
    assert_eq!(code, "404");

    // The offline CLI refuses the directory the server owns, naming the flags to use.
    let offline = run(&dir, BIN, &["inventory", "list", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(offline.status.code(), Some(2));
    let why = text(&offline);
    assert!(why.contains("in use by `pkiplane serve`"), "{why}");
    assert!(why.contains(&format!("--server {}", admin.url)) && why.contains("--token-file"), "{why}");
    let offline = run(&dir, BIN, &["revoke", &serial, "--data-dir", data.to_str().unwrap()]);
    assert!(text(&offline).contains("--server"), "{}", text(&offline));

    // The right token lists (the quickstart's serving certificates and the leaf).
    let listed = admin.cli(&["inventory", "list", "-o", "json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let all: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(all.len() >= 2, "{all:?}");
    assert!(all.iter().any(|r| r["serial"] == serial_hex.as_str()), "{all:?}");
    // Filters: by serial, by profile, by status.
    let one = admin.cli(&["inventory", "list", "--serial", &serial, "-o", "json"]);
    let one: Vec<serde_json::Value> = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["profile"], "pki/enterprise-tls-47d");
    let by_profile = admin.cli(&["inventory", "list", "--profile", "pki/enterprise-tls-47d", "-o", "json"]);
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&by_profile.stdout).unwrap().len(), 1);
    let revoked = admin.cli(&["inventory", "list", "--status", "revoked", "-o", "json"]);
    assert_eq!(String::from_utf8_lossy(&revoked.stdout).trim(), "[]");
    // Pages: one row each, linked by `continue`, and the CLI follows them.
    let (code, body) = admin.curl("GET", "/admin/v1/certificates?limit=1", Some(&token), None);
    assert_eq!(code, "200", "{body}");
    let first = json(&body);
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    let next = first["continue"].as_str().expect("a second page").to_owned();
    let (_, body) = admin.curl("GET", &format!("/admin/v1/certificates?limit=1&continue={next}"), Some(&token), None);
    assert_ne!(json(&body)["items"][0]["serial"], first["items"][0]["serial"]);
    let limited = admin.cli(&["inventory", "list", "--limit", "1", "-o", "json"]);
    assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&limited.stdout).unwrap().len(), 1);
    // One certificate, as PEM: the one issued.
    let shown = admin.cli(&["inventory", "show", &serial, "--pem"]);
    assert!(shown.status.success(), "{}", text(&shown));
    let issued = std::fs::read_to_string(dir.join("leaf.pem")).unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.ends_with("-----END CERTIFICATE-----\n") && shown.matches("BEGIN").count() == 1, "{shown}");
    assert!(issued.starts_with(&shown), "the leaf `issue` wrote (its chain follows it there)");

    // Bad input: specific JSON errors; the store is untouched.
    let (code, body) = admin.curl("GET", "/admin/v1/certificates?status=lost", Some(&token), None);
    assert_eq!(code, "400");
    assert!(json(&body)["message"].as_str().unwrap().contains("status"), "{body}");
    let (code, body) = admin.curl("GET", "/admin/v1/certificates/5eed00", Some(&token), None);
    assert_eq!(code, "404");
    assert_eq!(json(&body)["message"], "no certificate with serial 5eed00");
    let path = format!("/admin/v1/certificates/{serial}/revoke");
    let (code, body) = admin.curl("POST", &path, Some(&token), Some(r#"{"reason":"stolen"}"#));
    assert_eq!(code, "400");
    assert!(body.contains("unknown reason `stolen`"), "{body}");
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(20_000));
    let (code, _) = admin.curl("POST", &path, Some(&token), Some(&big));
    assert_eq!(code, "413");
    let (code, _) = admin.curl("POST", &path, Some(&wrong), Some(r#"{"reason":"keyCompromise"}"#));
    assert_eq!(code, "401");

    // Revoke with the CLI; again is a no-op that says so.
    let revoked = admin.cli(&["revoke", &serial, "--reason", "keyCompromise"]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    assert!(text(&revoked).contains(&format!("revoked {serial_hex} (keyCompromise)")), "{}", text(&revoked));
    let again = admin.cli(&["revoke", &serial, "--reason", "superseded"]);
    assert!(text(&again).contains("already revoked (keyCompromise"), "{}", text(&again));
    let one = admin.cli(&["inventory", "list", "--serial", &serial, "-o", "json"]);
    let one: Vec<serde_json::Value> = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one[0]["status"], "revoked");

    // The publication listener's CRL lists it with its reason, and verifies.
    let crl_url = format!("{}/issuers/pki/example-intermediate/crl", server.publish_url);
    ok(&dir, "curl", &["-sSf", "-o", "crl.der", &crl_url]);
    let crl =
        ok(&dir, "openssl", &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", "-CAfile", "int.pem"]);
    assert!(crl.contains(&format!("Serial Number: {}", serial.to_ascii_uppercase())), "{crl}");
    assert!(crl.contains("Key Compromise"), "{crl}");
    let verified = run(&dir, "openssl", &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-CAfile", "int.pem"]);
    assert!(text(&verified).contains("verify OK"), "{}", text(&verified));
    let number =
        |crl: &str| crl.lines().skip_while(|l| !l.contains("X509v3 CRL Number")).nth(1).unwrap().trim().to_owned();
    let before = number(&crl);
    // OCSP answers revoked, with the reason.
    let ocsp = ok(
        &dir,
        "openssl",
        &[
            "ocsp",
            "-url",
            &format!("{}/issuers/pki/example-intermediate/ocsp", server.publish_url),
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "int.pem",
        ],
    );
    assert!(ocsp.contains("leaf.pem: revoked") && ocsp.contains("Reason: keyCompromise"), "{ocsp}");

    // sign-crl: a fresh CRL now, served from then on with the next number.
    let (code, body) = admin.curl("POST", "/admin/v1/issuers/pki/example-intermediate/crl", Some(&token), None);
    assert_eq!(code, "200", "{body}");
    assert_eq!(json(&body)["revokedSerials"], 1);
    let (code, _) = admin.curl("POST", "/admin/v1/issuers/pki/no-such-issuer/crl", Some(&token), None);
    assert_eq!(code, "404");
    ok(&dir, "curl", &["-sSf", "-o", "crl2.der", &crl_url]);
    let crl2 = ok(&dir, "openssl", &["crl", "-inform", "DER", "-in", "crl2.der", "-noout", "-text"]);
    assert_ne!(number(&crl2), before, "the re-signed CRL is the one published");
    assert!(crl2.contains(&format!("Serial Number: {}", serial.to_ascii_uppercase())), "{crl2}");
}

#[test]
fn serve_admin_api_takes_a_given_token_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let data = dir.join("data");
    let manifests = quickstart_free_ports(&dir);
    let given = dir.join("token");
    std::fs::write(&given, "short\n").unwrap();
    // Too short: refused at start.
    let out = Command::new("timeout")
        .args(["30", BIN, "serve", "-f", manifests.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .args(["--publish-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--admin-token-file"])
        .arg(&given)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("at least 16 characters"), "{}", text(&out));
    std::fs::write(&given, "a-long-enough-admin-token\n").unwrap();
    let server = Server::start_with(
        &manifests,
        &data,
        &dir.join("ready.json"),
        &["--admin-token-file", given.to_str().unwrap()],
        None,
    );
    let ca_file = data.join("admin-tls/ca.crt");
    let list = |token: &str| {
        run(
            &dir,
            BIN,
            &[
                "inventory",
                "list",
                "--server",
                &server.admin_url,
                "--ca-file",
                ca_file.to_str().unwrap(),
                "--token",
                token,
            ],
        )
    };
    assert!(list("a-long-enough-admin-token").status.success());
    assert!(!list("a-long-enough-admin-tokeN").status.success());
    assert!(!data.join("admin.token").exists(), "no token is generated when one is given");
}
