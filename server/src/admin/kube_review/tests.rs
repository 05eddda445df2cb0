//! The decision from mock API server answers, and the review objects built and read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo};
use k8s_openapi::api::authorization::v1::SubjectAccessReviewStatus;

use super::*;
use crate::admin::auth::Verb;

/// Tokens `viewer` and `revoker`; the viewer may list and get, the revoker also revoke
/// (in namespace `pki` only). Counts how often it is asked.
#[derive(Default)]
struct MockApiServer {
    token_calls: AtomicUsize,
    access_calls: AtomicUsize,
    down: Mutex<bool>,
}

impl Reviews for MockApiServer {
    async fn token_review(&self, token: &str) -> Result<TokenAnswer, String> {
        self.token_calls.fetch_add(1, Ordering::SeqCst);
        if *self.down.lock().unwrap() {
            return Err("connection refused".into());
        }
        let user = |name: &str| {
            TokenAnswer::Authenticated(User {
                username: format!("system:serviceaccount:team:{name}"),
                uid: format!("uid-{name}"),
                groups: vec!["system:serviceaccounts".into()],
                extra: Default::default(),
            })
        };
        Ok(match token {
            "viewer" => user("viewer"),
            "revoker" => user("revoker"),
            _ => TokenAnswer::Refused("invalid bearer token".into()),
        })
    }

    async fn access_review(&self, user: &User, access: &Access) -> Result<AccessAnswer, String> {
        self.access_calls.fetch_add(1, Ordering::SeqCst);
        let revoker = user.username.ends_with(":revoker");
        let allowed = match access.verb {
            Verb::ListCertificates | Verb::GetCertificate => true,
            Verb::RevokeCertificate => revoker && access.namespace == "pki",
            Verb::SignCrl | Verb::ListApprovals | Verb::GetApproval | Verb::Approve | Verb::Deny => false,
        };
        Ok(if allowed { AccessAnswer::Allowed } else { AccessAnswer::Denied(String::new()) })
    }
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn a_viewer_lists_but_may_not_revoke_and_the_refusal_names_the_grant() {
    run(async {
        let auth = KubeAuth::new(MockApiServer::default());
        let viewer = auth.authenticate("viewer").await.unwrap();
        assert_eq!(viewer.username, "system:serviceaccount:team:viewer");
        auth.authorize(&viewer, &Access::new(Verb::ListCertificates, "", "")).await.unwrap();
        let refused = auth.authorize(&viewer, &Access::new(Verb::RevokeCertificate, "pki", "0a")).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "system:serviceaccount:team:viewer may not revoke certificates.pkiplane.dev 0a in namespace pki"
        );
        assert!(matches!(refused, AuthError::Forbidden { .. }));
    });
}

#[test]
fn a_revoker_revokes_only_where_its_role_is_bound() {
    run(async {
        let auth = KubeAuth::new(MockApiServer::default());
        let revoker = auth.authenticate("revoker").await.unwrap();
        auth.authorize(&revoker, &Access::new(Verb::RevokeCertificate, "pki", "0a")).await.unwrap();
        let elsewhere = auth.authorize(&revoker, &Access::new(Verb::RevokeCertificate, "other", "0b")).await;
        assert!(matches!(elsewhere, Err(AuthError::Forbidden { .. })), "{elsewhere:?}");
    });
}

#[test]
fn an_unknown_token_is_unauthenticated() {
    run(async {
        let auth = KubeAuth::new(MockApiServer::default());
        let e = auth.authenticate("stolen").await.unwrap_err();
        assert_eq!(e, AuthError::Unauthenticated("invalid bearer token".into()));
    });
}

#[test]
fn a_burst_asks_the_api_server_once_per_token_and_access() {
    run(async {
        let auth = KubeAuth::new(MockApiServer::default());
        let access = Access::new(Verb::ListCertificates, "", "");
        for _ in 0..50 {
            let user = auth.authenticate("viewer").await.unwrap();
            auth.authorize(&user, &access).await.unwrap();
            assert!(auth.authenticate("stolen").await.is_err());
        }
        assert_eq!(auth.reviews.token_calls.load(Ordering::SeqCst), 2, "one review per token, good or bad");
        assert_eq!(auth.reviews.access_calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn an_unreachable_api_server_is_unavailable_and_not_cached() {
    run(async {
        let auth = KubeAuth::new(MockApiServer::default());
        *auth.reviews.down.lock().unwrap() = true;
        assert!(matches!(auth.authenticate("viewer").await, Err(AuthError::Unavailable(_))));
        *auth.reviews.down.lock().unwrap() = false;
        assert!(auth.authenticate("viewer").await.is_ok(), "the failure was not remembered");
    });
}

#[test]
fn token_review_status_is_read_strictly() {
    let review = |status: Option<TokenReviewStatus>| TokenReview { status, ..Default::default() };
    assert!(matches!(token_answer(review(None)), TokenAnswer::Refused(_)));
    let refused = token_answer(review(Some(TokenReviewStatus {
        authenticated: Some(false),
        error: Some("token expired".into()),
        ..Default::default()
    })));
    assert_eq!(
        refused,
        TokenAnswer::Refused("the Kubernetes API server did not authenticate the token: token expired".into())
    );
    let nameless = token_answer(review(Some(TokenReviewStatus {
        authenticated: Some(true),
        user: Some(UserInfo::default()),
        ..Default::default()
    })));
    assert!(matches!(nameless, TokenAnswer::Refused(_)));
    let ok = token_answer(review(Some(TokenReviewStatus {
        authenticated: Some(true),
        user: Some(UserInfo { username: Some("alice".into()), groups: Some(vec!["ops".into()]), ..Default::default() }),
        ..Default::default()
    })));
    let TokenAnswer::Authenticated(user) = ok else { panic!("{ok:?}") };
    assert_eq!((user.username.as_str(), user.groups.as_slice()), ("alice", ["ops".to_owned()].as_slice()));
}

#[test]
fn the_access_review_asks_for_the_pkiplane_verb() {
    let user =
        User { username: "alice".into(), uid: "u1".into(), groups: vec!["ops".into()], extra: Default::default() };
    let review = access_review_for(&user, &Access::new(Verb::SignCrl, "pki", "example-intermediate"));
    let spec = &review.spec;
    assert_eq!(spec.user.as_deref(), Some("alice"));
    assert_eq!(spec.groups.as_deref(), Some(["ops".to_owned()].as_slice()));
    let attrs = spec.resource_attributes.as_ref().unwrap();
    assert_eq!(attrs.group.as_deref(), Some("pkiplane.dev"));
    assert_eq!(attrs.resource.as_deref(), Some("issuers"));
    assert_eq!(attrs.verb.as_deref(), Some("sign-crl"));
    assert_eq!(attrs.namespace.as_deref(), Some("pki"));
    assert_eq!(attrs.name.as_deref(), Some("example-intermediate"));
    let cluster = access_review_for(&user, &Access::new(Verb::ListCertificates, "", ""));
    assert_eq!(cluster.spec.resource_attributes.unwrap().namespace, None, "cluster-wide asks with no namespace");
}

#[test]
fn only_an_explicit_allow_allows() {
    let with = |status: Option<SubjectAccessReviewStatus>| SubjectAccessReview { status, ..Default::default() };
    let allowed = SubjectAccessReviewStatus { allowed: true, ..Default::default() };
    assert_eq!(access_answer(&with(Some(allowed))), AccessAnswer::Allowed);
    let denied = SubjectAccessReviewStatus { allowed: true, denied: Some(true), ..Default::default() };
    assert!(matches!(access_answer(&with(Some(denied))), AccessAnswer::Denied(_)));
    let no_opinion =
        SubjectAccessReviewStatus { allowed: false, reason: Some("no RBAC rule".into()), ..Default::default() };
    assert_eq!(access_answer(&with(Some(no_opinion))), AccessAnswer::Denied("no RBAC rule".into()));
    assert!(matches!(access_answer(&with(None)), AccessAnswer::Denied(_)));
}
