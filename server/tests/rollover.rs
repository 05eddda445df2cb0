//! CA key rollover through `pkiplane serve`: the quickstart's root and issuing CA are
//! seeded into the store as if made years ago, so both are inside their renewal window
//! at start. The server stages (and persists) a next CA for each and announces them:
//! SCEP GetNextCACert (and GetCACaps), EST /cacerts, and CMP genm rootCaKeyUpdate.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{Server, quickstart_free_ports};
use pkiplane_core::inventory::CaMaterialStore;
use pkiplane_core::issuer::Issuer;
use pkiplane_core::model::ObjectRef;
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

fn configs(manifests: &Path) -> (pkiplane_core::issuer::IssuerConfig, pkiplane_core::issuer::IssuerConfig) {
    let loaded = pkiplane_api::Manifests::load(manifests).unwrap();
    let cfg = |name: &str| {
        let res = loaded.issuers.iter().find(|i| i.metadata.name.as_deref() == Some(name)).unwrap();
        pkiplane_api::issuer_from_resource(res, &loaded).unwrap()
    };
    (cfg("example-root"), cfg("example-intermediate"))
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
    let (root_cfg, int_cfg) = configs(&manifests);
    let now = SystemTime::now();
    // 19.5 of 20 years gone (inside the last 1/12), the next root staged a year ago.
    let (root, root_material) = Issuer::create(&root_cfg, None, now - 19 * YEAR - YEAR / 2).unwrap();
    let staged = pkiplane_core::issuer::rollover::stage(&root_cfg, &root, None, now - YEAR).unwrap();
    let (_, int_material) = Issuer::create(&int_cfg, Some(&root), now - 2 * YEAR).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = pkiplane_store::SqliteStore::open(&data.join("inventory.db")).unwrap();
        store.save_ca(&root_cfg.id, &root_material).await.unwrap();
        store.save_next_ca(&root_cfg.id, Some(&staged)).await.unwrap();
        store.save_ca(&int_cfg.id, &int_material).await.unwrap();
    });
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
