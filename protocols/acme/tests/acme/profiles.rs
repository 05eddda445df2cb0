//! Profiles (directory meta.profiles, newOrder `profile`), requester rules, and ARI
//! (renewalInfo windows, `replaces`).

use std::time::SystemTime;

use instant_acme::{ChallengeType, ExternalAccountKey, Identifier, NewOrder};
use pkiplane_core::model::ObjectRef;
use rustls::pki_types::Der;

use crate::common::{DAY, Env, Options, eab_config, problem, profile};
use crate::flows::{issue, leaf_der, retry, solve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_choose_validity_and_unknown_ones_are_refused() {
    let opts = Options {
        profiles: vec![
            ("short".into(), profile("short", 7, "Seven-day certificates"), true),
            ("long".into(), profile("long", 30, "Thirty-day certificates"), false),
        ],
        ..Options::default()
    };
    let env = Env::start(opts).await;
    let (account, _) = env.account(None).await.unwrap();
    let mut offered: Vec<(String, String)> =
        account.profiles().map(|p| (p.name.to_owned(), p.description.to_owned())).collect();
    offered.sort();
    assert_eq!(
        offered,
        vec![
            ("long".to_owned(), "Thirty-day certificates".to_owned()),
            ("short".to_owned(), "Seven-day certificates".to_owned())
        ]
    );
    let ids = [Identifier::Dns("p.localhost".into())];
    let long = issue(&env, &account, &NewOrder::new(&ids).profile("long"), ChallengeType::Http01, &["p.localhost"])
        .await
        .unwrap();
    env.openssl_verify(&long);
    let default = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["p.localhost"]).await.unwrap();
    env.openssl_verify(&default);
    let records = env.records().await;
    let lifetime = |name: &str| {
        let r = records.iter().find(|r| r.profile == ObjectRef::new("pki", name)).unwrap();
        r.not_after.duration_since(r.not_before).unwrap()
    };
    assert_eq!(lifetime("long"), DAY * 30);
    assert_eq!(lifetime("short"), DAY * 7);

    let err = account.new_order(&NewOrder::new(&ids).profile("gold")).await.err().expect("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "invalidProfile");
    assert!(detail.contains("gold") && detail.contains("short"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_rules_of_the_profile_deny_with_unauthorized() {
    let mut restricted = profile("restricted", 7, "Team A only");
    restricted.requesters.required_claims.insert("acme.eab.kid".into(), "team-a".into());
    let opts = Options {
        profiles: vec![("restricted".into(), restricted, true)],
        eab: Some(eab_config(&[("team-a", b"0123456789abcdef0123456789abcdef")], false, true)),
        ..Options::default()
    };
    let env = Env::start(opts).await;
    let (outsider, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("r.localhost".into())];
    let err = issue(&env, &outsider, &NewOrder::new(&ids), ChallengeType::Http01, &["r.localhost"])
        .await
        .expect_err("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "unauthorized");
    assert!(detail.contains("requesters.requiredClaims"), "{detail}");
    assert!(env.records().await.is_empty(), "nothing was issued");

    let key = ExternalAccountKey::new("team-a".into(), b"0123456789abcdef0123456789abcdef");
    let (member, _) = env.account(Some(&key)).await.unwrap();
    let pem = issue(&env, &member, &NewOrder::new(&ids), ChallengeType::Http01, &["r.localhost"]).await.unwrap();
    env.openssl_verify(&pem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_info_window_and_replaces() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("ari.localhost".into())];
    let first = issue(&env, &account, &NewOrder::new(&ids), ChallengeType::Http01, &["ari.localhost"]).await.unwrap();
    let der = leaf_der(&first);
    let id_text = pkiplane_acme::ari::cert_id(&der).unwrap();
    let (aki, serial) = id_text.split_once('.').unwrap();
    let decode = |s: &str| pkiplane_acme::jwk::b64_decode(s).unwrap();
    let (aki, serial) = (decode(aki), decode(serial));
    let cert_id = instant_acme::CertificateIdentifier::new(Der::from_slice(&aki), Der::from_slice(&serial));
    assert_eq!(cert_id.to_string(), id_text);

    let (info, retry_after) = account.renewal_info(&cert_id).await.unwrap();
    assert_eq!(retry_after.as_secs().div_ceil(3600), 6);
    let record = env.records().await.remove(0);
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let lifetime = record.not_after.duration_since(record.not_before).unwrap();
    let start = secs(record.not_after - lifetime / 3);
    assert!((info.suggested_window.start.unix_timestamp() - start).abs() <= 1, "window opens a third before notAfter");
    assert!(info.suggested_window.end.unix_timestamp() > info.suggested_window.start.unix_timestamp());
    assert!(info.suggested_window.end.unix_timestamp() <= secs(record.not_after));

    // Renewal with `replaces` links the new certificate to the old one.
    let renewal = NewOrder::new(&ids).replaces(cert_id.clone());
    let second = issue(&env, &account, &renewal, ChallengeType::Http01, &["ari.localhost"]).await.unwrap();
    env.openssl_verify(&second);
    let records = env.records().await;
    let new = records.iter().find(|r| r.serial != record.serial).unwrap();
    assert_eq!(new.renewed_from.as_deref(), Some(record.serial.as_str()));
    // A certificate is replaced once.
    let err = account.new_order(&NewOrder::new(&ids).replaces(cert_id.clone())).await.err().expect("an error");
    assert_eq!(problem(&err).0, "alreadyReplaced");
    // Another account cannot claim to replace it.
    let (other, _) = env.account(None).await.unwrap();
    let err = other.new_order(&NewOrder::new(&ids).replaces(cert_id)).await.err().expect("an error");
    assert_eq!(problem(&err).0, "unauthorized");
    // Unknown certificates are unknown.
    let bogus = instant_acme::CertificateIdentifier::new(Der::from_slice(&aki), Der::from_slice(&[0x42; 16]));
    assert!(account.renewal_info(&bogus).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_identifiers_must_equal_the_orders() {
    let env = Env::start(Options::default()).await;
    let (account, _) = env.account(None).await.unwrap();
    let ids = [Identifier::Dns("one.localhost".into())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await.unwrap();
    solve(&env, &mut order, ChallengeType::Http01).await;
    order.poll_ready(&retry()).await.unwrap();
    let err =
        order.finalize_csr(&crate::common::csr(&["one.localhost", "two.localhost"]).0).await.expect_err("an error");
    let (kind, detail) = problem(&err);
    assert_eq!(kind, "badCSR");
    assert!(detail.contains("two.localhost"), "{detail}");
    let err = order.finalize_csr(&crate::common::csr(&["other.localhost"]).0).await.expect_err("an error");
    assert_eq!(problem(&err).0, "badCSR");
    assert!(env.records().await.is_empty(), "nothing was issued");
    // The order stays ready: the right CSR still succeeds.
    order.finalize_csr(&crate::common::csr(&["one.localhost"]).0).await.unwrap();
    let pem = order.poll_certificate(&retry()).await.unwrap();
    env.openssl_verify(&pem);
}
