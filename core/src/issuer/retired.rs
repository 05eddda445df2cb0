//! Retired CA keys: a CA key replaced by a rollover (or an intermediate re-issued under a
//! new parent key) has certificates in use until the last of them expires. RFC 5280
//! section 3.3 expects their revocation to stay published until then, so the retired key
//! is kept ([`CaMaterialStore::save_retired_ca`]) and goes on signing a CRL and OCSP
//! answers for them; once the last of its certificates has expired it is forgotten. Its
//! certificates are those the inventory recorded before it was retired and, for a parent
//! key, the CA certificates it signed that the CA still holds
//! ([`crate::issuance::Ca::latest_ca_cert_signed_by`]).
//!
//! [`CaMaterialStore::save_retired_ca`]: crate::inventory::CaMaterialStore::save_retired_ca
//!
//! Every CRL of an Issuer, whichever of its keys signs it, lists every revoked and
//! unexpired certificate of that Issuer: the keys share the CA's name, and a CRL's scope
//! is the certificates of the CA it names (RFC 5280 sections 5 and 6.3.3, with the CRL's
//! authorityKeyIdentifier telling the keys apart, section 5.2.1).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use super::Issuer;
use crate::inventory::{StoredCaMaterial, StoredRetiredCa};
use crate::keys::{CaSigner, KeyAlgorithm, PublicKeyInfo, SecretKey, key_matches_spki};
use crate::x509::cert::CertInfo;
use crate::x509::extensions::key_identifier;

/// Certificates recorded up to this long after a key was retired may still be its own: an
/// issuance that took the key just before the switch records its certificate right after.
pub const RETIREMENT_SLACK: Duration = Duration::from_secs(60);
/// A retired key is kept at least this long, whatever the inventory says.
pub const MIN_RETENTION: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
#[error("retired CA key {key_id}: {reason}")]
pub struct RetiredCaError {
    pub key_id: String,
    pub reason: String,
}

/// A retired CA key, ready to sign CRLs and OCSP answers (never certificates).
pub struct RetiredCa {
    pub cert: CertInfo,
    signer: CaSigner,
    pub key_id: Vec<u8>,
    pub retired_at: SystemTime,
}

impl std::fmt::Debug for RetiredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetiredCa")
            .field("key_id", &hex::encode(&self.key_id))
            .field("not_after", &self.cert.not_after)
            .field("retired_at", &self.retired_at)
            .field("signer", &self.signer)
            .finish()
    }
}

/// The key algorithm of a public key pkiplane can sign with.
pub fn key_algorithm_of(spki_der: &[u8]) -> Option<KeyAlgorithm> {
    let info = PublicKeyInfo::from_spki(&SubjectPublicKeyInfoRef::from_der(spki_der).ok()?);
    KeyAlgorithm::ALL.into_iter().find(|a| a.public_info() == info)
}

/// The key identifier certificates signed under `cert` carry: its subjectKeyIdentifier, or
/// the identifier pkiplane derives from the key.
pub fn key_id_of(cert: &CertInfo) -> Vec<u8> {
    cert.subject_key_id.clone().unwrap_or_else(|| key_identifier(cert.spki.subject_public_key.raw_bytes()))
}

impl RetiredCa {
    /// Loads a stored retired key, checking that key and certificate belong together.
    pub fn from_stored(stored: &StoredRetiredCa) -> Result<Self, RetiredCaError> {
        let err = |reason: String| RetiredCaError { key_id: hex::encode(&stored.key_id), reason };
        let cert = CertInfo::from_der(&stored.certificate_der).map_err(|e| err(format!("certificate: {e}")))?;
        let algorithm = key_algorithm_of(&cert.spki_der).ok_or_else(|| err("unsupported key algorithm".into()))?;
        let key = SecretKey::from_pkcs8(algorithm, stored.private_key_pkcs8.to_vec());
        if !key_matches_spki(&key, &cert.spki_der) {
            return Err(err("the key does not match the certificate".into()));
        }
        let signer = CaSigner::new(&key).map_err(|e| err(e.to_string()))?;
        Ok(Self { key_id: stored.key_id.clone(), cert, signer, retired_at: stored.retired_at })
    }

    pub fn signer(&self) -> &CaSigner {
        &self.signer
    }

    /// Whether the key can be forgotten at `now`, given the latest notAfter of the
    /// certificates recorded before it was retired (see [`RETIREMENT_SLACK`]).
    pub fn can_forget(&self, latest_not_after: Option<SystemTime>, now: SystemTime) -> bool {
        if now < self.retired_at + MIN_RETENTION {
            return false;
        }
        // No certificate outlives the CA certificate that signed it (policy caps validity
        // at the issuer's notAfter), so past it nothing is left to answer for.
        now >= self.cert.not_after || latest_not_after.is_none_or(|t| t <= now)
    }

    /// The time up to which certificates recorded may have been signed by this key.
    pub fn recorded_by(&self) -> SystemTime {
        self.retired_at + RETIREMENT_SLACK
    }
}

/// What is kept of `material` (the CA material being replaced) once it is retired at `now`.
pub fn retire(material: &StoredCaMaterial, now: SystemTime) -> Result<StoredRetiredCa, der::Error> {
    let cert = CertInfo::from_der(&material.certificate_der)?;
    Ok(StoredRetiredCa {
        key_id: key_id_of(&cert),
        certificate_der: material.certificate_der.clone(),
        private_key_pkcs8: material.private_key_pkcs8.clone(),
        retired_at: now,
    })
}

/// One signing key of an Issuer: the current one or a retired one. CRLs and OCSP answers
/// are signed per key.
#[derive(Clone, Debug)]
pub enum CaKey {
    Current(Arc<Issuer>),
    Retired(Arc<RetiredCa>),
}

impl CaKey {
    pub fn cert(&self) -> &CertInfo {
        match self {
            CaKey::Current(i) => &i.cert,
            CaKey::Retired(r) => &r.cert,
        }
    }

    pub fn signer(&self) -> &CaSigner {
        match self {
            CaKey::Current(i) => i.signer(),
            CaKey::Retired(r) => r.signer(),
        }
    }

    pub fn key_id(&self) -> &[u8] {
        match self {
            CaKey::Current(i) => &i.key_id,
            CaKey::Retired(r) => &r.key_id,
        }
    }

    pub fn is_current(&self) -> bool {
        matches!(self, CaKey::Current(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::{CaParams, IssuerConfig, IssuerSource, NameConstraintsConfig};
    use crate::model::ObjectRef;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A 30-day root made at `now`, retired at `retired_at`.
    fn stored(now: SystemTime, retired_at: SystemTime) -> StoredRetiredCa {
        let cfg = IssuerConfig {
            id: ObjectRef::new("pki", "root"),
            source: IssuerSource::SelfSigned(CaParams {
                subject: "CN=Retired Root".into(),
                key: KeyAlgorithm::EcdsaP256,
                validity: 30 * DAY,
                path_len: None,
                name_constraints: NameConstraintsConfig::default(),
                renew_before: None,
            }),
            crl_validity: DAY,
        };
        let (issuer, material) = Issuer::create(&cfg, None, now).unwrap();
        let stored = retire(&material, retired_at).unwrap();
        assert_eq!(stored.key_id, issuer.key_id);
        stored
    }

    #[test]
    fn kept_while_a_certificate_it_signed_is_valid_and_at_least_a_day() {
        let now = SystemTime::now();
        let key = RetiredCa::from_stored(&stored(now, now)).unwrap();
        assert_eq!(key.recorded_by(), now + RETIREMENT_SLACK);
        assert!(!key.can_forget(None, now + DAY / 2), "the minimum retention");
        assert!(key.can_forget(None, now + DAY), "nothing was ever issued");
        assert!(!key.can_forget(Some(now + 5 * DAY), now + 2 * DAY), "a certificate is still valid");
        assert!(key.can_forget(Some(now + 5 * DAY), now + 5 * DAY), "the last one has expired");
        // Past the CA certificate's own end nothing it signed is valid, whatever is recorded.
        assert!(key.can_forget(Some(now + 90 * DAY), now + 31 * DAY));
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused() {
        let now = SystemTime::now();
        let (a, b) = (stored(now, now), stored(now, now));
        let mixed = StoredRetiredCa { private_key_pkcs8: b.private_key_pkcs8, ..a };
        assert!(RetiredCa::from_stored(&mixed).unwrap_err().reason.contains("does not match"));
    }
}
