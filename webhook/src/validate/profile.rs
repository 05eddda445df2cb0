//! CertificateProfile: the Issuer exists and outlives the certificates, keys are ones the
//! CA can verify and not weak, extensions fit how the profile is exposed; switching
//! Issuers warns about the certificates it strands.

use pkiplane_api::profile_from_resource;
use pkiplane_api::v1alpha1::{CertificateProfile, CurveName, EndpointProtocol, KeyFamilyName};
use pkiplane_core::ObjectRef;
use pkiplane_core::duration::format_duration;
use pkiplane_core::profile::Profile;

use super::{Validate, certificates};
use crate::{ClusterView, Verdict, object_id};

/// Largest RSA key the CA verifies CSR signatures of.
pub const MAX_VERIFIABLE_RSA_BITS: i32 = 8192;

impl Validate for CertificateProfile {
    const KIND: &'static str = "CertificateProfile";

    fn validate(&self, old: Option<&Self>, view: &ClusterView) -> Verdict {
        let mut verdict = Verdict::default();
        let compiled = match profile_from_resource(self) {
            Ok(p) => Some(p),
            Err(errors) => {
                verdict.deny_all(errors);
                None
            }
        };
        keys_are_verifiable(self, &mut verdict);
        let id = object_id(&self.metadata);
        let issuer_id = ObjectRef::new(&id.namespace, &self.spec.issuer_ref.name);
        match view.issuer(&issuer_id) {
            None => verdict.deny(
                "spec.issuerRef.name",
                format!("Issuer {issuer_id} does not exist; create it first, or fix the name"),
            ),
            Some(issuer) => {
                if let (Some(p), Some(left)) = (&compiled, issuer.facts.lifetime.remaining(view.now())) {
                    outlived_by_issuer(p, &issuer_id, left, &mut verdict);
                }
            }
        }
        if let Some(p) = &compiled {
            fits_its_endpoints(p, &id, view, &mut verdict);
        }
        if let Some(old) = old {
            issuer_switch_warning(self, old, &mut verdict);
        }
        verdict
    }
}

/// Keys the CA cannot verify a CSR signature of can never be issued for.
fn keys_are_verifiable(profile: &CertificateProfile, verdict: &mut Verdict) {
    let Some(keys) = &profile.spec.keys else { return };
    if keys.algorithms.contains(&KeyFamilyName::Ecdsa)
        && let Some(i) = keys.ecdsa_curves.iter().position(|c| *c == CurveName::P521)
    {
        verdict.deny(
            format!("spec.keys.ecdsaCurves[{i}]"),
            "the CA cannot verify CSR signatures made with P-521 keys, so every such request would fail; allow P-256 or P-384",
        );
    }
    if keys.algorithms.contains(&KeyFamilyName::Rsa) && keys.rsa_max_bits > MAX_VERIFIABLE_RSA_BITS {
        verdict.deny(
            "spec.keys.rsaMaxBits",
            format!(
                "{} bits: the CA verifies CSR signatures of RSA keys up to {MAX_VERIFIABLE_RSA_BITS} bits",
                keys.rsa_max_bits
            ),
        );
    }
}

/// No certificate may outlive its Issuer: validity.duration and validity.max must fit in
/// the Issuer's remaining lifetime.
fn outlived_by_issuer(p: &Profile, issuer: &ObjectRef, left: std::time::Duration, verdict: &mut Verdict) {
    let (field, asked) = if p.validity.duration > left {
        ("spec.validity.duration", p.validity.duration)
    } else if p.validity.max > left {
        ("spec.validity.max", p.validity.max)
    } else {
        return;
    };
    verdict.deny(
        field,
        format!(
            "{} is longer than Issuer {issuer} has left ({}): certificates would be cut short at the issuer's notAfter; \
             shorten the validity or renew the issuer",
            format_duration(asked),
            format_duration(left)
        ),
    );
}

/// The endpoints exposing this profile must be able to use it (their side of each rule is
/// in the endpoint module; this catches a profile changed under an endpoint).
fn fits_its_endpoints(compiled: &Profile, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    for endpoint in view.endpoints() {
        let endpoint_id = object_id(&endpoint.metadata);
        if endpoint_id.namespace != id.namespace || !endpoint.spec.profiles.iter().any(|b| b.name == id.name) {
            continue;
        }
        if endpoint.spec.protocol == EndpointProtocol::Acme
            && let Some(why) = super::endpoint::lacks_server_auth(compiled)
        {
            verdict
                .deny("spec.extendedKeyUsage", format!("ACME endpoint {endpoint_id} exposes this profile, but {why}"));
        }
        if endpoint.spec.protocol == EndpointProtocol::Scep
            && let Some(why) = super::endpoint::scep_needs_rsa(compiled)
        {
            verdict
                .deny("spec.keys.algorithms", format!("SCEP endpoint {endpoint_id} exposes this profile, but {why}"));
        }
    }
}

/// Switching Issuers leaves the certificates of the old one behind.
fn issuer_switch_warning(new: &CertificateProfile, old: &CertificateProfile, verdict: &mut Verdict) {
    if new.spec.issuer_ref.name == old.spec.issuer_ref.name {
        return;
    }
    let active = old.status.as_ref().map_or(0, |s| s.active);
    if active > 0 {
        verdict.warn(format!(
            "switching spec.issuerRef from {} to {} strands {}: they stay valid under {} until they expire or are \
             revoked, and renew under {}",
            old.spec.issuer_ref.name,
            new.spec.issuer_ref.name,
            certificates(active),
            old.spec.issuer_ref.name,
            new.spec.issuer_ref.name
        ));
    }
}
