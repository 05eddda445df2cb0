//! CA key rollover through `pkiplane serve`: the quickstart's root and issuing CA are
//! seeded into the store as if made years ago, so both are inside their renewal window
//! at start. The server stages (and persists) a next CA for each and announces them:
//! SCEP GetNextCACert (and GetCACaps), EST /cacerts, and CMP genm rootCaKeyUpdate.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Server, quickstart_free_ports};
use pkiplane_core::inventory::CaMaterialStore;
use pkiplane_core::issuer::Issuer;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::x509::pem;

const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The public key (PEM) of a certificate file.
fn pubkey(cert: &Path) -> String {
    run(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(cert))
}

/// The subject line of a certificate file.
fn subject(cert: &Path) -> String {
    run(Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(cert))
}

/// Writes the certificates of `openssl pkcs7 -print_certs` output to one file each.
fn split_certs(printed: &str, dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let ders = pem::decode_chain(printed.as_bytes(), "CERTIFICATE").unwrap();
    ders.iter()
        .enumerate()
        .map(|(i, d)| {
            let path = dir.join(format!("{prefix}{i}.pem"));
            std::fs::write(&path, pem::encode("CERTIFICATE", d)).unwrap();
            path
        })
        .collect()
}

/// The compiled Issuer `name` of the manifests.
fn config(manifests: &Path, name: &str) -> pkiplane_core::issuer::IssuerConfig {
    let loaded = pkiplane_api::Manifests::load(manifests).unwrap();
    let res = loaded.issuers.iter().find(|i| i.metadata.name.as_deref() == Some(name)).unwrap();
    pkiplane_api::issuer_from_resource(res, &loaded).unwrap()
}

fn configs(manifests: &Path) -> (pkiplane_core::issuer::IssuerConfig, pkiplane_core::issuer::IssuerConfig) {
    (config(manifests, "example-root"), config(manifests, "example-intermediate"))
}

/// Seeds the store as if the root was made 18 of its 20 years ago and the issuing CA
/// 4.5 of its 5 years ago: both are in the last 1/6 of their lifetime (staging), neither
/// in the last 1/12 (promotion).
fn seed(manifests: &Path, data: &Path) {
    let (root_cfg, int_cfg) = configs(manifests);
    let now = SystemTime::now();
    let (root, root_material) = Issuer::create(&root_cfg, None, now - 18 * YEAR).unwrap();
    let (_, int_material) = Issuer::create(&int_cfg, Some(&root), now - 4 * YEAR - YEAR / 2).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap();
        store.save_ca(&ObjectRef::new("pki", "example-root"), &root_material).await.unwrap();
        store.save_ca(&ObjectRef::new("pki", "example-intermediate"), &int_material).await.unwrap();
    });
}

/// A root 19.5 of its 20 years old (inside the last 1/12) with a next root staged a year
/// ago, so the next root is promoted at start, and an issuing CA made two years ago under
/// the old root key.
struct DuePromotion {
    root_cfg: pkiplane_core::issuer::IssuerConfig,
    int_cfg: pkiplane_core::issuer::IssuerConfig,
    root: Issuer,
    root_material: pkiplane_core::inventory::StoredCaMaterial,
    staged: pkiplane_core::inventory::StoredNextCa,
    int: Issuer,
    int_material: pkiplane_core::inventory::StoredCaMaterial,
}

impl DuePromotion {
    fn new(manifests: &Path) -> Self {
        let (root_cfg, int_cfg) = configs(manifests);
        let now = SystemTime::now();
        let (root, root_material) = Issuer::create(&root_cfg, None, now - 19 * YEAR - YEAR / 2).unwrap();
        let staged = pkiplane_core::issuer::rollover::stage(&root_cfg, &root, None, now - YEAR).unwrap();
        let (int, int_material) = Issuer::create(&int_cfg, Some(&root), now - 2 * YEAR).unwrap();
        Self { root_cfg, int_cfg, root, root_material, staged, int, int_material }
    }

    async fn save(&self, store: &pkiplane_store::SqliteStore) {
        store.save_ca(&self.root_cfg.id, &self.root_material).await.unwrap();
        store.save_next_ca(&self.root_cfg.id, Some(&self.staged)).await.unwrap();
        store.save_ca(&self.int_cfg.id, &self.int_material).await.unwrap();
    }
}

#[test]
fn serve_stages_the_next_ca_and_announces_it_over_scep_est_and_cmp() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let data = dir.join("data");
    let manifests = quickstart_free_ports(dir);
    seed(&manifests, &data);
    let server = Server::start(&manifests, &data, &dir.join("ready.json"));

    let fetch = |path: &str, to: &Path| {
        run(Command::new("curl").args(["-sSf", "-o"]).arg(to).arg(format!("{}{path}", server.publish_url)));
    };
    let (root, int) = (dir.join("root.pem"), dir.join("int.pem"));
    fetch("/issuers/pki/example-root/ca.pem", &root);
    fetch("/issuers/pki/example-intermediate/ca.pem", &int);

    // SCEP: GetCACaps advertises GetNextCACert; GetNextCACert is a certs-only PKCS#7 with
    // the next issuing CA (same subject, new key), signed by the current root.
    let scep = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let caps = run(Command::new("curl").args(["-sSf", &format!("{scep}?operation=GetCACaps")]));
    assert!(caps.lines().any(|l| l == "GetNextCACert"), "{caps}");
    let next_p7 = dir.join("next.p7");
    let headers = run(Command::new("curl")
        .args(["-sSf", "-D", "-", "-o"])
        .arg(&next_p7)
        .arg(format!("{scep}?operation=GetNextCACert")));
    assert!(headers.to_lowercase().contains("content-type: application/x-x509-next-ca-cert"), "{headers}");
    let printed = run(Command::new("openssl").args(["pkcs7", "-inform", "DER", "-print_certs", "-in"]).arg(&next_p7));
    // (A certs-only SignedData holds a SET OF certificates: DER order, not ours.)
    let next_int = split_certs(&printed, dir, "scep-next")
        .into_iter()
        .find(|c| subject(c).contains("CN = Example Issuing CA"))
        .unwrap_or_else(|| panic!("no issuing CA in GetNextCACert: {printed}"));
    assert_ne!(pubkey(&next_int), pubkey(&int), "the next CA has a new key");
    let verified = run(Command::new("openssl").args(["verify", "-CAfile"]).arg(&root).arg(&next_int));
    assert!(verified.contains(": OK"), "{verified}");
    // Signed by the current RA (RFC 8894 section 4.7.1): the signature verifies over the
    // absent content, by the RA certificate the response carries.
    let signed = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-binary",
            "-noverify",
            "-content",
            "/dev/null",
            "-out",
            "/dev/null",
        ])
        .arg("-in")
        .arg(&next_p7)
        .output()
        .unwrap();
    assert!(signed.status.success(), "GetNextCACert signature: {}", text(&signed.stderr));

    // EST /cacerts: the current chain, then the next issuing CA and the next root with
    // its link certificates.
    let est = server.endpoint("pki", "est");
    let est_url = est["urls"][0].as_str().unwrap();
    let trust = est["tlsTrustBundle"].as_str().unwrap();
    let b64 = run(Command::new("curl").args(["-sSf", "--cacert", trust, &format!("{est_url}/cacerts")]));
    let p7_pem = dir.join("cacerts.p7.pem");
    std::fs::write(&p7_pem, format!("-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n", b64.trim())).unwrap();
    let printed = run(Command::new("openssl").args(["pkcs7", "-print_certs", "-in"]).arg(&p7_pem));
    let certs = split_certs(&printed, dir, "est");
    assert_eq!(certs.len(), 6, "int, root, next int, newWithNew, newWithOld, oldWithNew: {printed}");
    let est_keys: Vec<String> = certs.iter().map(|c| pubkey(c)).collect();
    assert!(est_keys.contains(&pubkey(&next_int)), "EST /cacerts has the next issuing CA");

    // CMP: genm rootCaCert -> genp rootCaKeyUpdate with newWithNew, newWithOld, oldWithNew.
    let cmp = server.endpoint("pki", "cmp")["urls"][0].as_str().unwrap().to_string();
    let conf = dir.join("openssl-oids.cnf");
    std::fs::write(
        &conf,
        "openssl_conf = init\n[init]\noid_section = oids\n[oids]\nid-it-rootCaCert = 1.3.6.1.5.5.7.4.20\n",
    )
    .unwrap();
    let rsp = dir.join("genp.der");
    let out = Command::new("openssl")
        .args(["cmp", "-cmd", "genm", "-infotype", "rootCaCert", "-server"])
        .arg(cmp.trim_start_matches("http://"))
        .args(["-ref", "device-1", "-secret", "pass:quickstart-cmp-secret", "-recipient", "/CN=pkiplane CMP pki\\/cmp"])
        .arg("-rspout")
        .arg(&rsp)
        .env("OPENSSL_CONF", &conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl cmp genm: {}", text(&out.stderr));
    let update = pkiplane_cmp::genm_root::root_ca_key_update_of_genp(&std::fs::read(&rsp).unwrap())
        .unwrap()
        .expect("a root CA key update is staged");
    let write = |name: &str, der: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, pem::encode("CERTIFICATE", der)).unwrap();
        path
    };
    let nwn = write("newWithNew.pem", &update.new_with_new);
    let nwo = write("newWithOld.pem", update.new_with_old.as_deref().expect("newWithOld"));
    let own = write("oldWithNew.pem", update.old_with_new.as_deref().expect("oldWithNew"));
    let verify = |ca: &Path, cert: &Path| {
        let out = run(Command::new("openssl").args(["verify", "-partial_chain", "-CAfile"]).arg(ca).arg(cert));
        assert!(out.contains(": OK"), "{out}");
    };
    verify(&nwn, &nwn); // newWithNew is self-signed
    verify(&root, &nwo); // newWithOld: the new key signed by the old root key
    verify(&nwn, &own); // oldWithNew: the old key signed by the new root key
    assert_ne!(pubkey(&nwn), pubkey(&root));
    assert_eq!(pubkey(&nwo), pubkey(&nwn));
    assert_eq!(pubkey(&own), pubkey(&root));
    // The same next root is in EST /cacerts.
    assert!(est_keys.contains(&pubkey(&nwn)), "EST /cacerts has the next root");

    // The publication endpoint serves the staged next root with its links.
    let next_pem = dir.join("next-root.pem");
    fetch("/issuers/pki/example-root/next.pem", &next_pem);
    let published = pem::decode_chain(&std::fs::read(&next_pem).unwrap(), "CERTIFICATE").unwrap();
    assert_eq!(published.len(), 3, "newWithNew, newWithOld, oldWithNew");
    assert_eq!(published[0], update.new_with_new);

    // Persisted before announced: a restart announces the same next CA.
    drop(server);
    let server = Server::start(&manifests, &data, &dir.join("ready2.json"));
    let scep = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let again = dir.join("next2.p7");
    run(Command::new("curl").args(["-sSf", "-o"]).arg(&again).arg(format!("{scep}?operation=GetNextCACert")));
    let printed = run(Command::new("openssl").args(["pkcs7", "-inform", "DER", "-print_certs", "-in"]).arg(&again));
    let keys: Vec<String> = split_certs(&printed, dir, "scep-next-again").iter().map(|c| pubkey(c)).collect();
    assert!(keys.contains(&pubkey(&next_int)), "the same next CA after a restart: {printed}");
}

/// A root whose staged next CA is due for promotion at start: the next root becomes
/// current, the issuing CA is re-issued under the new root key, the rollover is audited,
/// and nothing is announced any more.
#[test]
fn serve_promotes_a_due_next_ca_and_reissues_the_intermediate() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let data = dir.join("data");
    let manifests = quickstart_free_ports(dir);
    let due = DuePromotion::new(&manifests);
    rt().block_on(async { due.save(&pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap()).await });
    let staged = &due.staged;
    let server = Server::start(&manifests, &data, &dir.join("ready.json"));

    let fetch = |path: &str, to: &Path| {
        run(Command::new("curl").args(["-sSf", "-o"]).arg(to).arg(format!("{}{path}", server.publish_url)));
    };
    let (new_root, int) = (dir.join("root.pem"), dir.join("int.pem"));
    fetch("/issuers/pki/example-root/ca.pem", &new_root);
    fetch("/issuers/pki/example-intermediate/ca.pem", &int);
    let published = pem::decode_one(&std::fs::read(&new_root).unwrap(), "CERTIFICATE").unwrap();
    assert_eq!(published, staged.material.certificate_der, "the staged next root is current");
    let verified = run(Command::new("openssl").args(["verify", "-CAfile"]).arg(&new_root).arg(&int));
    assert!(verified.contains(": OK"), "the issuing CA was re-issued under the new root key: {verified}");

    let scep = server.endpoint("pki", "scep")["urls"][0].as_str().unwrap().to_string();
    let caps = run(Command::new("curl").args(["-sSf", &format!("{scep}?operation=GetCACaps")]));
    assert!(!caps.contains("GetNextCACert"), "{caps}");
    let status = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{scep}?operation=GetNextCACert"),
    ]));
    assert_eq!(status, "404");

    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("ca-rolled-over"), "{log}");
}

/// Serial (uppercase hex, as openssl prints it) of a certificate file.
fn serial(cert: &Path) -> String {
    run(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(cert))
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

/// After a rollover the retired issuing CA key keeps signing a CRL (at its own URL) and
/// OCSP answers for the certificates it issued: a certificate issued before the rollover
/// and revoked after it is on the retired key's CRL, `openssl verify -crl_check` says
/// revoked, and the retired key's OCSP responder says revoked. The Issuer's CRL URL, which
/// the certificate's CRL distribution point names, serves the current key's CRL, which
/// lists it too.
#[test]
fn a_retired_ca_key_keeps_its_crl_and_ocsp_for_what_it_issued() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let data = dir.join("data");
    let manifests = quickstart_free_ports(dir);
    // The root is due for promotion at start: the issuing CA is then re-issued under the
    // new root key, with a new key of its own.
    let due = DuePromotion::new(&manifests);
    let old_key_id = hex::encode(&due.int.key_id);
    let write = |name: &str, der: &[u8]| {
        std::fs::write(dir.join(name), pem::encode("CERTIFICATE", der)).unwrap();
        dir.join(name)
    };
    let old_root = write("old-root.pem", &due.root.cert.der);
    let old_int = write("old-int.pem", &due.int.cert.der);
    let newer_root_link = write("new-with-old.pem", due.staged.new_with_old_der.as_deref().unwrap());
    // A certificate the old issuing CA key signs before the rollover, through the CA core
    // on the data directory's store, as serve would.
    run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(dir.join("leaf.key"))
        .args(["-subj", "/CN=old.localhost", "-addext", "subjectAltName=DNS:old.localhost", "-out"])
        .arg(dir.join("leaf.csr")));
    let loaded = pkiplane_api::Manifests::load(&manifests).unwrap();
    let profile = loaded.profiles.iter().find(|p| p.metadata.name.as_deref() == Some("enterprise-tls-47d")).unwrap();
    let profile = pkiplane_api::profile_from_resource(profile).unwrap();
    let csr = std::fs::read(dir.join("leaf.csr")).unwrap();
    let csr = pkiplane_core::x509::csr::ParsedCsr::from_pem_or_der(&csr, Default::default()).unwrap();
    let issued = rt().block_on(async {
        let store = Arc::new(pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap());
        due.save(&store).await;
        let ca = pkiplane_core::issuance::Ca::new(store);
        ca.put_issuer(Arc::new(due.root));
        ca.put_issuer(Arc::new(due.int));
        let profile_id = profile.id.clone();
        ca.put_profile(profile);
        ca.issue(pkiplane_core::issuance::IssuanceRequest {
            csr,
            profile: profile_id,
            requester: Requester::new(Protocol::Local, "test"),
            requested: Default::default(),
            renewal_of: None,
            exchange: None,
        })
        .await
        .unwrap()
        .issued()
        .unwrap()
    });
    let leaf = dir.join("old-leaf.pem");
    std::fs::write(&leaf, issued.certificate_pem()).unwrap();

    let server = Server::start(&manifests, &data, &dir.join("ready.json"));
    let base = format!("{}/issuers/pki/example-intermediate", server.publish_url);
    let fetch = |url: &str, to: &str| {
        run(Command::new("curl").args(["-sSf", "-o"]).arg(dir.join(to)).arg(url));
        dir.join(to)
    };
    let new_int = fetch(&format!("{base}/ca.pem"), "new-int.pem");
    assert_ne!(pubkey(&new_int), pubkey(&old_int), "the issuing CA has a new key");
    let keys = run(Command::new("curl").args(["-sSf", &format!("{base}/keys")]));
    assert!(keys.contains(&format!("{old_key_id}: retired")), "{keys}");
    assert!(keys.lines().any(|l| l.contains(": current")), "{keys}");

    // Revoked after the rollover (the CLI writes while no server owns the directory).
    drop(server);
    let data_dir = data.to_str().unwrap();
    run(Command::new(common::BIN).args([
        "revoke",
        &issued.record.serial,
        "--data-dir",
        data_dir,
        "--reason",
        "keyCompromise",
    ]));
    let server = Server::start(&manifests, &data, &dir.join("ready.json"));
    let base = format!("{}/issuers/pki/example-intermediate", server.publish_url);
    let leaf_serial = serial(&leaf);

    // The retired key's CRL, at its own URL: signed by the old key, lists the certificate,
    // and openssl's CRL check on the old chain says revoked.
    let old_crl = fetch(&format!("{base}/keys/{old_key_id}/crl.pem"), "old-crl.pem");
    let crl_text = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-verify", "-CAfile"])
        .arg(&old_int)
        .arg("-in")
        .arg(&old_crl));
    assert!(
        crl_text.contains(&format!("Serial Number: {leaf_serial}")) && crl_text.contains("Key Compromise"),
        "{crl_text}"
    );
    let verify = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(&old_root)
        .arg("-untrusted")
        .arg(&old_int)
        .arg("-CRLfile")
        .arg(&old_crl)
        .arg(&leaf)
        .output()
        .unwrap();
    let out = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(!verify.status.success() && out.contains("certificate revoked"), "{out}");

    // The certificate's CRL distribution point is the Issuer's CRL URL; there the current
    // key's CRL lists it as well.
    let dp = run(Command::new("openssl").args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"]).arg(&leaf));
    assert!(dp.contains("URI:http://127.0.0.1:8080/issuers/pki/example-intermediate/crl"), "{dp}");
    let current_crl = fetch(&format!("{base}/crl.pem"), "current-crl.pem");
    let crl_text = run(Command::new("openssl")
        .args(["crl", "-noout", "-text", "-verify", "-CAfile"])
        .arg(&new_int)
        .arg("-in")
        .arg(&current_crl));
    assert!(crl_text.contains(&format!("Serial Number: {leaf_serial}")), "{crl_text}");
    // RFC 5280 section 6.3.3 lets that CRL, signed by another key of the same CA, cover
    // the certificate when the CRL signer's own path ends at the same trust anchor (here
    // through the newWithOld link): openssl's extended CRL support ("alternate CRL signing
    // keys") agrees the certificate is revoked.
    let untrusted = dir.join("untrusted.pem");
    let bundle: String =
        [&old_int, &new_int, &newer_root_link].iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    std::fs::write(&untrusted, bundle).unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-extended_crl", "-crl_check", "-CAfile"])
        .arg(&old_root)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg("-CRLfile")
        .arg(&current_crl)
        .arg(&leaf)
        .output()
        .unwrap();
    let out = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(!verify.status.success() && out.contains("certificate revoked"), "{out}");

    // OCSP: the retired key's delegated responder answers for its certificate.
    let ocsp = Command::new("openssl")
        .args(["ocsp", "-url", &format!("{base}/ocsp"), "-issuer"])
        .arg(&old_int)
        .arg("-cert")
        .arg(&leaf)
        .arg("-CAfile")
        .arg(&old_root)
        .arg("-verify_other")
        .arg(&old_int)
        .output()
        .unwrap();
    let out = format!("{}{}", text(&ocsp.stdout), text(&ocsp.stderr));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("old-leaf.pem: revoked") && out.contains("Reason: keyCompromise"), "{out}");
}

/// A retired key is kept while a certificate recorded before its retirement is still
/// valid, and forgotten for good once none is (here: an Issuer with none at all).
#[test]
fn retired_keys_are_forgotten_once_their_last_certificate_has_expired() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let data = dir.join("data");
    let manifests = quickstart_free_ports(dir);
    let (root_cfg, int_cfg) = configs(&manifests);
    let maker_cfg = config(&manifests, "manufacturer-root");
    let now = SystemTime::now();
    const DAY: Duration = Duration::from_secs(86_400);
    let (root, root_material) = Issuer::create(&root_cfg, None, now - YEAR).unwrap();
    let (_, int_material) = Issuer::create(&int_cfg, Some(&root), now - YEAR).unwrap();
    // Keys both Issuers replaced two days ago.
    let (old_int, old_int_material) = Issuer::create(&int_cfg, Some(&root), now - 2 * YEAR).unwrap();
    let (old_maker, old_maker_material) = Issuer::create(&maker_cfg, None, now - 2 * YEAR).unwrap();
    let retired = |m: &pkiplane_core::inventory::StoredCaMaterial| {
        pkiplane_core::issuer::retired::retire(m, now - 2 * DAY).unwrap()
    };
    rt().block_on(async {
        let store = pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap();
        store.save_ca(&root_cfg.id, &root_material).await.unwrap();
        store.save_ca(&int_cfg.id, &int_material).await.unwrap();
        store.save_retired_ca(&int_cfg.id, &retired(&old_int_material)).await.unwrap();
        store.save_retired_ca(&maker_cfg.id, &retired(&old_maker_material)).await.unwrap();
        // A certificate of the issuing CA recorded before the retirement, valid 10 more days.
        let record = pkiplane_core::inventory::CertificateRecord {
            serial: "51e2a1".into(),
            issuer: int_cfg.id.clone(),
            profile: ObjectRef::new("pki", "enterprise-tls-47d"),
            protocol: Protocol::Local,
            endpoint: None,
            requester: "test".into(),
            subject: "CN=still.localhost".into(),
            sans: vec!["DNS:still.localhost".into()],
            key_algorithm: "ECDSA P-256".into(),
            not_before: now - 3 * DAY,
            not_after: now + 10 * DAY,
            status: pkiplane_core::inventory::CertStatus::Pending,
            revocation: None,
            der: None,
            renewed_from: None,
            created_at: now - 3 * DAY,
            exchange: None,
        };
        use pkiplane_core::inventory::Inventory;
        store.insert_pending(&record).await.unwrap();
        store.mark_issued(&int_cfg.id, "51e2a1", &old_int.cert.der).await.unwrap();
    });
    let server = Server::start(&manifests, &data, &dir.join("ready.json"));
    let keys = |issuer: &str| {
        run(Command::new("curl").args(["-sSf", &format!("{}/issuers/pki/{issuer}/keys", server.publish_url)]))
    };
    let listed = keys("example-intermediate");
    assert!(listed.contains(&format!("{}: retired", hex::encode(&old_int.key_id))), "still needed: {listed}");
    let listed = keys("manufacturer-root");
    assert!(!listed.contains(&hex::encode(&old_maker.key_id)) && !listed.contains("retired"), "forgotten: {listed}");
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("ca-key-retired") && log.contains(&hex::encode(&old_maker.key_id)), "{log}");
    drop(server);
    let remaining = rt().block_on(async {
        let store = pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap();
        (
            store.load_retired_cas(&int_cfg.id).await.unwrap().len(),
            store.load_retired_cas(&maker_cfg.id).await.unwrap().len(),
        )
    });
    assert_eq!(remaining, (1, 0), "forgotten in the store too");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}
