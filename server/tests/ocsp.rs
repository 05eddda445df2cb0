//! OCSP through `pkiplane serve`'s publication listener, with real clients: `openssl ocsp`
//! over POST (nonce checked), curl with the base64 request in the URL (GET, RFC 5019
//! section 5) and its caching headers, good / revoked / unknown, refusals, and the
//! delegated responder certificate verified against the chain.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::{BIN, Server, quickstart_free_ports};
use pkiplane_core::x509::pem;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_in(dir: &Path, cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd).args(args).current_dir(dir).env("PKIPLANE_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    out
}

/// stdout and stderr of a command that may fail.
fn try_in(dir: &Path, cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).current_dir(dir).output().unwrap();
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// A serve process on the quickstart with root, issuing CA and one fresh leaf (issued by
/// the CLI on the same data directory), as PEM files in the test directory.
struct Setup {
    _d: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
    server: Server,
    serial: String,
}

impl Setup {
    fn start() -> Self {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let data = dir.join("data");
        let manifests = quickstart_free_ports(&dir);
        let server = Server::start(&manifests, &data, &dir.join("ready.json"));
        for (issuer, file) in [("example-root", "root.pem"), ("example-intermediate", "int.pem")] {
            let url = format!("{}/issuers/pki/{issuer}/ca.pem", server.publish_url);
            run_in(&dir, "curl", &["-sSf", "-o", file, &url]);
        }
        let csr = common::p256_csr(&dir, "leaf", "web.localhost");
        let serial = common::issue_with_cli(&manifests, &data, "enterprise-tls-47d", &csr, &dir.join("leaf.pem"));
        Setup { _d: d, dir, data, server, serial }
    }

    fn ocsp_url(&self, issuer: &str) -> String {
        format!("{}/issuers/pki/{issuer}/ocsp", self.server.publish_url)
    }

    /// `openssl ocsp ... -url <issuing CA's responder>` verifying against the chain.
    fn openssl_ocsp(&self, args: &[&str]) -> (bool, String) {
        let url = self.ocsp_url("example-intermediate");
        let mut all = vec!["ocsp", "-url", &url, "-CAfile", "root.pem", "-verify_other", "int.pem"];
        all.extend_from_slice(args);
        try_in(&self.dir, "openssl", &all)
    }

    /// `openssl ocsp -respin`: reads a saved response for the leaf, verifying it.
    fn read_response(&self, file: &str) -> (bool, String) {
        let args = [
            "ocsp",
            "-respin",
            file,
            "-issuer",
            "int.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "int.pem",
        ];
        try_in(&self.dir, "openssl", &args)
    }

    /// GET of `request` (DER file) under the issuing CA's responder, base64 then
    /// URL-encoded as RFC 6960 appendix A.1 says; returns (HTTP headers, response file).
    fn get(&self, request: &str, response: &str, extra: &[&str]) -> String {
        let der = std::fs::read(self.dir.join(request)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let encoded = b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let url = format!("{}/{encoded}", self.ocsp_url("example-intermediate"));
        let mut args = vec!["-sS", "-D", "-", "-o", response];
        args.extend_from_slice(extra);
        args.push(&url);
        text(&run_in(&self.dir, "curl", &args).stdout)
    }
}

/// The value of header `name` (lowercase) in curl's `-D -` output.
fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The hex line under "OCSP Nonce:" in openssl's -req_text / -resp_text output.
fn nonce(printed: &str) -> Option<String> {
    printed.lines().skip_while(|l| !l.contains("OCSP Nonce")).nth(1).map(|l| l.trim().to_string())
}

#[test]
fn serve_answers_ocsp_over_post_and_get_with_delegated_signatures() {
    let s = Setup::start();

    // The profile lists an OCSP URL: it is in the certificate's AIA.
    let aia = text(&run_in(&s.dir, "openssl", &["x509", "-in", "leaf.pem", "-noout", "-ocsp_uri"]).stdout);
    assert_eq!(aia.trim(), "http://127.0.0.1:8080/issuers/pki/example-intermediate/ocsp");

    // POST, with the nonce openssl adds: good, verified, the same nonce back.
    let (ok, out) = s.openssl_ocsp(&[
        "-issuer",
        "int.pem",
        "-cert",
        "leaf.pem",
        "-reqout",
        "post-req.der",
        "-respout",
        "post-resp.der",
        "-resp_text",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: good"), "{out}");
    assert!(out.contains("This Update:") && out.contains("Next Update:"), "{out}");
    let lower = out.to_lowercase();
    assert!(!lower.contains("nonce verify error") && !lower.contains("no nonce"), "openssl checked the nonce: {out}");
    let asked = text(&run_in(&s.dir, "openssl", &["ocsp", "-reqin", "post-req.der", "-req_text"]).stdout);
    let answered =
        text(&run_in(&s.dir, "openssl", &["ocsp", "-respin", "post-resp.der", "-resp_text", "-noverify"]).stdout);
    assert!(nonce(&asked).is_some_and(|n| n.len() >= 34), "{asked}");
    assert_eq!(nonce(&asked), nonce(&answered), "the nonce answered is the nonce asked for");

    // The delegated responder certificate: issued by the issuing CA, OCSPSigning and
    // ocsp-nocheck, and it verifies against the chain.
    let responder = pem::decode_chain(answered.as_bytes(), "CERTIFICATE").unwrap();
    assert_eq!(responder.len(), 1, "the response carries the responder certificate");
    std::fs::write(s.dir.join("responder.pem"), pem::encode("CERTIFICATE", &responder[0])).unwrap();
    let verified = text(
        &run_in(&s.dir, "openssl", &["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "responder.pem"]).stdout,
    );
    assert!(verified.contains("responder.pem: OK"), "{verified}");
    let printed = text(&run_in(&s.dir, "openssl", &["x509", "-in", "responder.pem", "-noout", "-text"]).stdout);
    assert!(printed.contains("OCSP Signing") && printed.contains("OCSP No Check"), "{printed}");
    assert!(printed.contains("Issuer: O = Example, CN = Example Issuing CA"), "{printed}");

    // GET (RFC 5019 section 5) without a nonce: cacheable, with RFC 5019 section 6 headers.
    run_in(
        &s.dir,
        "openssl",
        &["ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "get-req.der"],
    );
    let headers = s.get("get-req.der", "get-resp.der", &[]);
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert_eq!(header(&headers, "content-type"), Some("application/ocsp-response"));
    let cache_control = header(&headers, "cache-control").unwrap_or_default();
    let max_age: u64 = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{headers}"));
    assert!(max_age > 0 && max_age <= 86_400, "max-age within the answer's validity (24h CRL validity): {headers}");
    assert!(cache_control.contains("public"), "{headers}");
    for h in ["expires", "last-modified", "etag", "date"] {
        assert!(header(&headers, h).is_some(), "{h} missing: {headers}");
    }
    let (ok, out) = s.read_response("get-resp.der");
    assert!(ok && out.contains("Response verify OK") && out.contains("leaf.pem: good"), "{out}");
    // A cache revalidating with the ETag gets 304.
    let etag = header(&headers, "etag").unwrap().to_string();
    let again = s.get("get-req.der", "get-304.der", &["-H", &format!("If-None-Match: {etag}")]);
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    // A GET with a nonce is answered for that request alone: not cacheable.
    run_in(&s.dir, "openssl", &["ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-reqout", "nonce-req.der"]);
    let headers = s.get("nonce-req.der", "nonce-resp.der", &[]);
    assert_eq!(header(&headers, "cache-control"), Some("no-store"), "{headers}");

    // Revoked with its reason after `pkiplane revoke`, over POST and over the same GET URL
    // (the status is read at every request, whatever was answered before).
    let data = s.data.to_str().unwrap().to_string();
    run_in(&s.dir, BIN, &["revoke", &s.serial, "--data-dir", &data, "--reason", "keyCompromise"]);
    let (ok, out) = s.openssl_ocsp(&["-issuer", "int.pem", "-cert", "leaf.pem"]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: revoked") && out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("Revocation Time:"), "{out}");
    s.get("get-req.der", "get-revoked.der", &[]);
    let (_, out) = s.read_response("get-revoked.der");
    assert!(out.contains("leaf.pem: revoked"), "{out}");

    // A serial this Issuer never issued: unknown (signed, verified).
    let (ok, out) = s.openssl_ocsp(&["-issuer", "int.pem", "-serial", "0x5eed0000000000000000000000000001"]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    assert!(out.contains("0x5eed0000000000000000000000000001: unknown"), "{out}");
}

#[test]
fn serve_refuses_what_it_cannot_answer() {
    let s = Setup::start();
    // Another CA's certificate asked at the issuing CA's responder: unauthorized.
    let (_, out) = s.openssl_ocsp(&["-issuer", "root.pem", "-serial", "0x01"]);
    assert!(out.contains("Responder Error: unauthorized (6)"), "{out}");
    // A CertID hashed with SHA-224: not supported, unauthorized.
    let (_, out) = s.openssl_ocsp(&["-sha224", "-issuer", "int.pem", "-cert", "leaf.pem"]);
    assert!(out.contains("Responder Error: unauthorized (6)"), "{out}");
    // An Issuer that does not exist.
    let (_, out) = try_in(
        &s.dir,
        "openssl",
        &["ocsp", "-url", &s.ocsp_url("no-such-issuer"), "-issuer", "int.pem", "-cert", "leaf.pem"],
    );
    assert!(out.contains("Responder Error: unauthorized (6)"), "{out}");

    // Not DER: malformedRequest, over POST and GET.
    let url = s.ocsp_url("example-intermediate");
    let post = |body: &str, content_type: &str, out_file: &str| {
        text(
            &run_in(
                &s.dir,
                "curl",
                &[
                    "-s",
                    "-o",
                    out_file,
                    "-w",
                    "%{http_code}",
                    "-H",
                    &format!("content-type: {content_type}"),
                    "--data-binary",
                    body,
                    &url,
                ],
            )
            .stdout,
        )
    };
    assert_eq!(post("garbage", "application/ocsp-request", "bad.der"), "200");
    assert_eq!(std::fs::read(s.dir.join("bad.der")).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    let (_, printed) = try_in(&s.dir, "openssl", &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"]);
    assert!(printed.contains("malformedrequest"), "{printed}");
    let code = text(
        &run_in(&s.dir, "curl", &["-s", "-o", "bad-get.der", "-w", "%{http_code}", &format!("{url}/not*base64")])
            .stdout,
    );
    assert_eq!(code, "200");
    assert_eq!(std::fs::read(s.dir.join("bad-get.der")).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    // The wrong media type, and a body past the size bound.
    assert_eq!(post("garbage", "text/plain", "/dev/null"), "415");
    std::fs::write(s.dir.join("big.bin"), vec![b'0'; 64 * 1024]).unwrap();
    assert_eq!(post("@big.bin", "application/ocsp-request", "big.der"), "413");
    assert_eq!(std::fs::read(s.dir.join("big.der")).unwrap(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    // The server still answers afterwards.
    let (ok, out) = s.openssl_ocsp(&["-issuer", "int.pem", "-cert", "leaf.pem"]);
    assert!(ok && out.contains("leaf.pem: good"), "{out}");
}
