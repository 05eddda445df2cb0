//! The SCEP endpoint's settings (`pkiplane-api` builds them from an `EnrollmentEndpoint`
//! resource: `api/src/convert/endpoint_scep.rs`).
//!
//! Secrets (the static challenge, the challenge API's bearer tokens) are held in
//! [`ReloadableSecret`] / [`ApiTokens`] cells: [`ScepSettings::reload_secrets`] re-reads
//! them from the Secrets, and a running server uses the new values at the next request,
//! so a rotated challenge needs no restart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::settings::FieldError;
use zeroize::Zeroizing;

/// The Secret key holding a static challenge (`spec.scep.staticChallenge.secretRef`).
pub const STATIC_CHALLENGE_KEY: &str = "challenge";
/// Longest certificate lifetime a SCEP endpoint exposes without `allowLongValidity`.
pub const DEFAULT_VALIDITY_CAP: Duration = Duration::from_secs(365 * 86_400);

pub use pkiplane_core::settings::ExposedProfile;

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

/// Reads a Secret's entries: (namespace, name) -> key -> value, or None when missing.
pub type SecretReader<'a> = dyn Fn(&str, &str) -> Option<BTreeMap<String, Vec<u8>>> + 'a;

/// One-time challenges.
#[derive(Clone, Debug)]
pub struct DynamicChallengeConfig {
    /// How long a minted challenge stays usable.
    pub ttl: Duration,
    pub api_tokens: Arc<ApiTokens>,
}

/// Everything the SCEP server needs to know about its endpoint.
#[derive(Clone)]
pub struct ScepSettings {
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
    /// Secrets re-read by [`ScepSettings::reload_secrets`].
    static_secret: Option<String>,
    api_secret: Option<String>,
    /// The cell `static_challenge_from` made for the static challenge (what reloads update).
    static_cell: Option<Arc<ReloadableSecret>>,
}

impl std::fmt::Debug for ScepSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScepSettings")
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

impl ScepSettings {
    /// A configuration with defaults and no challenges.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = pkiplane_core::settings::default_label(&profiles);
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

    /// Takes the static challenge from the `challenge` entry of Secret `secret` (in the
    /// endpoint's namespace), read by [`Self::reload_secrets`].
    pub fn static_challenge_from(&mut self, secret: &str) {
        self.static_secret = Some(secret.to_owned());
        let cell = Arc::new(ReloadableSecret::default());
        self.static_cell = Some(cell.clone());
        self.static_challenge = Some(cell);
    }

    /// Enables one-time challenges living `ttl`, minted by the API clients whose tokens
    /// are the entries of Secret `api_secret` (read by [`Self::reload_secrets`]).
    pub fn dynamic_challenges_from(&mut self, ttl: Duration, api_secret: Option<&str>) {
        self.api_secret = api_secret.map(str::to_owned);
        self.dynamic_challenges = Some(DynamicChallengeConfig { ttl, api_tokens: Arc::new(ApiTokens::default()) });
    }

    /// The rules these settings must meet whatever resource they came from: a default
    /// profile (SCEP URLs name none) and a way to authenticate PKCSReq. Paths name the
    /// `EnrollmentEndpoint` fields.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.default_profile.is_none() {
            errors.push(FieldError::new(
                "spec.profiles",
                "SCEP URLs name no profile: mark one profile `default: true` (others are reached at /scep/p/<label>)",
            ));
        }
        if self.static_challenge.is_none() && self.dynamic_challenges.is_none() {
            errors.push(FieldError::new(
                "spec.scep",
                "a SCEP endpoint needs staticChallenge or enabled dynamicChallenges to authenticate PKCSReq",
            ));
        }
        errors
    }

    /// Re-reads the static challenge and the API tokens from their Secrets (`secrets`:
    /// namespace, name -> entries); a running
    /// server uses the new values from its next request. Returns the problems found (the
    /// values that could not be read are left unset, so nothing stale stays valid).
    pub fn reload_secrets(&self, secrets: &SecretReader) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let ns = &self.endpoint.namespace;
        if let (Some(name), Some(cell)) = (&self.static_secret, &self.static_cell) {
            let path = "spec.scep.staticChallenge.secretRef";
            let value = match secrets(ns, name) {
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
            match secrets(ns, name) {
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
