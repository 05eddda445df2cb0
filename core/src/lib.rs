//! pkiplane's CA core.
//!
//! Everything a certificate authority decides lives here and nowhere else: the policy
//! engine (`policy`), issuers and their keys (`issuer`, `keys`), issuance in explicit,
//! crash-safe steps (`issuance`), CRLs (`crl`) and OCSP answers (`ocsp`), the inventory
//! model and the store traits (`inventory`) and the audit trail (`audit`). Protocol crates map their wire formats to
//! an [`issuance::IssuanceRequest`] and map the outcome back; they never decide validity,
//! extensions or algorithms themselves.
//!
//! The core never touches HTTP, Kubernetes or the network.
#![forbid(unsafe_code)]

pub mod approval;
pub mod audit;
pub mod clock;
pub mod crl;
pub mod duration;
pub mod error;
pub mod inventory;
pub mod issuance;
pub mod issuer;
pub mod keys;
pub mod logsafe;
pub mod maintenance;
pub mod model;
pub mod observe;
pub mod ocsp;
pub mod policy;
pub mod profile;
pub mod service;
pub mod settings;

pub mod x509;

pub use error::{CoreError, ErrorKind};
pub use model::{ObjectRef, Protocol, Requester};
