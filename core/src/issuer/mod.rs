//! Issuers: CA certificates and keys, created (self-signed root, intermediate signed by
//! another Issuer) or imported, and what they enforce on what they sign.

mod build;
mod config;
mod constraints;
mod import;
mod info;
pub mod retired;
pub mod rollover;
#[cfg(test)]
mod rollover_tests;

pub use build::{Issuer, IssuerError, intermediate_path_len};
pub use config::{CaParams, ImportedCa, IssuerConfig, IssuerSource};
pub use constraints::NameConstraintsConfig;
pub use import::parse_private_key_pem;
pub use info::IssuerInfo;
pub use retired::{CaKey, RetiredCa};
pub use rollover::{NextCa, RolloverOutcome};

/// The first violation of any of `constraints` by `san`.
pub fn constraints_violation(constraints: &[NameConstraintsConfig], san: &crate::x509::San) -> Option<String> {
    constraints.iter().find_map(|nc| nc.violation(san))
}
