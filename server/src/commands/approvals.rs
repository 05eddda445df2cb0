//! `pkiplane approvals list`, `pkiplane approve ID`, `pkiplane deny ID --reason`: requests
//! waiting for approval under profiles with `approval.required`.
//!
//! The commands talk to an [`ApprovalBackend`]: a running server's admin API
//! (`--server`, decided as the token's user), or the store itself (a data directory or
//! the CA's PostgreSQL store), through the same [`Ca`] functions every other caller
//! uses, so the decision is audited the same way. Listing reads a data directory
//! read-only (a running server may own it); deciding offline needs a data directory no
//! server owns (or the PostgreSQL store, whose decisions are row-locked).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use pkiplane_core::approval::{ApprovalFilter, ApprovalState};
use pkiplane_core::inventory::Inventory;
use pkiplane_core::issuance::Ca;

use super::remote::{AdminClient, query, segment, use_server_instead};
use super::selection::Scope;
pub use super::selection::StoreLocation;
use crate::admin::view::{ApprovalList, ApprovalView, DecisionRequest};
use crate::datadir::DataDir;
use crate::output::{Format, names_cell, print_list, print_structured};

/// Where approval requests are read and decided.
#[async_trait]
pub trait ApprovalBackend: Send + Sync {
    async fn list(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalView>>;
    /// `approver` names the decider offline; through the admin API the token's user does.
    async fn approve(&self, id: &str, approver: &str, reason: Option<&str>) -> Result<ApprovalView>;
    async fn deny(&self, id: &str, approver: &str, reason: &str) -> Result<ApprovalView>;
}

/// The store itself, through a CA with no issuers loaded (deciding needs none).
pub struct LocalStore {
    ca: Ca,
    /// Held while deciding on a data directory: no server may start meanwhile.
    _owner: Option<DataDir>,
}

#[async_trait]
impl ApprovalBackend for LocalStore {
    async fn list(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalView>> {
        Ok(self.ca.approval_requests(filter).await?.iter().map(ApprovalView::new).collect())
    }

    async fn approve(&self, id: &str, approver: &str, reason: Option<&str>) -> Result<ApprovalView> {
        Ok(ApprovalView::new(&self.ca.approve(id, approver, reason).await?))
    }

    async fn deny(&self, id: &str, approver: &str, reason: &str) -> Result<ApprovalView> {
        Ok(ApprovalView::new(&self.ca.deny(id, approver, reason).await?))
    }
}

/// A running server's admin API (`/admin/v1/approvals`).
struct RemoteApprovals(AdminClient);

#[async_trait]
impl ApprovalBackend for RemoteApprovals {
    async fn list(&self, f: &ApprovalFilter) -> Result<Vec<ApprovalView>> {
        let q = query(&[
            ("state", Some(f.state.map_or("all", ApprovalState::as_str).to_owned())),
            ("profile", f.profile.as_ref().map(ToString::to_string)),
            ("issuer", f.issuer.as_ref().map(ToString::to_string)),
            ("endpoint", f.endpoint.as_ref().map(ToString::to_string)),
            ("protocol", f.protocol.map(|p| p.to_string())),
            ("requester", f.requester.clone()),
            ("limit", f.limit.map(|l| l.min(1000).to_string())),
        ]);
        let list: ApprovalList = self.0.get(&format!("/admin/v1/approvals{q}")).await?;
        Ok(list.items)
    }

    async fn approve(&self, id: &str, _approver: &str, reason: Option<&str>) -> Result<ApprovalView> {
        let body = DecisionRequest { reason: reason.map(str::to_owned) };
        self.0.post(&format!("/admin/v1/approvals/{}/approve", segment(id)), &body).await
    }

    async fn deny(&self, id: &str, _approver: &str, reason: &str) -> Result<ApprovalView> {
        let body = DecisionRequest { reason: Some(reason.to_owned()) };
        self.0.post(&format!("/admin/v1/approvals/{}/deny", segment(id)), &body).await
    }
}

impl StoreLocation {
    /// Opens the backend; `decide`: for approve/deny (owns the data directory).
    pub async fn open(&self, decide: bool) -> Result<Box<dyn ApprovalBackend>> {
        if let Some(client) = self.remote.client().await? {
            return Ok(Box::new(RemoteApprovals(client)));
        }
        let (inventory, owner): (Arc<dyn Inventory>, Option<DataDir>) = match &self.store {
            Some(url) if pkiplane_store::is_postgres_url(url) => {
                (Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening --store")?), None)
            }
            Some(_) => bail!("--store: expected a postgres:// or postgresql:// URL"),
            None if decide => {
                let dir = DataDir::own_existing(&self.data_dir, "approvals", &use_server_instead(&self.data_dir))?;
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
    #[command(flatten)]
    pub scope: Scope,
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

pub async fn list(cmd: &ApprovalsCommand) -> Result<()> {
    let ApprovalsCommand::List(a) = cmd;
    let backend = a.at.open(false).await?;
    let filter = ApprovalFilter {
        state: a.state.0,
        profile: a.scope.profile.clone(),
        issuer: a.scope.issuer.clone(),
        protocol: a.scope.protocol,
        endpoint: a.scope.endpoint.clone(),
        requester: a.requester.clone(),
        exchange: None,
        limit: Some(a.limit),
    };
    let views = backend.list(&filter).await?;
    let headers = ["ID", "STATE", "PROTOCOL", "PROFILE", "REQUESTER", "NAMES", "CREATED"];
    print_list(a.output, &views, &headers, |v| {
        let names = names_cell(&v.sans, &v.subject);
        vec![
            v.id.clone(),
            v.state.clone(),
            v.protocol.clone(),
            v.profile.clone(),
            v.requester.clone(),
            names,
            v.created_at.clone(),
        ]
    })
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

fn report(record: &ApprovalView, output: Format, what: &str) -> Result<()> {
    if !print_structured(output, record)? {
        eprintln!("request {} ({} for {}) {what}", record.id, record.requester, record.profile);
    }
    Ok(())
}
