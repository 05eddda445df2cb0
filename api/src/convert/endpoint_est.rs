//! `EnrollmentEndpoint` (protocol EST) -> [`EstSettings`].

use std::collections::BTreeMap;

use pkiplane_core::ObjectRef;
use pkiplane_core::service::Authority;
use pkiplane_est::settings::{BasicAuthConfig, ClientCertAuth, EstSettings, Password, anchors_from_pem};
use zeroize::Zeroizing;

use super::{EndpointHead, FieldError};
use crate::SecretLookup;
use crate::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, TrustAnchors};

/// The settings of an EST EnrollmentEndpoint served at `base_url`. Trust anchors from an
/// `issuerRef` are that Issuer's certificate and the chain above it, read through
/// `issuer_chain` (the Issuer's certificate first); from a `secretRef`, the PEM certificates under
/// `ca.crt`. Basic accounts are the entries of `basicAuth.secretRef`.
pub fn est_settings(
    endpoint: &EnrollmentEndpoint,
    secrets: &impl SecretLookup,
    issuer_chain: &dyn Fn(&ObjectRef) -> Option<Vec<Vec<u8>>>,
    base_url: &str,
) -> Result<EstSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let head = EndpointHead::read(endpoint, EndpointProtocol::Est, base_url, &mut errors)?;
    let namespace = head.id.namespace.clone();
    let spec = &endpoint.spec;
    let mut config = EstSettings::new(head.id, base_url, head.profiles);
    config.default_profile = head.default_label;
    let est = spec.est.clone().unwrap_or_default();
    config.require_channel_binding = est.require_channel_binding;
    if let Some(cc) = &est.client_certificates {
        let at = "spec.est.clientCertificates.trustAnchors";
        match trust_anchors(&cc.trust_anchors, &namespace, secrets, issuer_chain) {
            Ok(auth) => config.client_certs = Some(auth),
            Err(msg) => errors.push(FieldError::new(at, msg)),
        }
    }
    if let Some(basic) = &est.basic_auth {
        let at = "spec.est.basicAuth.secretRef";
        match secrets.secret_data(&namespace, &basic.secret_ref.name) {
            None => errors.push(FieldError::new(at, format!("Secret {namespace}/{} not found", basic.secret_ref.name))),
            Some(data) if data.is_empty() => {
                errors.push(FieldError::new(at, "the Secret has no entries (each key is a username)"))
            }
            Some(data) => {
                let mut users = BTreeMap::new();
                for (user, password) in data {
                    users.insert(user, Password(Zeroizing::new(password)));
                }
                config.basic = Some(BasicAuthConfig { users });
            }
        }
    }
    errors.extend(config.check());
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

/// Resolves trust anchors to DER certificates.
fn trust_anchors(
    t: &TrustAnchors,
    namespace: &str,
    secrets: &impl SecretLookup,
    issuer_chain: &dyn Fn(&ObjectRef) -> Option<Vec<Vec<u8>>>,
) -> Result<ClientCertAuth, String> {
    match (&t.secret_ref, &t.issuer_ref) {
        (Some(secret), None) => {
            let data = secrets
                .secret_data(namespace, &secret.name)
                .ok_or_else(|| format!("Secret {namespace}/{} not found", secret.name))?;
            let pem_text =
                data.get("ca.crt").ok_or_else(|| format!("Secret {namespace}/{} has no `ca.crt`", secret.name))?;
            let anchors = anchors_from_pem(pem_text, &format!("Secret {namespace}/{} ca.crt", secret.name))?;
            Ok(ClientCertAuth { anchors, source: format!("Secret {namespace}/{}", secret.name) })
        }
        (None, Some(issuer)) => {
            let id = ObjectRef::new(namespace, &issuer.name);
            let anchors = issuer_chain(&id).ok_or_else(|| format!("Issuer {id} is not loaded"))?;
            Ok(ClientCertAuth { anchors, source: format!("Issuer {id}") })
        }
        _ => Err("set exactly one of secretRef or issuerRef".into()),
    }
}

/// The chain of an Issuer loaded in `ca` (its certificate first), for [`est_settings`].
pub fn loaded_issuer_chain(ca: &dyn Authority, id: &ObjectRef) -> Option<Vec<Vec<u8>>> {
    let issuer = ca.issuer(id)?;
    Some(std::iter::once(&issuer.cert).chain(issuer.chain.iter()).map(|c| c.der.clone()).collect())
}

/// The chain an Issuer has published on its status (its certificate first), for
/// [`est_settings`] where no CA is loaded (the admission webhook). `None` until the
/// Issuer is Ready, or when the status does not parse.
pub fn published_issuer_chain(issuer: &crate::v1alpha1::Issuer) -> Option<Vec<Vec<u8>>> {
    let status = issuer.status.as_ref()?;
    let mut pem_text = status.certificate.clone()?;
    pem_text.push_str(status.chain.as_deref().unwrap_or(""));
    anchors_from_pem(pem_text.as_bytes(), "the Issuer's status").ok()
}
