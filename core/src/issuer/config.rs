//! The Issuer resource as the core sees it.

use std::time::Duration;

use zeroize::Zeroizing;

use super::NameConstraintsConfig;
use crate::keys::KeyAlgorithm;
use crate::model::ObjectRef;

/// A compiled Issuer.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    pub id: ObjectRef,
    pub source: IssuerSource,
    /// thisUpdate to nextUpdate of the CRLs this issuer publishes.
    pub crl_validity: Duration,
}

/// Where the CA certificate and key come from.
#[derive(Clone, Debug)]
pub enum IssuerSource {
    /// A root CA: pkiplane generates the key and self-signs.
    SelfSigned(CaParams),
    /// An intermediate CA: pkiplane generates the key, the parent Issuer signs.
    Intermediate { parent: ObjectRef, params: CaParams },
    /// An existing CA from PEM (a Secret's `tls.crt`, `tls.key` and optional `ca.crt`).
    Imported(ImportedCa),
}

/// PEM material of an imported CA. The key is wiped from memory when dropped and never
/// printed.
#[derive(Clone)]
pub struct ImportedCa {
    pub certificate_pem: String,
    pub private_key_pem: Zeroizing<String>,
    /// Certificates above this CA up to (and including) the root, if any.
    pub chain_pem: String,
}

impl std::fmt::Debug for ImportedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedCa")
            .field("certificate_pem", &format_args!("{} bytes", self.certificate_pem.len()))
            .field("private_key_pem", &format_args!("<redacted>"))
            .field("chain_pem", &format_args!("{} bytes", self.chain_pem.len()))
            .finish()
    }
}

/// Parameters of a CA certificate pkiplane creates.
#[derive(Clone, Debug)]
pub struct CaParams {
    /// Subject DN in RFC 4514 form, e.g. `CN=Example Root CA,O=Example`.
    pub subject: String,
    pub key: KeyAlgorithm,
    pub validity: Duration,
    /// basicConstraints pathLenConstraint: how many intermediates may follow.
    pub path_len: Option<u8>,
    pub name_constraints: NameConstraintsConfig,
    /// How long before notAfter the next CA is staged (`spec.renewBefore`); `None` means
    /// the default window of `issuer::rollover`. Not part of the CA certificate, so not
    /// part of [`IssuerConfig::spec_hash`].
    pub renew_before: Option<Duration>,
}

impl IssuerConfig {
    /// The renewal window set on a CA pkiplane generates; imported CAs never roll over.
    pub fn renew_before(&self) -> Option<Duration> {
        match &self.source {
            IssuerSource::SelfSigned(p) | IssuerSource::Intermediate { params: p, .. } => p.renew_before,
            IssuerSource::Imported(_) => None,
        }
    }

    /// A stable fingerprint of everything that shapes the CA certificate: when it changes,
    /// stored material no longer matches and a new CA is made.
    pub fn spec_hash(&self) -> String {
        let text = match &self.source {
            IssuerSource::SelfSigned(p) => format!("self|{}", p.fingerprint_text()),
            IssuerSource::Intermediate { parent, params } => format!("int|{parent}|{}", params.fingerprint_text()),
            IssuerSource::Imported(m) => format!("imp|{}|{}", m.certificate_pem.trim(), m.chain_pem.trim()),
        };
        hex::encode(&ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref()[..16])
    }
}

impl CaParams {
    fn fingerprint_text(&self) -> String {
        format!(
            "{}|{}|{}|{:?}|{:?}",
            self.subject,
            self.key,
            self.validity.as_secs(),
            self.path_len,
            self.name_constraints
        )
    }
}
