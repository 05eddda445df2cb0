//! The one internal error of the CMP server and its mapping to PKIStatusInfo: every
//! refusal carries the PKIFailureInfo bits that say why (RFC 9810 section 5.2.3) and
//! readable statusString lines; policy denials name the profile rules that denied.

use std::fmt;

use pkiplane_core::CoreError;
use pkiplane_core::logsafe::hide;
use pkiplane_core::x509::csr::CsrError;

use crate::wire::{FailBit, FailInfo};

/// A refusal, in CMP terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmpError {
    pub fail: FailInfo,
    /// statusString lines: what went wrong, then details (e.g. one per policy rule).
    pub text: Vec<String>,
}

impl fmt::Display for CmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.fail.names().join(","), self.text.join("; "))
    }
}

impl std::error::Error for CmpError {}

impl CmpError {
    pub fn new(bit: FailBit, message: impl Into<String>) -> Self {
        Self { fail: FailInfo::of(bit), text: vec![message.into()] }
    }

    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadRequest, m)
    }

    pub fn bad_data_format(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadDataFormat, m)
    }

    pub fn bad_alg(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadAlg, m)
    }

    pub fn bad_message_check(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadMessageCheck, m)
    }

    pub fn bad_pop(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadPop, m)
    }

    pub fn bad_cert_template(m: impl Into<String>) -> Self {
        Self::new(FailBit::BadCertTemplate, m)
    }

    pub fn not_authorized(m: impl Into<String>) -> Self {
        Self::new(FailBit::NotAuthorized, m)
    }

    pub fn signer_not_trusted(m: impl Into<String>) -> Self {
        Self::new(FailBit::SignerNotTrusted, m)
    }

    pub fn system_unavail(m: impl Into<String>) -> Self {
        Self::new(FailBit::SystemUnavail, m)
    }

    pub fn system_failure(m: impl Into<String>) -> Self {
        Self::new(FailBit::SystemFailure, m)
    }

    /// A store failure: the request may succeed later. The client gets a request id, the
    /// log line with that id the store's error.
    pub fn store(e: &pkiplane_core::inventory::StoreError) -> Self {
        match e {
            pkiplane_core::inventory::StoreError::Unavailable { .. } => {
                Self::system_unavail(hide("CMP", "the server's state store is unavailable; try again later", e))
            }
            _ => Self::system_failure(hide("CMP", "internal error", e)),
        }
    }

    /// Maps a core error (issuance, revocation, CRLs) to failure bits.
    pub fn from_core(e: &CoreError) -> Self {
        match e {
            CoreError::Csr(c) => Self::from_csr(c),
            CoreError::Denied { profile, violations } => {
                let mut fail = FailInfo::default();
                for v in violations {
                    fail = fail.with(if v.rule.starts_with("requesters") {
                        FailBit::NotAuthorized
                    } else if v.rule.starts_with("csrExtensions") {
                        FailBit::UnacceptedExtension
                    } else {
                        FailBit::BadCertTemplate
                    });
                }
                let mut text = vec![format!("denied by profile {profile}")];
                text.extend(violations.iter().map(|v| v.to_string()));
                Self { fail, text }
            }
            CoreError::UnknownProfile(p) => Self::system_unavail(format!("profile {p} is not loaded")),
            CoreError::IssuerUnavailable(..) => {
                Self::system_unavail(hide("CMP", "the issuer is not ready; try again later", e))
            }
            CoreError::Store(s) => Self::store(s),
            CoreError::Signing(_) => Self::system_failure(hide("CMP", "internal error", e)),
            CoreError::NotFound(what) => Self::new(FailBit::BadCertId, format!("not found: {what}")),
            CoreError::Approval(a) => Self::bad_request(a.to_string()),
        }
    }

    fn from_csr(e: &CsrError) -> Self {
        let bit = match e {
            CsrError::BadSignature => FailBit::BadPop,
            CsrError::UnsupportedSignatureAlgorithm(_)
            | CsrError::WeakSignatureAlgorithm(_)
            | CsrError::UnsupportedKey(_) => FailBit::BadAlg,
            CsrError::TooLarge(_) | CsrError::Pem(_) | CsrError::Der(_) => FailBit::BadDataFormat,
            CsrError::DuplicateExtension(_) | CsrError::MalformedExtension(..) | CsrError::BadSubject(_) => {
                FailBit::BadCertTemplate
            }
        };
        Self::new(bit, e.to_string())
    }
}

impl From<der::Error> for CmpError {
    fn from(e: der::Error) -> Self {
        Self::bad_data_format(format!("malformed ASN.1: {e}"))
    }
}

impl From<crate::convert::ConvertError> for CmpError {
    fn from(e: crate::convert::ConvertError) -> Self {
        Self::bad_data_format(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkiplane_core::ObjectRef;
    use pkiplane_core::policy::Violation;

    #[test]
    fn server_side_failures_tell_a_request_id_not_the_detail() {
        let unready =
            CoreError::IssuerUnavailable(ObjectRef::new("pki", "int"), "key file /etc/secret unreadable".into());
        let store = CoreError::Store(pkiplane_core::inventory::StoreError::unavailable("disk /var/db full"));
        for (e, bit) in [(unready, FailBit::SystemUnavail), (store, FailBit::SystemUnavail)] {
            let cmp = CmpError::from_core(&e);
            assert_eq!(cmp.fail, FailInfo::of(bit));
            let text = cmp.text.join(" ");
            assert!(text.contains("(request id "), "{text}");
            assert!(!text.contains("/etc/secret") && !text.contains("/var/db"), "{text}");
        }
    }

    #[test]
    fn denials_name_rules_and_map_bits() {
        let e = CoreError::Denied {
            profile: ObjectRef::new("pki", "tls"),
            violations: vec![
                Violation::new("subjectAltNames.dns.suffixes", "bad.example is not allowed"),
                Violation::new("requesters.protocols", "CMP may not use this profile"),
            ],
        };
        let c = CmpError::from_core(&e);
        assert_eq!(c.fail.names(), ["badCertTemplate", "notAuthorized"]);
        assert!(c.text[1].starts_with("subjectAltNames.dns.suffixes:"), "{:?}", c.text);
        assert_eq!(CmpError::from_core(&CoreError::Csr(CsrError::BadSignature)).fail, FailInfo::of(FailBit::BadPop));
    }
}
