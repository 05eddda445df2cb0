//! Approving and denying through the admin API of a running `pkiplane serve`: requests
//! made offline (`pkiplane issue`, exit 3 while waiting) are listed, read, approved and
//! denied by id with curl and with the CLI's `--server`; the offline CLI refuses to
//! decide on the directory the server owns; a decision is final (409); a denial needs a
//! reason (400). Once the server stops, the approved request gets its certificate
//! (`openssl verify`), the denied one the reason, the third still waits.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, quickstart_free_ports, text};

fn pkiplane(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("PKIPLANE_LOG", "warn").env_remove("PKIPLANE_DATA_DIR").output().unwrap()
}

fn issue(manifests: &Path, data: &Path, csr: &Path) -> Output {
    let (m, dd, c) = (manifests.to_str().unwrap(), data.to_str().unwrap(), csr.to_str().unwrap());
    pkiplane(&["issue", "-f", m, "--data-dir", dd, "--profile", "enterprise-tls-47d", "--csr", c, "--identity", "ops"])
}

/// The request id a waiting `issue` names.
fn request_id(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(3), "{}", text(out));
    let t = text(out);
    t.split("pkiplane approve ").nth(1).and_then(|s| s.split('`').next()).expect("a request id").to_owned()
}

/// curl with the admin token: (HTTP status, body).
fn curl(dir: &Path, server: &Server, token: &str, method: &str, path: &str, body: Option<&str>) -> (String, String) {
    let url = format!("{}{path}", server.admin_url);
    let ca = dir.join("data/admin-tls/ca.crt");
    let auth = format!("Authorization: Bearer {token}");
    let mut args = vec!["-sS", "-o", "body.out", "-w", "%{http_code}", "--cacert", ca.to_str().unwrap()];
    args.extend(["-X", method, "-H", &auth]);
    if let Some(b) = body {
        args.extend(["-H", "content-type: application/json", "--data-binary", b]);
    }
    args.push(&url);
    let out = Command::new("curl").args(&args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "curl: {}", text(&out));
    (String::from_utf8_lossy(&out.stdout).into_owned(), std::fs::read_to_string(dir.join("body.out")).unwrap())
}

#[test]
fn requests_are_listed_approved_and_denied_through_the_admin_api() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let manifests = quickstart_free_ports(dir);
    let yaml = std::fs::read_to_string(&manifests).unwrap();
    let marker = "  description: TLS server and client certificates, 47 days\n";
    assert!(yaml.contains(marker), "the quickstart profile changed");
    std::fs::write(&manifests, yaml.replace(marker, &format!("{marker}  approval:\n    required: true\n"))).unwrap();
    let csrs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let (subject, san) = (format!("/CN={n}.example.com"), format!("DNS:{n}.example.com"));
            common::p256_csr_with(dir, n, &subject, Some(&san), common::CsrForm::Pem)
        })
        .collect();
    let ids: Vec<String> = csrs.iter().map(|c| request_id(&issue(&manifests, &data, c))).collect();

    let server = Server::start(&manifests, &data, &dir.join("ready.json"));
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
    let remote = {
        let ca = data.join("admin-tls/ca.crt");
        let token_file = data.join("admin.token");
        let (url, ca, tf) =
            (server.admin_url.clone(), ca.to_str().unwrap().to_owned(), token_file.to_str().unwrap().to_owned());
        move |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(["--server", &url, "--ca-file", &ca, "--token-file", &tf]);
            pkiplane(&all)
        }
    };

    // Listed by the CLI through the server, and read by id.
    let listed = remote(&["approvals", "list", "-o", "json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let waiting: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    let (code, body) = curl(dir, &server, &token, "GET", &format!("/admin/v1/approvals/{}", ids[0]), None);
    assert_eq!(code, "200", "{body}");
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((a["state"].as_str(), a["requester"].as_str()), (Some("waiting"), Some("ops")));
    assert_eq!(a["sans"], serde_json::json!(["DNS:a.example.com"]));
    let (code, _) = curl(dir, &server, &token, "GET", "/admin/v1/approvals/00ff", None);
    assert_eq!(code, "404");
    let (code, body) = curl(dir, &server, &token, "GET", "/admin/v1/approvals?state=maybe", None);
    assert_eq!(code, "400", "{body}");

    // The offline CLI refuses to decide on the directory the server owns.
    let offline = pkiplane(&["approve", &ids[0], "--data-dir", data.to_str().unwrap()]);
    assert!(!offline.status.success());
    assert!(text(&offline).contains("--server"), "{}", text(&offline));

    // Approve with the CLI, deny with curl; a denial needs a reason; decisions are final.
    let approved = remote(&["approve", &ids[0], "--reason", "ticket OPS-7", "-o", "json"]);
    assert!(approved.status.success(), "{}", text(&approved));
    let approved: serde_json::Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["decidedBy"], "admin-api:pkiplane-local-admin", "the token's user decides");
    let deny = format!("/admin/v1/approvals/{}/deny", ids[2]);
    let (code, body) = curl(dir, &server, &token, "POST", &deny, Some("{}"));
    assert_eq!(code, "400", "{body}");
    let (code, body) = curl(dir, &server, &token, "POST", &deny, Some(r#"{"reason": "unknown host"}"#));
    assert_eq!(code, "200", "{body}");
    let (code, body) =
        curl(dir, &server, &token, "POST", &format!("/admin/v1/approvals/{}/approve", ids[2]), Some("{}"));
    assert_eq!(code, "409", "{body}");
    assert!(body.contains("already denied"), "{body}");
    let (code, body) = curl(dir, &server, &token, "GET", "/admin/v1/approvals", None);
    assert_eq!(code, "200");
    let still: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(still["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(still["items"][0]["id"], ids[1].as_str());
    drop(server);

    // The approved requester gets its certificate, the denied one the reason.
    let out = issue(&manifests, &data, &csrs[0]);
    assert!(out.status.success(), "{}", text(&out));
    let pem = String::from_utf8(out.stdout).unwrap();
    let certs: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert_eq!(certs.len(), 3, "leaf, intermediate, root");
    for (name, c) in ["leaf.pem", "int.pem", "root.pem"].iter().zip(&certs) {
        std::fs::write(dir.join(name), c).unwrap();
    }
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    assert_eq!(request_id(&issue(&manifests, &data, &csrs[1])), ids[1]);
    let out = issue(&manifests, &data, &csrs[2]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unknown host"), "{}", text(&out));
}
