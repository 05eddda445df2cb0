//! ir with a shared secret, cr and kur signed with the obtained certificate, p10cr, rr;
//! with and without implicit confirmation.

use pkiplane_cmp::state::TransactionState;
use pkiplane_core::inventory::CertStatus;
use pkiplane_core::model::Protocol;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ir_with_mac_then_cr_kur_and_rr_signed_with_the_certificate() {
    let pki = start(Options::default()).await;
    let k1 = ec_key(pki.dir.path(), "k1");
    let c1 = pki.path("c1.pem");
    let root_out = pki.path("capubs.pem");
    let run = pki.ir_with_mac("ir", None, &k1, "dev1.example.com", &c1, &["-cacertsout", p(&root_out)]).await;
    assert!(run.ok, "{}", run.stderr);
    pki.verify(&c1);
    let r1 = pki.record(&c1).await;
    assert_eq!((r1.protocol, r1.requester.as_str(), r1.status), (Protocol::Cmp, KID, CertStatus::Issued));
    assert_eq!(r1.profile.name, "tls");
    // caPubs carried the root to the MAC-authenticated client.
    assert_eq!(std::fs::read_to_string(&root_out).unwrap(), std::fs::read_to_string(&pki.root_pem).unwrap());
    // Without -implicit_confirm the client confirmed: ir, certConf were sent.
    assert_eq!(run.responses.len(), 2, "ip and pkiConf");

    // cr signed with c1.
    let k2 = ec_key(pki.dir.path(), "k2");
    let c2 = pki.path("c2.pem");
    let run = pki
        .cmp(
            "cr",
            None,
            &[
                "-cmd",
                "cr",
                "-cert",
                p(&c1),
                "-key",
                p(&k1),
                "-trusted",
                p(&pki.root_pem),
                "-newkey",
                p(&k2),
                "-subject",
                "/CN=dev1.example.com",
                "-sans",
                "dev1.example.com",
                "-certout",
                p(&c2),
                "-implicit_confirm",
            ],
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    pki.verify(&c2);
    let r2 = pki.record(&c2).await;
    assert_eq!(r2.requester, "CN=dev1.example.com");
    assert_eq!(run.responses.len(), 1, "implicitConfirm granted: no certConf");

    // kur signed with c2 updates c2.
    let k3 = ec_key(pki.dir.path(), "k3");
    let c3 = pki.path("c3.pem");
    let run = pki
        .cmp(
            "kur",
            None,
            &[
                "-cmd",
                "kur",
                "-cert",
                p(&c2),
                "-key",
                p(&k2),
                "-trusted",
                p(&pki.root_pem),
                "-newkey",
                p(&k3),
                "-certout",
                p(&c3),
            ],
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    pki.verify(&c3);
    let r3 = pki.record(&c3).await;
    assert_eq!(r3.renewed_from.as_deref(), Some(r2.serial.as_str()));
    assert_eq!(r3.subject, "CN=dev1.example.com");

    // rr of c3, signed with c3.
    let run = pki
        .cmp(
            "rr",
            None,
            &[
                "-cmd",
                "rr",
                "-cert",
                p(&c3),
                "-key",
                p(&k3),
                "-trusted",
                p(&pki.root_pem),
                "-oldcert",
                p(&c3),
                "-revreason",
                "1",
            ],
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(pki.record(&c3).await.status, CertStatus::Revoked);
    assert!(pki.crl_serials().await.contains(&r3.serial), "revoked serial on the CRL");
    let tx = pki
        .state
        .store()
        .transaction(
            &pki.state.config().endpoint,
            &hex::encode(run.responses[0].header.transaction_id.clone().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.state, TransactionState::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p10cr_with_mac() {
    let pki = start(Options::default()).await;
    let k = ec_key(pki.dir.path(), "p10");
    let csr = pki.path("p10.csr");
    pkcs10_request(&k, "p10.example.com", &csr);
    let cert = pki.path("p10.pem");
    let run = pki.p10cr_with_mac("p10", &csr, &cert, &[]).await;
    assert!(run.ok, "{}", run.stderr);
    pki.verify(&cert);
    let r = pki.record(&cert).await;
    assert_eq!((r.protocol, r.requester.as_str(), r.subject.as_str()), (Protocol::Cmp, KID, "CN=p10.example.com"));
    assert_eq!(run.responses.len(), 2, "cp, then pkiConf for the certConf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_confirm_is_refused_when_the_endpoint_says_never() {
    let pki = start(Options { implicit_confirm: false, ..Options::default() }).await;
    let k = ec_key(pki.dir.path(), "k");
    let cert = pki.path("c.pem");
    let run = pki.ir_with_mac("ir", None, &k, "never.example.com", &cert, &["-implicit_confirm"]).await;
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.responses.len(), 2, "implicitConfirm not granted: certConf and pkiConf followed");
    let ip = &run.responses[0];
    assert!(!ip.header.has_info(&pkiplane_cmp::wire::oids::IT_IMPLICIT_CONFIRM));
    assert!(ip.header.has_info(&pkiplane_cmp::wire::oids::IT_CONFIRM_WAIT_TIME));
    pki.verify(&cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ir_signed_with_an_external_idevid_gets_its_serial_number() {
    let pki = start(Options::default()).await;
    let (idev_key, idev_crt) = pki.idevid.clone();
    let k = ec_key(pki.dir.path(), "ldev");
    let cert = pki.path("ldev.pem");
    let run = pki
        .cmp(
            "idevid",
            Some("device"),
            &[
                "-cmd",
                "ir",
                "-cert",
                p(&idev_crt),
                "-key",
                p(&idev_key),
                "-trusted",
                p(&pki.root_pem),
                "-newkey",
                p(&k),
                "-subject",
                "/CN=sensor",
                "-certout",
                p(&cert),
                "-implicit_confirm",
                // OpenSSL would put the IDevID's issuer into the template (wrongAuthority).
                "-issuer",
                "/O=Example/CN=Test Issuing CA",
            ],
        )
        .await;
    assert!(run.ok, "{}", run.stderr);
    pki.verify(&cert);
    let r = pki.record(&cert).await;
    assert_eq!(r.profile.name, "device");
    assert_eq!(r.requester, "serialNumber=SN-0042,CN=sensor");
    assert!(r.subject.contains("serialNumber=SN-0042"), "{}", r.subject);
    assert!(r.subject.contains("O=Example Devices"), "{}", r.subject);
}
