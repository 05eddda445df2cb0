//! `/v1/snapshot` as a conditional long poll: the issuers and profiles endpoint pods
//! consult on every request, serialized once per change and named by an ETag (a digest
//! of the body). A pod sends the ETag it holds in `If-None-Match` with `?wait=SECONDS`;
//! the CA service holds the request until the snapshot changes (200, new body and ETag)
//! or the wait ends (304). An endpoint pod then costs one idle kept-alive connection
//! instead of a TLS handshake and a full snapshot every few seconds.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::wire::SnapshotWire;

/// The longest a request may be held, whatever `wait` it asks (well inside the internal
/// API's per-request timeout).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// One serialized snapshot and its ETag (a quoted hex digest of the body).
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    pub etag: String,
    pub body: Bytes,
}

impl Published {
    fn of(wire: &SnapshotWire) -> Self {
        // A SnapshotWire holds strings, numbers and lists only: serializing cannot fail.
        let body = serde_json::to_vec(wire).unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        Self { etag: format!("\"{}\"", hex::encode(&digest.as_ref()[..16])), body: Bytes::from(body) }
    }
}

/// What a snapshot request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with this body and ETag.
    Full(Arc<Published>),
    /// 304: the caller's copy (this ETag) is current.
    NotModified(String),
}

/// The current snapshot, replaced when its content changes; requests wait on it.
pub struct SnapshotFeed {
    current: watch::Sender<Arc<Published>>,
    closing: watch::Sender<bool>,
}

impl SnapshotFeed {
    pub fn new(first: &SnapshotWire) -> Self {
        Self { current: watch::channel(Arc::new(Published::of(first))).0, closing: watch::channel(false).0 }
    }

    pub fn current(&self) -> Arc<Published> {
        self.current.borrow().clone()
    }

    /// Replaces the snapshot when `wire` differs from it (waiting requests are answered);
    /// true when it did.
    pub fn publish(&self, wire: &SnapshotWire) -> bool {
        let next = Published::of(wire);
        self.current.send_if_modified(|current| {
            if current.etag == next.etag {
                return false;
            }
            *current = Arc::new(next);
            true
        })
    }

    /// Answers every waiting request now and any later one at once (shutting down: held
    /// requests must not delay the drain).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The answer to a request holding `if_none_match` (the header's value) that may wait
    /// up to `wait` (capped at [`MAX_WAIT`]) for a change.
    pub async fn answer(&self, if_none_match: Option<&str>, wait: Duration) -> Answer {
        let mut current = self.current.subscribe();
        let mut closing = self.closing.subscribe();
        let deadline = tokio::time::sleep(wait.min(MAX_WAIT));
        tokio::pin!(deadline);
        loop {
            let published = current.borrow_and_update().clone();
            if !if_none_match.is_some_and(|h| matches(h, &published.etag)) {
                return Answer::Full(published);
            }
            if *closing.borrow_and_update() {
                return Answer::NotModified(published.etag.clone());
            }
            tokio::select! {
                changed = current.changed() => if changed.is_err() { return Answer::NotModified(published.etag.clone()) },
                _ = closing.changed() => {}
                _ = &mut deadline => return Answer::NotModified(published.etag.clone()),
            }
        }
    }
}

/// Whether an `If-None-Match` value names `etag` (a list, weak validators and `*`
/// included, as RFC 9110 section 13.1.2 compares them).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let etag = strip(etag);
    if_none_match.split(',').map(strip).any(|t| t == "*" || t == etag)
}

/// `?wait=` in seconds (absent or unreadable: no wait).
pub fn wait_of(query: Option<&str>) -> Duration {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("wait="))
        .find_map(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IssuerInfoWire;

    fn wire(issuers: usize) -> SnapshotWire {
        let issuer = |i: usize| IssuerInfoWire {
            id: pkiplane_core::model::ObjectRef::new("pki", format!("ca{i}")),
            certificate: vec![],
            chain: vec![],
            key_id: String::new(),
            crl_validity_seconds: 86_400,
            next: None,
            parent: None,
        };
        SnapshotWire { issuers: (0..issuers).map(issuer).collect(), profiles: vec![] }
    }

    #[test]
    fn etags_compare_as_http_says() {
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("W/\"a\"", "\"a\""));
        assert!(matches("\"b\", \"a\"", "\"a\""));
        assert!(matches("*", "\"a\""));
        assert!(!matches("\"b\"", "\"a\""));
        assert_eq!(wait_of(Some("wait=25")), Duration::from_secs(25));
        assert_eq!(wait_of(Some("x=1&wait=3s")), Duration::from_secs(3));
        assert_eq!(wait_of(Some("wait=soon")), Duration::ZERO);
        assert_eq!(wait_of(None), Duration::ZERO);
    }

    #[tokio::test]
    async fn unchanged_is_304_and_a_stale_copy_gets_the_body() {
        let feed = SnapshotFeed::new(&wire(1));
        let first = feed.current();
        assert_eq!(feed.answer(None, Duration::ZERO).await, Answer::Full(first.clone()));
        assert_eq!(feed.answer(Some(&first.etag), Duration::ZERO).await, Answer::NotModified(first.etag.clone()));
        // A short wait with nothing changing ends in 304 too.
        assert_eq!(
            feed.answer(Some(&first.etag), Duration::from_millis(20)).await,
            Answer::NotModified(first.etag.clone())
        );
        assert!(!feed.publish(&wire(1)), "the same content is no change");
        assert!(feed.publish(&wire(2)));
        let second = feed.current();
        assert_ne!(second.etag, first.etag);
        assert_eq!(feed.answer(Some(&first.etag), Duration::ZERO).await, Answer::Full(second.clone()));
        let parsed: SnapshotWire = serde_json::from_slice(&second.body).unwrap();
        assert_eq!(parsed.issuers.len(), 2);
    }

    /// A feed and a request holding its current ETag with the longest wait.
    async fn held_request() -> (Arc<SnapshotFeed>, String, tokio::task::JoinHandle<Answer>) {
        let feed = Arc::new(SnapshotFeed::new(&wire(1)));
        let held = feed.current().etag.clone();
        let waiting = {
            let (feed, held) = (feed.clone(), held.clone());
            tokio::spawn(async move { feed.answer(Some(&held), Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        (feed, held, waiting)
    }

    #[tokio::test]
    async fn a_change_ends_the_wait_with_the_new_snapshot() {
        // The longest wait: only the change can end it before MAX_WAIT, and then the
        // answer would be 304, which the assertion refuses.
        let (feed, held, waiting) = held_request().await;
        assert!(feed.publish(&wire(3)));
        match waiting.await.unwrap() {
            Answer::Full(p) => assert_ne!(p.etag, held),
            other => panic!("expected the new snapshot, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn closing_answers_held_requests() {
        let (feed, held, waiting) = held_request().await;
        feed.close();
        assert_eq!(waiting.await.unwrap(), Answer::NotModified(held));
    }
}
