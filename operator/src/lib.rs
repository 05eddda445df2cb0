//! The pkiplane operator (`pkiplane operator`): kube-runtime controllers for Issuers,
//! CertificateProfiles and EnrollmentEndpoints, the internal CA of pkiplane's own mTLS
//! identities, leader election, metrics and health.
//!
//! - [`cache`]: a watch cache of the three kinds for other components (webhook, CA service).
//! - [`issuer`], [`profile`], [`endpoint`]: the controllers; each computes the desired
//!   children and status as pure functions of what it read (unit-tested with a fake
//!   [`ca_client::CaServiceApi`]), then applies them.
//! - [`internal_ca`] (certificates, via pkiplane-core) and [`internal_tls`] (its Secrets
//!   and the webhook configurations' caBundle).
//! - [`ca_client`]: the CA service's internal API over mTLS; [`ca_poll`]: its answers
//!   polled and diffed, so only objects whose CA-side data changed are reconciled.
//! - [`leader`], [`metrics`], [`run`]: the process.
//! - [`pod_security`]: the Pod Security "restricted" rules its pods (and the chart's) pass.
//!
//! # RBAC (least privilege; `charts/pkiplane/templates/rbac-operator.yaml`)
//!
//! ClusterRole `pkiplane-operator`:
//! - `pkiplane.dev` `issuers`: get, list, watch, patch (the `pkiplane.dev/issuer-in-use` finalizer)
//! - `pkiplane.dev` `certificateprofiles`, `enrollmentendpoints`: get, list, watch
//! - `pkiplane.dev` `issuers/status`, `certificateprofiles/status`, `enrollmentendpoints/status`: get, patch
//! - `pkiplane.dev` `enrollmentendpoints/finalizers`: update (owner references with
//!   blockOwnerDeletion under OwnerReferencesPermissionEnforcement)
//! - core `secrets`, `services`: get, list, watch, create, patch (endpoint children in
//!   every namespace, Secrets the endpoints reference, the internal CA Secrets)
//! - `apps` `deployments`: get, list, watch, create, patch
//! - `events.k8s.io` `events`: create, patch
//! - `admissionregistration.k8s.io` `validatingwebhookconfigurations` named
//!   `pkiplane-validating`, `mutatingwebhookconfigurations` named `pkiplane-mutating`: get, update
//!
//! Role `pkiplane-operator` in the control-plane namespace:
//! - `coordination.k8s.io` `leases`: create; `leases` named `pkiplane-operator`: get, update
#![forbid(unsafe_code)]

pub mod ca_client;
pub mod ca_poll;
pub mod cache;
pub mod context;
pub mod endpoint;
pub mod error;
pub mod internal_ca;
pub mod internal_tls;
pub mod issuer;
pub mod leader;
pub mod metrics;
pub mod pod_security;
pub mod profile;
pub mod run;
pub mod status;

pub use cache::ClusterCache;
pub use error::Error;
