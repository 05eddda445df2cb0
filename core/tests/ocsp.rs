//! The OCSP responder in the core, checked with `openssl ocsp`: requests made by openssl,
//! answers verified by openssl against the CA chain (delegated responder and CA-signed),
//! good / revoked / unknown, the nonce, refusals, a retired CA key's answers and CRL,
//! the delegated responder's renewal and the pre-signed cache (on an injected clock).

mod common;

use pkiplane_core::issuance::RevocationRequest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use der::Decode;
use futures_executor::block_on;
use pkiplane_core::clock::{ManualClock, SharedClock};
use pkiplane_core::inventory::memory::MemoryInventory;
use pkiplane_core::inventory::{CaMaterialStore, RevocationReason, StoredCaMaterial};
use pkiplane_core::issuance::{Ca, IssuanceRequest, Issued};
use pkiplane_core::issuer::retired::retire;
use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig, RetiredCa};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::ocsp::delegate::{RESPONDER_LIFETIME, RESPONDER_RENEW_BEFORE};
use pkiplane_core::ocsp::response::{BasicOcspResponse, OcspResponse};
use pkiplane_core::ocsp::{OcspResponder, OcspResponseStatus, ResponderSigning};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::pem;

const DAY: Duration = Duration::from_secs(86_400);

fn config(name: &str, source: IssuerSource) -> IssuerConfig {
    IssuerConfig { id: ObjectRef::new("pki", name), source, crl_validity: DAY }
}

fn params(subject: &str, key: KeyAlgorithm) -> CaParams {
    CaParams {
        subject: subject.into(),
        key,
        validity: Duration::from_secs(5 * 365 * 86_400),
        path_len: None,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    }
}

/// A root, an issuing CA `pki/ca` (with its stored material) and a profile, in a CA on an
/// in-memory store; the root and issuing CA certificates written as PEM into `dir`.
struct Pki {
    dir: tempfile::TempDir,
    ca: Arc<Ca>,
    store: Arc<MemoryInventory>,
    root: Arc<Issuer>,
    int_cfg: IssuerConfig,
    int_material: StoredCaMaterial,
}

impl Pki {
    fn new(key: KeyAlgorithm) -> Self {
        let now = SystemTime::now();
        let root_cfg = config("root", IssuerSource::SelfSigned(params("CN=OCSP Test Root,O=pkiplane", key)));
        let (root, _) = Issuer::create(&root_cfg, None, now).unwrap();
        let int_cfg = config(
            "ca",
            IssuerSource::Intermediate {
                parent: root_cfg.id.clone(),
                params: params("CN=OCSP Test Issuing CA,O=pkiplane", key),
            },
        );
        let (int, int_material) = Issuer::create(&int_cfg, Some(&root), now).unwrap();
        let store = Arc::new(MemoryInventory::new());
        let ca = Arc::new(Ca::new(store.clone()));
        let root = Arc::new(root);
        ca.put_issuer(root.clone());
        ca.put_issuer(Arc::new(int));
        ca.put_profile(profile());
        let pki = Self { dir: tempfile::tempdir().unwrap(), ca, store, root, int_cfg, int_material };
        std::fs::write(pki.path("root.pem"), pki.root.certificate_pem()).unwrap();
        pki.write_int("int.pem");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn int(&self) -> Arc<Issuer> {
        self.ca.issuer(&self.int_cfg.id).unwrap()
    }

    fn write_int(&self, name: &str) -> PathBuf {
        std::fs::write(self.path(name), self.int().certificate_pem()).unwrap();
        self.path(name)
    }

    fn issue(&self, name: &str, dns: &str) -> Issued {
        let issued = block_on(self.ca.issue(IssuanceRequest {
            csr: csr(Kind::P256, "", &[&format!("DNS:{dns}")]),
            profile: ObjectRef::new("pki", "test"),
            requester: Requester::new(Protocol::Est, "device-1"),
            requested: RequestedValidity::default(),
            renewal_of: None,
            exchange: None,
        }))
        .unwrap()
        .issued()
        .unwrap();
        std::fs::write(self.path(name), issued.certificate_pem()).unwrap();
        issued
    }

    fn responder(&self, signing: ResponderSigning, clock: SharedClock) -> OcspResponder {
        OcspResponder::new(self.ca.clone(), self.store.clone(), clock, signing)
    }

    /// Rolls the issuing CA over to a new key: the old one is kept as a retired key.
    fn roll_over_issuing_ca(&self) {
        let now = SystemTime::now();
        let (next, material) = Issuer::create(&self.int_cfg, Some(&self.root), now).unwrap();
        let retired = retire(&self.int_material, now).unwrap();
        block_on(self.store.save_retired_ca(&self.int_cfg.id, &retired)).unwrap();
        block_on(self.store.save_ca(&self.int_cfg.id, &material)).unwrap();
        self.ca.put_issuer(Arc::new(next));
        self.ca.put_retired(&self.int_cfg.id, vec![Arc::new(RetiredCa::from_stored(&retired).unwrap())]);
    }
}

fn openssl_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `openssl ocsp <request args> -reqout`, the responder's answer, then `openssl ocsp`
/// reading it back with the request (so openssl checks the nonce) and verifying it
/// against the root, with the issuing CA (`int`) as an untrusted certificate.
fn ask(pki: &Pki, responder: &OcspResponder, request_args: &[&str], int: &str) -> (OcspResponseStatus, String) {
    let mut args = vec!["ocsp"];
    args.extend_from_slice(request_args);
    args.extend_from_slice(&["-reqout", "req.der"]);
    let (ok, out) = openssl_in(pki.dir.path(), &args);
    assert!(ok, "{out}");
    let request = std::fs::read(pki.path("req.der")).unwrap();
    let answer = block_on(responder.respond(&ObjectRef::new("pki", "ca"), &request));
    std::fs::write(pki.path("resp.der"), &answer.der).unwrap();
    let (_, text) = openssl_in(
        pki.dir.path(),
        &[
            "ocsp",
            "-reqin",
            "req.der",
            "-respin",
            "resp.der",
            "-CAfile",
            "root.pem",
            "-verify_other",
            int,
            "-resp_text",
        ],
    );
    (answer.status, text)
}

#[test]
fn good_revoked_and_unknown_verify_with_openssl_and_the_nonce_is_echoed() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let responder = pki.responder(ResponderSigning::Delegated, pkiplane_core::clock::system());
    let leaf = pki.issue("leaf.pem", "web.example.com");

    let (status, text) = ask(&pki, &responder, &["-issuer", "int.pem", "-cert", "leaf.pem"], "int.pem");
    assert_eq!(status, OcspResponseStatus::Successful);
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains("Cert Status: good"), "{text}");
    assert!(text.contains("OCSP Nonce"), "openssl asks with a nonce by default: {text}");
    assert!(!text.to_lowercase().contains("nonce verify error"), "{text}");
    assert!(text.contains("Next Update:"), "{text}");
    // The nonce answered is the nonce asked for.
    let (_, req_text) = openssl_in(pki.dir.path(), &["ocsp", "-reqin", "req.der", "-req_text"]);
    let nonce = |t: &str| t.lines().skip_while(|l| !l.contains("OCSP Nonce")).nth(1).map(|l| l.trim().to_string());
    assert!(nonce(&req_text).is_some_and(|n| n.len() > 4), "{req_text}");
    assert_eq!(nonce(&req_text), nonce(&text));

    // The delegated responder: signed by the issuing CA, OCSPSigning, ocsp-nocheck.
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");
    assert!(
        text.contains("CN=OCSP Test Issuing CA OCSP Responder")
            || text.contains("CN = OCSP Test Issuing CA OCSP Responder"),
        "{text}"
    );

    block_on(pki.ca.revoke(RevocationRequest::new(
        &pki.int_cfg.id,
        &leaf.record.serial,
        RevocationReason::KeyCompromise,
        &requester(),
    )))
    .unwrap();
    let (_, text) = ask(&pki, &responder, &["-issuer", "int.pem", "-cert", "leaf.pem", "-no_nonce"], "int.pem");
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains("Cert Status: revoked") && text.contains("Revocation Reason: keyCompromise"), "{text}");

    let (_, text) =
        ask(&pki, &responder, &["-issuer", "int.pem", "-serial", "0x1234567890abcdef1234567890abcdef"], "int.pem");
    assert!(text.contains("Response verify OK") && text.contains("Cert Status: unknown"), "{text}");
}

#[test]
fn other_issuers_unsupported_hashes_and_garbage_are_refused() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let responder = pki.responder(ResponderSigning::Delegated, pkiplane_core::clock::system());
    pki.issue("leaf.pem", "web.example.com");
    // The root is an Issuer of this CA, but not the one asked at this responder URL.
    let (status, text) = ask(&pki, &responder, &["-issuer", "root.pem", "-serial", "0x01"], "int.pem");
    assert_eq!(status, OcspResponseStatus::Unauthorized);
    assert!(text.contains("Responder Error: unauthorized (6)"), "{text}");
    let (status, text) = ask(&pki, &responder, &["-sha224", "-issuer", "int.pem", "-cert", "leaf.pem"], "int.pem");
    assert_eq!(status, OcspResponseStatus::Unauthorized, "{text}");
    let answer = block_on(responder.respond(&ObjectRef::new("pki", "ca"), b"\x30\x03\x02\x01\x00"));
    assert_eq!(answer.status, OcspResponseStatus::MalformedRequest);
    assert!(answer.reason.unwrap().contains("not a DER OCSPRequest"));
    let big = vec![0x30; pkiplane_core::ocsp::responder::MAX_REQUEST_LEN + 1];
    assert_eq!(
        block_on(responder.respond(&ObjectRef::new("pki", "ca"), &big)).status,
        OcspResponseStatus::MalformedRequest
    );
}

#[test]
fn ca_signed_answers_verify_with_openssl() {
    let pki = Pki::new(KeyAlgorithm::Rsa2048);
    let responder = pki.responder(ResponderSigning::Ca, pkiplane_core::clock::system());
    pki.issue("leaf.pem", "web.example.com");
    let (status, text) = ask(&pki, &responder, &["-issuer", "int.pem", "-cert", "leaf.pem"], "int.pem");
    assert_eq!(status, OcspResponseStatus::Successful);
    assert!(text.contains("Response verify OK") && text.contains("Cert Status: good"), "{text}");
    assert!(!text.contains("OCSP Signing"), "no delegated responder certificate: {text}");
}

#[test]
fn a_retired_key_answers_for_its_certificates_and_signs_their_crl() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let responder = pki.responder(ResponderSigning::Delegated, pkiplane_core::clock::system());
    let old_leaf = pki.issue("old-leaf.pem", "old.example.com");
    let old_int = pki.path("int.pem");
    let old_key_id = pki.int().key_id.clone();
    pki.roll_over_issuing_ca();
    pki.write_int("new-int.pem");
    pki.issue("new-leaf.pem", "new.example.com");
    assert_ne!(pki.int().key_id, old_key_id);
    // Revoked after the rollover.
    block_on(pki.ca.revoke(RevocationRequest::new(
        &pki.int_cfg.id,
        &old_leaf.record.serial,
        RevocationReason::Superseded,
        &requester(),
    )))
    .unwrap();

    let old = old_int.to_str().unwrap();
    let (_, text) = ask(&pki, &responder, &["-issuer", old, "-cert", "old-leaf.pem"], old);
    assert!(text.contains("Response verify OK"), "signed by the retired key's responder: {text}");
    assert!(text.contains("Cert Status: revoked") && text.contains("Revocation Reason: superseded"), "{text}");
    let (_, text) = ask(&pki, &responder, &["-issuer", "new-int.pem", "-cert", "new-leaf.pem"], "new-int.pem");
    assert!(text.contains("Response verify OK") && text.contains("Cert Status: good"), "{text}");
    // A new-key certificate asked for under the old key is not the old key's.
    let (_, text) = ask(&pki, &responder, &["-issuer", old, "-cert", "new-leaf.pem"], old);
    assert!(text.contains("Response verify OK") && text.contains("Cert Status: unknown"), "{text}");

    // The retired key's CRL lists the revocation and openssl agrees the leaf is revoked.
    let crl = block_on(pki.ca.generate_key_crl(&pki.int_cfg.id, &old_key_id)).unwrap();
    std::fs::write(pki.path("old.crl.pem"), pem::encode("X509 CRL", &crl)).unwrap();
    let (ok, text) = openssl_in(
        pki.dir.path(),
        &["verify", "-crl_check", "-CAfile", "root.pem", "-untrusted", old, "-CRLfile", "old.crl.pem", "old-leaf.pem"],
    );
    assert!(!ok && text.contains("certificate revoked"), "{text}");
}

fn produced_at(der: &[u8]) -> der::asn1::GeneralizedTime {
    let response = OcspResponse::from_der(der).unwrap();
    let basic = BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    basic.tbs_response_data.produced_at
}

fn responder_serial(der: &[u8]) -> String {
    let response = OcspResponse::from_der(der).unwrap();
    let basic = BasicOcspResponse::from_der(response.response_bytes.unwrap().response.as_bytes()).unwrap();
    let cert = &basic.certs.unwrap()[0];
    hex::encode(cert.tbs_certificate().serial_number().as_bytes())
}

/// An OCSP request for `cert` under `issuer` (files in `dir`), without a nonce.
fn request(pki: &Pki, issuer: &str, cert: &str) -> Vec<u8> {
    let (ok, out) =
        openssl_in(pki.dir.path(), &["ocsp", "-issuer", issuer, "-cert", cert, "-no_nonce", "-reqout", "r.der"]);
    assert!(ok, "{out}");
    std::fs::read(pki.path("r.der")).unwrap()
}

#[test]
fn answers_are_reused_within_the_window_while_the_status_stands() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let clock = ManualClock::new(SystemTime::now());
    let responder = pki.responder(ResponderSigning::Delegated, clock.shared());
    let leaf = pki.issue("leaf.pem", "web.example.com");
    let req = request(&pki, "int.pem", "leaf.pem");
    let ca_id = ObjectRef::new("pki", "ca");
    let first = block_on(responder.respond(&ca_id, &req));
    assert!(first.cacheable());
    clock.advance(Duration::from_secs(10));
    let again = block_on(responder.respond(&ca_id, &req));
    assert_eq!(again.der, first.der, "served from the cache");
    // A revocation shows at once: the status is read on every request.
    block_on(pki.ca.revoke(RevocationRequest::new(
        &ca_id,
        &leaf.record.serial,
        RevocationReason::KeyCompromise,
        &requester(),
    )))
    .unwrap();
    let revoked = block_on(responder.respond(&ca_id, &req));
    assert_ne!(revoked.der, first.der);
    clock.advance(Duration::from_secs(60));
    assert_eq!(block_on(responder.respond(&ca_id, &req)).der, revoked.der);
    // After the window, a fresh signature with a later producedAt.
    clock.advance(pkiplane_core::ocsp::responder::CACHE_WINDOW);
    let later = block_on(responder.respond(&ca_id, &req));
    assert!(produced_at(&later.der) > produced_at(&revoked.der));
    // Answers with a nonce are never reused.
    let (ok, out) =
        openssl_in(pki.dir.path(), &["ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-reqout", "n.der"]);
    assert!(ok, "{out}");
    let with_nonce = block_on(responder.respond(&ca_id, &std::fs::read(pki.path("n.der")).unwrap()));
    assert!(with_nonce.has_nonce && !with_nonce.cacheable());
}

#[test]
fn the_delegated_responder_is_persisted_and_renewed_before_it_ends() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let start = SystemTime::now();
    let clock = ManualClock::new(start);
    let responder = pki.responder(ResponderSigning::Delegated, clock.shared());
    pki.issue("leaf.pem", "web.example.com");
    let req = request(&pki, "int.pem", "leaf.pem");
    let ca_id = ObjectRef::new("pki", "ca");
    assert_eq!(block_on(responder.prepare()).unwrap(), 2, "root and issuing CA keys");
    let first = responder_serial(&block_on(responder.respond(&ca_id, &req)).der);
    let stored = block_on(pki.store.load_ocsp_responder(&ca_id, &pki.int().key_id)).unwrap().expect("persisted");
    let info = pkiplane_core::x509::cert::CertInfo::from_der(&stored.certificate_der).unwrap();
    assert_eq!(info.serial_hex, first.trim_start_matches("00"));

    // Another responder on the same store (a restart) uses the persisted one.
    let restarted = pki.responder(ResponderSigning::Delegated, clock.shared());
    assert_eq!(responder_serial(&block_on(restarted.respond(&ca_id, &req)).der), first);

    // Not yet due, then due: RESPONDER_RENEW_BEFORE before it ends it is replaced.
    clock.set(start + RESPONDER_LIFETIME - RESPONDER_RENEW_BEFORE - DAY);
    assert_eq!(responder_serial(&block_on(responder.respond(&ca_id, &req)).der), first);
    clock.set(start + RESPONDER_LIFETIME - RESPONDER_RENEW_BEFORE + DAY);
    let renewed = responder_serial(&block_on(responder.respond(&ca_id, &req)).der);
    assert_ne!(renewed, first, "renewed");
    let stored = block_on(pki.store.load_ocsp_responder(&ca_id, &pki.int().key_id)).unwrap().unwrap();
    let info = pkiplane_core::x509::cert::CertInfo::from_der(&stored.certificate_der).unwrap();
    assert_eq!(info.serial_hex, renewed.trim_start_matches("00"), "the renewal is persisted");
}

#[test]
fn a_parent_key_answers_for_the_ca_certificates_it_signed_current_or_retired() {
    let pki = Pki::new(KeyAlgorithm::EcdsaP256);
    let first = pki.int();
    let root_key = pki.root.key_id.clone();
    assert_eq!(pki.ca.latest_ca_cert_signed_by(&root_key), Some(first.cert.not_after));
    assert_eq!(pki.ca.latest_ca_cert_signed_by(&first.key_id), None, "it signed no CA certificate");
    // The issuing CA moves under another root: the old root key still signed the retired
    // issuing CA certificate, and only that one.
    let other_cfg = config("other", IssuerSource::SelfSigned(params("CN=Other Root", KeyAlgorithm::EcdsaP256)));
    let other = Issuer::create(&other_cfg, None, SystemTime::now()).unwrap().0;
    let moved = Issuer::create(&pki.int_cfg, Some(&other), SystemTime::now()).unwrap().0;
    let retired = retire(&pki.int_material, SystemTime::now()).unwrap();
    pki.ca.put_issuer(Arc::new(moved));
    assert_eq!(pki.ca.latest_ca_cert_signed_by(&root_key), None, "not yet retired: nothing the root signed is held");
    pki.ca.put_retired(&pki.int_cfg.id, vec![Arc::new(RetiredCa::from_stored(&retired).unwrap())]);
    assert_eq!(pki.ca.latest_ca_cert_signed_by(&root_key), Some(first.cert.not_after));
}
