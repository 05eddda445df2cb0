//! `pkiplane approvals list`, `pkiplane approve ID`, `pkiplane deny ID --reason`: requests
//! waiting for approval under profiles with `approval.required`.
//!
//! The commands talk to an [`ApprovalBackend`]: today the store itself (a data directory
//! or the CA's PostgreSQL store), through the same [`Ca`] functions every other caller
//! uses, so the decision is audited the same way. Listing reads a data directory
//! read-only (a running server may own it); deciding needs a data directory no server
//! owns (or the PostgreSQL store, whose decisions are row-locked).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use pkiplane_core::approval::{ApprovalFilter, ApprovalRequest, ApprovalState};
use pkiplane_core::audit::rfc3339;
use pkiplane_core::inventory::Inventory;
use pkiplane_core::issuance::Ca;
use pkiplane_core::model::{ObjectRef, Protocol};
use serde::Serialize;

use crate::datadir::DataDir;
use crate::output::{Format, print_structured, table};

/// Where approval requests are read and decided.
#[async_trait]
pub trait ApprovalBackend: Send + Sync {
    async fn list(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>>;
    async fn approve(&self, id: &str, approver: &str, reason: Option<&str>) -> Result<ApprovalRequest>;
    async fn deny(&self, id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest>;
}

/// The store itself, through a CA with no issuers loaded (deciding needs none).
pub struct LocalStore {
    ca: Ca,
    /// Held while deciding on a data directory: no server may start meanwhile.
    _owner: Option<DataDir>,
}

#[async_trait]
impl ApprovalBackend for LocalStore {
    async fn list(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>> {
        Ok(self.ca.approval_requests(filter).await?)
    }

    async fn approve(&self, id: &str, approver: &str, reason: Option<&str>) -> Result<ApprovalRequest> {
        Ok(self.ca.approve(id, approver, reason).await?)
    }

    async fn deny(&self, id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest> {
        Ok(self.ca.deny(id, approver, reason).await?)
    }
}

/// Where the approval store is (the admin API's `--server` is the next kind).
#[derive(clap::Args, Debug, Clone)]
pub struct StoreLocation {
    /// The data directory of `pkiplane serve` (or `ca`).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CA's PostgreSQL store (`pkiplane ca --store`), instead of the data directory.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

impl StoreLocation {
    /// Opens the backend; `decide`: for approve/deny (owns the data directory).
    pub async fn open(&self, decide: bool) -> Result<Box<dyn ApprovalBackend>> {
        let (inventory, owner): (Arc<dyn Inventory>, Option<DataDir>) = match &self.store {
            Some(url) if pkiplane_store::is_postgres_url(url) => {
                (Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening --store")?), None)
            }
            Some(_) => bail!("--store: expected a postgres:// or postgresql:// URL"),
            None if decide => {
                let dir = DataDir::own_existing(
                    &self.data_dir,
                    "approvals",
                    "stop it first (deciding through the running server needs its admin API)",
                )?;
                (open_for_decisions(&dir).await?, Some(dir))
            }
            None => (super::open_store_ro(&self.data_dir)?, None),
        };
        Ok(Box::new(LocalStore { ca: Ca::new(inventory), _owner: owner }))
    }
}

async fn open_for_decisions(dir: &DataDir) -> Result<Arc<dyn Inventory>> {
    Ok(super::open_owned_store(dir, false).await?)
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub at: StoreLocation,
    /// Only requests in this state (waiting, approved, denied); `all` for every state.
    #[arg(long, default_value = "waiting", value_parser = parse_state)]
    pub state: StateFilter,
    /// Only this CertificateProfile (`namespace/name`).
    #[arg(long)]
    pub profile: Option<ObjectRef>,
    /// Only this Issuer (`namespace/name`).
    #[arg(long)]
    pub issuer: Option<ObjectRef>,
    /// Only this EnrollmentEndpoint (`namespace/name`).
    #[arg(long)]
    pub endpoint: Option<ObjectRef>,
    /// Only requests over this protocol (ACME, EST, SCEP, CMP).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Only this requester identity.
    #[arg(long)]
    pub requester: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Clone, Copy, Debug)]
pub struct StateFilter(Option<ApprovalState>);

fn parse_state(s: &str) -> Result<StateFilter, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(StateFilter(None));
    }
    ApprovalState::parse(s)
        .map(|s| StateFilter(Some(s)))
        .ok_or_else(|| format!("unknown state `{s}` (waiting, approved, denied, all)"))
}

#[derive(clap::Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// List requests waiting for approval (or decided ones, with --state), newest first.
    List(ListArgs),
}

#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// The request id (`pkiplane approvals list`).
    pub id: String,
    #[command(flatten)]
    pub at: StoreLocation,
    /// Why, for the audit trail.
    #[arg(long)]
    pub reason: Option<String>,
    /// Who approves, for the audit trail and the record.
    #[arg(long, env = "USER", default_value = "local-operator")]
    pub identity: String,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

#[derive(clap::Args, Debug)]
pub struct DenyArgs {
    /// The request id (`pkiplane approvals list`).
    pub id: String,
    #[command(flatten)]
    pub at: StoreLocation,
    /// Why: the requester's protocol rejection carries it.
    #[arg(long)]
    pub reason: String,
    /// Who denies, for the audit trail and the record.
    #[arg(long, env = "USER", default_value = "local-operator")]
    pub identity: String,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

/// A request as shown to people.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestView {
    id: String,
    state: &'static str,
    profile: String,
    issuer: String,
    protocol: String,
    endpoint: Option<String>,
    requester: String,
    subject: String,
    sans: Vec<String>,
    key_algorithm: String,
    passed_rules: Vec<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
}

impl RequestView {
    fn new(r: &ApprovalRequest) -> Self {
        Self {
            id: r.id.clone(),
            state: r.state.as_str(),
            profile: r.profile.to_string(),
            issuer: r.issuer.to_string(),
            protocol: r.requester.protocol.to_string(),
            endpoint: r.requester.endpoint.as_ref().map(ToString::to_string),
            requester: r.requester.identity.clone(),
            subject: r.subject.clone(),
            sans: r.sans.clone(),
            key_algorithm: r.key_algorithm.clone(),
            passed_rules: r.passed_rules.clone(),
            created_at: rfc3339(r.created_at),
            decided_by: r.decision.as_ref().map(|d| d.by.clone()),
            decided_at: r.decision.as_ref().map(|d| rfc3339(d.at)),
            reason: r.decision.as_ref().and_then(|d| d.reason.clone()),
            serial: r.serial.clone(),
        }
    }
}

pub async fn list(cmd: &ApprovalsCommand) -> Result<()> {
    let ApprovalsCommand::List(a) = cmd;
    let backend = a.at.open(false).await?;
    let filter = ApprovalFilter {
        state: a.state.0,
        profile: a.profile.clone(),
        issuer: a.issuer.clone(),
        protocol: a.protocol,
        endpoint: a.endpoint.clone(),
        requester: a.requester.clone(),
        exchange: None,
        limit: Some(a.limit),
    };
    let views: Vec<RequestView> = backend.list(&filter).await?.iter().map(RequestView::new).collect();
    if print_structured(a.output, &views)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let names = if v.sans.is_empty() { v.subject.clone() } else { v.sans.join(",") };
            vec![
                v.id.clone(),
                v.state.to_owned(),
                v.protocol.clone(),
                v.profile.clone(),
                v.requester.clone(),
                names,
                v.created_at.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "STATE", "PROTOCOL", "PROFILE", "REQUESTER", "NAMES", "CREATED"], &rows));
    Ok(())
}

pub async fn approve(a: &ApproveArgs) -> Result<()> {
    let backend = a.at.open(true).await?;
    let record = backend.approve(&a.id, &a.identity, a.reason.as_deref()).await?;
    report(&record, a.output, "approved; the requester gets its certificate at its next poll")
}

pub async fn deny(a: &DenyArgs) -> Result<()> {
    let backend = a.at.open(true).await?;
    let record = backend.deny(&a.id, &a.identity, &a.reason).await?;
    report(&record, a.output, "denied; the requester's next poll gets the rejection")
}

fn report(record: &ApprovalRequest, output: Format, what: &str) -> Result<()> {
    if !print_structured(output, &RequestView::new(record))? {
        eprintln!("request {} ({} for {}) {what}", record.id, record.requester.identity, record.profile);
    }
    Ok(())
}
