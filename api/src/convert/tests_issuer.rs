use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::core::ObjectMeta;
use pkiplane_core::ObjectRef;
use pkiplane_core::issuer::{IssuerConfig, IssuerSource};
use pkiplane_core::keys::KeyAlgorithm;
use pkiplane_core::x509::pem;

use super::*;
use crate::v1alpha1::Issuer;

const YEAR: u64 = 365 * 86_400;

fn issuer(yaml: &str) -> Issuer {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("test issuer does not parse: {e}"))
}

fn convert(yaml: &str, secrets: &[Secret]) -> Result<IssuerConfig, Vec<FieldError>> {
    issuer_from_resource(&issuer(yaml), secrets)
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

fn cert(n: u8) -> String {
    pem::encode("CERTIFICATE", &[0x30, 0x03, 0x02, 0x01, n])
}

fn secret(name: &str, entries: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some("pki".into()), ..Default::default() },
        data: Some(entries.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
        ..Default::default()
    }
}

#[test]
fn root_gets_defaults() {
    let c =
        convert("metadata: {name: root, namespace: pki}\nspec: {selfSigned: {}, subject: 'CN=Root,O=Example'}", &[])
            .unwrap();
    assert_eq!(c.id, ObjectRef::new("pki", "root"));
    assert_eq!(c.crl_validity, Duration::from_secs(86_400));
    let IssuerSource::SelfSigned(p) = c.source else { panic!("expected a root") };
    assert_eq!(p.subject, "CN=Root,O=Example");
    assert_eq!(p.key, KeyAlgorithm::EcdsaP256);
    assert_eq!(p.validity, Duration::from_secs(10 * YEAR));
    assert_eq!(p.path_len, None);
    assert!(p.name_constraints.is_empty());
}

#[test]
fn intermediate_with_name_constraints() {
    let c = convert(
        r#"
metadata: {name: int, namespace: pki}
spec:
  parentRef: {name: root}
  subject: CN=Intermediate
  keyAlgorithm: RSA-3072
  pathLen: 0
  crl: {validity: 12h}
  renewBefore: 1y
  nameConstraints:
    permittedDNSDomains: [Example.com, .internal]
    excludedDNSDomains: [secret.example.com]
    permittedIPRanges: [10.0.0.0/8, "::1/128"]
    permittedEmailAddresses: [pki@example.com, .example.com]
    permittedURIDomains: [example.org]
"#,
        &[],
    )
    .unwrap();
    assert_eq!(c.crl_validity, Duration::from_secs(12 * 3600));
    let IssuerSource::Intermediate { parent, params } = c.source else { panic!("expected an intermediate") };
    assert_eq!(parent, ObjectRef::new("pki", "root"));
    assert_eq!(params.key, KeyAlgorithm::Rsa3072);
    assert_eq!(params.validity, Duration::from_secs(5 * YEAR));
    assert_eq!(params.path_len, Some(0));
    let nc = &params.name_constraints;
    assert_eq!(nc.permitted_dns, ["example.com", ".internal"]);
    assert_eq!(nc.excluded_dns, ["secret.example.com"]);
    assert_eq!(nc.permitted_ip.len(), 2);
    assert_eq!(nc.permitted_email, ["pki@example.com", ".example.com"]);
    assert_eq!(nc.permitted_uri, ["example.org"]);
}

#[test]
fn issuer_errors_are_collected() {
    let errors = convert(
        r#"
metadata: {name: bad}
spec:
  selfSigned: {}
  parentRef: {name: bad}
  subject: "CN=x,Foo=bar"
  validity: 10q
  pathLen: 300
  renewBefore: 0s
  crl: {validity: 0h}
  nameConstraints:
    permittedDNSDomains: ["*.example.com"]
    permittedIPRanges: [10.0.0.1]
    excludedEmailAddresses: ["@example.com"]
"#,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        paths(&errors),
        [
            "spec",
            "spec.crl.validity",
            "spec.parentRef.name",
            "spec.subject",
            "spec.validity",
            "spec.pathLen",
            "spec.renewBefore",
            "spec.nameConstraints.permittedDNSDomains[0]",
            "spec.nameConstraints.permittedIPRanges[0]",
            "spec.nameConstraints.excludedEmailAddresses[0]",
        ],
        "{}",
        FieldError::join(&errors)
    );
    assert!(errors[2].message.contains("cannot sign its own certificate"));
    assert!(errors[8].message.contains("write 10.0.0.1/32"));
}

#[test]
fn subject_is_required_and_renew_before_bounded() {
    let errors =
        convert("metadata: {name: r}\nspec: {selfSigned: {}, validity: 1y, renewBefore: 2y}", &[]).unwrap_err();
    assert_eq!(paths(&errors), ["spec.subject", "spec.renewBefore"]);
    let errors = convert("metadata: {name: r}\nspec: {}", &[]).unwrap_err();
    assert_eq!(paths(&errors), ["spec", "spec.subject"]);
}

const IMPORTED: &str = "metadata: {name: imp, namespace: pki}\nspec: {secretRef: {name: ca-secret}}";

#[test]
fn imported_ca_reads_the_secret() {
    let key = pem::encode("PRIVATE KEY", &[0x30, 0x00]);
    let tls_crt = format!("{}{}", cert(1), cert(2));
    let ca_crt = format!("{}{}", cert(2), cert(3));
    let secrets = [secret("ca-secret", &[("tls.crt", &tls_crt), ("tls.key", &key), ("ca.crt", &ca_crt)])];
    let c = convert(IMPORTED, &secrets).unwrap();
    let IssuerSource::Imported(m) = c.source else { panic!("expected an imported CA") };
    assert_eq!(m.certificate_pem, cert(1));
    assert_eq!(m.chain_pem, format!("{}{}", cert(2), cert(3)), "tls.crt's chain first, ca.crt de-duplicated");
    assert_eq!(m.private_key_pem.as_str(), key);
    assert!(!format!("{m:?}").contains("PRIVATE"), "the key is never printed");
    // Admission checks work without the Secret.
    check_issuer(&issuer(IMPORTED)).unwrap();
}

#[test]
fn imported_ca_problems() {
    let errors = convert(IMPORTED, &[]).unwrap_err();
    assert_eq!(paths(&errors), ["spec.secretRef.name"]);
    assert!(errors[0].message.contains("Secret pki/ca-secret not found"));

    let no_key = [secret("ca-secret", &[("tls.crt", &cert(1))])];
    let errors = convert(IMPORTED, &no_key).unwrap_err();
    assert!(errors[0].message.contains("no key `tls.key`"), "{}", errors[0]);

    let encrypted = pem::encode("ENCRYPTED PRIVATE KEY", &[0x30, 0x00]);
    let enc = [secret("ca-secret", &[("tls.crt", &cert(1)), ("tls.key", &encrypted)])];
    let errors = convert(IMPORTED, &enc).unwrap_err();
    assert!(errors[0].message.contains("encrypted"), "{}", errors[0]);

    let wrong = [secret(
        "ca-secret",
        &[("tls.crt", "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n")],
    )];
    let errors = convert(IMPORTED, &wrong).unwrap_err();
    assert!(errors[0].message.contains("tls.crt"), "{}", errors[0]);

    let errors = convert(
        "metadata: {name: imp, namespace: pki}\nspec: {secretRef: {name: ca-secret}, subject: CN=x, pathLen: 1}",
        &[],
    )
    .unwrap_err();
    assert_eq!(paths(&errors), ["spec.subject", "spec.pathLen", "spec.secretRef.name"]);
}
