//! pkiplane's Kubernetes API: the `pkiplane.dev/v1alpha1` custom resources, their CRDs,
//! loading them from YAML manifests, and converting them into the CA core's domain types.
//!
//! - [`v1alpha1`]: `Issuer`, `CertificateProfile`, `EnrollmentEndpoint` and their status.
//! - [`crds`]: CustomResourceDefinitions generated from those types (`crds/` in the repo).
//! - [`manifests`]: multi-document YAML files or directories, as `pkiplane serve -f` reads.
//! - [`fresh_ca`]: a CA core with new CA material from manifests (tests, examples, benchmarks).
//! - [`convert`]: resource -> [`pkiplane_core::profile::Profile`] /
//!   [`pkiplane_core::issuer::IssuerConfig`] / each protocol's settings, collecting every
//!   error with its field path.
#![forbid(unsafe_code)]

pub mod convert;
pub mod crds;
pub mod fresh_ca;
pub mod manifests;
pub mod v1alpha1;

pub use convert::{
    EndpointHead, FieldError, acme_settings, check_endpoint, check_issuer, cmp_settings, est_settings,
    issuer_from_resource, parse_cidr, profile_from_resource, scep_settings,
};
pub use fresh_ca::{FreshCaError, put_fresh};
pub use manifests::{ManifestError, Manifests, SecretLookup};
