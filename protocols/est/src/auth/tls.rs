//! TLS client certificate authentication (RFC 7030 section 3.3.2): the chain the TLS layer
//! received ([`TlsPeer`], unvalidated there) is validated here with `rustls-webpki` for
//! client authentication at the current time, against the endpoint's trust anchors (an
//! Issuer's chain or a Secret's `ca.crt`, e.g. the manufacturer's IDevID root) and the
//! CAs behind the endpoint's profiles (for re-enrollment with a certificate pkiplane
//! issued). Certificates pkiplane issued are then looked up in the inventory: a revoked
//! one is refused even though its chain is fine.

use std::collections::BTreeMap;

use pkiplane_core::inventory::CertStatus;
use pkiplane_core::model::TlsPeer;
use pkiplane_core::x509::San;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::names::{format_dn, name_attributes};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_cert::ext::pkix::SubjectAltName;

use super::ClientCert;
use crate::EstState;
use crate::error::EstError;

/// Longest client chain accepted (leaf plus intermediates).
const MAX_CHAIN: usize = 8;

/// One set of trust anchors and where it came from.
struct AnchorSet {
    anchors: Vec<Vec<u8>>,
    source: String,
}

fn anchor_sets(state: &EstState) -> Vec<AnchorSet> {
    let mut sets = Vec::new();
    if let Some(cc) = &state.config.client_certs {
        sets.push(AnchorSet { anchors: cc.anchors.clone(), source: cc.source.clone() });
    }
    let mut seen = Vec::new();
    for p in &state.config.profiles {
        let Some(profile) = state.ca.profile(&p.profile) else { continue };
        if seen.contains(&profile.issuer) {
            continue;
        }
        if let Some(issuer) = state.ca.issuer(&profile.issuer) {
            sets.push(AnchorSet { anchors: vec![issuer.cert.der.clone()], source: format!("Issuer {}", issuer.id) });
        }
        seen.push(profile.issuer.clone());
    }
    sets
}

/// Validates the client's chain; see the module documentation.
pub async fn verify(state: &EstState, peer: &TlsPeer) -> Result<ClientCert, EstError> {
    if peer.chain_der.len() > MAX_CHAIN {
        return Err(EstError::forbidden(format!("the client certificate chain is longer than {MAX_CHAIN}")));
    }
    let leaf_der = &peer.chain_der[0];
    let info = CertInfo::from_der(leaf_der)
        .map_err(|e| EstError::forbidden(format!("the TLS client certificate cannot be parsed: {e}")))?;
    let subject = format_dn(&info.subject);
    let leaf = CertificateDer::from(leaf_der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| EstError::forbidden(format!("the TLS client certificate `{subject}` is malformed: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> =
        peer.chain_der[1..].iter().map(|d| CertificateDer::from(d.as_slice())).collect();
    let now = UnixTime::now();
    let mut last_error = None;
    let mut trusted_by = None;
    let sets = anchor_sets(state);
    for set in &sets {
        let ders: Vec<CertificateDer<'_>> = set.anchors.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
        let anchors: Vec<_> = ders.iter().filter_map(|d| webpki::anchor_from_trusted_cert(d).ok()).collect();
        match ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ) {
            Ok(_) => {
                trusted_by = Some(set.source.clone());
                break;
            }
            Err(e) => {
                // Keep the most telling error: one about the certificate itself (expired,
                // wrong usage) beats "unknown issuer" from another anchor set.
                let specific = !matches!(e, webpki::Error::UnknownIssuer);
                if specific || last_error.is_none() {
                    last_error = Some(e);
                }
            }
        }
    }
    let Some(trusted_by) = trusted_by else {
        let trusted: Vec<&str> = sets.iter().map(|s| s.source.as_str()).collect();
        return Err(EstError::forbidden(match last_error {
            Some(webpki::Error::CertExpired { .. }) => {
                format!("the TLS client certificate `{subject}` (serial {}) has expired", info.serial_hex)
            }
            Some(webpki::Error::CertNotValidYet { .. }) => {
                format!("the TLS client certificate `{subject}` (serial {}) is not valid yet", info.serial_hex)
            }
            Some(webpki::Error::UnknownIssuer) | None => format!(
                "the TLS client certificate `{subject}` was not issued by a trusted CA (trusted: {})",
                if trusted.is_empty() { "none".to_owned() } else { trusted.join(", ") }
            ),
            Some(e) => {
                format!("the TLS client certificate `{subject}` is not acceptable for client authentication: {e}")
            }
        }));
    };

    let record = state
        .ca
        .find_serial(&info.serial_hex)
        .await
        .map_err(|e| EstError::Unavailable {
            message: format!("the inventory is unavailable: {e}"),
            retry_after: state.config.limits.retry_after_unavailable,
        })?
        .into_iter()
        .find(|r| r.der.as_deref() == Some(leaf_der.as_slice()));
    if let Some(r) = &record {
        match r.status {
            CertStatus::Issued => {}
            CertStatus::Revoked => {
                return Err(EstError::forbidden(format!(
                    "the TLS client certificate `{subject}` (serial {}) is revoked",
                    info.serial_hex
                )));
            }
            other => {
                return Err(EstError::forbidden(format!(
                    "the TLS client certificate (serial {}) is {} in the inventory",
                    info.serial_hex,
                    other.as_str()
                )));
            }
        }
    }
    let sans = sans_of(&info);
    Ok(ClientCert { info, sans, record, trusted_by })
}

/// The SANs of a certificate pkiplane can express (others are ignored).
pub fn sans_of(info: &CertInfo) -> Vec<San> {
    use der::Decode;
    info.extensions
        .iter()
        .filter(|e| e.extn_id == pkiplane_core::x509::extensions::SUBJECT_ALT_NAME_OID)
        .filter_map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
        .flat_map(|s| s.0.into_iter())
        .filter_map(|gn| San::from_general_name(&gn).ok())
        .collect()
}

/// Claim name for a subject attribute: `tls.subject.cn`, `tls.subject.serialNumber`...
fn attribute_claim(short: &str) -> String {
    if short.chars().all(|c| c.is_ascii_uppercase()) {
        format!("tls.subject.{}", short.to_ascii_lowercase())
    } else {
        format!("tls.subject.{short}")
    }
}

/// What a validated client certificate proves, as requester claims:
///
/// - `serialNumber`: the device serial (subject serialNumber, IEEE 802.1AR);
/// - `tls.subject`, `tls.issuer`: the DNs; `tls.serial`: the certificate serial (hex);
/// - `tls.subject.<attr>` per subject attribute (`cn`, `o`, `ou`, `serialNumber`, ...;
///   repeated attributes joined with `,`);
/// - `tls.san.dns`, `tls.san.ip`, `tls.san.uri`, `tls.san.email`: SANs joined with `,`;
/// - `tls.trust`: which trust anchors it chained to.
pub fn claims(c: &ClientCert, out: &mut BTreeMap<String, String>) {
    out.insert("tls.subject".into(), format_dn(&c.info.subject));
    out.insert("tls.issuer".into(), format_dn(&c.info.issuer));
    out.insert("tls.serial".into(), c.info.serial_hex.clone());
    out.insert("tls.trust".into(), c.trusted_by.clone());
    for a in name_attributes(&c.info.subject).unwrap_or_default() {
        let Some(attr) = a.attribute else { continue };
        let key = attribute_claim(attr.short_name());
        out.entry(key).and_modify(|v| *v = format!("{v},{}", a.value)).or_insert(a.value.clone());
        if attr == pkiplane_core::x509::names::SubjectAttribute::SerialNumber {
            out.insert("serialNumber".into(), a.value);
        }
    }
    for s in &c.sans {
        let key = format!("tls.san.{}", s.kind().as_str().to_ascii_lowercase());
        let value = s.value();
        out.entry(key).and_modify(|v| *v = format!("{v},{value}")).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names() {
        assert_eq!(attribute_claim("CN"), "tls.subject.cn");
        assert_eq!(attribute_claim("serialNumber"), "tls.subject.serialNumber");
    }
}
