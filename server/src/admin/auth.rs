//! Who may call the admin API, and what they may do.
//!
//! Every request carries `Authorization: Bearer <token>`. In a cluster the token is
//! reviewed by the Kubernetes API server (TokenReview) and the user it names is checked
//! against RBAC (SubjectAccessReview) for one [`Verb`] on a resource of the API group
//! [`GROUP`]; see [`super::kube_review`]. Standalone, the token is compared with a local
//! one in constant time and grants every verb. docs/operations/admin-api.md lists the
//! verbs and the Roles that grant them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The API group RBAC rules name for pkiplane's admin verbs.
pub const GROUP: &str = "pkiplane.dev";

/// What a request asks to do: the resource and verb a Role grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `certificates` `list`: query the inventory.
    ListCertificates,
    /// `certificates` `get`: one certificate's record and PEM.
    GetCertificate,
    /// `certificates` `revoke`.
    RevokeCertificate,
    /// `issuers` `sign-crl`: sign a fresh CRL now.
    SignCrl,
    /// `approvalrequests` `list`: the requests waiting for (or decided by) an approver.
    ListApprovals,
    /// `approvalrequests` `get`: one request.
    GetApproval,
    /// `approvalrequests` `approve`: only that requester gets its certificate.
    Approve,
    /// `approvalrequests` `deny`.
    Deny,
}

impl Verb {
    /// The resource and verb of the SubjectAccessReview.
    pub fn rbac(self) -> (&'static str, &'static str) {
        match self {
            Verb::ListCertificates => ("certificates", "list"),
            Verb::GetCertificate => ("certificates", "get"),
            Verb::RevokeCertificate => ("certificates", "revoke"),
            Verb::SignCrl => ("issuers", "sign-crl"),
            Verb::ListApprovals => ("approvalrequests", "list"),
            Verb::GetApproval => ("approvalrequests", "get"),
            Verb::Approve => ("approvalrequests", "approve"),
            Verb::Deny => ("approvalrequests", "deny"),
        }
    }
}

/// One authorization question: a verb on a resource, in a namespace (empty: cluster
/// wide) and optionally on one named object (a serial, an Issuer's name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    pub verb: Verb,
    pub namespace: String,
    pub name: String,
}

impl Access {
    pub fn new(verb: Verb, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { verb, namespace: namespace.into(), name: name.into() }
    }

    /// What a refusal says: the verb, resource and scope that were missing.
    pub fn describe(&self) -> String {
        let (resource, verb) = self.verb.rbac();
        let scope = if self.namespace.is_empty() {
            "cluster-wide".to_owned()
        } else {
            format!("in namespace {}", self.namespace)
        };
        let name = if self.name.is_empty() { String::new() } else { format!(" {}", self.name) };
        format!("{verb} {resource}.{GROUP}{name} {scope}")
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// The authenticator's extra attributes (e.g. a bound token's pod), passed on to
    /// the SubjectAccessReview as the API server would.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// Why a request was not allowed; each becomes its own HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No or a malformed Authorization header (401).
    #[error("{0}")]
    Missing(String),
    /// The token is not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but RBAC does not grant the verb (403).
    #[error("{user} may not {what}{why}")]
    Forbidden { user: String, what: String, why: String },
    /// The API server could not be asked (503: try again).
    #[error("{0}")]
    Unavailable(String),
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let Some(value) = header else {
        return Err(AuthError::Missing("an Authorization: Bearer <token> header is required".into()));
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Missing("the Authorization header must be `Bearer <token>`".into()));
    }
    Ok(token)
}

/// The standalone token: random, kept in the data directory (0600) or given by a file.
pub struct LocalToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for LocalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalToken(<redacted>)")
    }
}

/// The file name of the generated token inside a data directory.
pub const TOKEN_FILE: &str = "admin.token";

/// The user a local token authenticates as.
pub const LOCAL_USER: &str = "pkiplane-local-admin";

impl LocalToken {
    pub fn new(token: &str) -> Self {
        Self { digest: sha256(token.as_bytes()) }
    }

    /// The token of `file` when given; otherwise the data directory's `admin.token`,
    /// created (32 random bytes, hex, 0600) when missing. Returns it and its path.
    pub fn load_or_create(file: Option<&Path>, data_dir: &Path) -> Result<(Self, PathBuf)> {
        let path = file.map(Path::to_path_buf).unwrap_or_else(|| data_dir.join(TOKEN_FILE));
        if file.is_none() && !path.exists() {
            let mut bytes = Zeroizing::new([0u8; 32]);
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes.as_mut())
                .map_err(|_| anyhow::anyhow!("no randomness for the admin token"))?;
            let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_ref())));
            crate::datadir::write_private(&path, text.as_bytes())?;
            tracing::info!(path = %path.display(), "generated the admin API token");
        }
        if file.is_none() {
            crate::datadir::make_private_file(&path)?;
        }
        let text =
            Zeroizing::new(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
        let token = text.trim();
        if token.len() < 16 {
            anyhow::bail!("{}: the admin token must be at least 16 characters", path.display());
        }
        Ok((Self::new(token), path))
    }

    /// Checks a presented token in constant time (over digests, so the length of the
    /// real token does not show either).
    pub fn authenticate(&self, presented: &str) -> Result<User, AuthError> {
        if bool::from(sha256(presented.as_bytes()).ct_eq(&self.digest)) {
            Ok(User { username: LOCAL_USER.into(), uid: String::new(), groups: vec![], extra: Default::default() })
        } else {
            Err(AuthError::Unauthenticated("the token is not the admin token of this server".into()))
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert!(matches!(bearer(None), Err(AuthError::Missing(_))));
        assert!(matches!(bearer(Some("Basic abc")), Err(AuthError::Missing(_))));
        assert!(matches!(bearer(Some("Bearer")), Err(AuthError::Missing(_))));
    }

    #[test]
    fn local_token_accepts_only_itself() {
        let t = LocalToken::new("0123456789abcdef0123");
        assert_eq!(t.authenticate("0123456789abcdef0123").unwrap().username, LOCAL_USER);
        assert!(matches!(t.authenticate("0123456789abcdef0124"), Err(AuthError::Unauthenticated(_))));
        assert!(matches!(t.authenticate(""), Err(AuthError::Unauthenticated(_))));
        assert_eq!(format!("{t:?}"), "LocalToken(<redacted>)");
    }

    #[test]
    fn generated_token_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (first, path) = LocalToken::load_or_create(None, dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(first.authenticate(text.trim()).is_ok());
        let (again, _) = LocalToken::load_or_create(None, dir.path()).unwrap();
        assert!(again.authenticate(text.trim()).is_ok(), "a restart keeps the token");
    }

    #[test]
    fn refusals_name_the_missing_grant() {
        let a = Access::new(Verb::RevokeCertificate, "pki", "0a1b");
        assert_eq!(a.describe(), "revoke certificates.pkiplane.dev 0a1b in namespace pki");
        let a = Access::new(Verb::ListCertificates, "", "");
        assert_eq!(a.describe(), "list certificates.pkiplane.dev cluster-wide");
    }
}
