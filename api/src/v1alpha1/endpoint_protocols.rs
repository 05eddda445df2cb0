//! Per-protocol settings of an EnrollmentEndpoint: how requesters authenticate and the
//! protocol's own knobs. Every section is optional; defaults are in each field's text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, SecretRef, TrustAnchors};

/// ACME (RFC 8555) settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcmeSettings {
    /// External account binding (RFC 8555 section 7.3.4): new accounts prove they hold a
    /// key ID and HMAC key handed out beforehand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<ExternalAccountBinding>,
    /// Challenge types offered for identifier validation: http-01, dns-01, tls-alpn-01.
    /// Default all three (tls-alpn-01 only for DNS identifiers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub challenges: Vec<AcmeChallenge>,
    /// Port the server connects to for http-01 validation. Default 80; tests on loopback
    /// use a high port.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "http01Port")]
    #[schemars(range(min = 1, max = 65535))]
    pub http01_port: Option<i32>,
    /// Port the server connects to for tls-alpn-01 validation. Default 443.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "tlsAlpn01Port")]
    #[schemars(range(min = 1, max = 65535))]
    pub tls_alpn01_port: Option<i32>,
    /// DNS server validation asks, as "host:port", e.g. "10.96.0.10:53": dns-01's TXT
    /// records and the http-01 and tls-alpn-01 hosts' addresses, so one server answers for
    /// every challenge type. Default: the system resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 300))]
    pub dns_resolver: Option<String>,
    /// How long a valid authorization is reused for later orders of the same account,
    /// e.g. "24h". Default: not reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub authorization_reuse: Option<String>,
    /// How long an order (and its pending authorizations) stays open, e.g. "24h".
    /// Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub order_lifetime: Option<String>,
    /// URL of the terms of service clients must agree to, advertised in the directory's
    /// meta. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub terms_of_service: Option<String>,
    /// Where challenge validation may connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<AcmeValidation>,
}

/// Where challenge validation may connect. The validator refuses addresses in
/// special-purpose ranges (loopback, private, link-local, CGNAT, cloud metadata,
/// multicast, reserved...) by default, so that a client cannot make the server reach
/// into its own network through an identifier, a DNS record or a redirect.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcmeValidation {
    /// Special-purpose ranges validation may connect to anyway, as CIDRs (a bare address
    /// allows just itself), e.g. "10.0.0.0/8" for an internal PKI whose hosts live on a
    /// private network, "127.0.0.0/8" and "::1" for a test on loopback. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 64)))]
    pub allowed_target_ranges: Vec<String>,
}

/// ACME challenge types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum AcmeChallenge {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// External account binding.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.required) && self.required) || has(self.secretRef)",
    "message": "required external account binding needs secretRef"
}]))]
pub struct ExternalAccountBinding {
    /// New accounts must present a binding. Default false.
    #[serde(default)]
    pub required: bool,
    /// A Secret whose entries are the credentials: each key is a key ID, its value the
    /// HMAC key (raw bytes; clients get it base64url-encoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// A key ID may bind more than one account. Default false: each binds one.
    #[serde(default)]
    pub reusable: bool,
}

/// EST (RFC 7030) settings. With neither clientCertificates nor basicAuth, enrollment
/// is unauthenticated (protect it with profile approval).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EstSettings {
    /// Authenticate clients by TLS client certificate (an IDevID for first enrollment,
    /// the current certificate for re-enrollment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificates: Option<EstClientCertificates>,
    /// Authenticate clients by HTTP Basic credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Require the CSR to carry the TLS channel binding (tls-unique or tls-exporter) in
    /// its challengePassword, proving the CSR was made for this TLS session (RFC 7030
    /// section 3.5). Default false.
    #[serde(default)]
    pub require_channel_binding: bool,
}

/// TLS client certificate authentication.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EstClientCertificates {
    /// CAs whose certificates clients may authenticate with, e.g. the manufacturer's
    /// IDevID root.
    pub trust_anchors: TrustAnchors,
}

/// HTTP Basic credentials.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// A Secret whose entries are the accounts: each key is a username, its value the
    /// password.
    pub secret_ref: SecretRef,
}

/// SCEP (RFC 8894) settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScepSettings {
    /// One challenge password shared by all clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_challenge: Option<StaticChallenge>,
    /// One-time challenge passwords, each handed out for one enrollment through
    /// pkiplane's challenge API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_challenges: Option<DynamicChallenges>,
    /// Also accept the legacy algorithms many deployed SCEP clients still use (DES3
    /// content encryption, SHA-1 digests). Default false: AES and SHA-256 or better.
    #[serde(default)]
    pub legacy_algorithms: bool,
    /// Honour a validity period a client asks for, up to the profile's validity.max.
    /// Default false: the profile's validity.duration always applies.
    #[serde(default)]
    pub allow_long_validity: bool,
}

/// A static SCEP challenge password.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticChallenge {
    /// A Secret holding the password under the key `challenge`.
    pub secret_ref: SecretRef,
}

/// One-time SCEP challenge passwords.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.enabled) && self.enabled) || has(self.apiSecretRef)",
    "message": "dynamic challenges need apiSecretRef"
}]))]
pub struct DynamicChallenges {
    /// Hand out and accept one-time challenges. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// How long a challenge stays usable, e.g. "1h". Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub ttl: Option<String>,
    /// A Secret whose entries are the bearer tokens allowed to request challenges: each
    /// key names a client of the API (an MDM, say), its value is the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret_ref: Option<SecretRef>,
}

/// CMP (RFC 9810, lightweight profile RFC 9483) settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CmpSettings {
    /// MAC-based protection with pre-shared secrets (initial enrollment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secrets: Option<CmpSharedSecrets>,
    /// Signature-based protection: CAs whose certificates may sign requests (a device's
    /// IDevID, or its current certificate for key update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_anchors: Option<TrustAnchors>,
    /// Whether clients may ask to skip the certConf/pkiConf round trip. Allowed: the
    /// server grants implicitConfirm when asked. Never: every certificate must be
    /// confirmed. Default Allowed.
    #[serde(default)]
    pub implicit_confirm: ImplicitConfirm,
    /// How long the server waits for certConf before giving up on (and revoking) an
    /// unconfirmed certificate, e.g. "5m". Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub confirm_wait_time: Option<String>,
}

/// Pre-shared CMP secrets.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CmpSharedSecrets {
    /// A Secret whose entries are the secrets: each key is the reference value
    /// (senderKID) a client sends, its value the shared secret.
    pub secret_ref: SecretRef,
}

/// implicitConfirm handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ImplicitConfirm {
    #[default]
    Allowed,
    Never,
}
