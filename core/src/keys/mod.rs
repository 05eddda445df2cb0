//! Key algorithms, key generation and CA signing keys.
//!
//! Private key material lives only in [`SecretKey`] and [`CaSigner`], whose `Debug`
//! implementations print `<redacted>`. Nothing in this module logs key bytes.

pub(crate) mod algorithm;
mod generate;
mod signer;

pub use algorithm::{Curve, KeyAlgorithm, KeyFamily, PublicKeyInfo};
pub use generate::KeyGenError;
pub use generate::{SecretKey, generate_key};
pub use signer::{CaSigner, SignatureAlgorithm, SignerError, key_matches_spki};
