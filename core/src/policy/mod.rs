//! The policy engine: one pure function from (CSR, profile, issuer facts, requester) to
//! either a complete certificate template or a denial naming every rule that failed.
//!
//! Every protocol calls this through the issuance pipeline; no protocol decides
//! algorithms, validity, subject, SANs or extensions on its own. Rules are named by the
//! CertificateProfile field they come from (e.g. `keys.rsaMinBits`,
//! `subjectAltNames.dns.suffixes`), so a denial points at the line of YAML to look at.

mod extensions;
mod glob;
mod keys;
mod requesters;
mod sans;
mod subject;
pub mod template;
mod validity;

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

pub use glob::glob_match;
pub use template::CertificateTemplate;

use crate::issuer::NameConstraintsConfig;
use crate::model::{ObjectRef, Requester};
use crate::profile::Profile;
use crate::x509::csr::ParsedCsr;

/// One failed rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The profile field the rule comes from, e.g. `subjectAltNames.dns.suffixes`.
    pub rule: String,
    pub message: String,
}

impl Violation {
    pub fn new(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Self { rule: rule.into(), message: message.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

/// What the policy needs to know about the issuer.
#[derive(Clone, Debug)]
pub struct IssuerFacts<'a> {
    pub id: &'a ObjectRef,
    pub not_after: SystemTime,
    /// Name constraints of the issuer and every CA above it.
    pub name_constraints: &'a [NameConstraintsConfig],
}

/// Validity the requester asked for (ACME newOrder, CMP certTemplate); `None` = profile default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestedValidity {
    pub not_before: Option<SystemTime>,
    pub not_after: Option<SystemTime>,
}

/// Everything the policy engine judges.
#[derive(Clone, Copy, Debug)]
pub struct PolicyInput<'a> {
    pub csr: &'a ParsedCsr,
    pub profile: &'a Profile,
    pub issuer: &'a IssuerFacts<'a>,
    pub requester: &'a Requester,
    pub requested: RequestedValidity,
    pub now: SystemTime,
}

/// The outcome of a policy evaluation.
#[derive(Clone, Debug)]
pub enum Decision {
    Allow(Box<CertificateTemplate>),
    Deny(Vec<Violation>),
}

impl Decision {
    pub fn violations(&self) -> &[Violation] {
        match self {
            Decision::Allow(_) => &[],
            Decision::Deny(v) => v,
        }
    }
}

/// Checks names a requester asks for before any CSR exists (ACME newOrder): the
/// profile's requester rules and its SAN rules for each name, the same rules
/// [`evaluate`] applies later, so a protocol never works to validate a name the profile
/// would refuse. Returns every violation; empty means the names may proceed.
pub fn check_requested_names(profile: &Profile, requester: &Requester, names: &[crate::x509::San]) -> Vec<Violation> {
    let mut violations = Vec::new();
    requesters::check(profile, requester, &mut violations);
    sans::check_names(&profile.sans, names, &mut violations);
    violations
}

/// Evaluates every rule of the profile; a denial lists all violations, not just the first.
pub fn evaluate(input: &PolicyInput<'_>) -> Decision {
    let mut violations = Vec::new();
    let mut notes = Vec::new();

    requesters::check(input.profile, input.requester, &mut violations);
    keys::check(&input.profile.keys, &input.csr.key, &mut violations);
    let validity = validity::decide(input, &mut violations, &mut notes);
    let sans = sans::decide(input, &mut violations, &mut notes);
    let subject = subject::decide(input, &sans, &mut violations, &mut notes);
    let copied = extensions::decide(input, &mut violations, &mut notes);
    let key_usage = keys::key_usage_for(&input.profile.key_usage, &input.csr.key, &mut notes);

    if !violations.is_empty() {
        return Decision::Deny(violations);
    }
    let (Some((not_before, not_after)), Some(subject)) = (validity, subject) else {
        // Every path that yields None also records a violation; this is a safety net.
        return Decision::Deny(vec![Violation::new("policy", "the request could not be evaluated")]);
    };
    Decision::Allow(Box::new(CertificateTemplate {
        profile: input.profile.id.clone(),
        issuer: input.profile.issuer.clone(),
        subject,
        sans,
        not_before,
        not_after,
        spki: input.csr.spki.clone(),
        key: input.csr.key.clone(),
        key_usage,
        extended_key_usage: input.profile.extended_key_usage.clone(),
        crl_distribution_points: input.profile.crl_distribution_points.clone(),
        ca_issuers_urls: input.profile.ca_issuers_urls.clone(),
        ocsp_urls: input.profile.ocsp_urls.clone(),
        copied_extensions: copied,
        notes,
    }))
}
