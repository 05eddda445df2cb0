//! One resolver for every challenge type: with `spec.acme.dnsResolver` set, the http-01
//! and tls-alpn-01 hosts are looked up there (A / AAAA), as dns-01's TXT records are, so
//! names only that server knows validate; a name it does not know fails with a `dns`
//! problem naming the server asked, not the system resolver's error.

use std::net::{IpAddr, Ipv4Addr};

use instant_acme::{ChallengeType, Identifier, NewOrder};

use crate::common::{Env, Options, problem};
use crate::flows::{failed_validation, issue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_and_tls_alpn01_hosts_are_looked_up_at_the_configured_resolver() {
    let env = Env::start(Options::default()).await;
    // Names the system resolver cannot know (the reserved `.test` domain), known to the
    // endpoint's resolver, pointing at the responders on loopback.
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    env.responders.address("web.resolver.test", loopback);
    env.responders.address("alpn.resolver.test", loopback);
    let (account, _) = env.account(None).await.unwrap();

    let ids = [Identifier::Dns("web.resolver.test".into())];
    let pem = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["web.resolver.test"]).await.unwrap();
    env.openssl_verify(&pem);
    let ids = [Identifier::Dns("alpn.resolver.test".into())];
    let pem =
        issue(&env, &account, &NewOrder::new(&ids), ChallengeType::TlsAlpn01, &["alpn.resolver.test"]).await.unwrap();
    env.openssl_verify(&pem);
    assert_eq!(env.records().await.len(), 2);

    // A name the resolver does not know: a dns problem naming the resolver.
    let ids = [Identifier::Dns("unknown.resolver.test".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    let (kind, detail) = problem(&failed_validation(&mut order, ChallengeType::Http01, |_, _| {}).await);
    assert_eq!(kind, "dns", "{detail}");
    let server = env.responders.dns_addr.to_string();
    assert!(detail.contains("unknown.resolver.test") && detail.contains(&server), "{detail}");
    assert_eq!(env.records().await.len(), 2);
}
