//! Containment of SCEP endpoints (the "contained and made safe"): checks that
//! refuse to start an endpoint whose profiles are unsuitable, and warnings for status.
//!
//! * Every exposed profile must exist and be signed by one Issuer: GetCACert names one
//!   CA, and the RA certificate is issued by it.
//! * A profile whose certificates live longer than the SCEP cap (default 1 year) is
//!   refused unless the endpoint sets `allowLongValidity`: shared challenge passwords make
//!   SCEP a weak authenticator, so what it hands out should expire soon.
//! * A SCEP endpoint exposing a profile that a modern protocol (ACME, EST, CMP) also
//!   exposes gets a status warning: the weakest transport then bounds the profile (a rule
//!   over resources: `api/src/convert/endpoint_scep.rs`).

use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::profile::Profile;
use pkiplane_core::service::Authority;

use crate::settings::ScepSettings;

/// Checks the exposed profiles against the CA; returns the one Issuer behind them, or
/// every problem found.
pub fn check_profiles(config: &ScepSettings, ca: &dyn Authority) -> Result<ObjectRef, Vec<String>> {
    let mut problems = Vec::new();
    let mut issuer: Option<ObjectRef> = None;
    for exposed in &config.profiles {
        let Some(profile) = ca.profile(&exposed.profile) else {
            problems.push(format!("profile {} (label `{}`) is not loaded", exposed.profile, exposed.label));
            continue;
        };
        let name = profile.id.to_string();
        match &issuer {
            None => issuer = Some(profile.issuer.clone()),
            Some(first) => problems.extend(other_issuer(&name, &profile, first)),
        }
        problems.extend(too_long(&name, &profile, config.validity_cap, config.allow_long_validity));
        if ca.issuer(&profile.issuer).is_none() {
            problems.push(format!("Issuer {} of profile {} is not loaded", profile.issuer, profile.id));
        }
    }
    match issuer {
        Some(i) if problems.is_empty() => Ok(i),
        _ if problems.is_empty() => Err(vec!["the endpoint exposes no profile".into()]),
        _ => Err(problems),
    }
}

/// The one-Issuer rule for a profile named `name` (as the caller reports it), given the
/// Issuer of the endpoint's first profile.
pub fn other_issuer(name: &str, profile: &Profile, first: &ObjectRef) -> Option<String> {
    (profile.issuer != *first).then(|| {
        format!(
            "profile {name} is signed by Issuer {}, but this endpoint's other profiles by {first}: a SCEP endpoint \
             serves one CA (GetCACert), so expose profiles of one Issuer",
            profile.issuer
        )
    })
}

/// The validity cap for a profile named `name` (as the caller reports it).
pub fn too_long(name: &str, profile: &Profile, cap: Duration, allow_long_validity: bool) -> Option<String> {
    let days = |d: Duration| d.as_secs() / 86_400;
    (profile.validity.duration > cap && !allow_long_validity).then(|| {
        format!(
            "profile {name} issues certificates valid for {} days, longer than the {}-day cap for SCEP endpoints; \
             shorten the profile's validity or set spec.scep.allowLongValidity: true",
            days(profile.validity.duration),
            days(cap)
        )
    })
}
