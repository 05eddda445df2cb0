//! Authenticating a request by its protection (RFC 9810 section 5.1.3, RFC 9483
//! section 3.2):
//!
//! * MAC-based (PasswordBasedMac, PBMAC1): the senderKID names a shared secret of the
//!   endpoint. An unknown senderKID and a wrong secret give the same answer
//!   (`badMessageCheck`) after the same work, so the answer does not reveal which
//!   senderKIDs exist.
//! * Signature-based: the first extraCert is the protection certificate; the header's
//!   sender must be its subject, the signature must verify over ProtectedPart, and the
//!   certificate must be trusted ([`crate::trust`]).
//!
//! Unprotected requests are refused.

use std::time::SystemTime;

use crate::state::CmpAuth;
use pkiplane_core::model::{Protocol, Requester};
use pkiplane_core::x509::names::{SubjectAttribute, format_dn};

use crate::CmpState;
use crate::convert;
use crate::error::CmpError;
use crate::protection::mac::MacProtection;
use crate::protection::sig::{self, SigError};
use crate::settings::SharedSecret;
use crate::trust::{Signer, validate_signer};
use crate::wire::{FailBit, Incoming};

/// How a request authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    Mac { kid: String, secret: SharedSecret, mac: MacProtection },
    Signature(Box<Signer>),
}

impl Auth {
    /// The requester identity recorded in the inventory: the senderKID, or the signer's
    /// subject.
    pub fn identity(&self) -> String {
        match self {
            Auth::Mac { kid, .. } => kid.clone(),
            Auth::Signature(s) => format_dn(&s.cert.subject),
        }
    }

    /// What the store remembers to require the same credential for the rest of the
    /// transaction.
    pub fn record(&self) -> CmpAuth {
        match self {
            Auth::Mac { kid, .. } => CmpAuth::Mac { kid: kid.clone() },
            Auth::Signature(s) => CmpAuth::Signature { cert_sha256: s.sha256.clone() },
        }
    }

    /// The signer is a registration authority (may assert raVerified).
    pub fn is_ra(&self) -> bool {
        matches!(self, Auth::Signature(s) if s.is_ra)
    }

    pub fn signer(&self) -> Option<&Signer> {
        match self {
            Auth::Signature(s) => Some(s),
            Auth::Mac { .. } => None,
        }
    }

    /// The requester handed to the CA, with what authentication proved as claims:
    /// `cmp.protection`, `cmp.senderKID` or `cmp.signer` / `cmp.signerIssuer` /
    /// `cmp.signerSerial`, and for a certificate from an external trust anchor (an
    /// IDevID) its subject `serialNumber`.
    pub fn requester(&self, state: &CmpState) -> Requester {
        let mut r = Requester::new(Protocol::Cmp, self.identity()).at_endpoint(state.config().endpoint.clone());
        match self {
            Auth::Mac { kid, .. } => {
                r = r.with_claim("cmp.protection", "mac").with_claim("cmp.senderKID", kid.clone());
            }
            Auth::Signature(s) => {
                r = r
                    .with_claim("cmp.protection", "signature")
                    .with_claim("cmp.signer", format_dn(&s.cert.subject))
                    .with_claim("cmp.signerIssuer", format_dn(&s.cert.issuer))
                    .with_claim("cmp.signerSerial", s.cert.serial_hex.clone());
                if s.own.is_none() {
                    r = r.with_claim("cmp.trustAnchor", "external");
                    let serial = pkiplane_core::x509::names::name_attributes(&s.cert.subject)
                        .ok()
                        .and_then(|a| a.into_iter().find(|a| a.attribute == Some(SubjectAttribute::SerialNumber)));
                    if let Some(a) = serial {
                        r = r.with_claim("serialNumber", a.value);
                    }
                }
            }
        }
        r
    }
}

/// A secret no senderKID has, for the same work on unknown senderKIDs.
const DECOY: &[u8] = b"pkiplane-cmp unknown senderKID decoy secret";

/// Authenticates `msg` (protection and protection certificate).
pub async fn authenticate(state: &CmpState, msg: &Incoming, now: SystemTime) -> Result<Auth, CmpError> {
    let (Some(alg), Some(protection)) = (&msg.header.protection_alg, &msg.protection) else {
        return Err(CmpError::bad_message_check(
            "the request is not protected; use MAC-based protection with a shared secret or a signature",
        ));
    };
    if MacProtection::is_mac(alg) {
        let mac = MacProtection::from_algorithm(alg, state.config().mac_limits)?;
        let kid = msg.header.sender_kid.as_deref().map(|k| String::from_utf8_lossy(k).into_owned());
        let secret = kid.as_ref().and_then(|k| state.config().shared_secrets.get(k));
        let ok = mac.verify(secret.map(|s| s.0.as_slice()).unwrap_or(DECOY), &msg.protected_part, protection);
        return match (kid, secret, ok) {
            (Some(kid), Some(secret), true) => Ok(Auth::Mac { kid, secret: secret.clone(), mac }),
            _ => Err(CmpError::bad_message_check(
                "MAC-based protection does not verify (unknown senderKID or wrong shared secret)",
            )),
        };
    }
    let Some(cert) = msg.extra_certs.first() else {
        // OpenSSL leaves a self-signed protection certificate out of extraCerts; no
        // certificate is known by senderKID alone, so the signer cannot be trusted.
        return Err(CmpError::signer_not_trusted(
            "the protection certificate is not the first extraCert, and no other is known for this sender",
        ));
    };
    let info = pkiplane_core::x509::cert::CertInfo::from_der(cert)
        .map_err(|e| CmpError::bad_data_format(format!("protection certificate: {e}")))?;
    match sig::verify(alg, &info.spki_der, &msg.protected_part, protection) {
        Ok(()) => {}
        Err(SigError::Invalid) => return Err(CmpError::bad_message_check("the protection signature does not verify")),
        Err(SigError::Unsupported(m)) => return Err(CmpError::bad_alg(format!("protection: {m}"))),
        Err(SigError::BadKey(m)) => {
            return Err(CmpError::bad_message_check(format!("protection certificate key: {m}")));
        }
    }
    if convert::general_name_dn(&msg.header.sender).as_ref() != Some(&info.subject) {
        return Err(CmpError::new(
            FailBit::BadMessageCheck,
            format!(
                "the sender `{}` is not the subject of the protection certificate `{}`",
                convert::describe_general_name(&msg.header.sender),
                format_dn(&info.subject)
            ),
        ));
    }
    let signer = validate_signer(state, cert, &msg.extra_certs[1..], now).await?;
    Ok(Auth::Signature(Box::new(signer)))
}

/// Whether `auth` is the credential a transaction began with.
pub fn same_credential(auth: &Auth, recorded: &CmpAuth) -> bool {
    &auth.record() == recorded
}
