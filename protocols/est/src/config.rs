//! The EST endpoint's configuration, built from an `EnrollmentEndpoint` resource
//! (`spec.est`, see `api/src/v1alpha1/endpoint_protocols.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint, TrustAnchors};
use pkiplane_api::{EndpointHead, FieldError, SecretLookup};
use pkiplane_core::ObjectRef;
use pkiplane_core::service::CaService;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::pem;
use zeroize::Zeroizing;

/// One exposed profile: the EST label (`/.well-known/est/<label>/...`) and the
/// CertificateProfile behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedProfile {
    pub label: String,
    pub profile: ObjectRef,
}

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
pub struct EstConfig {
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

impl EstConfig {
    /// A configuration without authentication (enrollment open to anyone who reaches
    /// the endpoint: protect it with profile approval) and default limits.
    pub fn new(endpoint: ObjectRef, base_url: &str, profiles: Vec<ExposedProfile>) -> Self {
        let default_profile = match profiles.as_slice() {
            [only] => Some(only.label.clone()),
            _ => None,
        };
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

    /// Builds the configuration of an EST EnrollmentEndpoint. Trust anchors from an
    /// `issuerRef` are that Issuer's certificate and the chain above it, read from `ca`
    /// (so Issuers must be loaded first); from a `secretRef`, the PEM certificates under
    /// `ca.crt`. Basic accounts are the entries of `basicAuth.secretRef`.
    pub fn from_resource(
        endpoint: &EnrollmentEndpoint,
        secrets: &impl SecretLookup,
        ca: &dyn CaService,
        base_url: &str,
    ) -> Result<EstConfig, Vec<FieldError>> {
        let mut errors = Vec::new();
        let head = EndpointHead::read(endpoint, EndpointProtocol::Est, base_url, &mut errors)?;
        let namespace = head.id.namespace.clone();
        let spec = &endpoint.spec;
        let profiles: Vec<ExposedProfile> =
            head.profiles.into_iter().map(|(label, profile)| ExposedProfile { label, profile }).collect();
        for (i, p) in profiles.iter().enumerate() {
            if crate::Operation::parse(&p.label).is_some() {
                errors.push(FieldError::new(
                    format!("spec.profiles[{i}].label"),
                    format!("`{}` is an EST operation name and cannot be a label (RFC 7030 3.2.2)", p.label),
                ));
            }
        }
        let mut config = EstConfig::new(head.id, base_url, profiles);
        config.default_profile = head.default_label;
        let est = spec.est.clone().unwrap_or_default();
        config.require_channel_binding = est.require_channel_binding;
        if let Some(cc) = &est.client_certificates {
            let at = "spec.est.clientCertificates.trustAnchors";
            match trust_anchors(&cc.trust_anchors, &namespace, secrets, ca) {
                Ok(auth) => config.client_certs = Some(auth),
                Err(msg) => errors.push(FieldError::new(at, msg)),
            }
        }
        if let Some(basic) = &est.basic_auth {
            let at = "spec.est.basicAuth.secretRef";
            match secrets.secret_data(&namespace, &basic.secret_ref.name) {
                None => {
                    errors.push(FieldError::new(at, format!("Secret {namespace}/{} not found", basic.secret_ref.name)))
                }
                Some(data) if data.is_empty() => {
                    errors.push(FieldError::new(at, "the Secret has no entries (each key is a username)"))
                }
                Some(data) => {
                    let mut users = BTreeMap::new();
                    for (user, password) in data {
                        if user.contains(':') {
                            errors.push(FieldError::new(at, format!("username `{user}` contains `:` (RFC 7617)")));
                        }
                        if password.is_empty() {
                            errors.push(FieldError::new(at, format!("the password of `{user}` is empty")));
                        }
                        users.insert(user, Password(Zeroizing::new(password)));
                    }
                    config.basic = Some(BasicAuthConfig { users });
                }
            }
        }
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }
}

/// Resolves trust anchors to DER certificates.
pub fn trust_anchors(
    t: &TrustAnchors,
    namespace: &str,
    secrets: &impl SecretLookup,
    ca: &dyn CaService,
) -> Result<ClientCertAuth, String> {
    match (&t.secret_ref, &t.issuer_ref) {
        (Some(secret), None) => {
            let data = secrets
                .secret_data(namespace, &secret.name)
                .ok_or_else(|| format!("Secret {namespace}/{} not found", secret.name))?;
            let pem_text =
                data.get("ca.crt").ok_or_else(|| format!("Secret {namespace}/{} has no `ca.crt`", secret.name))?;
            let anchors = pem::decode_chain(pem_text, "CERTIFICATE")
                .map_err(|e| format!("Secret {namespace}/{} ca.crt: {e}", secret.name))?;
            for der in &anchors {
                let info =
                    CertInfo::from_der(der).map_err(|e| format!("Secret {namespace}/{} ca.crt: {e}", secret.name))?;
                webpki::anchor_from_trusted_cert(&rustls_pki_types::CertificateDer::from(der.as_slice()))
                    .map_err(|e| format!("Secret {namespace}/{} ca.crt: {e}", secret.name))?;
                if !info.is_ca() {
                    return Err(format!(
                        "Secret {namespace}/{} ca.crt holds a certificate that is not a CA",
                        secret.name
                    ));
                }
            }
            if anchors.is_empty() {
                return Err(format!("Secret {namespace}/{} ca.crt holds no certificate", secret.name));
            }
            Ok(ClientCertAuth { anchors, source: format!("Secret {namespace}/{}", secret.name) })
        }
        (None, Some(issuer)) => {
            let id = ObjectRef::new(namespace, &issuer.name);
            let issuer = ca.issuer(&id).ok_or_else(|| format!("Issuer {id} is not loaded"))?;
            let anchors = std::iter::once(&issuer.cert).chain(issuer.chain.iter()).map(|c| c.der.clone()).collect();
            Ok(ClientCertAuth { anchors, source: format!("Issuer {id}") })
        }
        _ => Err("set exactly one of secretRef or issuerRef".into()),
    }
}
