//! The SCEP endpoint's configuration, built from an `EnrollmentEndpoint` resource.
//!
//! Secrets (the static challenge, the challenge API's bearer tokens) are held in
//! [`ReloadableSecret`] / [`ApiTokens`] cells: [`ScepConfig::reload_secrets`] re-reads
//! them from the Secrets, and a running server uses the new values at the next request,
//! so a rotated challenge needs no restart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};
use pkiplane_api::{EndpointHead, FieldError, SecretLookup};
use pkiplane_core::ObjectRef;
use zeroize::Zeroizing;

/// The Secret key holding a static challenge (`spec.scep.staticChallenge.secretRef`).
pub const STATIC_CHALLENGE_KEY: &str = "challenge";
/// Longest certificate lifetime a SCEP endpoint exposes without `allowLongValidity`.
pub const DEFAULT_VALIDITY_CAP: Duration = Duration::from_secs(365 * 86_400);

/// One exposed profile: its label and the CertificateProfile behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedProfile {
    pub label: String,
    pub profile: ObjectRef,
}

/// Where the static challenge comes from, read at every use.
pub trait StaticChallengeSource: Send + Sync {
    /// The current challenge, or None when none is configured now.
    fn current(&self) -> Option<Zeroizing<Vec<u8>>>;
}

/// A secret value that can be replaced while the server runs. `Debug` prints
/// `<redacted>`.
#[derive(Default)]
pub struct ReloadableSecret {
    value: RwLock<Option<Zeroizing<Vec<u8>>>>,
}

impl ReloadableSecret {
    pub fn new(value: Option<Vec<u8>>) -> Self {
        Self { value: RwLock::new(value.map(Zeroizing::new)) }
    }

    /// Replaces the value (None: no challenge is accepted until set again).
    pub fn set(&self, value: Option<Vec<u8>>) {
        *self.value.write().unwrap_or_else(|e| e.into_inner()) = value.map(Zeroizing::new);
    }
}

impl StaticChallengeSource for ReloadableSecret {
    fn current(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::fmt::Debug for ReloadableSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Bearer tokens of the challenge API: client name -> token. Reloadable; `Debug` shows
/// the client names only.
#[derive(Default)]
pub struct ApiTokens {
    tokens: RwLock<BTreeMap<String, Zeroizing<Vec<u8>>>>,
}

impl ApiTokens {
    pub fn new(tokens: BTreeMap<String, Vec<u8>>) -> Self {
        let t = Self::default();
        t.set(tokens);
        t
    }

    pub fn set(&self, tokens: BTreeMap<String, Vec<u8>>) {
        let tokens = tokens.into_iter().map(|(k, v)| (k, Zeroizing::new(v))).collect();
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
    }

    /// The client whose token equals `presented`, comparing against every token in
    /// constant time (no early exit).
    pub fn client_for(&self, presented: &[u8]) -> Option<String> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for (name, token) in tokens.iter() {
            if bool::from(subtle::ConstantTimeEq::ct_eq(token.as_slice(), presented)) && !token.is_empty() {
                found = Some(name.clone());
            }
        }
        found
    }
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.tokens.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        write!(f, "ApiTokens({names:?}, <redacted>)")
    }
}

/// One-time challenges.
#[derive(Clone, Debug)]
pub struct DynamicChallengeConfig {
    /// How long a minted challenge stays usable.
    pub ttl: Duration,
    pub api_tokens: Arc<ApiTokens>,
}

/// Everything the SCEP server needs to know about its endpoint.
#[derive(Clone)]
pub struct ScepConfig {
    pub endpoint: ObjectRef,
    /// Absolute URL without trailing slash, e.g. `http://127.0.0.1:8080`; the SCEP URL is
    /// `{base_url}/scep`.
    pub base_url: String,
    pub profiles: Vec<ExposedProfile>,
    /// The label used at `/scep` (a profile is chosen with `/scep/p/<label>`).
    pub default_profile: Option<String>,
    pub static_challenge: Option<Arc<dyn StaticChallengeSource>>,
    pub dynamic_challenges: Option<DynamicChallengeConfig>,
    /// DES-EDE3-CBC, DES-CBC and SHA-1 accepted (else badAlg).
    pub legacy_algorithms: bool,
    /// Lets profiles whose certificates outlive `validity_cap` be exposed.
    pub allow_long_validity: bool,
    pub validity_cap: Duration,
    /// How far a request's signingTime may be from the server's clock (badTime).
    pub signing_time_window: Duration,
    /// How long transactionID + senderNonce pairs, finished transactions and used
    /// challenges are remembered.
    pub replay_retention: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Bound on handling one request.
    pub request_timeout: Duration,
    /// Secrets re-read by [`ScepConfig::reload_secrets`].
    static_secret: Option<String>,
    api_secret: Option<String>,
    /// The cell `from_resource` made for the static challenge (what reloads update).
    static_cell: Option<Arc<ReloadableSecret>>,
}

impl std::fmt::Debug for ScepConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScepConfig")
            .field("endpoint", &self.endpoint)
            .field("base_url", &self.base_url)
            .field("profiles", &self.profiles)
            .field("default_profile", &self.default_profile)
            .field("static_challenge", &self.static_challenge.as_ref().map(|_| "<redacted>"))
            .field("dynamic_challenges", &self.dynamic_challenges)
            .field("legacy_algorithms", &self.legacy_algorithms)
            .field("allow_long_validity", &self.allow_long_validity)
            .finish_non_exhaustive()
    }
}

impl ScepConfig {
    /// A configuration with defaults and no challenges.
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
            static_challenge: None,
            dynamic_challenges: None,
            legacy_algorithms: false,
            allow_long_validity: false,
            validity_cap: DEFAULT_VALIDITY_CAP,
            signing_time_window: Duration::from_secs(24 * 3600),
            replay_retention: Duration::from_secs(7 * 86_400),
            max_body: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            static_secret: None,
            api_secret: None,
            static_cell: None,
        }
    }

    /// The profile named by `label`, or the default one.
    pub fn profile(&self, label: Option<&str>) -> Option<&ExposedProfile> {
        let label = label.or(self.default_profile.as_deref())?;
        self.profiles.iter().find(|p| p.label == label)
    }

    /// The SCEP URL clients are given.
    pub fn url(&self) -> String {
        format!("{}/scep", self.base_url)
    }

    /// Builds the configuration of a SCEP EnrollmentEndpoint. The static challenge is
    /// the `challenge` entry of `staticChallenge.secretRef`; the challenge API's tokens
    /// are every entry of `dynamicChallenges.apiSecretRef` (key: client name).
    pub fn from_resource(
        endpoint: &EnrollmentEndpoint,
        secrets: &impl SecretLookup,
        base_url: &str,
    ) -> Result<ScepConfig, Vec<FieldError>> {
        let mut errors = Vec::new();
        let head = EndpointHead::read(endpoint, EndpointProtocol::Scep, base_url, &mut errors)?;
        let spec = &endpoint.spec;
        let profiles = head.profiles.into_iter().map(|(label, profile)| ExposedProfile { label, profile }).collect();
        let mut config = ScepConfig::new(head.id, base_url, profiles);
        config.default_profile = head.default_label;
        if config.default_profile.is_none() {
            errors.push(FieldError::new(
                "spec.profiles",
                "SCEP URLs name no profile: mark one profile `default: true` (others are reached at /scep/p/<label>)",
            ));
        }
        let scep = spec.scep.clone().unwrap_or_default();
        config.legacy_algorithms = scep.legacy_algorithms;
        config.allow_long_validity = scep.allow_long_validity;
        if let Some(s) = &scep.static_challenge {
            config.static_secret = Some(s.secret_ref.name.clone());
            let cell = Arc::new(ReloadableSecret::default());
            config.static_cell = Some(cell.clone());
            config.static_challenge = Some(cell);
        }
        if let Some(d) = scep.dynamic_challenges.as_ref().filter(|d| d.enabled) {
            let ttl = match &d.ttl {
                None => Duration::from_secs(3600),
                Some(t) => pkiplane_core::duration::parse_duration(t).unwrap_or_else(|e| {
                    errors.push(FieldError::new("spec.scep.dynamicChallenges.ttl", e));
                    Duration::from_secs(3600)
                }),
            };
            config.api_secret = d.api_secret_ref.as_ref().map(|r| r.name.clone());
            config.dynamic_challenges =
                Some(DynamicChallengeConfig { ttl, api_tokens: Arc::new(ApiTokens::default()) });
        }
        if config.static_challenge.is_none() && config.dynamic_challenges.is_none() {
            errors.push(FieldError::new(
                "spec.scep",
                "a SCEP endpoint needs staticChallenge or enabled dynamicChallenges to authenticate PKCSReq",
            ));
        }
        errors.extend(config.reload_secrets(secrets));
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }

    /// Re-reads the static challenge and the API tokens from their Secrets; a running
    /// server uses the new values from its next request. Returns the problems found (the
    /// values that could not be read are left unset, so nothing stale stays valid).
    pub fn reload_secrets(&self, secrets: &impl SecretLookup) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let ns = &self.endpoint.namespace;
        if let (Some(name), Some(cell)) = (&self.static_secret, &self.static_cell) {
            let path = "spec.scep.staticChallenge.secretRef";
            let value = match secrets.secret_data(ns, name) {
                None => {
                    errors.push(FieldError::new(path, format!("Secret {ns}/{name} not found")));
                    None
                }
                Some(mut data) => match data.remove(STATIC_CHALLENGE_KEY) {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        errors.push(FieldError::new(
                            path,
                            format!("Secret {ns}/{name} has no non-empty `{STATIC_CHALLENGE_KEY}` entry"),
                        ));
                        None
                    }
                },
            };
            cell.set(value);
        }
        if let (Some(name), Some(d)) = (&self.api_secret, &self.dynamic_challenges) {
            let path = "spec.scep.dynamicChallenges.apiSecretRef";
            match secrets.secret_data(ns, name) {
                None => {
                    errors.push(FieldError::new(path, format!("Secret {ns}/{name} not found")));
                    d.api_tokens.set(BTreeMap::new());
                }
                Some(data) => {
                    if let Some((client, _)) = data.iter().find(|(_, v)| v.len() < 16) {
                        errors.push(FieldError::new(
                            path,
                            format!("the token of API client `{client}` is shorter than 16 bytes"),
                        ));
                    }
                    d.api_tokens.set(data.into_iter().filter(|(_, v)| v.len() >= 16).collect());
                }
            }
        }
        errors
    }
}
