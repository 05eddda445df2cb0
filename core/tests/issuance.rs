//! Issuance end to end in the core: real issuers of every key type sign CSRs made by
//! `openssl req`; every certificate passes `openssl verify` against its chain and its
//! extensions are checked field by field; CRLs verify and list revocations.

mod common;

use pkiplane_core::issuance::RevocationRequest;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_executor::block_on;
use pkiplane_core::inventory::memory::MemoryInventory;
use pkiplane_core::inventory::{CertStatus, RevocationReason, RevokeOutcome};
use pkiplane_core::issuance::{Ca, IssuanceRequest, Issued};
use pkiplane_core::issuer::{CaParams, ImportedCa, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::{Presence, SanKind, SubjectRule, ValueSource};
use pkiplane_core::x509::KeyUsageBit;
use pkiplane_core::x509::extensions::eku_from_name;
use pkiplane_core::x509::names::SubjectAttribute;
use pkiplane_core::x509::pem;
use pkiplane_core::{CoreError, ErrorKind};

fn ca_config(name: &str, source: IssuerSource) -> IssuerConfig {
    IssuerConfig { id: ObjectRef::new("pki", name), source, crl_validity: Duration::from_secs(86_400) }
}

fn params(subject: &str, key: KeyAlgorithm, path_len: Option<u8>) -> CaParams {
    CaParams {
        subject: subject.into(),
        key,
        validity: Duration::from_secs(5 * 365 * 86_400),
        path_len,
        name_constraints: NameConstraintsConfig::default(),
        renew_before: None,
    }
}

/// A root and an intermediate of the given key algorithms, loaded into a CA with one
/// TLS-style profile signed by the intermediate.
fn hierarchy(root_alg: KeyAlgorithm, int_alg: KeyAlgorithm) -> (Ca, Arc<Issuer>, Arc<Issuer>) {
    let now = std::time::SystemTime::now();
    let root_cfg = ca_config("root", IssuerSource::SelfSigned(params("CN=Test Root,O=pkiplane", root_alg, Some(1))));
    let (root, _) = Issuer::create(&root_cfg, None, now).unwrap();
    let int_cfg = ca_config(
        "ca",
        IssuerSource::Intermediate {
            parent: root_cfg.id.clone(),
            params: params("CN=Test Issuing CA,O=pkiplane", int_alg, None),
        },
    );
    let (int, _) = Issuer::create(&int_cfg, Some(&root), now).unwrap();
    assert_eq!(int.path_len, Some(0), "pathLen derived from the parent");
    let (root, int) = (Arc::new(root), Arc::new(int));
    let ca = Ca::new(Arc::new(MemoryInventory::new()));
    ca.put_issuer(root.clone());
    ca.put_issuer(int.clone());
    let mut p = profile();
    p.key_usage = vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment];
    p.extended_key_usage = vec![eku_from_name("serverAuth").unwrap(), eku_from_name("clientAuth").unwrap()];
    p.crl_distribution_points = vec!["http://pki.example.com/crl/ca.crl".into()];
    p.ca_issuers_urls = vec!["http://pki.example.com/ca.crt".into()];
    p.ocsp_urls = vec!["http://ocsp.example.com".into()];
    p.subject.rules = vec![SubjectRule {
        attribute: SubjectAttribute::CommonName,
        presence: Presence::Required,
        value: None,
        source: ValueSource::FirstSan(SanKind::Dns),
        must_match_san: true,
        pattern: None,
    }];
    ca.put_profile(p);
    (ca, root, int)
}

fn request(csr_kind: Kind, sans: &[&str]) -> IssuanceRequest {
    IssuanceRequest {
        csr: csr(csr_kind, "", sans),
        profile: ObjectRef::new("pki", "test"),
        requester: Requester::new(Protocol::Acme, "https://acme/acct/1"),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    }
}

struct Files {
    root: PathBuf,
    int: PathBuf,
    leaf: PathBuf,
}

fn write_files(tag: &str, root: &Issuer, int: &Issuer, issued: &Issued) -> Files {
    let d = tempfile::Builder::new().prefix(tag).tempdir().unwrap().keep();
    let f = Files { root: d.join("root.pem"), int: d.join("int.pem"), leaf: d.join("leaf.pem") };
    std::fs::write(&f.root, root.certificate_pem()).unwrap();
    std::fs::write(&f.int, int.certificate_pem()).unwrap();
    std::fs::write(&f.leaf, issued.certificate_pem()).unwrap();
    f
}

fn openssl_verify(f: &Files, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", f.root.to_str().unwrap(), "-untrusted", f.int.to_str().unwrap()])
        .args(extra)
        .arg(f.leaf.to_str().unwrap())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn text(path: &std::path::Path) -> String {
    String::from_utf8(openssl(&["x509", "-in", path.to_str().unwrap(), "-noout", "-text"]).stdout).unwrap()
}

/// The line after an extension's heading in `openssl x509 -text`.
fn ext_value(text: &str, heading: &str) -> String {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with(heading) {
            return format!("{}|{}", l.trim(), lines.next().unwrap_or("").trim());
        }
    }
    panic!("extension {heading} missing in:\n{text}");
}

fn check_leaf(f: &Files, csr_kind: Kind) {
    let (ok, out) = openssl_verify(f, &[]);
    assert!(ok, "openssl verify failed: {out}");
    let leaf = text(&f.leaf);
    let int = text(&f.int);
    assert!(leaf.contains("Version: 3 (0x2)"));
    assert!(leaf.contains("Subject: CN = host.example.com"), "{leaf}");
    assert_eq!(ext_value(&leaf, "X509v3 Basic Constraints"), "X509v3 Basic Constraints: critical|CA:FALSE");
    let ku = ext_value(&leaf, "X509v3 Key Usage");
    if matches!(csr_kind, Kind::Rsa2048 | Kind::Rsa3072 | Kind::Rsa4096) {
        assert_eq!(ku, "X509v3 Key Usage: critical|Digital Signature, Key Encipherment");
    } else {
        assert_eq!(ku, "X509v3 Key Usage: critical|Digital Signature");
    }
    assert_eq!(
        ext_value(&leaf, "X509v3 Extended Key Usage"),
        "X509v3 Extended Key Usage:|TLS Web Server Authentication, TLS Web Client Authentication"
    );
    assert_eq!(
        ext_value(&leaf, "X509v3 Subject Alternative Name"),
        "X509v3 Subject Alternative Name:|DNS:host.example.com, IP Address:10.0.0.7"
    );
    assert_eq!(ext_value(&leaf, "X509v3 CRL Distribution Points"), "X509v3 CRL Distribution Points:|Full Name:");
    assert!(leaf.contains("URI:http://pki.example.com/crl/ca.crl"));
    assert!(leaf.contains("OCSP - URI:http://ocsp.example.com"));
    assert!(leaf.contains("CA Issuers - URI:http://pki.example.com/ca.crt"));
    // authorityKeyIdentifier of the leaf is the intermediate's subjectKeyIdentifier.
    let ski = ext_value(&int, "X509v3 Subject Key Identifier").split('|').nth(1).unwrap().to_string();
    let aki = ext_value(&leaf, "X509v3 Authority Key Identifier").split('|').nth(1).unwrap().to_string();
    assert_eq!(aki.trim_start_matches("keyid:"), ski);
    let int_bc = ext_value(&int, "X509v3 Basic Constraints");
    assert_eq!(int_bc, "X509v3 Basic Constraints: critical|CA:TRUE, pathlen:0");
    assert_eq!(
        ext_value(&int, "X509v3 Key Usage"),
        "X509v3 Key Usage: critical|Digital Signature, Certificate Sign, CRL Sign"
    );
}

fn issue_and_check(root_alg: KeyAlgorithm, int_alg: KeyAlgorithm, csr_kinds: &[Kind]) {
    let (ca, root, int) = hierarchy(root_alg, int_alg);
    for kind in csr_kinds {
        let issued =
            block_on(ca.issue(request(*kind, &["DNS:host.example.com", "IP:10.0.0.7"]))).unwrap().issued().unwrap();
        assert_eq!(issued.record.status, CertStatus::Issued);
        let stored = block_on(ca.inventory().get(&int.id, &issued.record.serial)).unwrap().unwrap();
        assert_eq!(stored.der.as_deref(), Some(issued.der.as_slice()), "inventory holds the DER before return");
        assert_eq!(stored.protocol, Protocol::Acme);
        let f = write_files(&format!("{root_alg}-{int_alg}-{kind:?}"), &root, &int, &issued);
        check_leaf(&f, *kind);
        // The chain the CA returns is the intermediate then the root.
        let chain = pem::decode_chain(issued.chain_pem.as_bytes(), "CERTIFICATE").unwrap();
        assert_eq!(chain, vec![int.cert.der.clone(), root.cert.der.clone()]);
    }
}

#[test]
fn p384_root_p256_intermediate_signs_every_key_type() {
    issue_and_check(
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::EcdsaP256,
        &[Kind::P256, Kind::P384, Kind::Rsa2048, Kind::Rsa3072, Kind::Rsa4096, Kind::Ed25519],
    );
}

#[test]
fn rsa_hierarchies() {
    issue_and_check(KeyAlgorithm::Rsa4096, KeyAlgorithm::Rsa2048, &[Kind::P256, Kind::Rsa2048]);
    issue_and_check(KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa3072, &[Kind::Ed25519]);
}

#[test]
fn ed25519_hierarchy() {
    issue_and_check(KeyAlgorithm::Ed25519, KeyAlgorithm::Ed25519, &[Kind::P256, Kind::Ed25519]);
}

#[test]
fn serials_are_positive_random_and_unique() {
    let (ca, _, _) = hierarchy(KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let issued = block_on(ca.issue(request(Kind::P256, &["DNS:host.example.com"]))).unwrap().issued().unwrap();
        let s = &issued.record.serial;
        assert_eq!(s.len(), 32, "128-bit serial");
        assert!(u8::from_str_radix(&s[..2], 16).unwrap() < 0x80, "positive");
        assert!(seen.insert(s.clone()));
    }
}

#[test]
fn denial_is_counted_and_nothing_is_stored() {
    let (ca, _, int) = hierarchy(KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256);
    let err = block_on(ca.issue(request(Kind::Rsa1024, &["DNS:host.example.com"]))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(err.to_string().contains("keys.rsaMinBits"), "{err}");
    let all = block_on(ca.inventory().list(&Default::default())).unwrap();
    assert!(all.is_empty());
    let counts = block_on(ca.inventory().counts(
        pkiplane_core::inventory::GroupBy::Issuer,
        std::time::SystemTime::now(),
        Duration::from_secs(86_400),
    ))
    .unwrap();
    assert_eq!(counts[0].key, int.id.to_string());
    assert_eq!(counts[0].denied, 1);
    assert!(matches!(
        block_on(ca.issue(IssuanceRequest { profile: ObjectRef::new("pki", "nope"), ..request(Kind::P256, &[]) })),
        Err(CoreError::UnknownProfile(_))
    ));
}

#[test]
fn crl_lists_revocations_and_verifies() {
    let (ca, root, int) = hierarchy(KeyAlgorithm::EcdsaP384, KeyAlgorithm::EcdsaP256);
    let good =
        block_on(ca.issue(request(Kind::P256, &["DNS:host.example.com", "IP:10.0.0.7"]))).unwrap().issued().unwrap();
    let bad =
        block_on(ca.issue(request(Kind::P256, &["DNS:host.example.com", "IP:10.0.0.7"]))).unwrap().issued().unwrap();
    let who = Requester::new(Protocol::Local, "admin");
    assert_eq!(
        block_on(ca.revoke(RevocationRequest::new(&int.id, &bad.record.serial, RevocationReason::KeyCompromise, &who)))
            .unwrap(),
        RevokeOutcome::Revoked
    );
    assert!(matches!(
        block_on(ca.revoke(RevocationRequest::new(&int.id, &bad.record.serial, RevocationReason::Superseded, &who))).unwrap(),
        RevokeOutcome::AlreadyRevoked(r) if r.reason == RevocationReason::KeyCompromise
    ));
    let crl1 = block_on(ca.generate_crl(&int.id)).unwrap();
    let crl2 = block_on(ca.generate_crl(&int.id)).unwrap();
    let f = write_files("crl", &root, &int, &bad);
    let crl_path = f.leaf.with_file_name("crl.pem");
    std::fs::write(&crl_path, pem::encode("X509 CRL", &crl2)).unwrap();
    let crl_text = String::from_utf8(
        openssl(&["crl", "-in", crl_path.to_str().unwrap(), "-CAfile", f.int.to_str().unwrap(), "-noout", "-text"])
            .stdout,
    )
    .unwrap();
    assert!(crl_text.contains(&format!("Serial Number: {}", bad.record.serial.to_uppercase())), "{crl_text}");
    assert!(crl_text.contains("Key Compromise"));
    assert!(!crl_text.contains(&good.record.serial.to_uppercase()));
    assert!(
        crl_text.contains("X509v3 CRL Number: \n                2")
            || crl_text.contains("CRL Number:\n                2"),
        "{crl_text}"
    );
    let verify = Command::new("openssl")
        .args(["crl", "-in", crl_path.to_str().unwrap(), "-CAfile", f.int.to_str().unwrap(), "-noout", "-verify"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&verify.stderr).contains("verify OK"), "{verify:?}");
    // The revoked certificate fails a CRL-checking verify; the good one passes.
    let chain_crl = f.leaf.with_file_name("crl-chain.pem");
    let root_crl = block_on(ca.generate_crl(&root.id)).unwrap();
    std::fs::write(&chain_crl, format!("{}{}", pem::encode("X509 CRL", &crl2), pem::encode("X509 CRL", &root_crl)))
        .unwrap();
    let (ok, out) = openssl_verify(&f, &["-crl_check_all", "-CRLfile", chain_crl.to_str().unwrap()]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    std::fs::write(&f.leaf, good.certificate_pem()).unwrap();
    let (ok, out) = openssl_verify(&f, &["-crl_check_all", "-CRLfile", chain_crl.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_ne!(crl1, crl2);
}

#[test]
fn path_length_and_name_constraints_are_honoured() {
    let now = std::time::SystemTime::now();
    let root_cfg =
        ca_config("root", IssuerSource::SelfSigned(params("CN=Leaf-only Root", KeyAlgorithm::EcdsaP256, Some(0))));
    let (root, _) = Issuer::create(&root_cfg, None, now).unwrap();
    let int_cfg = ca_config(
        "int",
        IssuerSource::Intermediate {
            parent: root_cfg.id.clone(),
            params: params("CN=Int", KeyAlgorithm::EcdsaP256, None),
        },
    );
    let err = Issuer::create(&int_cfg, Some(&root), now).unwrap_err().to_string();
    assert!(err.contains("pathLen 0"), "{err}");

    let mut constrained = params("CN=Constrained Root", KeyAlgorithm::EcdsaP256, Some(2));
    constrained.name_constraints.permitted_dns = vec!["example.com".into()];
    let root_cfg = ca_config("croot", IssuerSource::SelfSigned(constrained));
    let (root, _) = Issuer::create(&root_cfg, None, now).unwrap();
    let mut wider = params("CN=Wider", KeyAlgorithm::EcdsaP256, None);
    wider.name_constraints.permitted_dns = vec!["example.org".into()];
    let cfg = ca_config("wider", IssuerSource::Intermediate { parent: root_cfg.id.clone(), params: wider });
    assert!(Issuer::create(&cfg, Some(&root), now).unwrap_err().to_string().contains("nameConstraints"));
    let mut too_deep = params("CN=Deep", KeyAlgorithm::EcdsaP256, Some(5));
    too_deep.name_constraints.permitted_dns = vec!["dev.example.com".into()];
    let cfg = ca_config("deep", IssuerSource::Intermediate { parent: root_cfg.id.clone(), params: too_deep });
    assert!(Issuer::create(&cfg, Some(&root), now).unwrap_err().to_string().contains("exceeds"));
    // The constrained root's certificate carries the extension, and its constraints
    // reach leaves through the policy (see policy_rules.rs).
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("root.pem");
    std::fs::write(&p, root.certificate_pem()).unwrap();
    let t = text(&p);
    assert!(t.contains("X509v3 Name Constraints: critical"), "{t}");
    assert!(t.contains("DNS:example.com"));
    assert_eq!(root.name_constraints.len(), 1);
}

#[test]
fn imported_issuers_in_every_key_format() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("ca.key");
    let cert = d.path().join("ca.pem");
    let cases: [(&[&str], &[&str]); 3] = [
        (&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], &["ec"]),
        (&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], &["rsa", "-traditional"]),
        (&["genpkey", "-algorithm", "ED25519"], &[]),
    ];
    for (genkey, convert) in cases {
        let mut g = genkey.to_vec();
        g.extend(["-out", key.to_str().unwrap()]);
        openssl(&g);
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/CN=Imported CA",
            "-days",
            "365",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            cert.to_str().unwrap(),
        ]);
        let pkcs8 = std::fs::read_to_string(&key).unwrap();
        let mut keys = vec![pkcs8.clone()];
        if !convert.is_empty() {
            let mut c = convert.to_vec();
            c.extend(["-in", key.to_str().unwrap()]);
            keys.push(String::from_utf8(openssl(&c).stdout).unwrap());
        }
        for key_pem in keys {
            let cfg = ca_config(
                "imported",
                IssuerSource::Imported(ImportedCa {
                    certificate_pem: std::fs::read_to_string(&cert).unwrap(),
                    private_key_pem: key_pem.clone().into(),
                    chain_pem: String::new(),
                }),
            );
            let issuer = Issuer::import(&cfg).unwrap_or_else(|e| panic!("{}: {e}", key_pem.lines().next().unwrap()));
            assert!(!format!("{issuer:?}").contains("PRIVATE"));
            let ca = Ca::new(Arc::new(MemoryInventory::new()));
            ca.put_issuer(Arc::new(issuer));
            let mut p = profile();
            p.issuer = cfg.id.clone();
            ca.put_profile(p);
            let issued = block_on(ca.issue(request(Kind::P256, &["DNS:host.example.com"]))).unwrap().issued().unwrap();
            let leaf = d.path().join("leaf.pem");
            std::fs::write(&leaf, issued.certificate_pem()).unwrap();
            openssl(&["verify", "-CAfile", cert.to_str().unwrap(), leaf.to_str().unwrap()]);
        }
    }
    // A key that does not match the certificate is refused.
    let other = key.with_file_name("other.key");
    openssl(&["genpkey", "-algorithm", "ED25519", "-out", other.to_str().unwrap()]);
    let cfg = ca_config(
        "imported",
        IssuerSource::Imported(ImportedCa {
            certificate_pem: std::fs::read_to_string(&cert).unwrap(),
            private_key_pem: std::fs::read_to_string(&other).unwrap().into(),
            chain_pem: String::new(),
        }),
    );
    assert!(Issuer::import(&cfg).unwrap_err().to_string().contains("does not match"));
}

#[test]
fn stored_material_reloads_and_key_material_never_prints() {
    let now = std::time::SystemTime::now();
    let cfg = ca_config("root", IssuerSource::SelfSigned(params("CN=Reload Root", KeyAlgorithm::EcdsaP256, None)));
    let (a, material) = Issuer::create(&cfg, None, now).unwrap();
    let b = Issuer::from_material(&cfg, &material, None).unwrap();
    assert_eq!(a.cert.der, b.cert.der);
    let debug = format!("{material:?} {a:?} {:?}", a.signer());
    assert!(debug.contains("<redacted>"));
    let key_b64 = pem::encode("PRIVATE KEY", &material.private_key_pkcs8);
    let body: String = key_b64.lines().nth(1).unwrap().chars().take(24).collect();
    assert!(!debug.contains(&body));
    // A changed spec does not reuse old material.
    let cfg2 = ca_config("root", IssuerSource::SelfSigned(params("CN=Other Root", KeyAlgorithm::EcdsaP256, None)));
    assert!(Issuer::from_material(&cfg2, &material, None).is_err());
}

/// What a recording observer saw, as `kind profile-or-issuer detail` lines.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl pkiplane_core::observe::Observer for Recorder {
    fn observe(&self, event: &pkiplane_core::observe::Event<'_>) {
        use pkiplane_core::observe::Event;
        let line = match event {
            Event::Issued { origin, .. } => {
                format!("issued {} {} {}", origin.profile, origin.issuer, origin.protocol.as_str())
            }
            Event::Denied { origin, rules } => format!("denied {} {}", origin.profile, rules.join(",")),
            Event::Revoked { issuer, profile } => format!("revoked {profile} {issuer}"),
            Event::CrlPublished { issuer, number, .. } => format!("crl {issuer} {number}"),
            Event::StoreWrite { operation, .. } => format!("write {operation}"),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn the_observer_sees_issuance_denial_revocation_crl_and_store_writes() {
    let (ca, _, int) = hierarchy(KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP256);
    let recorder = Arc::new(Recorder::default());
    assert!(ca.observer().set(recorder.clone()));
    let issued = block_on(ca.issue(request(Kind::P256, &["DNS:host.example.com"]))).unwrap().issued().unwrap();
    block_on(ca.issue(request(Kind::Rsa1024, &["DNS:host.example.com"]))).unwrap_err();
    let who = Requester::new(Protocol::Local, "admin");
    block_on(ca.revoke(RevocationRequest::new(&int.id, &issued.record.serial, RevocationReason::KeyCompromise, &who)))
        .unwrap();
    block_on(ca.generate_crl(&int.id)).unwrap();
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "write insert_pending",
            "write mark_issued",
            "issued pki/test pki/ca ACME",
            "denied pki/test keys.rsaMinBits",
            "write revoke",
            "revoked pki/test pki/ca",
            "crl pki/ca 1",
        ]
    );
}
