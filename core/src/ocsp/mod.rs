//! OCSP (RFC 6960), answered the way RFC 5019's lightweight profile asks: a responder per
//! Issuer, signing with a delegated responder certificate per CA key (or the CA key
//! itself), good / revoked / unknown from the inventory, the request's nonce echoed.
//!
//! The ASN.1 lives in [`request`] and [`response`] (hand-written with `der`: the RustCrypto
//! `x509-ocsp` releases are built on der 0.7 and x509-cert 0.2, this workspace on der 0.8
//! and x509-cert 0.3). No HTTP here: the publication listeners of `pkiplane serve` and
//! `pkiplane ca` carry requests to [`OcspResponder::respond`] and back.

pub mod build;
pub mod delegate;
pub mod request;
pub mod responder;
pub mod response;
pub mod status;

pub use responder::{OcspAnswer, OcspResponder, ResponderSigning};
pub use response::OcspResponseStatus;

#[cfg(test)]
mod tests;
