//! `pkiplane issue`: an operator signs a CSR locally through the same policy, pipeline
//! and inventory as every protocol (protocol LOCAL in the inventory).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Result, anyhow};
use pkiplane_api::Manifests;
use pkiplane_core::issuance::{IssuanceRequest, IssueOutcome};
use pkiplane_core::model::{Protocol, Requester};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::{CoreError, ErrorKind};

use crate::bootstrap::{build_ca, resolve_profile};

#[derive(clap::Args, Debug)]
pub struct IssueArgs {
    /// Manifest file or directory (Issuers, CertificateProfiles, Secrets).
    #[arg(short = 'f', long = "filename")]
    pub manifests: PathBuf,
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CertificateProfile, as `name` or `namespace/name`.
    #[arg(long)]
    pub profile: String,
    /// The CSR (PEM or DER); `-` reads standard input.
    #[arg(long)]
    pub csr: PathBuf,
    /// Who is issuing, for the inventory and audit trail.
    #[arg(long, env = "USER", default_value = "local-operator")]
    pub identity: String,
    /// Write the certificate and chain (PEM) here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Key-encryption keys of a store whose CA keys are sealed (see `pkiplane ca --kek-file`).
    #[arg(long, env = "PKIPLANE_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
}

/// Exit status of a request that waits for approval.
pub const PENDING_EXIT: u8 = 3;

pub async fn run(a: &IssueArgs) -> Result<ExitCode> {
    let manifests = Manifests::load(&a.manifests)?;
    let csr = ParsedCsr::from_pem_or_der(&super::read_input(&a.csr)?, CsrOptions::default())
        .map_err(|e| anyhow!("{}: {e}", a.csr.display()))?;
    let data_dir = crate::datadir::DataDir::own_existing(
        &a.data_dir,
        "issue",
        "stop it first, or enrol through one of its endpoints",
    )?;
    let store = super::open_owned_store(&data_dir, true).await?;
    let materials = super::store::seal_materials(store.clone(), store.as_ref(), None, a.kek_file.as_deref()).await?.0;
    let (ca, _) = build_ca(&manifests, store.clone(), materials.as_ref(), SystemTime::now()).await?;
    let profile = resolve_profile(&ca, &a.profile)?;
    let req = IssuanceRequest {
        csr,
        profile,
        requester: Requester::new(Protocol::Local, a.identity.clone()),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    };
    match ca.issue(req).await {
        Ok(IssueOutcome::Pending(pending)) => {
            // The request waits as an approval record; the same command again (same
            // identity, same key) collects the certificate once it is approved.
            eprintln!(
                "pending: {pending}: request {id}\napprove it with `pkiplane approve {id}`, then run this command again",
                id = pending.request_id
            );
            Ok(ExitCode::from(PENDING_EXIT))
        }
        Ok(IssueOutcome::Denied(denied)) => {
            eprintln!("denied: {denied}");
            Ok(ExitCode::from(1))
        }
        Ok(IssueOutcome::Issued(issued)) => {
            for n in &issued.notes {
                eprintln!("note: {n}");
            }
            eprintln!("issued serial {}", issued.record.serial);
            match &a.out {
                Some(p) => std::fs::write(p, issued.full_chain_pem())?,
                None => print!("{}", issued.full_chain_pem()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ CoreError::Denied { .. }) => {
            eprintln!("denied: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) if e.kind() == ErrorKind::BadRequest => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}
