//! genm -> genp: CA certificates, root CA update, request template, CRLs.

use der::{Decode, Encode};
use pkiplane_cmp::wire::body::{ResponseBody, decode_response};
use pkiplane_cmp::wire::oids;

use crate::common::*;

async fn genm(pki: &Pki, name: &str, label: Option<&str>, infotype: &str) -> Vec<cmpv2::r#gen::InfoTypeAndValue> {
    let run = pki
        .cmp(name, label, &["-cmd", "genm", "-ref", KID, "-secret", &format!("pass:{SECRET}"), "-infotype", infotype])
        .await;
    assert!(run.ok, "{infotype}: {}", run.stderr);
    assert!(run.stderr.contains("genp contains ITAV"), "{}", run.stderr);
    match decode_response(run.responses[0].body_tag, &run.responses[0].body).unwrap() {
        ResponseBody::Genp(itavs) => itavs,
        other => panic!("expected genp, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_certificates_root_update_template_and_crls() {
    let pki = start(Options::default()).await;

    let itavs = genm(&pki, "cacerts", None, "caCerts").await;
    assert_eq!(itavs[0].oid, oids::IT_CA_CERTS);
    let certs: Vec<x509_cert02::Certificate> = itavs[0].value.as_ref().unwrap().decode_as().unwrap();
    let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
    let issuing = pki.ca.issuer(&pkiplane_core::ObjectRef::new("pki", "issuing")).unwrap();
    assert_eq!(ders, vec![issuing.cert.der.clone(), issuing.root().der.clone()]);

    // No root rollover is staged: rootCaKeyUpdate without a value (RFC 9483 4.3.2).
    let itavs = genm(&pki, "rootca", None, "rootCaCert").await;
    assert_eq!(itavs.len(), 1);
    assert_eq!((itavs[0].oid, itavs[0].value.is_none()), (oids::IT_ROOT_CA_KEY_UPDATE, true));

    // The device profile's template: O fixed, CN to fill in, keyUsage/EKU, P-256.
    let itavs = genm(&pki, "template", Some("device"), "certReqTemplate").await;
    assert_eq!(itavs[0].oid, oids::IT_CERT_REQ_TEMPLATE);
    let der = itavs[0].value.as_ref().unwrap().to_der().unwrap();
    let text = asn1parse(&pki, &der);
    assert!(text.contains("Example Devices"), "{text}");
    assert!(text.contains("X509v3 Key Usage") || text.contains("2.5.29.15") || text.contains("Key Usage"), "{text}");
    assert!(text.contains("prime256v1"), "{text}");

    let itavs = genm(&pki, "crl", None, "currentCRL").await;
    assert_eq!(itavs[0].oid, oids::IT_CURRENT_CRL);
    let crl = itavs[0].value.as_ref().unwrap().to_der().unwrap();
    let crl_path = pki.path("genm.crl");
    std::fs::write(&crl_path, &crl).unwrap();
    openssl_ok(&["crl", "-inform", "DER", "-in", p(&crl_path), "-CAfile", p(&pki.issuing_pem), "-noout"]);

    let itavs = genm(&pki, "crls", None, "crlStatusList").await;
    assert_eq!(itavs[0].oid, oids::IT_CRLS);
    let list: Vec<x509_cert02::crl::CertificateList> = itavs[0].value.as_ref().unwrap().decode_as().unwrap();
    assert_eq!(list.len(), 1);

    let itavs = genm(&pki, "keytypes", Some("device"), "signKeyPairTypes").await;
    assert_eq!(itavs[0].oid, oids::IT_SIGN_KEY_PAIR_TYPES);

    // An InfoType pkiplane does not know is listed back as unsupported.
    let itavs = genm(&pki, "unknown", None, "preferredSymmAlg").await;
    assert_eq!(itavs[0].oid, oids::IT_UNSUPPORTED_OIDS);
    let _ = x509_cert02::Certificate::from_der;
}

fn asn1parse(pki: &Pki, der: &[u8]) -> String {
    let path = pki.path("asn1.der");
    std::fs::write(&path, der).unwrap();
    String::from_utf8_lossy(&openssl_ok(&["asn1parse", "-inform", "DER", "-in", p(&path)]).stdout).into_owned()
}
