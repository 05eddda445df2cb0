//! Authentication and authorization through the Kubernetes API server: a bearer token
//! is reviewed (TokenReview, authentication.k8s.io/v1), and the user it names is asked
//! about (SubjectAccessReview, authorization.k8s.io/v1) for one verb on a resource of
//! the group `pkiplane.dev`, so RBAC Roles decide who may list, revoke or re-sign.
//!
//! Both answers are cached briefly (bounded, a few seconds): a burst of requests with
//! one token asks the API server once, and a revoked RoleBinding takes effect within
//! [`ALLOWED_TTL`].

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::PostParams;

use super::auth::{Access, AuthError, GROUP, User, sha256};
use super::cache::TtlCache;

/// How long an authenticated token or an allowed access is trusted without asking again.
pub const ALLOWED_TTL: Duration = Duration::from_secs(10);
/// How long a refused token or access is remembered.
pub const DENIED_TTL: Duration = Duration::from_secs(5);
/// Entries per cache.
pub const CACHE_CAPACITY: usize = 4096;

/// What the API server answered about a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenAnswer {
    Authenticated(User),
    Refused(String),
}

/// What the API server answered about an access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessAnswer {
    Allowed,
    /// Not allowed, with the authorizer's reason when it gave one.
    Denied(String),
}

/// The two reviews, as the API server answers them (a mock in unit tests).
pub trait Reviews: Send + Sync + 'static {
    fn token_review(&self, token: &str) -> impl Future<Output = Result<TokenAnswer, String>> + Send;
    fn access_review(&self, user: &User, access: &Access) -> impl Future<Output = Result<AccessAnswer, String>> + Send;
}

/// The decision: reviews with caches in front.
pub struct KubeAuth<R> {
    reviews: R,
    tokens: TtlCache<[u8; 32], TokenAnswer>,
    accesses: TtlCache<(User, Access), AccessAnswer>,
}

impl<R: Reviews> KubeAuth<R> {
    pub fn new(reviews: R) -> Self {
        Self { reviews, tokens: TtlCache::new(CACHE_CAPACITY), accesses: TtlCache::new(CACHE_CAPACITY) }
    }

    /// The user a token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        // Keyed by the token's digest: the cache never holds a token.
        let key = sha256(token.as_bytes());
        let answer = match self.tokens.get(&key, Instant::now()) {
            Some(a) => a,
            None => {
                let a = self.reviews.token_review(token).await.map_err(|e| {
                    tracing::warn!(error = %e, "TokenReview failed");
                    AuthError::Unavailable(
                        "the token could not be reviewed by the Kubernetes API server; try again".into(),
                    )
                })?;
                let ttl = if matches!(a, TokenAnswer::Authenticated(_)) { ALLOWED_TTL } else { DENIED_TTL };
                self.tokens.put(key, a.clone(), ttl, Instant::now());
                a
            }
        };
        match answer {
            TokenAnswer::Authenticated(user) => Ok(user),
            TokenAnswer::Refused(why) => Err(AuthError::Unauthenticated(why)),
        }
    }

    /// Whether `user` may do `access`.
    pub async fn authorize(&self, user: &User, access: &Access) -> Result<(), AuthError> {
        let key = (user.clone(), access.clone());
        let answer = match self.accesses.get(&key, Instant::now()) {
            Some(a) => a,
            None => {
                let a = self.reviews.access_review(user, access).await.map_err(|e| {
                    tracing::warn!(error = %e, "SubjectAccessReview failed");
                    AuthError::Unavailable(
                        "the access could not be reviewed by the Kubernetes API server; try again".into(),
                    )
                })?;
                let ttl = if a == AccessAnswer::Allowed { ALLOWED_TTL } else { DENIED_TTL };
                self.accesses.put(key, a.clone(), ttl, Instant::now());
                a
            }
        };
        match answer {
            AccessAnswer::Allowed => Ok(()),
            AccessAnswer::Denied(reason) => Err(AuthError::Forbidden {
                user: user.username.clone(),
                what: access.describe(),
                why: if reason.is_empty() { String::new() } else { format!(": {reason}") },
            }),
        }
    }
}

/// The reviews asked of the API server with the CA service's own ServiceAccount (which
/// needs `create` on tokenreviews and subjectaccessreviews; the chart grants it).
pub struct ApiServerReviews {
    client: kube::Client,
}

impl ApiServerReviews {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

/// How long one review may take.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

impl Reviews for ApiServerReviews {
    async fn token_review(&self, token: &str) -> Result<TokenAnswer, String> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_owned()), audiences: None },
            ..Default::default()
        };
        let api = kube::Api::<TokenReview>::all(self.client.clone());
        let answered = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| "TokenReview timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(token_answer(answered))
    }

    async fn access_review(&self, user: &User, access: &Access) -> Result<AccessAnswer, String> {
        let review = access_review_for(user, access);
        let api = kube::Api::<SubjectAccessReview>::all(self.client.clone());
        let answered = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| "SubjectAccessReview timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(access_answer(&answered))
    }
}

/// The TokenReview's verdict.
pub fn token_answer(review: TokenReview) -> TokenAnswer {
    let Some(status) = review.status else { return TokenAnswer::Refused("the token review gave no status".into()) };
    if status.authenticated != Some(true) {
        let why = status.error.filter(|e| !e.is_empty()).unwrap_or_else(|| "the token is not valid".into());
        return TokenAnswer::Refused(format!("the Kubernetes API server did not authenticate the token: {why}"));
    }
    let Some(info) = status.user else { return TokenAnswer::Refused("the token review named no user".into()) };
    match info.username.filter(|u| !u.is_empty()) {
        Some(username) => TokenAnswer::Authenticated(User {
            username,
            uid: info.uid.unwrap_or_default(),
            groups: info.groups.unwrap_or_default(),
            extra: info.extra.unwrap_or_default(),
        }),
        None => TokenAnswer::Refused("the token review named no user".into()),
    }
}

/// The SubjectAccessReview asking whether `user` may do `access`.
pub fn access_review_for(user: &User, access: &Access) -> SubjectAccessReview {
    let (resource, verb) = access.verb.rbac();
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.username.clone()),
            uid: some(&user.uid),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                namespace: some(&access.namespace),
                name: some(&access.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The SubjectAccessReview's verdict (an explicit deny and "no opinion" both refuse).
pub fn access_answer(review: &SubjectAccessReview) -> AccessAnswer {
    match &review.status {
        Some(s) if s.allowed && s.denied != Some(true) => AccessAnswer::Allowed,
        Some(s) => AccessAnswer::Denied(
            s.reason.clone().filter(|r| !r.is_empty()).or_else(|| s.evaluation_error.clone()).unwrap_or_default(),
        ),
        None => AccessAnswer::Denied("the access review gave no status".into()),
    }
}

/// The API server's client CA (ConfigMap kube-system/extension-apiserver-authentication,
/// `client-ca-file`, which the API server publishes and the built-in Role
/// `extension-apiserver-authentication-reader` may read): the roots that kubeconfig
/// client certificates chain to. None, with a warning, when it cannot be read: then
/// only bearer tokens authenticate.
pub async fn cluster_client_ca(client: &kube::Client) -> Option<std::sync::Arc<rustls::RootCertStore>> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api = kube::Api::<ConfigMap>::namespaced(client.clone(), "kube-system");
    let read = tokio::time::timeout(REVIEW_TIMEOUT, api.get_opt("extension-apiserver-authentication")).await;
    let pem = match read {
        Ok(Ok(Some(cm))) => cm.data.and_then(|d| d.get("client-ca-file").cloned()),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "admin API: cannot read the cluster's client CA; client certificates are not accepted");
            return None;
        }
        Err(_) => None,
    };
    let Some(pem) = pem else {
        tracing::warn!("admin API: the cluster publishes no client CA; client certificates are not accepted");
        return None;
    };
    let mut roots = rustls::RootCertStore::empty();
    for der in pkiplane_core::x509::pem::decode_chain(pem.as_bytes(), "CERTIFICATE").unwrap_or_default() {
        if let Err(e) = roots.add(der.into()) {
            tracing::warn!(error = %e, "admin API: a certificate of the cluster's client CA bundle was skipped");
        }
    }
    if roots.is_empty() {
        return None;
    }
    tracing::info!(roots = roots.len(), "admin API: client certificates of the cluster's client CA are accepted");
    Some(std::sync::Arc::new(roots))
}

#[cfg(test)]
mod tests;
