//! What the CA reports about its decisions as they happen, for whoever counts them (the
//! server's Prometheus metrics). The core knows nothing of metrics: it calls an
//! [`Observer`] with an [`Event`] after each issuance, denial, revocation, CRL and store
//! write. Every field is bounded (object references, rule names, protocols): no serials,
//! subjects or free text, so an observer may use them as metric labels.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::model::{ObjectRef, Protocol};

/// Who asked, through what, under which profile of which issuer.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub issuer: &'a ObjectRef,
    pub profile: &'a ObjectRef,
    pub protocol: Protocol,
    pub endpoint: Option<&'a ObjectRef>,
}

/// One thing the CA did.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A certificate was signed and durably stored; `took` runs from the request
    /// reaching the CA to the record being stored.
    Issued { origin: Origin<'a>, took: Duration },
    /// A request was denied by policy; `rules` names every rule that denied it.
    Denied { origin: Origin<'a>, rules: &'a [&'a str] },
    /// A certificate was revoked.
    Revoked { issuer: &'a ObjectRef, profile: &'a ObjectRef },
    /// A CRL was signed.
    CrlPublished { issuer: &'a ObjectRef, number: u64, next_update: SystemTime },
    /// An inventory write (`operation`: a fixed name such as `insert_pending`) took `took`.
    StoreWrite { operation: &'static str, took: Duration },
}

/// Receives the CA's events; must not block (it runs on the issuing task).
pub trait Observer: Send + Sync {
    fn observe(&self, event: &Event<'_>);
}

/// Where the CA sends its events: nowhere until [`ObserverSlot::set`] is called.
#[derive(Default)]
pub struct ObserverSlot(OnceLock<Arc<dyn Observer>>);

impl ObserverSlot {
    /// Sets the observer once; later calls are ignored (and say so).
    pub fn set(&self, observer: Arc<dyn Observer>) -> bool {
        self.0.set(observer).is_ok()
    }

    pub fn emit(&self, event: Event<'_>) {
        if let Some(o) = self.0.get() {
            o.observe(&event);
        }
    }
}
