//! The certificate the policy decided on, before it is signed.

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::name::RdnSequence;

use crate::keys::PublicKeyInfo;
use crate::model::ObjectRef;
use crate::x509::extensions::{
    authority_info_access, authority_key_identifier, basic_constraints, crl_distribution_points, eku_name,
    extended_key_usage, extension_name, key_identifier, key_usage, subject_alt_name, subject_key_identifier,
};
use crate::x509::names::format_dn;
use crate::x509::{KeyUsageBit, San};

/// A complete description of the certificate to sign.
#[derive(Clone, Debug)]
pub struct CertificateTemplate {
    pub profile: ObjectRef,
    pub issuer: ObjectRef,
    pub subject: RdnSequence,
    pub sans: Vec<San>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub spki: SubjectPublicKeyInfoOwned,
    pub key: PublicKeyInfo,
    pub key_usage: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    pub crl_distribution_points: Vec<String>,
    pub ca_issuers_urls: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub copied_extensions: Vec<Extension>,
    /// What the policy changed or left out, for the requester and the audit trail.
    pub notes: Vec<String>,
}

impl CertificateTemplate {
    /// The extensions of the certificate, in a stable order, given the issuer's key id.
    pub fn extensions(&self, issuer_key_id: &[u8]) -> der::Result<Vec<Extension>> {
        let mut exts = vec![basic_constraints(false, None)?];
        if !self.key_usage.is_empty() {
            exts.push(key_usage(&self.key_usage)?);
        }
        if !self.extended_key_usage.is_empty() {
            exts.push(extended_key_usage(&self.extended_key_usage)?);
        }
        if !self.sans.is_empty() {
            exts.push(subject_alt_name(&self.sans, self.subject.is_empty())?);
        }
        exts.push(subject_key_identifier(&key_identifier(self.spki.subject_public_key.raw_bytes()))?);
        exts.push(authority_key_identifier(issuer_key_id)?);
        if !self.crl_distribution_points.is_empty() {
            exts.push(crl_distribution_points(&self.crl_distribution_points)?);
        }
        if !self.ca_issuers_urls.is_empty() || !self.ocsp_urls.is_empty() {
            exts.push(authority_info_access(&self.ca_issuers_urls, &self.ocsp_urls)?);
        }
        exts.extend(self.copied_extensions.iter().cloned());
        Ok(exts)
    }

    /// A readable summary (what `pkiplane policy check` prints).
    pub fn summary(&self) -> TemplateSummary {
        TemplateSummary {
            profile: self.profile.to_string(),
            issuer: self.issuer.to_string(),
            subject: format_dn(&self.subject),
            subject_alt_names: self.sans.iter().map(|s| s.to_string()).collect(),
            key: self.key.to_string(),
            not_before: crate::audit::rfc3339(self.not_before),
            not_after: crate::audit::rfc3339(self.not_after),
            lifetime: crate::duration::format_duration(
                self.not_after.duration_since(self.not_before).unwrap_or_default(),
            ),
            basic_constraints: "CA:FALSE (critical)".into(),
            key_usage: self.key_usage.iter().map(|k| k.name().to_string()).collect(),
            extended_key_usage: self.extended_key_usage.iter().map(eku_name).collect(),
            crl_distribution_points: self.crl_distribution_points.clone(),
            ca_issuers: self.ca_issuers_urls.clone(),
            ocsp: self.ocsp_urls.clone(),
            copied_extensions: self.copied_extensions.iter().map(|e| extension_name(&e.extn_id)).collect(),
            notes: self.notes.clone(),
        }
    }
}

/// A certificate template in words.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSummary {
    pub profile: String,
    pub issuer: String,
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub key: String,
    pub not_before: String,
    pub not_after: String,
    pub lifetime: String,
    pub basic_constraints: String,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub crl_distribution_points: Vec<String>,
    pub ca_issuers: Vec<String>,
    pub ocsp: Vec<String>,
    pub copied_extensions: Vec<String>,
    pub notes: Vec<String>,
}
