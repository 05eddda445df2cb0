//! EnrollmentEndpoint: the exposed profiles exist and suit the protocol (SCEP
//! containment, RSA for SCEP, serverAuth for ACME), the TLS settings and trust anchors
//! name objects that exist, and the protocol's authentication is configured (in
//! `endpoint_auth`). Removing a profile warns about the certificates it strands.

use pkiplane_api::check_endpoint;
use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};
use pkiplane_core::ObjectRef;
use pkiplane_core::keys::KeyFamily;
use pkiplane_core::profile::Profile;
use pkiplane_core::x509::eku_from_name;

use super::{Validate, certificates, endpoint_auth};
use crate::{ClusterView, Verdict, object_id};

impl Validate for EnrollmentEndpoint {
    const KIND: &'static str = "EnrollmentEndpoint";

    fn validate(&self, old: Option<&Self>, view: &ClusterView) -> Verdict {
        let mut verdict = Verdict::default();
        if let Err(errors) = check_endpoint(self) {
            verdict.deny_all(errors);
        }
        let id = object_id(&self.metadata);
        let exposed = exposed_profiles(self, &id, view, &mut verdict);
        match self.spec.protocol {
            EndpointProtocol::Acme => {
                for (i, p) in &exposed {
                    if let Some(why) = lacks_server_auth(p) {
                        verdict.deny(format!("spec.profiles[{i}].name"), format!("profile {}: {why}", p.id.name));
                    }
                }
            }
            EndpointProtocol::Scep => scep_containment(self, &exposed, view, &mut verdict),
            EndpointProtocol::Est | EndpointProtocol::Cmp => {}
        }
        for (i, p) in &exposed {
            requester_warnings(self, &id, *i, p, &mut verdict);
        }
        tls_references(self, &id, view, &mut verdict);
        endpoint_auth::check(self, &id, view, &mut verdict);
        if let Some(old) = old {
            removal_warnings(self, old, &mut verdict);
        }
        verdict
    }
}

/// The compiled profiles the endpoint exposes, by index in spec.profiles; a missing one
/// is a denial.
fn exposed_profiles<'v>(
    endpoint: &EnrollmentEndpoint,
    id: &ObjectRef,
    view: &'v ClusterView,
    verdict: &mut Verdict,
) -> Vec<(usize, &'v Profile)> {
    let mut out = Vec::new();
    for (i, binding) in endpoint.spec.profiles.iter().enumerate() {
        let profile_id = ObjectRef::new(&id.namespace, &binding.name);
        match view.profile(&profile_id) {
            None => verdict.deny(
                format!("spec.profiles[{i}].name"),
                format!("CertificateProfile {profile_id} does not exist; create it first, or fix the name"),
            ),
            Some(entry) => match &entry.compiled {
                Some(p) => out.push((i, p.as_ref())),
                None => verdict.warn(format!(
                    "CertificateProfile {profile_id} (spec.profiles[{i}]) is invalid, so this endpoint cannot serve it"
                )),
            },
        }
    }
    out
}

/// Why a profile cannot carry TLS server certificates, if it cannot.
pub(crate) fn lacks_server_auth(p: &Profile) -> Option<String> {
    let server_auth = eku_from_name("serverAuth")?;
    (!p.extended_key_usage.is_empty() && !p.extended_key_usage.contains(&server_auth)).then(|| {
        "its extendedKeyUsage lacks serverAuth, and ACME issues TLS server certificates, which TLS clients reject \
         without it; add serverAuth or expose another profile"
            .to_string()
    })
}

/// Why a profile cannot be used over SCEP, if it cannot: SCEP encrypts its reply to the
/// requester's key, which must be RSA.
pub(crate) fn scep_needs_rsa(p: &Profile) -> Option<String> {
    (!p.keys.families.contains(&KeyFamily::Rsa)).then(|| {
        "it allows no RSA keys, and SCEP encrypts its reply to the requester's key, which must be RSA".to_string()
    })
}

/// The SCEP server's containment rules: one Issuer behind all profiles (GetCACert names
/// one CA), RSA keys, and no profile longer than the SCEP validity cap without
/// `spec.scep.allowLongValidity`.
fn scep_containment(
    endpoint: &EnrollmentEndpoint,
    exposed: &[(usize, &Profile)],
    view: &ClusterView,
    verdict: &mut Verdict,
) {
    let allow_long = endpoint.spec.scep.as_ref().is_some_and(|s| s.allow_long_validity);
    let cap = pkiplane_scep::settings::DEFAULT_VALIDITY_CAP;
    let first_issuer = exposed.first().map(|(_, p)| &p.issuer);
    for (i, p) in exposed {
        let field = format!("spec.profiles[{i}].name");
        if let Some(why) = pkiplane_scep::containment::too_long(&p.id.name, p, cap, allow_long) {
            verdict.deny(&field, why);
        }
        if let Some(why) = first_issuer.and_then(|first| pkiplane_scep::containment::other_issuer(&p.id.name, p, first))
        {
            verdict.deny(&field, why);
        }
        if let Some(why) = scep_needs_rsa(p) {
            verdict.deny(&field, format!("profile {}: {why}", p.id.name));
        }
    }
    // The other endpoints by reference: this runs for every endpoint reviewed, and a
    // cluster may hold thousands.
    let id = object_id(&endpoint.metadata);
    let others = view.endpoints().filter(|e| object_id(&e.metadata) != id);
    for w in pkiplane_api::convert::shared_profile_warnings(endpoint, others.chain([endpoint])) {
        verdict.warn(w);
    }
}

/// Profiles whose requester rules shut this endpoint out serve nobody here.
fn requester_warnings(endpoint: &EnrollmentEndpoint, id: &ObjectRef, i: usize, p: &Profile, verdict: &mut Verdict) {
    let protocol = endpoint.spec.protocol.core();
    let r = &p.requesters;
    if !r.protocols.is_empty() && !r.protocols.contains(&protocol) {
        verdict.warn(format!(
            "spec.profiles[{i}]: profile {} admits requests only through {}, so this {protocol} endpoint will be denied every request for it",
            p.id.name,
            r.protocols.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    if !r.endpoints.is_empty() && !r.endpoints.contains(id) {
        verdict.warn(format!(
            "spec.profiles[{i}]: profile {}'s spec.requesters.endpoints does not list {id}, so every request through this endpoint will be denied",
            p.id.name
        ));
    }
}

/// The Issuer or Secret behind the TLS server certificate exists.
fn tls_references(endpoint: &EnrollmentEndpoint, id: &ObjectRef, view: &ClusterView, verdict: &mut Verdict) {
    let Some(tls) = &endpoint.spec.tls else { return };
    if let Some(issuer) = &tls.issuer_ref {
        let issuer_id = ObjectRef::new(&id.namespace, &issuer.name);
        if view.issuer(&issuer_id).is_none() {
            verdict.deny(
                "spec.tls.issuerRef.name",
                format!("Issuer {issuer_id} does not exist, so no TLS server certificate can be issued"),
            );
        }
    }
    if let Some(secret) = &tls.secret_ref {
        endpoint_auth::secret_with_keys(
            view,
            &id.namespace,
            &secret.name,
            &["tls.crt", "tls.key"],
            "spec.tls.secretRef.name",
            verdict,
        );
    }
}

/// Profiles dropped from the endpoint leave their active certificates without the
/// endpoint that renews them.
fn removal_warnings(new: &EnrollmentEndpoint, old: &EnrollmentEndpoint, verdict: &mut Verdict) {
    let Some(status) = &old.status else { return };
    for counts in &status.profiles {
        let still_exposed = new.spec.profiles.iter().any(|b| b.name == counts.profile && b.label() == counts.name);
        if !still_exposed && counts.active > 0 {
            verdict.warn(format!(
                "removing profile {} (exposed as `{}`) from this endpoint strands {}: they stay valid, but their \
                 holders cannot renew them here",
                counts.profile,
                counts.name,
                certificates(counts.active)
            ));
        }
    }
}
