//! The CMP endpoint's settings (`pkiplane-api` builds them from an `EnrollmentEndpoint`
//! resource: `api/src/convert/endpoint_cmp.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::settings::FieldError;
use zeroize::Zeroizing;

pub use pkiplane_core::settings::ExposedProfile;

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
pub struct CmpSettings {
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

impl CmpSettings {
    /// A configuration with defaults: implicitConfirm allowed, 5 minute confirmation
    /// wait, 256 KiB messages, 5 minutes of clock skew.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = pkiplane_core::settings::default_label(&profiles);
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

    /// The rules these settings must meet whatever resource they came from: a positive
    /// confirmation wait and MAC secrets of at least [`MIN_SECRET_LEN`] bytes. Paths name
    /// the `EnrollmentEndpoint` fields.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.confirm_wait == Duration::ZERO {
            errors.push(FieldError::new("spec.cmp.confirmWaitTime", "must be positive"));
        }
        for (kid, secret) in &self.shared_secrets {
            if secret.0.len() < MIN_SECRET_LEN {
                errors.push(FieldError::new(
                    "spec.cmp.sharedSecrets.secretRef",
                    format!("the secret of senderKID `{kid}` is shorter than {MIN_SECRET_LEN} bytes"),
                ));
            }
        }
        errors
    }
}

/// Bounds on the work a request may make the server do, and the least it must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacLimits {
    pub min_iterations: u32,
    pub max_iterations: u32,
}

impl Default for MacLimits {
    /// RFC 9481 section 6.1.1 asks for at least 100 PBM iterations; 100 000 bounds the
    /// cost of one request.
    fn default() -> Self {
        Self { min_iterations: 100, max_iterations: 100_000 }
    }
}
