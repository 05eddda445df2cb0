//! The CMP endpoint's configuration, built from an `EnrollmentEndpoint` resource.

use std::collections::BTreeMap;
use std::time::Duration;

use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, ImplicitConfirm};
use pkiplane_api::{EndpointHead, FieldError, SecretLookup};
use pkiplane_core::ObjectRef;
use pkiplane_core::x509::pem;
use zeroize::Zeroizing;

use crate::protection::mac::MacLimits;

/// One exposed profile: the path label (`/.well-known/cmp/p/<label>`) and the
/// CertificateProfile behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedProfile {
    pub label: String,
    pub profile: ObjectRef,
}

/// A pre-shared MAC secret. Never printed.
#[derive(Clone)]
pub struct SharedSecret(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Shortest shared secret accepted.
pub const MIN_SECRET_LEN: usize = 8;

/// Everything the CMP server needs to know about its endpoint.
#[derive(Clone, Debug)]
pub struct CmpConfig {
    pub endpoint: ObjectRef,
    /// Absolute URL the server is reached at, without a trailing slash.
    pub base_url: String,
    pub profiles: Vec<ExposedProfile>,
    /// The label served at `/.well-known/cmp` (no label in the path).
    pub default_profile: Option<String>,
    /// senderKID -> secret, for MAC-based protection.
    pub shared_secrets: BTreeMap<String, SharedSecret>,
    /// Trusted CA certificates (DER) for signature-based protection by certificates
    /// pkiplane did not issue (IDevIDs).
    pub trust_anchor_certs: Vec<Vec<u8>>,
    /// Issuers whose certificate and chain are trusted the same way.
    pub trust_anchor_issuers: Vec<ObjectRef>,
    /// Grant implicitConfirm when a client asks for it.
    pub implicit_confirm: bool,
    /// How long the server waits for certConf (RFC 9810 section 5.3.18).
    pub confirm_wait: Duration,
    /// Largest request body accepted.
    pub max_message_bytes: usize,
    /// Largest difference between a request's messageTime and the server clock.
    pub max_clock_skew: Duration,
    /// Bound on handling one HTTP request.
    pub request_timeout: Duration,
    pub mac_limits: MacLimits,
    /// checkAfter of pollRep and of the waiting status.
    pub poll_interval: Duration,
    /// How long a waiting (polling) transaction stays open.
    pub polling_horizon: Duration,
    /// How long closed transactions (and so their transactionIDs) are kept.
    pub retention: Duration,
    /// Lifetime of the CMP protection certificates the server issues itself.
    pub signer_lifetime: Duration,
}

impl CmpConfig {
    /// A configuration with defaults: implicitConfirm allowed, 5 minute confirmation
    /// wait, 256 KiB messages, 5 minutes of clock skew.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = match profiles.as_slice() {
            [only] => Some(only.label.clone()),
            _ => None,
        };
        Self {
            endpoint,
            base_url: base_url.trim_end_matches('/').to_owned(),
            profiles,
            default_profile,
            shared_secrets: BTreeMap::new(),
            trust_anchor_certs: Vec::new(),
            trust_anchor_issuers: Vec::new(),
            implicit_confirm: true,
            confirm_wait: Duration::from_secs(300),
            max_message_bytes: 256 * 1024,
            max_clock_skew: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            mac_limits: MacLimits::default(),
            poll_interval: Duration::from_secs(5),
            polling_horizon: Duration::from_secs(86_400),
            retention: Duration::from_secs(86_400),
            signer_lifetime: Duration::from_secs(30 * 86_400),
        }
    }

    /// The profile exposed under `label`.
    pub fn profile(&self, label: &str) -> Option<&ExposedProfile> {
        self.profiles.iter().find(|p| p.label == label)
    }

    /// The profile at `/.well-known/cmp`.
    pub fn default(&self) -> Option<&ExposedProfile> {
        self.default_profile.as_deref().and_then(|l| self.profile(l))
    }

    /// The CMP URL of a label (`None`: the default path).
    pub fn url(&self, label: Option<&str>) -> String {
        match label {
            Some(l) => format!("{}/.well-known/cmp/p/{l}", self.base_url),
            None => format!("{}/.well-known/cmp", self.base_url),
        }
    }

    /// The URLs to announce: `/.well-known/cmp` when there is a default profile, then
    /// one `/.well-known/cmp/p/<label>` per exposed profile.
    pub fn urls(&self) -> Vec<String> {
        let default = self.default().map(|_| self.url(None));
        default.into_iter().chain(self.profiles.iter().map(|p| self.url(Some(&p.label)))).collect()
    }

    /// Builds the configuration of a CMP EnrollmentEndpoint.
    ///
    /// Shared secrets come from the Secret named by `cmp.sharedSecrets.secretRef`: each
    /// entry's key is a senderKID, its value the secret (raw bytes, at least
    /// [`MIN_SECRET_LEN`]). Trust anchors come from a Secret's `ca.crt` (PEM) or an
    /// Issuer, resolved at request time so an Issuer's current chain applies.
    pub fn from_resource(
        endpoint: &EnrollmentEndpoint,
        secrets: &impl SecretLookup,
        base_url: &str,
    ) -> Result<CmpConfig, Vec<FieldError>> {
        let mut errors = Vec::new();
        let head = EndpointHead::read(endpoint, EndpointProtocol::Cmp, base_url, &mut errors)?;
        let namespace = head.id.namespace.clone();
        let spec = &endpoint.spec;
        let profiles = head.profiles.into_iter().map(|(label, profile)| ExposedProfile { label, profile }).collect();
        let mut config = CmpConfig::new(head.id, base_url, profiles);
        config.default_profile = head.default_label;
        let cmp = spec.cmp.clone().unwrap_or_default();
        config.implicit_confirm = cmp.implicit_confirm == ImplicitConfirm::Allowed;
        if let Some(w) = &cmp.confirm_wait_time {
            match pkiplane_core::duration::parse_duration(w) {
                Ok(d) if d > Duration::ZERO => config.confirm_wait = d,
                Ok(_) => errors.push(FieldError::new("spec.cmp.confirmWaitTime", "must be positive")),
                Err(e) => errors.push(FieldError::new("spec.cmp.confirmWaitTime", e)),
            }
        }
        if let Some(s) = &cmp.shared_secrets {
            let at = "spec.cmp.sharedSecrets.secretRef";
            match secrets.secret_data(&namespace, &s.secret_ref.name) {
                None => errors.push(FieldError::new(at, format!("Secret {namespace}/{} not found", s.secret_ref.name))),
                Some(data) => {
                    for (kid, value) in data {
                        if value.len() < MIN_SECRET_LEN {
                            errors.push(FieldError::new(
                                at,
                                format!("the secret of senderKID `{kid}` is shorter than {MIN_SECRET_LEN} bytes"),
                            ));
                        }
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
                        None => {
                            errors.push(FieldError::new(at, format!("Secret {namespace}/{} has no ca.crt", s.name)))
                        }
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
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkiplane_api::Manifests;

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
        let c = CmpConfig::from_resource(&m.endpoints[0], &m, "http://127.0.0.1:8084/").unwrap();
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
        let e = CmpConfig::from_resource(&m.endpoints[0], &m, "http://x").unwrap_err();
        assert!(e[0].message.contains("shorter than 8 bytes"), "{e:?}");
        let m = load("apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: pki}\nstringData: {a: b}\n");
        let e = CmpConfig::from_resource(&m.endpoints[0], &m, "http://x").unwrap_err();
        assert_eq!(e[0].path, "spec.cmp.sharedSecrets.secretRef");
    }
}
