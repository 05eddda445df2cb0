//! The arguments the inventory and approval commands share: where the records are, and
//! which resources a listing is narrowed to.

use std::path::PathBuf;

use pkiplane_core::model::{ObjectRef, Protocol};

use super::remote::RemoteArgs;

/// Where the records are: a server's admin API, or the store itself.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreLocation {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The data directory of `pkiplane serve` (or `ca`), read when no server owns it.
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CA's PostgreSQL store (`pkiplane ca --store`), instead of the data directory.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

/// The resources a listing is narrowed to.
#[derive(clap::Args, Debug, Clone)]
pub struct Scope {
    /// Only this CertificateProfile (`namespace/name`, or `name` in `default`).
    #[arg(long)]
    pub profile: Option<ObjectRef>,
    /// Only this Issuer (`namespace/name`).
    #[arg(long)]
    pub issuer: Option<ObjectRef>,
    /// Only this EnrollmentEndpoint (`namespace/name`).
    #[arg(long)]
    pub endpoint: Option<ObjectRef>,
    /// Only requests over this protocol (ACME, EST, SCEP, CMP; LOCAL: pkiplane's own).
    #[arg(long)]
    pub protocol: Option<Protocol>,
}

impl Scope {
    /// The admin API's query parameters for this scope.
    pub fn query_pairs(&self) -> [(&'static str, Option<String>); 4] {
        [
            ("profile", self.profile.as_ref().map(ToString::to_string)),
            ("issuer", self.issuer.as_ref().map(ToString::to_string)),
            ("endpoint", self.endpoint.as_ref().map(ToString::to_string)),
            ("protocol", self.protocol.map(|p| p.to_string())),
        ]
    }
}
