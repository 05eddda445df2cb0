//! The CertificateProfile as the policy engine sees it: parsed, compiled and checked.
//!
//! These types are built from the `CertificateProfile` resource by `pkiplane-api`; the
//! policy engine in [`crate::policy`] evaluates requests against them.

use std::collections::BTreeMap;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use ipnet::IpNet;
use serde::Serialize;

use crate::keys::{Curve, KeyFamily};
use crate::model::{ObjectRef, Protocol};
use crate::x509::KeyUsageBit;
use crate::x509::names::SubjectAttribute;

/// A compiled certificate profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: ObjectRef,
    pub description: String,
    /// The Issuer that signs certificates of this profile.
    pub issuer: ObjectRef,
    pub keys: KeyPolicy,
    pub validity: ValidityPolicy,
    pub renewal: RenewalPolicy,
    pub subject: SubjectPolicy,
    pub sans: SanPolicy,
    pub key_usage: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// basicConstraints is always present and CA:false: profiles issue end-entity
    /// certificates only (CA certificates come from Issuers).
    pub crl_distribution_points: Vec<String>,
    pub ca_issuers_urls: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub csr_extensions: CsrExtensionPolicy,
    pub requesters: RequesterPolicy,
    /// Requests wait for a person's approval before they are signed.
    pub approval_required: bool,
}

/// Which keys a CSR may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    pub families: Vec<KeyFamily>,
    pub ecdsa_curves: Vec<Curve>,
    pub rsa_min_bits: u32,
    pub rsa_max_bits: u32,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            families: vec![KeyFamily::Ecdsa, KeyFamily::Rsa, KeyFamily::Ed25519],
            ecdsa_curves: vec![Curve::P256, Curve::P384],
            rsa_min_bits: 2048,
            rsa_max_bits: 8192,
        }
    }
}

/// How long certificates live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidityPolicy {
    /// Lifetime when the requester asks for none.
    pub duration: Duration,
    /// Longest lifetime a requester may ask for (ACME `notAfter`, CMP validity).
    pub max: Duration,
    /// notBefore is set this far in the past to absorb clock skew; also the furthest a
    /// requester may backdate.
    pub backdate: Duration,
}

/// When clients should renew (drives ACME ARI and the expiring-soon counts).
#[derive(Clone, Debug, PartialEq)]
pub enum RenewalPolicy {
    /// Renew when this fraction of the lifetime remains (e.g. 1/3).
    RemainingFraction(f64),
    /// Renew this long before notAfter.
    Before(Duration),
}

impl RenewalPolicy {
    /// How long before notAfter the renewal window opens, for a certificate of `lifetime`.
    pub fn renew_before(&self, lifetime: Duration) -> Duration {
        match self {
            RenewalPolicy::RemainingFraction(f) => lifetime.mul_f64(f.clamp(0.0, 1.0)),
            RenewalPolicy::Before(d) => (*d).min(lifetime),
        }
    }
}

/// Whether a subject attribute must, may or must not appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Presence {
    Required,
    Optional,
    Forbidden,
}

/// Where a subject attribute's value comes from when the profile does not fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// As the CSR asks (checked by the rule's constraints).
    Csr,
    /// The first SAN of a kind, when the CSR carries no value.
    FirstSan(SanKind),
    /// An authenticated claim of the requester (e.g. the IDevID serial); a CSR value
    /// must equal it.
    Claim(String),
}

/// One rule for one subject attribute.
#[derive(Clone, Debug)]
pub struct SubjectRule {
    pub attribute: SubjectAttribute,
    pub presence: Presence,
    /// A fixed value from the profile, which wins over anything the CSR says.
    pub value: Option<String>,
    pub source: ValueSource,
    /// The value must be one of the certificate's SANs (the usual rule for a CN).
    pub must_match_san: bool,
    /// The value must match this pattern (whole value).
    pub pattern: Option<regex_lite::Regex>,
}

/// What happens to CSR subject attributes no rule mentions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnlistedAttributes {
    /// Silently left out of the certificate.
    Drop,
    /// The request is denied.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct SubjectPolicy {
    pub rules: Vec<SubjectRule>,
    pub unlisted: UnlistedAttributes,
}

impl Default for SubjectPolicy {
    fn default() -> Self {
        Self { rules: Vec::new(), unlisted: UnlistedAttributes::Drop }
    }
}

/// The kinds of subjectAltName the policy knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SanKind {
    Dns,
    Ip,
    Uri,
    Email,
}

impl SanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SanKind::Dns => "DNS",
            SanKind::Ip => "IP",
            SanKind::Uri => "URI",
            SanKind::Email => "email",
        }
    }
}

/// SAN rules per type. A type whose rule is `None` is not allowed at all.
#[derive(Clone, Debug, Default)]
pub struct SanPolicy {
    pub max_count: usize,
    /// At least one SAN must be present.
    pub required: bool,
    pub dns: Option<DnsRule>,
    pub ip: Option<IpRule>,
    pub uri: Option<UriRule>,
    pub email: Option<EmailRule>,
}

#[derive(Clone, Debug, Default)]
pub struct DnsRule {
    /// Allowed DNS suffixes: `example.com` allows `example.com` and any name below it.
    /// Empty means any syntactically valid name.
    pub suffixes: Vec<String>,
    pub allow_wildcards: bool,
}

#[derive(Clone, Debug, Default)]
pub struct IpRule {
    /// Allowed ranges. Empty means any address.
    pub cidrs: Vec<IpNet>,
}

#[derive(Clone, Debug, Default)]
pub struct UriRule {
    /// Patterns such as `spiffe://example.org/ns/*/sa/*`: `*` matches within one path
    /// segment, `**` matches across segments. Empty means any URI.
    pub patterns: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct EmailRule {
    /// Allowed mail domains (exact). Empty means any.
    pub domains: Vec<String>,
}

/// What happens to extensions requested in the CSR. SANs are always taken from the CSR
/// and judged by the SAN rules; every other extension is decided by the profile.
#[derive(Clone, Debug, Default)]
pub struct CsrExtensionPolicy {
    /// Requested extensions copied verbatim into the certificate.
    pub copy: Vec<ObjectIdentifier>,
    /// Requested extensions that make the request fail.
    pub refuse: Vec<ObjectIdentifier>,
}

/// Who may use the profile. Empty lists allow everyone.
#[derive(Clone, Debug, Default)]
pub struct RequesterPolicy {
    pub protocols: Vec<Protocol>,
    pub endpoints: Vec<ObjectRef>,
    /// Identity patterns (`*` wildcard).
    pub identities: Vec<String>,
    /// Claims the requester's authentication must have proved, with their values
    /// (`*` accepts any value).
    pub required_claims: BTreeMap<String, String>,
}

impl Profile {
    /// The profile of a certificate pkiplane issues for itself (an endpoint's TLS server
    /// certificate, a SCEP RA, a CMP protection or EST key-package signer): requested
    /// only by pkiplane (protocol LOCAL), any key the defaults allow, `lifetime` with a
    /// 5-minute backdate, renewal when a third remains, the CSR's CN, no SANs and no
    /// CRL/AIA pointers. Callers override what their role needs with struct update syntax.
    pub fn internal(
        id: ObjectRef,
        description: String,
        issuer: ObjectRef,
        lifetime: Duration,
        key_usage: Vec<KeyUsageBit>,
        extended_key_usage: Vec<ObjectIdentifier>,
    ) -> Profile {
        Profile {
            id,
            description,
            issuer,
            keys: KeyPolicy::default(),
            validity: ValidityPolicy { duration: lifetime, max: lifetime, backdate: Duration::from_secs(300) },
            renewal: RenewalPolicy::RemainingFraction(1.0 / 3.0),
            subject: SubjectPolicy::default(),
            sans: SanPolicy::default(),
            key_usage,
            extended_key_usage,
            crl_distribution_points: vec![],
            ca_issuers_urls: vec![],
            ocsp_urls: vec![],
            csr_extensions: CsrExtensionPolicy::default(),
            requesters: RequesterPolicy { protocols: vec![Protocol::Local], ..RequesterPolicy::default() },
            approval_required: false,
        }
    }
}
