//! tls-alpn-01 (RFC 8737): a TLS handshake to the name with SNI set to it and ALPN
//! `acme-tls/1` must present a certificate whose only subjectAltName is that name and
//! whose critical acmeIdentifier extension holds SHA-256 of the key authorization.
//!
//! The connection goes to the name's addresses that the endpoint's target ranges allow
//! ([`super::target`], checked on the address dialed); only a handshake happens, bounded
//! by the attempt timeout and rustls' message limits, and a failure never quotes the
//! names of the certificate presented.

use std::sync::Arc;

use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::OctetString;
use tokio_rustls::TlsConnector;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::{connect, resolve, tls};
use crate::AcmeState;
use crate::problem::{AcmeError, ProblemType};

pub const ALPN: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier (RFC 8737 section 6.1).
pub const ACME_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

pub async fn validate(state: &AcmeState, name: &str, key_authorization: &str) -> Result<(), AcmeError> {
    let port = state.config.tls_alpn01_port;
    let addrs = resolve(state, name, port).await?;
    let tcp = connect(&addrs, &state.config.validation).await?;
    let config = tls::permissive_client(&[ALPN]).map_err(|e| AcmeError::internal(e.to_string()))?;
    let server_name = tls::server_name(name)
        .ok_or_else(|| AcmeError::new(ProblemType::Tls, format!("`{name}` is not a TLS server name")))?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| AcmeError::new(ProblemType::Tls, format!("TLS handshake with {name}:{port}: {e}")))?;
    let (_, conn) = stream.get_ref();
    if conn.alpn_protocol() != Some(ALPN) {
        return Err(AcmeError::unauthorized(format!("{name}:{port} did not negotiate the acme-tls/1 protocol")));
    }
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| AcmeError::new(ProblemType::Tls, format!("{name}:{port} presented no certificate")))?;
    check_certificate(cert.as_ref(), name, key_authorization)
}

/// Checks the validation certificate (RFC 8737 section 3).
pub fn check_certificate(der: &[u8], name: &str, key_authorization: &str) -> Result<(), AcmeError> {
    let cert = Certificate::from_der(der)
        .map_err(|e| AcmeError::new(ProblemType::Tls, format!("the certificate does not parse: {e}")))?;
    let exts = cert.tbs_certificate().extensions().map(|e| e.as_slice()).unwrap_or_default();
    let san = exts
        .iter()
        .find(|e| e.extn_id == SUBJECT_ALT_NAME)
        .ok_or_else(|| AcmeError::unauthorized("the validation certificate has no subjectAltName"))?;
    let names = SubjectAltName::from_der(san.extn_value.as_bytes())
        .map_err(|e| AcmeError::unauthorized(format!("the subjectAltName does not parse: {e}")))?;
    // The names are not quoted: the certificate may come from a service the client
    // cannot reach.
    let only_name = match names.0.as_slice() {
        [GeneralName::DnsName(d)] => d.as_str().eq_ignore_ascii_case(name),
        _ => false,
    };
    if !only_name {
        return Err(AcmeError::unauthorized(format!(
            "the validation certificate has {} subjectAltName entries; it must name exactly {name} and nothing else",
            names.0.len()
        )));
    }
    let ext = exts
        .iter()
        .find(|e| e.extn_id == ACME_IDENTIFIER)
        .ok_or_else(|| AcmeError::unauthorized("the validation certificate has no acmeIdentifier extension"))?;
    if !ext.critical {
        return Err(AcmeError::unauthorized("the acmeIdentifier extension is not marked critical"));
    }
    let digest = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|e| AcmeError::unauthorized(format!("the acmeIdentifier extension does not parse: {e}")))?;
    let expected = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let same = digest.as_bytes().len() == expected.as_ref().len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(digest.as_bytes(), expected.as_ref()));
    if same {
        Ok(())
    } else {
        Err(AcmeError::new(
            ProblemType::IncorrectResponse,
            format!(
                "the acmeIdentifier digest is {}, not SHA-256 of the key authorization",
                hex::encode(digest.as_bytes())
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str], digest: Option<(&[u8], bool)>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some((d, critical)) = digest {
            let mut ext = rcgen::CustomExtension::new_acme_identifier(d);
            ext.set_criticality(critical);
            params.custom_extensions = vec![ext];
        }
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn checks_name_critical_extension_and_digest() {
        let ka = "token.thumbprint";
        let digest = ring::digest::digest(&ring::digest::SHA256, ka.as_bytes());
        let d = digest.as_ref();
        assert!(check_certificate(&cert(&["a.example"], Some((d, true))), "a.example", ka).is_ok());
        assert!(check_certificate(&cert(&["A.Example"], Some((d, true))), "a.example", ka).is_ok());
        let e = check_certificate(&cert(&["a.example"], Some((d, true))), "a.example", "other.thumbprint").unwrap_err();
        assert_eq!(e.kind, ProblemType::IncorrectResponse);
        let e = check_certificate(&cert(&["a.example", "b.example"], Some((d, true))), "a.example", ka).unwrap_err();
        assert_eq!(e.kind, ProblemType::Unauthorized);
        let e = check_certificate(&cert(&["b.example"], Some((d, true))), "a.example", ka).unwrap_err();
        assert_eq!(e.kind, ProblemType::Unauthorized);
        let e = check_certificate(&cert(&["a.example"], None), "a.example", ka).unwrap_err();
        assert!(e.detail.contains("no acmeIdentifier"), "{}", e.detail);
        let e = check_certificate(&cert(&["a.example"], Some((d, false))), "a.example", ka).unwrap_err();
        assert!(e.detail.contains("critical"), "{}", e.detail);
        assert_eq!(check_certificate(b"junk", "a.example", ka).unwrap_err().kind, ProblemType::Tls);
    }
}
