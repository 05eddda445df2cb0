//! `pkiplane.dev/v1alpha1`: Issuer, CertificateProfile and EnrollmentEndpoint.
//!
//! Field names are the user-facing API (camelCase in YAML). Defaults that are constant
//! are also written into the CRD schema so `kubectl get -o yaml` shows them; defaults
//! that depend on other fields (an Issuer's validity, a profile's validity.max) are
//! resolved in [`crate::convert`].

mod common;
mod endpoint;
mod endpoint_protocols;
mod endpoint_urls;
mod issuer;
mod profile;
mod profile_names;

pub use common::*;
pub use endpoint::*;
pub use endpoint_protocols::*;
pub use endpoint_urls::*;
pub use issuer::*;
pub use profile::*;
pub use profile_names::*;

/// The API group of every pkiplane kind.
pub const GROUP: &str = "pkiplane.dev";
/// The API version this module implements.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every pkiplane object.
pub const API_VERSION: &str = "pkiplane.dev/v1alpha1";
