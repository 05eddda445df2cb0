//! Creating, loading and importing CA certificates.

use std::time::{Duration, SystemTime};

use x509_cert::name::RdnSequence;

use super::import::parse_private_key_pem;
use super::{CaParams, IssuerConfig, IssuerSource, NameConstraintsConfig};
use crate::inventory::StoredCaMaterial;
use crate::keys::{CaSigner, KeyAlgorithm, SecretKey, generate_key, key_matches_spki};
use crate::model::ObjectRef;
use crate::x509::cert::{CertInfo, CertificateFields, sign_certificate};
use crate::x509::extensions::{
    authority_key_identifier, basic_constraints, key_identifier, key_usage, name_constraints, subject_key_identifier,
};
use crate::x509::names::{format_dn, parse_dn};
use crate::x509::pem;
use crate::x509::{KeyUsageBit, San};

/// How far back a new CA certificate's notBefore is set, for clock skew.
const CA_BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("issuer {0}: {1}")]
    Invalid(ObjectRef, String),
}

/// A CA ready to sign: its certificate, the chain above it, and its key.
pub struct Issuer {
    pub id: ObjectRef,
    pub cert: CertInfo,
    /// The certificates above this one, nearest first, ending with the root (empty for a root).
    pub chain: Vec<CertInfo>,
    signer: CaSigner,
    /// This CA's key identifier (authorityKeyIdentifier of what it signs).
    pub key_id: Vec<u8>,
    /// pathLenConstraint of this CA, if any.
    pub path_len: Option<u8>,
    /// Name constraints of this CA and every CA above it; a leaf must satisfy all.
    pub name_constraints: Vec<NameConstraintsConfig>,
    pub crl_validity: Duration,
    /// The staged next CA (key rollover), announced but not yet used for issuance.
    pub next: Option<super::NextCa>,
    /// The Issuer that signed this one (intermediates), to walk up to the root.
    pub parent: Option<ObjectRef>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("id", &self.id)
            .field("subject", &format_dn(&self.cert.subject))
            .field("not_after", &self.cert.not_after)
            .field("signer", &self.signer)
            .finish()
    }
}

impl Issuer {
    /// Creates a new CA for `config` (self-signed, or signed by `parent` for an
    /// intermediate) and returns it with the material to persist.
    pub fn create(
        config: &IssuerConfig,
        parent: Option<&Issuer>,
        now: SystemTime,
    ) -> Result<(Issuer, StoredCaMaterial), IssuerError> {
        let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
        let params = match (&config.source, parent) {
            (IssuerSource::SelfSigned(p), None) => p,
            (IssuerSource::Intermediate { params, .. }, Some(_)) => params,
            (IssuerSource::Intermediate { parent, .. }, None) => {
                return Err(invalid(format!("parent issuer {parent} is not available")));
            }
            (IssuerSource::SelfSigned(_), Some(_)) => return Err(invalid("a root has no parent".into())),
            (IssuerSource::Imported(_), _) => return Err(invalid("imported issuers are not created".into())),
        };
        let key = generate_key(params.key).map_err(|e| invalid(e.to_string()))?;
        let signer = CaSigner::new(&key).map_err(|e| invalid(e.to_string()))?;
        let subject = parse_dn(&params.subject).map_err(|e| invalid(format!("subject: {e}")))?;
        if subject.is_empty() {
            return Err(invalid("a CA certificate needs a subject".into()));
        }
        let key_id = key_identifier(signer.public_key_bits());
        let not_before = now - CA_BACKDATE;
        let mut not_after = now + params.validity;
        let path_len = match parent {
            Some(p) => effective_path_len(p, params).map_err(invalid)?,
            None => params.path_len,
        };
        if let Some(p) = parent {
            for outer in &p.name_constraints {
                outer.permits_subset(&params.name_constraints).map_err(|e| invalid(format!("nameConstraints: {e}")))?;
            }
            // A CA certificate never outlives the CA that signed it.
            not_after = not_after.min(p.cert.not_after);
        }
        let mut extensions = vec![
            basic_constraints(true, path_len),
            key_usage(&[KeyUsageBit::DigitalSignature, KeyUsageBit::KeyCertSign, KeyUsageBit::CrlSign]),
            subject_key_identifier(&key_id),
            authority_key_identifier(parent.map(|p| p.key_id.as_slice()).unwrap_or(&key_id)),
        ];
        if !params.name_constraints.is_empty() {
            extensions.push(name_constraints(&params.name_constraints));
        }
        let extensions =
            extensions.into_iter().collect::<der::Result<Vec<_>>>().map_err(|e| invalid(format!("extensions: {e}")))?;
        let serial = crate::issuance::random_serial();
        let issuer_name: RdnSequence = parent.map(|p| p.cert.subject.clone()).unwrap_or_else(|| subject.clone());
        let fields = CertificateFields {
            serial: &serial,
            issuer: &issuer_name,
            subject: &subject,
            not_before,
            not_after,
            spki: signer.public_key_info(),
            extensions,
        };
        let der = match parent {
            Some(p) => sign_certificate(&fields, &p.signer),
            None => sign_certificate(&fields, &signer),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let material = StoredCaMaterial {
            certificate_der: der.clone(),
            private_key_pkcs8: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
            spec_hash: config.spec_hash(),
        };
        let issuer = Self::assemble(config, &der, key, parent.map(Self::own_chain).unwrap_or_default(), parent)?;
        Ok((issuer, material))
    }

    /// Loads previously created material. Fails when it no longer fits the config (the
    /// caller then creates a new CA).
    pub fn from_material(
        config: &IssuerConfig,
        material: &StoredCaMaterial,
        parent: Option<&Issuer>,
    ) -> Result<Issuer, IssuerError> {
        let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
        if material.spec_hash != config.spec_hash() {
            return Err(invalid("stored CA material was made for a different spec".into()));
        }
        let key_alg = match &config.source {
            IssuerSource::SelfSigned(p) | IssuerSource::Intermediate { params: p, .. } => p.key,
            IssuerSource::Imported(_) => return Err(invalid("imported issuers load from their Secret".into())),
        };
        let key = SecretKey::from_pkcs8(key_alg, material.private_key_pkcs8.to_vec());
        if let Some(p) = parent {
            let info = CertInfo::from_der(&material.certificate_der).map_err(|e| invalid(e.to_string()))?;
            if info.issuer != p.cert.subject {
                return Err(invalid("stored certificate was signed by a different parent".into()));
            }
        }
        Self::assemble(config, &material.certificate_der, key, parent.map(Self::own_chain).unwrap_or_default(), parent)
    }

    /// Imports an existing CA from PEM.
    pub fn import(config: &IssuerConfig) -> Result<Issuer, IssuerError> {
        let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
        let IssuerSource::Imported(m) = &config.source else {
            return Err(invalid("not an imported issuer".into()));
        };
        let cert_der = pem::decode_one(m.certificate_pem.as_bytes(), "CERTIFICATE")
            .map_err(|e| invalid(format!("certificate (tls.crt): {e}")))?;
        let key = parse_private_key_pem(&m.private_key_pem).map_err(|e| invalid(format!("tls.key: {e}")))?;
        let chain = pem::decode_chain(m.chain_pem.as_bytes(), "CERTIFICATE")
            .map_err(|e| invalid(format!("chain (ca.crt): {e}")))?
            .iter()
            .map(|d| CertInfo::from_der(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("chain (ca.crt): {e}")))?;
        // A ca.crt that repeats the CA itself is common; drop it.
        let chain = chain.into_iter().filter(|c| c.der != cert_der).collect();
        Self::assemble(config, &cert_der, key, chain, None)
    }

    fn assemble(
        config: &IssuerConfig,
        cert_der: &[u8],
        key: SecretKey,
        chain: Vec<CertInfo>,
        parent: Option<&Issuer>,
    ) -> Result<Issuer, IssuerError> {
        let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
        let cert = CertInfo::from_der(cert_der).map_err(|e| invalid(format!("certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(invalid("the certificate is not a CA certificate (basicConstraints CA:TRUE missing)".into()));
        }
        if !key_matches_spki(&key, &cert.spki_der) {
            return Err(invalid("the private key does not match the certificate".into()));
        }
        let signer = CaSigner::new(&key).map_err(|e| invalid(e.to_string()))?;
        let key_id = cert.subject_key_id.clone().unwrap_or_else(|| key_identifier(signer.public_key_bits()));
        let mut name_constraints = parent.map(|p| p.name_constraints.clone()).unwrap_or_default();
        if let IssuerSource::SelfSigned(p) | IssuerSource::Intermediate { params: p, .. } = &config.source
            && !p.name_constraints.is_empty()
        {
            name_constraints.push(p.name_constraints.clone());
        }
        Ok(Issuer {
            id: config.id.clone(),
            path_len: cert.basic_constraints.as_ref().and_then(|b| b.path_len_constraint),
            cert,
            chain,
            signer,
            key_id,
            name_constraints,
            crl_validity: config.crl_validity,
            next: None,
            parent: match &config.source {
                IssuerSource::Intermediate { parent, .. } => Some(parent.clone()),
                _ => None,
            },
        })
    }

    /// This CA followed by the chain above it.
    fn own_chain(&self) -> Vec<CertInfo> {
        std::iter::once(self.cert.clone()).chain(self.chain.iter().cloned()).collect()
    }

    pub fn signer(&self) -> &CaSigner {
        &self.signer
    }

    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.signer.key_algorithm()
    }

    pub fn subject(&self) -> &RdnSequence {
        &self.cert.subject
    }

    pub fn not_after(&self) -> SystemTime {
        self.cert.not_after
    }

    /// The CA certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.cert.der)
    }

    /// This CA and every certificate above it, as PEM (what a client appends to a leaf).
    pub fn chain_pem(&self) -> String {
        self.own_chain().iter().map(|c| pem::encode("CERTIFICATE", &c.der)).collect()
    }

    /// The root at the top of this chain (this CA itself for a root).
    pub fn root(&self) -> &CertInfo {
        super::info::chain_root(&self.cert, &self.chain)
    }

    /// The certificates between a leaf and the root: this CA and any intermediates above
    /// it, without the root.
    pub fn intermediates(&self) -> Vec<&CertInfo> {
        super::info::chain_intermediates(&self.cert, &self.chain)
    }

    /// Why `san` may not appear in a certificate this CA signs, if anything forbids it.
    pub fn name_constraint_violation(&self, san: &San) -> Option<String> {
        self.name_constraints.iter().find_map(|nc| nc.violation(san))
    }
}

/// The pathLenConstraint an intermediate under `parent` gets.
fn effective_path_len(parent: &Issuer, params: &CaParams) -> Result<Option<u8>, String> {
    intermediate_path_len(&parent.id, parent.path_len, params.path_len)
}

/// The pathLenConstraint (RFC 5280 section 4.2.1.9) an intermediate gets under a parent
/// whose own constraint is `parent`: `own` when it fits, one less than the parent's when
/// unset, refused under a parent with pathLen 0 or when `own` is too large. The admission
/// webhook applies the same rule before the CA signs.
pub fn intermediate_path_len(parent_id: &ObjectRef, parent: Option<u8>, own: Option<u8>) -> Result<Option<u8>, String> {
    match parent {
        Some(0) => Err(format!(
            "parent {parent_id} has pathLen 0: it may sign only end-entity certificates, not intermediate CAs"
        )),
        Some(n) => match own {
            Some(p) if p > n - 1 => Err(format!(
                "pathLen {p} is more than the {} that parent {parent_id} (pathLen {n}) allows below it: it exceeds the \
                 parent's limit",
                n - 1
            )),
            Some(p) => Ok(Some(p)),
            None => Ok(Some(n - 1)),
        },
        None => Ok(own),
    }
}
