//! Defaulting: JSON patches (RFC 6902 `add` operations) that write into an object the
//! values pkiplane would assume for fields left out, so `kubectl get -o yaml` shows what
//! applies. Fields the CRD schema defaults itself are left to the API server. Applying
//! the patches and defaulting again yields no patches.

mod endpoint;
mod issuer;
mod profile;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde::Serialize;

/// Defaulting of one kind.
pub trait Defaulting {
    /// The patches that fill in what `self` leaves out; empty when nothing is missing.
    fn defaults(&self) -> Vec<PatchOperation>;
}

/// Patches collected for one object.
#[derive(Default)]
pub(crate) struct Patches(Vec<PatchOperation>);

impl Patches {
    /// Adds `value` at the path made of `tokens` (e.g. `["spec", "keys"]`).
    pub(crate) fn add(&mut self, tokens: &[&str], value: impl Serialize) {
        if let Ok(value) = serde_json::to_value(value) {
            self.0.push(PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(tokens.iter().copied()),
                value,
            }));
        }
    }

    pub(crate) fn finish(self) -> Vec<PatchOperation> {
        self.0
    }
}
