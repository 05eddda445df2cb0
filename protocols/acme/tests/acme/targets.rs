//! ACME validation is no way into the server's network: identifiers the profile refuses
//! are refused at newOrder (no challenge is ever attempted for them), validation connects
//! only to addresses the endpoint allows (checked after every redirect), and what it
//! fetched is never quoted back to the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use instant_acme::{ChallengeType, Identifier, NewOrder};
use pkiplane_core::profile::{DnsRule, IpRule};

use crate::common::{Env, Options, problem, profile};
use crate::flows::failed_validation;

const SECRET: &str = "AKIA-INTERNAL-METADATA-SECRET-0123456789";

/// A profile allowing only loopback addresses and names under `localhost`.
fn loopback_only() -> Options {
    let mut p = profile("tls", 47, "loopback only");
    p.sans.ip = Some(IpRule { cidrs: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()] });
    p.sans.dns = Some(DnsRule { suffixes: vec!["localhost".into()], allow_wildcards: false });
    Options { profiles: vec![("tls".into(), p, true)], ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_order_refuses_identifiers_the_profile_forbids_naming_the_rule() {
    let env = Env::start(loopback_only()).await;
    let (account, _) = env.account(None).await.unwrap();
    for (id, rule) in [
        (Identifier::Ip("10.1.2.3".parse().unwrap()), "subjectAltNames.ip.cidrs"),
        (Identifier::Ip("169.254.169.254".parse().unwrap()), "subjectAltNames.ip.cidrs"),
        (Identifier::Ip("192.168.0.1".parse().unwrap()), "subjectAltNames.ip.cidrs"),
        (Identifier::Dns("www.evil.test".into()), "subjectAltNames.dns.suffixes"),
        (Identifier::Dns("*.a.localhost".into()), "subjectAltNames.dns.allowWildcards"),
    ] {
        let Err(err) = account.new_order(&NewOrder::new(std::slice::from_ref(&id))).await else {
            panic!("{id:?} got an order")
        };
        let (kind, detail) = problem(&err);
        assert_eq!(kind, "rejectedIdentifier", "{id:?}: {detail}");
        assert!(detail.contains(rule), "{id:?}: {detail}");
        let instant_acme::Error::Api(p) = &err else { unreachable!() };
        assert_eq!(p.subproblems.len(), 1, "{id:?}");
        assert_eq!(p.subproblems[0].identifier, Some(id.clone()));
    }
    // One forbidden name refuses the whole order; allowed names alone are fine.
    let mixed = [Identifier::Dns("ok.localhost".into()), Identifier::Ip("10.1.2.3".parse().unwrap())];
    let Err(err) = account.new_order(&NewOrder::new(&mixed)).await else { panic!("a mixed order was accepted") };
    assert_eq!(problem(&err).0, "rejectedIdentifier");
    let fine = [Identifier::Dns("ok.localhost".into()), Identifier::Ip("127.0.0.1".parse().unwrap())];
    account.new_order(&NewOrder::new(&fine)).await.expect("allowed names get an order");
}

/// A web server on `addr` answering every request with `answer()`, counting requests.
async fn serve(
    addr: SocketAddr,
    answer: impl Fn() -> axum::response::Response + Clone + Send + Sync + 'static,
) -> Arc<AtomicUsize> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let (hits, answer) = (counted.clone(), answer.clone());
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            answer()
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    hits
}

/// http-01 for 127.0.0.1 on a port where a server redirects to another loopback address
/// serving an internal secret; the problem the order ends with.
async fn redirect_to_an_internal_secret(opts: Options) -> (String, String, usize) {
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = redirector.local_addr().unwrap().port();
    drop(redirector);
    let internal: SocketAddr = ([127, 0, 0, 2], port).into();
    let secret_hits = serve(internal, || (StatusCode::OK, SECRET).into_response()).await;
    let location = format!("http://127.0.0.2:{port}/latest/meta-data/iam/security-credentials/admin");
    serve(([127, 0, 0, 1], port).into(), move || {
        (StatusCode::FOUND, [(header::LOCATION, location.clone())]).into_response()
    })
    .await;

    let env = Env::start(Options { http01_port: Some(port), ..opts }).await;
    let (account, _) = env.account(None).await.unwrap();
    let mut order = account.new_order(&NewOrder::new(&[Identifier::Ip("127.0.0.1".parse().unwrap())])).await.unwrap();
    let err = failed_validation(&mut order, ChallengeType::Http01, |_, _| {}).await;
    let (kind, detail) = problem(&err);
    let full = format!("{err:?}");
    assert!(!full.contains(SECRET), "the problem quotes the internal response: {full}");
    assert!(env.records().await.is_empty());
    (kind, detail, secret_hits.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_never_echoes_what_a_redirect_fetched() {
    // Loopback allowed (as in the quickstart): the redirect is followed, the body is not quoted.
    let (kind, detail, hits) = redirect_to_an_internal_secret(Options::default()).await;
    assert_eq!(kind, "incorrectResponse", "{detail}");
    assert!(detail.contains(&format!("{} bytes", SECRET.len())), "status and length are reported: {detail}");
    assert!(detail.contains("not the key authorization"), "{detail}");
    assert!(hits >= 1, "the redirect was followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_checks_the_address_of_every_redirect() {
    // Only 127.0.0.1 allowed: the redirect to 127.0.0.2 is refused before connecting.
    let opts = Options { allowed_target_ranges: vec!["127.0.0.1/32".parse().unwrap()], ..Options::default() };
    let (kind, detail, hits) = redirect_to_an_internal_secret(opts).await;
    assert_eq!(kind, "connection", "{detail}");
    assert!(detail.contains("127.0.0.2 is loopback"), "{detail}");
    assert!(detail.contains("allowedTargetRanges"), "the refusal names the setting: {detail}");
    assert_eq!(hits, 0, "nothing connected to the internal server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_validation_refuses_special_ranges() {
    let env = Env::start(Options { allowed_target_ranges: vec![], ..Options::default() }).await;
    let (account, _) = env.account(None).await.unwrap();
    for (id, kind) in [("web.localhost", ChallengeType::Http01), ("tls.localhost", ChallengeType::TlsAlpn01)] {
        let mut order = account.new_order(&NewOrder::new(&[Identifier::Dns(id.into())])).await.unwrap();
        let err = failed_validation(&mut order, kind.clone(), |token, ka| {
            env.responders.http01(token, ka);
            env.responders.tls_alpn01(id, ka);
        })
        .await;
        let (problem_kind, detail) = problem(&err);
        assert_eq!(problem_kind, "connection", "{id}: {detail}");
        assert!(detail.contains("127.0.0.1 is loopback") && detail.contains("::1 is loopback"), "{detail}");
    }
    assert!(env.records().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_does_not_quote_the_records_it_found() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let mut order = account.new_order(&NewOrder::new(&[Identifier::Dns("txt.example.test".into())])).await.unwrap();
    env.responders.dns01("_acme-challenge.txt.example.test", "internal-zone-note: vpn password hunter2");
    let err = failed_validation(&mut order, ChallengeType::Dns01, |_, _| {}).await;
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "incorrectResponse", "{detail}");
    assert!(detail.contains("none of the 1 TXT records"), "{detail}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}
