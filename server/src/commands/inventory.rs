//! `pkiplane inventory list|show`: the certificates of a server's inventory through its
//! admin API (`--server`), or of a data directory no server owns, or of a PostgreSQL store.

use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use pkiplane_core::audit::rfc3339;
use pkiplane_core::duration::parse_duration;
use pkiplane_core::inventory::{CertStatus, Inventory, InventoryFilter};
use pkiplane_core::x509::pem;

use super::remote::{AdminClient, query, segment};
use super::selection::{Scope, StoreLocation};
use crate::admin::view::{CertificateList, RecordView, normalize_serial};
use crate::output::{Format, names_cell, print_list, print_structured};

#[derive(clap::Subcommand, Debug)]
pub enum InventoryCommand {
    /// List certificates, newest first.
    List(ListArgs),
    /// Show one certificate by serial (hex).
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub at: StoreLocation,
    #[command(flatten)]
    pub scope: Scope,
    /// Only this status (pending, issued, revoked, abandoned).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<CertStatus>,
    /// Only active certificates expiring within this duration (e.g. 30d).
    #[arg(long, value_parser = parse_duration)]
    pub expiring_within: Option<std::time::Duration>,
    /// Only the certificate with this serial (hex).
    #[arg(long)]
    pub serial: Option<String>,
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
    #[command(flatten)]
    pub at: StoreLocation,
    /// Print the certificate as PEM instead of its record.
    #[arg(long)]
    pub pem: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

fn parse_status(s: &str) -> Result<CertStatus, String> {
    CertStatus::parse(s).ok_or_else(|| format!("unknown status `{s}` (pending, issued, revoked, abandoned)"))
}

pub async fn run(cmd: &InventoryCommand) -> Result<()> {
    match cmd {
        InventoryCommand::List(a) => list(a).await,
        InventoryCommand::Show(a) => show(a).await,
    }
}

/// The inventory of a data directory no server owns (read-only) or of a PostgreSQL store.
async fn open(data_dir: &std::path::Path, url: Option<&str>) -> Result<std::sync::Arc<dyn Inventory>> {
    match url {
        None => {
            // Taken only to learn that no server runs on the directory: a server's
            // inventory is asked of the server.
            let _owned = match data_dir.is_dir() {
                true => Some(crate::datadir::DataDir::own_existing(
                    data_dir,
                    "inventory",
                    &super::remote::use_server_instead(data_dir),
                )?),
                // Said by the store: "no inventory at ...".
                false => None,
            };
            Ok(super::open_store_ro(data_dir)?)
        }
        Some(url) if pkiplane_store::is_postgres_url(url) => {
            Ok(std::sync::Arc::new(pkiplane_store::PostgresStore::connect(url).await.context("opening --store")?))
        }
        Some(_) => bail!("--store: expected a postgres:// or postgresql:// URL"),
    }
}

async fn list(a: &ListArgs) -> Result<()> {
    let views = match a.at.remote.client().await? {
        Some(client) => list_remote(&client, a).await?,
        None => list_local(a).await?,
    };
    let headers = ["SERIAL", "STATUS", "PROTOCOL", "PROFILE", "NAMES", "NOT AFTER"];
    print_list(a.output, &views, &headers, |v| {
        let names = names_cell(&v.sans, &v.subject);
        vec![v.serial.clone(), v.status.clone(), v.protocol.clone(), v.profile.clone(), names, v.not_after.clone()]
    })
}

async fn list_local(a: &ListArgs) -> Result<Vec<RecordView>> {
    let store = open(&a.at.data_dir, a.at.store.as_deref()).await?;
    let filter = InventoryFilter {
        issuer: a.scope.issuer.clone(),
        profile: a.scope.profile.clone(),
        protocol: a.scope.protocol,
        endpoint: a.scope.endpoint.clone(),
        status: a.status,
        expiring_before: a.expiring_within.map(|d| SystemTime::now() + d),
        exchange: a.exchange.clone(),
        limit: Some(a.limit),
    };
    let records = match &a.serial {
        Some(serial) => {
            let mut found = store.find_serial(&normalize_serial(serial)).await?;
            found.retain(|r| {
                filter.issuer.as_ref().is_none_or(|i| &r.issuer == i)
                    && filter.profile.as_ref().is_none_or(|p| &r.profile == p)
                    && filter.status.is_none_or(|s| r.status == s)
            });
            found
        }
        None => store.list(&filter).await?,
    };
    Ok(records.iter().map(|r| RecordView::new(r, false)).collect())
}

/// Pages through the server's list until `--limit` rows.
async fn list_remote(client: &AdminClient, a: &ListArgs) -> Result<Vec<RecordView>> {
    if a.at.store.is_some() {
        bail!("--store and --server: choose one");
    }
    let mut views = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = (a.limit - views.len()).min(crate::admin::routes::MAX_PAGE);
        if page == 0 {
            break;
        }
        let path = format!(
            "/admin/v1/certificates{}",
            query(
                &[
                    a.scope.query_pairs().as_slice(),
                    &[
                        ("status", a.status.map(|s| s.as_str().to_owned())),
                        ("expiringBefore", a.expiring_within.map(|d| rfc3339(SystemTime::now() + d))),
                        ("serial", a.serial.clone()),
                        ("exchange", a.exchange.clone()),
                        ("limit", Some(page.to_string())),
                        ("continue", next.clone()),
                    ],
                ]
                .concat()
            )
        );
        let list: CertificateList = client.get(&path).await?;
        views.extend(list.items);
        match list.r#continue {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    Ok(views)
}

async fn show(a: &ShowArgs) -> Result<()> {
    let serial = normalize_serial(&a.serial);
    if let Some(client) = a.at.remote.client().await? {
        if a.pem {
            print!("{}", client.get_text(&format!("/admin/v1/certificates/{}/pem", segment(&serial))).await?);
            return Ok(());
        }
        let view: RecordView = client.get(&format!("/admin/v1/certificates/{}", segment(&serial))).await?;
        return print_view(a.output, &view);
    }
    let store = open(&a.at.data_dir, a.at.store.as_deref()).await?;
    let found = store.find_serial(&serial).await?;
    let Some(record) = found.first() else { bail!("no certificate with serial {serial} in the inventory") };
    if a.pem {
        match &record.der {
            Some(der) => print!("{}", pem::encode("CERTIFICATE", der)),
            None => bail!("certificate {serial} is {} and was never signed", record.status.as_str()),
        }
        return Ok(());
    }
    print_view(a.output, &RecordView::new(record, true))
}

fn print_view(output: Format, view: &RecordView) -> Result<()> {
    if !print_structured(output, view)? {
        print!("{}", serde_yaml::to_string(view)?);
    }
    Ok(())
}
