//! `pkiplane inventory list|show`: the certificates in a data directory's inventory.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use pkiplane_core::audit::rfc3339;
use pkiplane_core::duration::parse_duration;
use pkiplane_core::inventory::{CertStatus, CertificateRecord, Inventory, InventoryFilter};
use pkiplane_core::model::{ObjectRef, Protocol};
use pkiplane_core::x509::pem;
use serde::Serialize;

use crate::output::{Format, print_structured, table};

#[derive(clap::Subcommand, Debug)]
pub enum InventoryCommand {
    /// List certificates, newest first.
    List(ListArgs),
    /// Show one certificate by serial (hex).
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// The data directory of `pkiplane serve` (or `ca`).
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CA's PostgreSQL store (`pkiplane ca --store`), instead of the data directory.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Only this CertificateProfile (`namespace/name`, or `name` in `default`).
    #[arg(long)]
    pub profile: Option<ObjectRef>,
    /// Only this Issuer (`namespace/name`).
    #[arg(long)]
    pub issuer: Option<ObjectRef>,
    /// Only this EnrollmentEndpoint (`namespace/name`).
    #[arg(long)]
    pub endpoint: Option<ObjectRef>,
    /// Only certificates requested over this protocol (ACME, EST, SCEP, CMP, LOCAL).
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Only this status (pending, issued, revoked, abandoned).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<CertStatus>,
    /// Only active certificates expiring within this duration (e.g. 30d).
    #[arg(long, value_parser = parse_duration)]
    pub expiring_within: Option<std::time::Duration>,
    /// Only certificates of this protocol exchange (`cmp:<endpoint>:<transactionID>`,
    /// `scep:<endpoint>:<transactionID>`, `acme:<endpoint>:<order>`).
    #[arg(long)]
    pub exchange: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Serial number in hex (colons and case ignored).
    pub serial: String,
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The CA's PostgreSQL store (`pkiplane ca --store`), instead of the data directory.
    #[arg(long, env = "PKIPLANE_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Print the certificate as PEM instead of its record.
    #[arg(long)]
    pub pem: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

fn parse_status(s: &str) -> Result<CertStatus, String> {
    CertStatus::parse(s).ok_or_else(|| format!("unknown status `{s}` (pending, issued, revoked, abandoned)"))
}

/// A record as shown to people: times in RFC 3339, the certificate as PEM.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordView {
    serial: String,
    status: &'static str,
    issuer: String,
    profile: String,
    protocol: String,
    endpoint: Option<String>,
    requester: String,
    subject: String,
    sans: Vec<String>,
    key_algorithm: String,
    not_before: String,
    not_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewed_from: Option<String>,
    created_at: String,
    /// The protocol exchange that asked for the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    exchange: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
}

impl RecordView {
    fn new(r: &CertificateRecord, with_pem: bool) -> Self {
        RecordView {
            serial: r.serial.clone(),
            status: r.status.as_str(),
            issuer: r.issuer.to_string(),
            profile: r.profile.to_string(),
            protocol: r.protocol.to_string(),
            endpoint: r.endpoint.as_ref().map(|e| e.to_string()),
            requester: r.requester.clone(),
            subject: r.subject.clone(),
            sans: r.sans.clone(),
            key_algorithm: r.key_algorithm.clone(),
            not_before: rfc3339(r.not_before),
            not_after: rfc3339(r.not_after),
            revocation_reason: r.revocation.map(|v| format!("{:?}", v.reason)),
            revoked_at: r.revocation.map(|v| rfc3339(v.at)),
            renewed_from: r.renewed_from.clone(),
            created_at: rfc3339(r.created_at),
            exchange: r.exchange.clone(),
            certificate: if with_pem { r.der.as_ref().map(|d| pem::encode("CERTIFICATE", d)) } else { None },
        }
    }
}

pub async fn run(cmd: &InventoryCommand) -> Result<()> {
    match cmd {
        InventoryCommand::List(a) => list(a).await,
        InventoryCommand::Show(a) => show(a).await,
    }
}

/// The inventory of a data directory (read-only) or of a PostgreSQL store.
async fn open(data_dir: &std::path::Path, url: Option<&str>) -> Result<std::sync::Arc<dyn Inventory>> {
    match url {
        None => Ok(super::open_store_ro(data_dir)?),
        Some(url) if pkiplane_store::is_postgres_url(url) => {
            Ok(std::sync::Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening --store")?))
        }
        Some(_) => bail!("--store: expected a postgres:// or postgresql:// URL"),
    }
}

async fn list(a: &ListArgs) -> Result<()> {
    let store = open(&a.data_dir, a.store.as_deref()).await?;
    let filter = InventoryFilter {
        issuer: a.issuer.clone(),
        profile: a.profile.clone(),
        protocol: a.protocol,
        endpoint: a.endpoint.clone(),
        status: a.status,
        expiring_before: a.expiring_within.map(|d| SystemTime::now() + d),
        exchange: a.exchange.clone(),
        limit: Some(a.limit),
    };
    let records = store.list(&filter).await?;
    let views: Vec<RecordView> = records.iter().map(|r| RecordView::new(r, false)).collect();
    if print_structured(a.output, &views)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let names = if v.sans.is_empty() { v.subject.clone() } else { v.sans.join(",") };
            vec![
                v.serial.clone(),
                v.status.to_string(),
                v.protocol.clone(),
                v.profile.clone(),
                names,
                v.not_after.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["SERIAL", "STATUS", "PROTOCOL", "PROFILE", "NAMES", "NOT AFTER"], &rows));
    Ok(())
}

async fn show(a: &ShowArgs) -> Result<()> {
    let store = open(&a.data_dir, a.store.as_deref()).await?;
    let serial = a.serial.replace(':', "").to_ascii_lowercase();
    let found = store.find_serial(&serial).await?;
    let Some(record) = found.first() else { bail!("no certificate with serial {serial} in the inventory") };
    if a.pem {
        match &record.der {
            Some(der) => print!("{}", pem::encode("CERTIFICATE", der)),
            None => bail!("certificate {serial} is {} and was never signed", record.status.as_str()),
        }
        return Ok(());
    }
    let view = RecordView::new(record, true);
    if !print_structured(a.output, &view)? {
        print!("{}", serde_yaml::to_string(&view)?);
    }
    Ok(())
}
