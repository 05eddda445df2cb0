//! `EnrollmentEndpoint` (protocol SCEP) -> [`ScepSettings`], and the SCEP rules over
//! several resources.

use std::time::Duration;

use pkiplane_scep::settings::ScepSettings;

use super::{EndpointHead, FieldError};
use crate::SecretLookup;
use crate::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};

/// The settings of a SCEP EnrollmentEndpoint served at `base_url`. The static challenge is
/// the `challenge` entry of `staticChallenge.secretRef`; the challenge API's tokens
/// are every entry of `dynamicChallenges.apiSecretRef` (key: client name).
pub fn scep_settings(
    endpoint: &EnrollmentEndpoint,
    secrets: &impl SecretLookup,
    base_url: &str,
) -> Result<ScepSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let head = EndpointHead::read(endpoint, EndpointProtocol::Scep, base_url, &mut errors)?;
    let spec = &endpoint.spec;
    let mut config = ScepSettings::new(head.id, base_url, head.profiles);
    config.default_profile = head.default_label;
    let scep = spec.scep.clone().unwrap_or_default();
    config.legacy_algorithms = scep.legacy_algorithms;
    config.allow_long_validity = scep.allow_long_validity;
    if let Some(s) = &scep.static_challenge {
        config.static_challenge_from(&s.secret_ref.name);
    }
    if let Some(d) = scep.dynamic_challenges.as_ref().filter(|d| d.enabled) {
        let ttl = match &d.ttl {
            None => Duration::from_secs(3600),
            Some(t) => pkiplane_core::duration::parse_duration(t).unwrap_or_else(|e| {
                errors.push(FieldError::new("spec.scep.dynamicChallenges.ttl", e));
                Duration::from_secs(3600)
            }),
        };
        config.dynamic_challenges_from(ttl, d.api_secret_ref.as_ref().map(|r| r.name.as_str()));
    }
    errors.extend(config.check());
    errors.extend(config.reload_secrets(&|ns, name| secrets.secret_data(ns, name)));
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

/// Status warnings for a SCEP `endpoint`: each profile it exposes that another endpoint
/// (ACME, EST or CMP) in `all` exposes too.
pub fn shared_profile_warnings<'a>(
    endpoint: &EnrollmentEndpoint,
    all: impl IntoIterator<Item = &'a EnrollmentEndpoint>,
) -> Vec<String> {
    if endpoint.spec.protocol != EndpointProtocol::Scep {
        return Vec::new();
    }
    let ns = |e: &EnrollmentEndpoint| e.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let others: Vec<&EnrollmentEndpoint> =
        all.into_iter().filter(|o| o.spec.protocol != EndpointProtocol::Scep && ns(o) == ns(endpoint)).collect();
    let mut warnings = Vec::new();
    for binding in &endpoint.spec.profiles {
        for other in &others {
            if other.spec.profiles.iter().any(|p| p.name == binding.name) {
                warnings.push(format!(
                    "profile {} is also exposed by {} endpoint {}/{}: SCEP's shared-secret enrollment now \
                     bounds the assurance of every certificate of that profile; give SCEP its own profile",
                    binding.name,
                    other.spec.protocol.core(),
                    ns(other),
                    other.metadata.name.as_deref().unwrap_or("")
                ));
            }
        }
    }
    warnings
}
