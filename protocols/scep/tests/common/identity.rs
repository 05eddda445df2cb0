//! Client identities for hand-built requests: an RSA key, a self-signed signing
//! certificate and a PKCS#10 request, all made by the `openssl` command line.

use std::path::{Path, PathBuf};

use der::Decode;
use pkiplane_scep::algorithms::{ContentAlg, DigestAlg};
use pkiplane_scep::client::{self, Built, Reply, Request};
use pkiplane_scep::cms::outgoing::Signer;
use pkiplane_scep::message::MessageType;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use x509_cert::Certificate;

use super::openssl;

pub struct Identity {
    pub key: RsaPrivateKey,
    pub key_path: PathBuf,
    /// The certificate requests are signed with (self-signed, or the current one).
    pub cert: Certificate,
    pub cert_der: Vec<u8>,
    pub csr_der: Vec<u8>,
}

/// A new key, a CSR for `cn` (with `challenge` and DNS `sans`) and a self-signed
/// certificate, in files under `dir` prefixed by `name`.
pub fn make(dir: &Path, name: &str, cn: &str, challenge: Option<&str>, sans: &[&str]) -> Identity {
    let key_path = dir.join(format!("{name}.key"));
    let p = |s: &str| dir.join(format!("{name}.{s}")).to_str().unwrap().to_owned();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key_path.to_str().unwrap()]);
    let mut cfg = "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n".to_string();
    if !sans.is_empty() {
        cfg.push_str("req_extensions = ext\n");
    }
    cfg.push_str(&format!("[dn]\nCN = {cn}\nO = pkiplane-test\n[attrs]\n"));
    if let Some(c) = challenge {
        cfg.push_str(&format!("challengePassword = {c}\n"));
    }
    if !sans.is_empty() {
        let list: Vec<String> = sans.iter().map(|s| format!("DNS:{s}")).collect();
        cfg.push_str(&format!("[ext]\nsubjectAltName = {}\n", list.join(",")));
    }
    std::fs::write(p("cnf"), cfg).unwrap();
    openssl(&[
        "req",
        "-new",
        "-key",
        key_path.to_str().unwrap(),
        "-config",
        &p("cnf"),
        "-outform",
        "DER",
        "-out",
        &p("csr"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        key_path.to_str().unwrap(),
        "-subj",
        &format!("/CN={cn}"),
        "-days",
        "2",
        "-outform",
        "DER",
        "-out",
        &p("self.der"),
    ]);
    let pem = std::fs::read_to_string(&key_path).unwrap();
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let cert_der = std::fs::read(p("self.der")).unwrap();
    Identity {
        key,
        key_path,
        cert: Certificate::from_der(&cert_der).unwrap(),
        cert_der,
        csr_der: std::fs::read(p("csr")).unwrap(),
    }
}

impl Identity {
    pub fn signer(&self) -> Signer<'_> {
        Signer { cert: &self.cert, key: &self.key }
    }

    /// Signs with `cert_der` (e.g. the issued certificate) from now on.
    pub fn use_cert(&mut self, cert_der: &[u8]) {
        self.cert_der = cert_der.to_vec();
        self.cert = Certificate::from_der(cert_der).unwrap();
    }

    /// A request with AES-128-CBC and SHA-256, signingTime now.
    pub fn request(&self, ra: &Certificate, kind: MessageType, tid: &str, content: &[u8]) -> Built {
        self.request_with(ra, kind, tid, content, ContentAlg::Aes128Cbc, DigestAlg::Sha256)
    }

    pub fn request_with(
        &self,
        ra: &Certificate,
        kind: MessageType,
        tid: &str,
        content: &[u8],
        cipher: ContentAlg,
        digest: DigestAlg,
    ) -> Built {
        client::build(&Request {
            signer: self.signer(),
            message_type: kind,
            transaction_id: tid,
            content,
            recipient: ra,
            cipher,
            digest,
            signing_time: Some(std::time::SystemTime::now()),
        })
        .unwrap()
    }

    pub fn read(&self, der: &[u8]) -> Reply {
        client::read_reply(der, &self.signer()).unwrap()
    }
}
