//! Requests no command-line client makes: server-generated keys returned encrypted
//! (RFC 7030 4.4.2) and CSRs bound to the TLS session (RFC 7030 3.5), checked with
//! OpenSSL and a rustls client.

use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode};
use pkiplane_core::keys::{CaSigner, KeyAlgorithm, generate_key};
use pkiplane_core::model::Protocol;
use pkiplane_core::x509::San;
use pkiplane_core::x509::cert::{CertInfo, Signed};
use pkiplane_core::x509::csr::CHALLENGE_PASSWORD;
use pkiplane_core::x509::names::parse_dn;
use pkiplane_core::x509::pem;
use pkiplane_est::envelope::{ID_AA_ASYMM_DECRYPT_KEY_ID, ID_AA_DECRYPT_KEY_ID};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_cert::attr::Attribute;
use x509_cert::name::Name;
use x509_cert::request::{CertReqInfo, Version};

use crate::common::{Env, text};

/// A DER CSR for a fresh P-256 key with `subject` and one extra attribute.
fn csr_with(subject: &str, oid: ObjectIdentifier, value: Any) -> Vec<u8> {
    let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let signer = CaSigner::new(&key).unwrap();
    let mut values = SetOfVec::new();
    values.insert(value).unwrap();
    let mut attributes = SetOfVec::new();
    attributes.insert(Attribute { oid, values }).unwrap();
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_der(&parse_dn(subject).unwrap().to_der().unwrap()).unwrap(),
        public_key: signer.public_key_info().clone(),
        attributes,
    };
    let tbs = info.to_der().unwrap();
    let signature = signer.sign(&tbs).unwrap();
    Signed {
        tbs: AnyRef::from_der(&tbs).unwrap(),
        algorithm: signer.signature_algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverkeygen_returns_the_key_encrypted_to_the_client_certificate() {
    let env = Env::start(|_| {}).await;
    // The device holds an RSA certificate pkiplane issued; it authenticates with it and
    // asks for the new key to be encrypted to it (AsymmetricDecryptKeyIdentifier).
    let (cert, key) = env
        .issue_files("enterprise-tls-47d", KeyAlgorithm::Rsa2048, "", &[San::Dns("rsa.example.internal".into())], "rsa")
        .await;
    let der = pem::decode_chain(&std::fs::read(&cert).unwrap(), "CERTIFICATE").unwrap().remove(0);
    let ski = pkiplane_est::envelope::key_identifier(&CertInfo::from_der(&der).unwrap());
    let request =
        csr_with("CN=dev-enc", ID_AA_ASYMM_DECRYPT_KEY_ID, Any::encode_from(&OctetString::new(ski).unwrap()).unwrap());
    let body = env.path("enc.csr.b64");
    std::fs::write(&body, STANDARD.encode(&request)).unwrap();
    let url = format!("{}/ldevid/serverkeygen", env.base);
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (status, response) =
        env.curl(&["--cert", cert_s, "--key", key_s, "--data-binary", &format!("@{}", body.display()), &url]);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("application/pkcs7-mime; smime-type=server-generated-key"), "{response}");

    // Take the key part apart with OpenSSL: decrypt with the device key, verify the
    // signature against the CA, and compare the key with the issued certificate.
    let part = |marker: &str| -> Vec<u8> {
        let start = response.find(marker).unwrap();
        let rest = &response[start..];
        let body_start = rest.find("\r\n\r\n").unwrap() + 4;
        let end = rest[body_start..].find("--").unwrap();
        STANDARD.decode(rest[body_start..body_start + end].replace(['\r', '\n'], "")).unwrap()
    };
    let enveloped = env.path("key.p7m");
    std::fs::write(&enveloped, part("smime-type=server-generated-key")).unwrap();
    let signed = env.path("key.signed.der");
    let package = env.path("key.package.der");
    let p = |x: &std::path::Path| x.to_str().unwrap().to_owned();
    openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        &p(&enveloped),
        "-recip",
        cert_s,
        "-inkey",
        key_s,
        "-out",
        &p(&signed),
    ]);
    // What the EnvelopedData carries is the SignedData itself (its content type says
    // id-signedData); OpenSSL verifies a ContentInfo, so wrap it.
    let inner = Any::from_der(&std::fs::read(&signed).unwrap()).unwrap();
    let wrapped = env.path("key.signed.ci.der");
    std::fs::write(&wrapped, pkiplane_est::cms::content_info(pkiplane_est::cms::ID_SIGNED_DATA, &inner).unwrap())
        .unwrap();
    openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p(&wrapped),
        "-CAfile",
        &p(&env.root_pem),
        "-purpose",
        "any",
        "-out",
        &p(&package),
    ]);
    let keys: Vec<Any> = Vec::<Any>::from_der(&std::fs::read(&package).unwrap()).unwrap();
    assert_eq!(keys.len(), 1, "one OneAsymmetricKey in the AsymmetricKeyPackage");
    let pkcs8 = env.path("generated.der");
    std::fs::write(&pkcs8, keys[0].to_der().unwrap()).unwrap();
    let certs_only = env.path("generated.p7");
    std::fs::write(&certs_only, part("smime-type=certs-only")).unwrap();
    let issued = env.path("generated.pem");
    openssl(&["pkcs7", "-inform", "DER", "-in", &p(&certs_only), "-print_certs", "-out", &p(&issued)]);
    env.openssl_verify(&issued);
    let pubkey = |args: &[&str]| text(&Command::new("openssl").args(args).output().unwrap().stdout);
    let a = pubkey(&["pkey", "-inform", "DER", "-in", &p(&pkcs8), "-pubout"]);
    let b = pubkey(&["x509", "-in", &p(&issued), "-noout", "-pubkey"]);
    assert!(!a.is_empty() && a == b, "the enveloped key is not the certificate's");
    let rec = env.record_of(&issued).await;
    assert_eq!(rec.protocol, Protocol::Est);
    assert!(rec.requester.contains("rsa.example.internal"), "{}", rec.requester);

    // A symmetric key (DecryptKeyIdentifier) cannot be honoured: 400, nothing issued.
    let before = env.records().await.len();
    let request = csr_with(
        "CN=dev-enc2",
        ID_AA_DECRYPT_KEY_ID,
        Any::encode_from(&OctetString::new(vec![1, 2, 3]).unwrap()).unwrap(),
    );
    std::fs::write(&body, STANDARD.encode(&request)).unwrap();
    let (status, response) =
        env.curl(&["--cert", cert_s, "--key", key_s, "--data-binary", &format!("@{}", body.display()), &url]);
    assert_eq!(status, 400, "{response}");
    assert!(response.contains("DecryptKeyIdentifier"), "{response}");
    assert_eq!(env.records().await.len(), before);
}

/// Sends one HTTP/1.1 request over a rustls connection presenting `chain`/`key`; the CSR
/// is made by `make_csr` from the connection's RFC 9266 exporter. Returns the status.
async fn bound_request(
    env: &Env,
    chain: Vec<Vec<u8>>,
    key_der: Vec<u8>,
    make_csr: impl FnOnce(&[u8]) -> Vec<u8>,
) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            pem::decode_chain(&std::fs::read(&env.root_pem).unwrap(), "CERTIFICATE").unwrap().remove(0),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    let mut binding = [0u8; 32];
    tls.get_ref().1.export_keying_material(&mut binding, b"EXPORTER-Channel-Binding", None).unwrap();
    let body = STANDARD.encode(make_csr(&binding));
    let request = format!(
        "POST /.well-known/est/ldevid/simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pkcs10\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let response = text(&response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_binding_ties_the_csr_to_the_tls_session() {
    let env = Env::start(|c| c.require_channel_binding = true).await;
    let idevid_key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
    let idevid = crate::common::issue_local(&env.ca, "device-idevid-20y", &idevid_key, "serialNumber=SN-CB", &[]).await;
    let password = |b: &[u8]| Any::from(Utf8StringRef::new(&STANDARD.encode(b)).unwrap());

    // The exporter of this very connection: accepted.
    let (status, response) = bound_request(&env, vec![idevid.clone()], idevid_key.pkcs8_der().to_vec(), |b| {
        csr_with("CN=dev-cb,serialNumber=SN-CB", CHALLENGE_PASSWORD, password(b))
    })
    .await;
    assert_eq!(status, 200, "{response}");

    // A value from another session: refused.
    let (status, response) = bound_request(&env, vec![idevid.clone()], idevid_key.pkcs8_der().to_vec(), |_| {
        csr_with("CN=dev-cb,serialNumber=SN-CB", CHALLENGE_PASSWORD, password(&[7u8; 32]))
    })
    .await;
    assert_eq!(status, 403, "{response}");
    assert!(response.contains("channel binding"), "{response}");

    // No challengePassword at all: refused, and csrattrs asks for it.
    let (status, response) = bound_request(&env, vec![idevid], idevid_key.pkcs8_der().to_vec(), |_| {
        csr_with(
            "CN=dev-cb,serialNumber=SN-CB",
            ObjectIdentifier::new_unwrap("2.5.4.3"),
            Any::from(Utf8StringRef::new("x").unwrap()),
        )
    })
    .await;
    assert_eq!(status, 403, "{response}");
    let (status, attrs) = env.curl(&[&format!("{}/ldevid/csrattrs", env.base)]);
    assert_eq!(status, 200);
    let body = attrs.split("\r\n\r\n").nth(1).unwrap();
    let der = STANDARD.decode(body.replace(['\r', '\n'], "")).unwrap();
    let oid = CHALLENGE_PASSWORD.to_der().unwrap();
    assert!(der.windows(oid.len()).any(|w| w == oid.as_slice()), "csrattrs lacks challengePassword");
}
