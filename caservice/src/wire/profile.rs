//! A compiled [`Profile`] on the wire, so an endpoint pod can consult profiles (issuer,
//! renewal, approval, CSR attributes) without the manifests. The CA stays the only
//! place a profile is *applied*; this copy only informs protocol behaviour.

use std::collections::BTreeMap;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use pkiplane_core::keys::{Curve, KeyFamily};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_core::profile::*;
use pkiplane_core::x509::KeyUsageBit;
use pkiplane_core::x509::names::SubjectAttribute;
use serde::{Deserialize, Serialize};

use super::WireError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileWire {
    pub id: ObjectRef,
    pub description: String,
    pub issuer: ObjectRef,
    pub key_families: Vec<KeyFamily>,
    pub ecdsa_curves: Vec<Curve>,
    pub rsa_min_bits: u32,
    pub rsa_max_bits: u32,
    pub validity_seconds: u64,
    pub max_validity_seconds: u64,
    pub backdate_seconds: u64,
    pub renew_remaining_fraction: Option<f64>,
    pub renew_before_seconds: Option<u64>,
    pub subject_rules: Vec<SubjectRuleWire>,
    pub refuse_unlisted_attributes: bool,
    pub sans: SansWire,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub crl_distribution_points: Vec<String>,
    pub ca_issuers_urls: Vec<String>,
    pub ocsp_urls: Vec<String>,
    pub copy_extensions: Vec<String>,
    pub refuse_extensions: Vec<String>,
    pub requester_protocols: Vec<Protocol>,
    pub requester_endpoints: Vec<ObjectRef>,
    pub requester_identities: Vec<String>,
    pub required_claims: BTreeMap<String, String>,
    pub approval_required: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRuleWire {
    pub attribute: SubjectAttribute,
    /// `required`, `optional` or `forbidden`.
    pub presence: String,
    pub value: Option<String>,
    /// `csr`, `firstSan:<DNS|IP|URI|email>` or `claim:<name>`.
    pub source: String,
    pub must_match_san: bool,
    pub pattern: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SansWire {
    pub max_count: usize,
    pub required: bool,
    /// (suffixes, allowWildcards)
    pub dns: Option<(Vec<String>, bool)>,
    pub ip: Option<Vec<String>>,
    pub uri: Option<Vec<String>>,
    pub email: Option<Vec<String>>,
}

fn san_kind(s: &str) -> Option<SanKind> {
    [SanKind::Dns, SanKind::Ip, SanKind::Uri, SanKind::Email].into_iter().find(|k| k.as_str() == s)
}

fn oid(s: &str) -> Result<ObjectIdentifier, WireError> {
    ObjectIdentifier::new(s).map_err(|e| WireError(format!("OID `{s}`: {e}")))
}

impl ProfileWire {
    pub fn from_profile(p: &Profile) -> Self {
        let (renew_remaining_fraction, renew_before_seconds) = match &p.renewal {
            RenewalPolicy::RemainingFraction(f) => (Some(*f), None),
            RenewalPolicy::Before(d) => (None, Some(d.as_secs())),
        };
        Self {
            id: p.id.clone(),
            description: p.description.clone(),
            issuer: p.issuer.clone(),
            key_families: p.keys.families.clone(),
            ecdsa_curves: p.keys.ecdsa_curves.clone(),
            rsa_min_bits: p.keys.rsa_min_bits,
            rsa_max_bits: p.keys.rsa_max_bits,
            validity_seconds: p.validity.duration.as_secs(),
            max_validity_seconds: p.validity.max.as_secs(),
            backdate_seconds: p.validity.backdate.as_secs(),
            renew_remaining_fraction,
            renew_before_seconds,
            subject_rules: p
                .subject
                .rules
                .iter()
                .map(|r| SubjectRuleWire {
                    attribute: r.attribute,
                    presence: match r.presence {
                        Presence::Required => "required",
                        Presence::Optional => "optional",
                        Presence::Forbidden => "forbidden",
                    }
                    .into(),
                    value: r.value.clone(),
                    source: match &r.source {
                        ValueSource::Csr => "csr".into(),
                        ValueSource::FirstSan(k) => format!("firstSan:{}", k.as_str()),
                        ValueSource::Claim(c) => format!("claim:{c}"),
                    },
                    must_match_san: r.must_match_san,
                    pattern: r.pattern.as_ref().map(|p| p.as_str().to_owned()),
                })
                .collect(),
            refuse_unlisted_attributes: p.subject.unlisted == UnlistedAttributes::Refuse,
            sans: SansWire {
                max_count: p.sans.max_count,
                required: p.sans.required,
                dns: p.sans.dns.as_ref().map(|d| (d.suffixes.clone(), d.allow_wildcards)),
                ip: p.sans.ip.as_ref().map(|i| i.cidrs.iter().map(|c| c.to_string()).collect()),
                uri: p.sans.uri.as_ref().map(|u| u.patterns.clone()),
                email: p.sans.email.as_ref().map(|e| e.domains.clone()),
            },
            key_usage: p.key_usage.iter().map(|k| k.name().to_owned()).collect(),
            extended_key_usage: p.extended_key_usage.iter().map(|o| o.to_string()).collect(),
            crl_distribution_points: p.crl_distribution_points.clone(),
            ca_issuers_urls: p.ca_issuers_urls.clone(),
            ocsp_urls: p.ocsp_urls.clone(),
            copy_extensions: p.csr_extensions.copy.iter().map(|o| o.to_string()).collect(),
            refuse_extensions: p.csr_extensions.refuse.iter().map(|o| o.to_string()).collect(),
            requester_protocols: p.requesters.protocols.clone(),
            requester_endpoints: p.requesters.endpoints.clone(),
            requester_identities: p.requesters.identities.clone(),
            required_claims: p.requesters.required_claims.clone(),
            approval_required: p.approval_required,
        }
    }

    pub fn into_profile(self) -> Result<Profile, WireError> {
        let bad = |what: &str, v: &str| WireError(format!("profile {}: bad {what} `{v}`", self.id));
        let mut rules = Vec::new();
        for r in &self.subject_rules {
            let presence = match r.presence.as_str() {
                "required" => Presence::Required,
                "optional" => Presence::Optional,
                "forbidden" => Presence::Forbidden,
                other => return Err(bad("presence", other)),
            };
            let source = if r.source == "csr" {
                ValueSource::Csr
            } else if let Some(k) = r.source.strip_prefix("firstSan:") {
                ValueSource::FirstSan(san_kind(k).ok_or_else(|| bad("SAN kind", k))?)
            } else if let Some(c) = r.source.strip_prefix("claim:") {
                ValueSource::Claim(c.to_owned())
            } else {
                return Err(bad("value source", &r.source));
            };
            let pattern = match &r.pattern {
                Some(p) => Some(regex_lite::Regex::new(p).map_err(|_| bad("pattern", p))?),
                None => None,
            };
            rules.push(SubjectRule {
                attribute: r.attribute,
                presence,
                value: r.value.clone(),
                source,
                must_match_san: r.must_match_san,
                pattern,
            });
        }
        let renewal = match (self.renew_remaining_fraction, self.renew_before_seconds) {
            (Some(f), _) => RenewalPolicy::RemainingFraction(f),
            (None, Some(s)) => RenewalPolicy::Before(Duration::from_secs(s)),
            (None, None) => return Err(bad("renewal", "none")),
        };
        let mut key_usage = Vec::new();
        for k in &self.key_usage {
            key_usage.push(KeyUsageBit::ALL.into_iter().find(|b| b.name() == k).ok_or_else(|| bad("key usage", k))?);
        }
        let oids = |v: &[String]| v.iter().map(|s| oid(s)).collect::<Result<Vec<_>, _>>();
        let mut cidrs = None;
        if let Some(ip) = &self.sans.ip {
            let mut v = Vec::new();
            for c in ip {
                v.push(c.parse::<ipnet::IpNet>().map_err(|_| bad("CIDR", c))?);
            }
            cidrs = Some(IpRule { cidrs: v });
        }
        Ok(Profile {
            id: self.id.clone(),
            description: self.description.clone(),
            issuer: self.issuer.clone(),
            keys: KeyPolicy {
                families: self.key_families.clone(),
                ecdsa_curves: self.ecdsa_curves.clone(),
                rsa_min_bits: self.rsa_min_bits,
                rsa_max_bits: self.rsa_max_bits,
            },
            validity: ValidityPolicy {
                duration: Duration::from_secs(self.validity_seconds),
                max: Duration::from_secs(self.max_validity_seconds),
                backdate: Duration::from_secs(self.backdate_seconds),
            },
            renewal,
            subject: SubjectPolicy {
                rules,
                unlisted: if self.refuse_unlisted_attributes {
                    UnlistedAttributes::Refuse
                } else {
                    UnlistedAttributes::Drop
                },
            },
            sans: SanPolicy {
                max_count: self.sans.max_count,
                required: self.sans.required,
                dns: self.sans.dns.clone().map(|(suffixes, allow_wildcards)| DnsRule { suffixes, allow_wildcards }),
                ip: cidrs,
                uri: self.sans.uri.clone().map(|patterns| UriRule { patterns }),
                email: self.sans.email.clone().map(|domains| EmailRule { domains }),
            },
            key_usage,
            extended_key_usage: oids(&self.extended_key_usage)?,
            crl_distribution_points: self.crl_distribution_points.clone(),
            ca_issuers_urls: self.ca_issuers_urls.clone(),
            ocsp_urls: self.ocsp_urls.clone(),
            csr_extensions: CsrExtensionPolicy {
                copy: oids(&self.copy_extensions)?,
                refuse: oids(&self.refuse_extensions)?,
            },
            requesters: RequesterPolicy {
                protocols: self.requester_protocols.clone(),
                endpoints: self.requester_endpoints.clone(),
                identities: self.requester_identities.clone(),
                required_claims: self.required_claims.clone(),
            },
            approval_required: self.approval_required,
        })
    }
}
