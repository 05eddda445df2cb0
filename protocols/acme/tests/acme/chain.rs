//! The certificate URL serves the leaf and the CAs below the root (most ACME CAs leave
//! the root out, and cert-manager stores the chain as served in `tls.crt`); the root is
//! offered as the alternate chain (RFC 8555 section 7.4.2, `Link: rel="alternate"`).

use pkiplane_acme::jwk::b64;
use pkiplane_acme::signer::AccountKey;
use pkiplane_core::x509::pem::decode_chain;
use serde_json::json;

use crate::common::raw::Raw;
use crate::common::ready::{ReadyOrder, poll, ready_order};
use crate::common::{Env, Options, csr};

/// The target of the `Link` value with relation `rel`.
fn link<'a>(links: &'a [String], rel: &str) -> Option<&'a str> {
    links.iter().find(|l| l.ends_with(&format!(";rel=\"{rel}\""))).and_then(|l| l.split(['<', '>']).nth(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_stops_below_the_root_and_the_alternate_adds_it() {
    let env = Env::start(Options::default()).await;
    let raw = Raw::new(&env.base);
    let ReadyOrder { key, kid, url: order_url, finalize_url, .. } = ready_order(&env, &raw, "chain.localhost").await;
    let finalize = json!({"csr": b64(&csr(&["chain.localhost"]).0)});
    let r = raw.signed(&key, Some(&kid), &finalize_url, Some(&finalize)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let valid = poll(&raw, &key, &kid, &order_url, |o| o["status"] == "valid").await;
    let cert_url = valid.body["certificate"].as_str().unwrap().to_owned();

    // The default chain: leaf and issuing CA, no root.
    let default = raw.signed(&key, Some(&kid), &cert_url, None).await;
    assert_eq!(default.status, 200, "{}", default.text);
    let certs = decode_chain(default.text.as_bytes(), "CERTIFICATE").unwrap();
    let root = decode_chain(std::fs::read(&env.root_pem).unwrap().as_slice(), "CERTIFICATE").unwrap().remove(0);
    let int = decode_chain(std::fs::read(&env.int_pem).unwrap().as_slice(), "CERTIFICATE").unwrap().remove(0);
    assert_eq!(certs.len(), 2, "leaf and intermediate");
    assert_eq!(certs[1], int);
    assert!(!certs.contains(&root), "the root is not in the default chain");
    env.openssl_verify(&default.text);

    // The alternate: the same leaf and intermediate, then the root; it links back.
    let alternate = link(&default.links, "alternate").expect("a rel=alternate link").to_owned();
    assert_eq!(alternate, format!("{cert_url}/with-root"));
    let full = raw.signed(&key, Some(&kid), &alternate, None).await;
    assert_eq!(full.status, 200, "{}", full.text);
    let full_certs = decode_chain(full.text.as_bytes(), "CERTIFICATE").unwrap();
    assert_eq!(full_certs, [certs[0].clone(), int, root]);
    assert_eq!(link(&full.links, "alternate"), Some(cert_url.as_str()));

    // The alternate URL is signed for like any other: another account gets nothing.
    let other = AccountKey::generate_es256();
    let other_kid = raw.new_account(&other).await;
    let r = raw.signed(&other, Some(&other_kid), &alternate, None).await;
    assert!(r.status == 404 || r.status == 403 || r.status == 401, "{} {}", r.status, r.text);
}
