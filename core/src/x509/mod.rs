//! X.509 building blocks: names, CSRs, extensions, certificate and CRL encoding.
//!
//! Wire types come from the RustCrypto `x509-cert`/`der` crates; this module adds what a
//! CA needs on top (building and signing a TBSCertificate, reading CSRs with proof of
//! possession checked).

pub mod cert;
pub mod csr;
pub mod csr_build;
pub mod extensions;
pub mod names;
pub mod pem;
pub mod san;

pub use extensions::{KeyUsageBit, eku_from_name, eku_name};
pub use san::San;
