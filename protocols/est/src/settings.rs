//! The EST endpoint's settings (`pkiplane-api` builds them from an `EnrollmentEndpoint`
//! resource's `spec.est`: `api/src/convert/endpoint_est.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use pkiplane_core::ObjectRef;
use pkiplane_core::settings::FieldError;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::pem;
use zeroize::Zeroizing;

pub use pkiplane_core::settings::ExposedProfile;

/// CA certificates that client certificates (IDevIDs) may chain to.
#[derive(Clone, Debug, Default)]
pub struct ClientCertAuth {
    /// Trusted CA certificates, DER.
    pub anchors: Vec<Vec<u8>>,
    /// Where they came from, for messages (e.g. `Issuer pki/manufacturer-root`).
    pub source: String,
}

/// A Basic password. Never printed.
#[derive(Clone)]
pub struct Password(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// HTTP Basic accounts: username -> password.
#[derive(Clone, Debug, Default)]
pub struct BasicAuthConfig {
    pub users: BTreeMap<String, Password>,
}

/// Bounds and timings.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body: usize,
    /// How long reading a request body may take.
    pub body_timeout: Duration,
    /// How long one issuance may take before 503.
    pub issue_timeout: Duration,
    /// `Retry-After` seconds on 202 (approval pending).
    pub retry_after_approval: u64,
    /// `Retry-After` seconds on 503.
    pub retry_after_unavailable: u64,
    /// Failed Basic attempts for one username from one client address before that
    /// pair must back off.
    pub basic_free_failures: u32,
    /// Failed attempts for one username from all addresses together before the account
    /// backs off everywhere: much higher, so that one address cannot lock an account out
    /// for the others, while a guessing campaign spread over many addresses still stops.
    pub basic_user_free_failures: u32,
    /// Failed attempts from one client address, whatever the username, before that
    /// address backs off (one address trying many names).
    pub basic_address_free_failures: u32,
    /// First lockout after `basic_free_failures`; doubled for each further failure.
    pub basic_backoff: Duration,
    pub basic_backoff_max: Duration,
    /// A failure count is forgotten after this long without failures.
    pub basic_forget_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 64 * 1024,
            body_timeout: Duration::from_secs(30),
            issue_timeout: Duration::from_secs(30),
            retry_after_approval: 300,
            retry_after_unavailable: 30,
            basic_free_failures: 3,
            basic_user_free_failures: 100,
            basic_address_free_failures: 20,
            basic_backoff: Duration::from_secs(2),
            basic_backoff_max: Duration::from_secs(900),
            basic_forget_after: Duration::from_secs(3_600),
        }
    }
}

/// Everything the EST server needs to know about its endpoint.
#[derive(Clone, Debug)]
pub struct EstSettings {
    pub endpoint: ObjectRef,
    /// Absolute URL the server is reached at, without a trailing slash, e.g.
    /// `https://est.example.com:8443`; the EST base is `{base_url}/.well-known/est`.
    pub base_url: String,
    pub profiles: Vec<ExposedProfile>,
    /// The label served at the unlabelled path `/.well-known/est/<op>`.
    pub default_profile: Option<String>,
    pub client_certs: Option<ClientCertAuth>,
    pub basic: Option<BasicAuthConfig>,
    /// The CSR's challengePassword must carry the TLS channel binding (RFC 7030 3.5).
    pub require_channel_binding: bool,
    /// The realm in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
    pub limits: Limits,
}

impl EstSettings {
    /// A configuration without authentication (enrollment open to anyone who reaches
    /// the endpoint: protect it with profile approval) and default limits.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = pkiplane_core::settings::default_label(&profiles);
        let realm = format!("pkiplane EST {endpoint}");
        Self {
            endpoint,
            base_url: base_url.trim_end_matches('/').to_owned(),
            profiles,
            default_profile,
            client_certs: None,
            basic: None,
            require_channel_binding: false,
            realm,
            limits: Limits::default(),
        }
    }

    pub fn profile(&self, label: &str) -> Option<&ExposedProfile> {
        self.profiles.iter().find(|p| p.label == label)
    }

    /// The EST base URLs: the unlabelled one (when there is a default) and one per label.
    pub fn urls(&self) -> Vec<String> {
        let base = format!("{}/.well-known/est", self.base_url);
        let mut out = Vec::new();
        if self.default_profile.is_some() {
            out.push(base.clone());
        }
        out.extend(self.profiles.iter().map(|p| format!("{base}/{}", p.label)));
        out
    }

    /// The rules these settings must meet whatever resource they came from: labels
    /// that are not EST operation names (RFC 7030 3.2.2), Basic usernames without `:`
    /// (RFC 7617) and non-empty passwords. Paths name the `EnrollmentEndpoint` fields.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (i, p) in self.profiles.iter().enumerate() {
            if crate::Operation::parse(&p.label).is_some() {
                errors.push(FieldError::new(
                    format!("spec.profiles[{i}].label"),
                    format!("`{}` is an EST operation name and cannot be a label (RFC 7030 3.2.2)", p.label),
                ));
            }
        }
        let at = "spec.est.basicAuth.secretRef";
        for (user, password) in self.basic.iter().flat_map(|b| b.users.iter()) {
            if user.contains(':') {
                errors.push(FieldError::new(at, format!("username `{user}` contains `:` (RFC 7617)")));
            }
            if password.0.is_empty() {
                errors.push(FieldError::new(at, format!("the password of `{user}` is empty")));
            }
        }
        errors
    }
}

/// Trust anchors from PEM text (a Secret's `ca.crt`, named `source` in messages): every
/// certificate must be a CA certificate webpki accepts as an anchor; at least one.
pub fn anchors_from_pem(pem_text: &[u8], source: &str) -> Result<Vec<Vec<u8>>, String> {
    let anchors = pem::decode_chain(pem_text, "CERTIFICATE").map_err(|e| format!("{source}: {e}"))?;
    for der in &anchors {
        let info = CertInfo::from_der(der).map_err(|e| format!("{source}: {e}"))?;
        webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(der.as_slice()))
            .map_err(|e| format!("{source}: {e}"))?;
        if !info.is_ca() {
            return Err(format!("{source} holds a certificate that is not a CA"));
        }
    }
    if anchors.is_empty() {
        return Err(format!("{source} holds no certificate"));
    }
    Ok(anchors)
}
