//! `CertificateProfile` -> [`Profile`]: the top level, keys, validity, renewal and
//! requesters. Names are in `subject`, extensions in `extensions`.

use std::collections::BTreeMap;
use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::duration::parse_duration;
use pkiplane_core::keys::KeyFamily;
use pkiplane_core::profile::{KeyPolicy, Profile, RenewalPolicy, RequesterPolicy, ValidityPolicy};

use super::extensions::{
    authority_info_access, crl_distribution_points, csr_extensions, extended_key_usage, key_usage,
};
use super::subject::{san_policy, subject_policy};
use super::{Errors, FieldError, api_name, check_object_name, local_ref, no_duplicates, object_ref, positive_duration};
use crate::v1alpha1::{CertificateProfile, KeyRules, Renewal, Requesters, Validity};

/// Default notBefore backdating.
pub const DEFAULT_BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Largest backdating a profile may set.
pub const MAX_BACKDATE: Duration = Duration::from_secs(3_600);
/// Default renewal point: when a third of the lifetime remains.
pub const DEFAULT_RENEWAL_FRACTION: f64 = 1.0 / 3.0;
/// Smallest RSA modulus a profile may allow.
pub const MIN_RSA_BITS: i32 = 2048;
/// Largest RSA modulus a profile may allow.
pub const MAX_RSA_BITS: i32 = 16384;

/// Converts a CertificateProfile, returning every problem found with its field path.
pub fn profile_from_resource(profile: &CertificateProfile) -> Result<Profile, Vec<FieldError>> {
    let mut e = Errors::default();
    let id = object_ref(&profile.metadata, &mut e);
    let spec = &profile.spec;
    let issuer = local_ref(&id.namespace, &spec.issuer_ref.name, "spec.issuerRef.name", &mut e);
    let keys = key_policy(spec.keys.as_ref(), &mut e);
    let validity = validity_policy(&spec.validity, &mut e);
    let renewal = renewal_policy(spec.renewal.as_ref(), validity.as_ref().map(|v| v.duration), &mut e);
    let sans = san_policy(spec.subject_alt_names.as_ref(), &mut e);
    let subject = subject_policy(spec.subject.as_ref(), &sans, &mut e);
    let key_usage = key_usage(spec.key_usage.as_deref(), &mut e);
    let extended_key_usage = extended_key_usage(&spec.extended_key_usage, &mut e);
    let crl_distribution_points = crl_distribution_points(&spec.crl_distribution_points, &mut e);
    let (ca_issuers_urls, ocsp_urls) = authority_info_access(spec.authority_info_access.as_ref(), &mut e);
    let csr_extensions = csr_extensions(spec.csr_extensions.as_ref(), &mut e);
    let requesters = requester_policy(spec.requesters.as_ref(), &id.namespace, &mut e);
    let profile = validity.zip(renewal).map(|(validity, renewal)| Profile {
        id,
        description: spec.description.clone(),
        issuer,
        keys,
        validity,
        renewal,
        subject,
        sans,
        key_usage,
        extended_key_usage,
        crl_distribution_points,
        ca_issuers_urls,
        ocsp_urls,
        csr_extensions,
        requesters,
        approval_required: spec.approval.as_ref().is_some_and(|a| a.required),
    });
    e.finish(profile)
}

fn key_policy(keys: Option<&KeyRules>, e: &mut Errors) -> KeyPolicy {
    let Some(k) = keys else { return KeyPolicy::default() };
    let path = "spec.keys";
    if k.algorithms.is_empty() {
        e.push(format!("{path}.algorithms"), "must allow at least one of ECDSA, RSA, Ed25519");
    }
    no_duplicates(&k.algorithms, &format!("{path}.algorithms"), api_name, e);
    no_duplicates(&k.ecdsa_curves, &format!("{path}.ecdsaCurves"), api_name, e);
    let families: Vec<KeyFamily> = k.algorithms.clone();
    if families.contains(&KeyFamily::Ecdsa) && k.ecdsa_curves.is_empty() {
        e.push(format!("{path}.ecdsaCurves"), "ECDSA is allowed, so at least one curve must be");
    }
    if k.rsa_min_bits < MIN_RSA_BITS {
        e.push(
            format!("{path}.rsaMinBits"),
            format!("{} bits is weak: RSA keys need at least {MIN_RSA_BITS} bits", k.rsa_min_bits),
        );
    }
    if k.rsa_max_bits > MAX_RSA_BITS {
        e.push(format!("{path}.rsaMaxBits"), format!("at most {MAX_RSA_BITS}"));
    }
    if k.rsa_max_bits < k.rsa_min_bits {
        e.push(format!("{path}.rsaMaxBits"), format!("is smaller than rsaMinBits ({})", k.rsa_min_bits));
    }
    KeyPolicy {
        families,
        ecdsa_curves: k.ecdsa_curves.clone(),
        rsa_min_bits: k.rsa_min_bits.max(0) as u32,
        rsa_max_bits: k.rsa_max_bits.max(0) as u32,
    }
}

fn validity_policy(v: &Validity, e: &mut Errors) -> Option<ValidityPolicy> {
    let duration = e.check("spec.validity.duration", positive_duration(&v.duration));
    let max = match v.max.as_deref() {
        Some(m) => e.check("spec.validity.max", positive_duration(m)),
        None => duration,
    };
    if let (Some(d), Some(m)) = (duration, max)
        && m < d
    {
        e.push(
            "spec.validity.max",
            format!("`{}` is shorter than validity.duration `{}`", v.max.as_deref().unwrap_or(""), v.duration),
        );
    }
    let backdate = match v.backdate.as_deref() {
        Some(b) => e.check("spec.validity.backdate", parse_duration(b)),
        None => Some(DEFAULT_BACKDATE),
    };
    if let Some(b) = backdate
        && b > MAX_BACKDATE
    {
        e.push("spec.validity.backdate", "at most 1h: backdating is for clock skew, not for lengthening lifetimes");
    }
    Some(ValidityPolicy { duration: duration?, max: max?, backdate: backdate? })
}

fn renewal_policy(r: Option<&Renewal>, lifetime: Option<Duration>, e: &mut Errors) -> Option<RenewalPolicy> {
    let Some(r) = r else { return Some(RenewalPolicy::RemainingFraction(DEFAULT_RENEWAL_FRACTION)) };
    match (&r.remaining_fraction, &r.before) {
        (Some(_), Some(_)) => {
            e.push("spec.renewal", "set at most one of remainingFraction or before");
            None
        }
        (Some(f), None) => e.check("spec.renewal.remainingFraction", fraction(f)).map(RenewalPolicy::RemainingFraction),
        (None, Some(b)) => {
            let before = e.check("spec.renewal.before", positive_duration(b))?;
            if let Some(l) = lifetime
                && before >= l
            {
                e.push(
                    "spec.renewal.before",
                    "must be shorter than validity.duration, or certificates are due at once",
                );
            }
            Some(RenewalPolicy::Before(before))
        }
        (None, None) => Some(RenewalPolicy::RemainingFraction(DEFAULT_RENEWAL_FRACTION)),
    }
}

/// `1/3` or `0.25`, strictly between 0 and 1.
pub(crate) fn fraction(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let value = match t.split_once('/') {
        Some((n, d)) => {
            let n: u32 = n.trim().parse().map_err(|_| format!("`{s}` is not a fraction like 1/3"))?;
            let d: u32 = d.trim().parse().map_err(|_| format!("`{s}` is not a fraction like 1/3"))?;
            if d == 0 {
                return Err(format!("`{s}` divides by zero"));
            }
            f64::from(n) / f64::from(d)
        }
        None => {
            t.parse::<f64>().map_err(|_| format!("`{s}` is neither a fraction like 1/3 nor a decimal like 0.25"))?
        }
    };
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!("`{s}` must be strictly between 0 and 1"))
    }
}

fn requester_policy(r: Option<&Requesters>, namespace: &str, e: &mut Errors) -> RequesterPolicy {
    let Some(r) = r else { return RequesterPolicy::default() };
    let path = "spec.requesters";
    no_duplicates(&r.protocols, &format!("{path}.protocols"), |p| p.to_string(), e);
    let endpoints = r
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (ns, name) = s.split_once('/').unwrap_or((namespace, s.as_str()));
            let checked = check_object_name(ns)
                .and_then(|()| check_object_name(name))
                .map(|()| ObjectRef::new(ns, name))
                .map_err(|m| format!("`{s}` is not \"name\" or \"namespace/name\": {m}"));
            e.check(&format!("{path}.endpoints[{i}]"), checked)
        })
        .collect();
    for (i, id) in r.identities.iter().enumerate() {
        if id.trim().is_empty() {
            e.push(format!("{path}.identities[{i}]"), "is empty");
        }
    }
    let mut required_claims = BTreeMap::new();
    for (k, v) in &r.required_claims {
        if k.trim().is_empty() || v.is_empty() {
            e.push(format!("{path}.requiredClaims"), format!("claim `{k}`: names and values must not be empty"));
        }
        required_claims.insert(k.clone(), v.clone());
    }
    RequesterPolicy { protocols: r.protocols.clone(), endpoints, identities: r.identities.clone(), required_claims }
}
