//! The device scripts of `tests/scripts/` (curl + openssl only) against the endpoint.

use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::model::Protocol;

use crate::common::{Env, text};

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_scripts_cover_every_operation() {
    let env = Env::start(|_| {}).await;
    let url = env.base.clone();
    let ldevid = format!("{url}/ldevid");

    // cacerts, unlabelled (the default profile) and labelled: the issuing chain.
    for u in [&url, &ldevid] {
        let out = ok(&env.script("cacerts.sh", &[("EST_URL", u)]), "cacerts.sh");
        assert!(out.starts_with("2 CA certificate(s)"), "{out}");
    }
    let cacerts = std::fs::read_to_string(env.path("cacerts.pem")).unwrap();
    assert!(cacerts.contains(&std::fs::read_to_string(&env.root_pem).unwrap()));

    // csrattrs: the profile wants ECDSA P-256 and a CN.
    let out = ok(&env.script("csrattrs.sh", &[("EST_URL", &ldevid)]), "csrattrs.sh");
    assert!(out.contains("id-ecPublicKey") && out.contains("prime256v1") && out.contains("commonName"), "{out}");

    // An IDevID from the separate manufacturer Issuer (issued as the factory would).
    let (idevid, idevid_key) =
        env.issue_files("device-idevid-20y", KeyAlgorithm::EcdsaP256, "serialNumber=SN-0001", &[], "idevid").await;
    let idevid_s = idevid.to_str().unwrap();
    let idevid_key_s = idevid_key.to_str().unwrap();

    // enroll with the IDevID: the device serial becomes the LDevID's serialNumber.
    let out = ok(
        &env.script(
            "enroll.sh",
            &[
                ("EST_URL", &ldevid),
                ("EST_CERT", idevid_s),
                ("EST_KEY", idevid_key_s),
                ("SUBJECT", "/CN=dev-0001/serialNumber=SN-0001"),
            ],
        ),
        "enroll.sh",
    );
    assert!(out.contains("serialNumber = SN-0001") || out.contains("serialNumber=SN-0001"), "{out}");
    let device = env.path("device.pem");
    env.openssl_verify(&device);
    let first = env.record_of(&device).await;
    assert_eq!(first.protocol, Protocol::Est);
    let idevid_record = env.record_of(&idevid).await;
    assert_eq!(first.requester, idevid_record.subject);
    assert!(first.requester.contains("serialNumber=SN-0001"), "{}", first.requester);
    assert!(
        first.subject.contains("CN=dev-0001") && first.subject.contains("serialNumber=SN-0001"),
        "{}",
        first.subject
    );

    // A CSR claiming another device's serial is denied by the profile's claim rule.
    let other = env.path("other");
    let out = env.script(
        "enroll.sh",
        &[
            ("EST_URL", &ldevid),
            ("EST_CERT", idevid_s),
            ("EST_KEY", idevid_key_s),
            ("SUBJECT", "/CN=dev-0001/serialNumber=SN-9999"),
            ("OUT", other.to_str().unwrap()),
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("HTTP 403") && err.contains("subject.attributes[serialNumber].claim"), "{err}");

    // re-enroll with the current certificate: a new one, linked to the old.
    let out = ok(&env.script("reenroll.sh", &[("EST_URL", &ldevid)]), "reenroll.sh");
    assert!(out.contains("dev-0001"), "{out}");
    env.openssl_verify(&device);
    let second = env.record_of(&device).await;
    assert_ne!(second.serial, first.serial);
    assert_eq!(second.renewed_from.as_deref(), Some(first.serial.as_str()));
    assert_eq!(second.protocol, Protocol::Est);
    assert_eq!(second.requester, first.subject);
    assert_eq!(second.subject, first.subject);

    // serverkeygen with Basic: the key comes back as PKCS#8 and matches the certificate.
    let out = ok(
        &env.script(
            "serverkeygen.sh",
            &[
                ("EST_URL", &ldevid),
                ("EST_USER", "device-enroller"),
                ("EST_PASS", "est-demo-password"),
                ("SUBJECT", "/CN=dev-0002"),
            ],
        ),
        "serverkeygen.sh",
    );
    assert!(out.contains("dev-0002"), "{out}");
    let cert = env.path("keygen.pem");
    env.openssl_verify(&cert);
    let pubkey = |args: &[&str]| text(&std::process::Command::new("openssl").args(args).output().unwrap().stdout);
    let from_key = pubkey(&["pkey", "-in", env.path("keygen.key").to_str().unwrap(), "-pubout"]);
    let from_cert = pubkey(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
    assert!(!from_key.is_empty() && from_key == from_cert, "generated key does not match the certificate");
    let rec = env.record_of(&cert).await;
    assert_eq!((rec.protocol, rec.requester.as_str()), (Protocol::Est, "basic:device-enroller"));
    assert_eq!(rec.key_algorithm, "ECDSA P-256");
}
