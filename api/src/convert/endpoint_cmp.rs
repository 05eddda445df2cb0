//! `EnrollmentEndpoint` (protocol CMP) -> [`CmpSettings`].

use pkiplane_cmp::settings::{CmpSettings, SharedSecret};
use pkiplane_core::ObjectRef;
use pkiplane_core::x509::pem;
use zeroize::Zeroizing;

use super::{EndpointHead, FieldError};
use crate::SecretLookup;
use crate::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, ImplicitConfirm};

/// The settings of a CMP EnrollmentEndpoint served at `base_url`.
///
/// Shared secrets come from the Secret named by `cmp.sharedSecrets.secretRef`: each
/// entry's key is a senderKID, its value the secret (raw bytes, at least
/// [`MIN_SECRET_LEN`](pkiplane_cmp::settings::MIN_SECRET_LEN)). Trust anchors come from a Secret's `ca.crt` (PEM) or an
/// Issuer, resolved at request time so an Issuer's current chain applies.
pub fn cmp_settings(
    endpoint: &EnrollmentEndpoint,
    secrets: &impl SecretLookup,
    base_url: &str,
) -> Result<CmpSettings, Vec<FieldError>> {
    let mut errors = Vec::new();
    let head = EndpointHead::read(endpoint, EndpointProtocol::Cmp, base_url, &mut errors)?;
    let namespace = head.id.namespace.clone();
    let spec = &endpoint.spec;
    let mut config = CmpSettings::new(head.id, base_url, head.profiles);
    config.default_profile = head.default_label;
    let cmp = spec.cmp.clone().unwrap_or_default();
    config.implicit_confirm = cmp.implicit_confirm == ImplicitConfirm::Allowed;
    if let Some(w) = &cmp.confirm_wait_time {
        match pkiplane_core::duration::parse_duration(w) {
            Ok(d) => config.confirm_wait = d,
            Err(e) => errors.push(FieldError::new("spec.cmp.confirmWaitTime", e)),
        }
    }
    if let Some(s) = &cmp.shared_secrets {
        let at = "spec.cmp.sharedSecrets.secretRef";
        match secrets.secret_data(&namespace, &s.secret_ref.name) {
            None => errors.push(FieldError::new(at, format!("Secret {namespace}/{} not found", s.secret_ref.name))),
            Some(data) => {
                for (kid, value) in data {
                    config.shared_secrets.insert(kid, SharedSecret(Zeroizing::new(value)));
                }
            }
        }
    }
    if let Some(t) = &cmp.trust_anchors {
        let at = "spec.cmp.trustAnchors";
        if let Some(s) = &t.secret_ref {
            match secrets.secret_data(&namespace, &s.name) {
                None => errors.push(FieldError::new(at, format!("Secret {namespace}/{} not found", s.name))),
                Some(data) => match data.get("ca.crt").map(|pem_text| pem::decode_chain(pem_text, "CERTIFICATE")) {
                    None => errors.push(FieldError::new(at, format!("Secret {namespace}/{} has no ca.crt", s.name))),
                    Some(Err(e)) => errors.push(FieldError::new(at, format!("ca.crt: {e}"))),
                    Some(Ok(certs)) if certs.is_empty() => {
                        errors.push(FieldError::new(at, "ca.crt holds no certificate"))
                    }
                    Some(Ok(certs)) => config.trust_anchor_certs = certs,
                },
            }
        }
        if let Some(i) = &t.issuer_ref {
            config.trust_anchor_issuers.push(ObjectRef::new(&namespace, &i.name));
        }
    }
    errors.extend(config.check());
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use pkiplane_core::ObjectRef;

    use crate::Manifests;

    const ENDPOINT: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: EnrollmentEndpoint
metadata: {name: cmp, namespace: pki}
spec:
  protocol: CMP
  profiles: [{name: tls, default: true}, {name: device, label: dev}]
  cmp:
    sharedSecrets: {secretRef: {name: secrets}}
    trustAnchors: {issuerRef: {name: manufacturer}}
    implicitConfirm: Never
    confirmWaitTime: 2m
"#;

    fn load(secret: &str) -> Manifests {
        Manifests::from_yaml(&format!("{ENDPOINT}---\n{secret}"), "t.yaml").unwrap()
    }

    #[test]
    fn reads_secrets_anchors_and_knobs() {
        let m = load(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: secrets, namespace: pki}\nstringData: {dev-1: long-enough-secret}\n",
        );
        let c = cmp_settings(&m.endpoints[0], &m, "http://127.0.0.1:8084/").unwrap();
        assert_eq!(c.url(Some("dev")), "http://127.0.0.1:8084/.well-known/cmp/p/dev");
        assert_eq!(c.urls().len(), 3, "the default path and one per label");
        assert_eq!(c.default().unwrap().label, "tls");
        assert!(!c.implicit_confirm);
        assert_eq!(c.confirm_wait, Duration::from_secs(120));
        assert_eq!(c.trust_anchor_issuers, [ObjectRef::new("pki", "manufacturer")]);
        assert_eq!(format!("{:?}", c.shared_secrets), "{\"dev-1\": <redacted>}");
    }

    #[test]
    fn refuses_short_or_missing_secrets() {
        let m = load(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: secrets, namespace: pki}\nstringData: {dev-1: short}\n",
        );
        let e = cmp_settings(&m.endpoints[0], &m, "http://x").unwrap_err();
        assert!(e[0].message.contains("shorter than 8 bytes"), "{e:?}");
        let m = load("apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: pki}\nstringData: {a: b}\n");
        let e = cmp_settings(&m.endpoints[0], &m, "http://x").unwrap_err();
        assert_eq!(e[0].path, "spec.cmp.sharedSecrets.secretRef");
    }
}
