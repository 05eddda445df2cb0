//! The PostgreSQL store: the inventory ([`Inventory`]) and CA key material
//! ([`CaMaterialStore`]) on a PostgreSQL server, for a CA service whose replicas share
//! one database.
//!
//! * A pool of connections (deadpool-postgres); every statement or transaction commits
//!   before its call returns, with `synchronous_commit = on` forced on each connection,
//!   so a record is on the server's disk when the call returns.
//! * Serials are unique per issuer by the primary key; CRL numbers come from a counter
//!   row per issuer incremented under its row lock, so replicas never reuse or go back.
//! * The schema is versioned (see `schema`); replicas starting together migrate once.
//! * TLS on rustls as the URL's libpq parameters say (see `tls`); `verify-full` unless
//!   the URL or `PGSSLMODE` says otherwise.
//! * A lost connection or a server restart fails the call in progress with
//!   `StoreError::Unavailable` (retryable, a 503 at the CA service) and nothing of it
//!   written; the pool opens new connections once the server is back.

mod acme;
mod ca;
mod cmp;
pub(crate) mod error;
mod est;
mod exec;
mod inventory;
mod lease;
mod scep;
mod schema;
mod state_schema;
mod tls;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use pkiplane_core::inventory::{
    CaMaterialStore, CertificateRecord, DenialRecord, GroupBy, Inventory, InventoryCounts, InventoryFilter,
    PublishedCrl, Revocation, RevokeOutcome, RevokedEntry, StoreError, StoredCaMaterial, StoredNextCa,
    StoredOcspResponder, StoredRetiredCa,
};
use pkiplane_core::model::ObjectRef;

use self::error::{pg_err, pool_err};
use self::tls::TlsSettings;

pub(crate) type Client = deadpool_postgres::Object;
pub(crate) type ClientTx<'a> = deadpool_postgres::Transaction<'a>;

/// Connections kept open at most.
const POOL_SIZE: usize = 16;
/// How long a call waits for a connection (free or new) before it is `Unavailable`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL inventory and CA material store.
pub struct PostgresStore {
    pool: Pool,
    /// host:port/database, for messages (never the password).
    target: String,
    /// Seals the SCEP RA keys when set (see `sealing::postgres`).
    pub(crate) key_encryption: std::sync::OnceLock<std::sync::Arc<crate::sealing::KeyEncryptionKeys>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("target", &self.target).finish()
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`) and
    /// brings its schema up to date. Fails if the server cannot be reached or its schema
    /// is newer than this code.
    ///
    /// TLS follows libpq's URL parameters (`sslmode`, `sslrootcert`, `sslcert`,
    /// `sslkey`; see `tls`); a URL without `sslmode` is taken as `verify-full`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, tls) = TlsSettings::from_url(url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::unavailable("the PostgreSQL URL does not parse").because(e)
        })?;
        config.ssl_mode(tls.negotiation());
        let target = format!("{} (sslmode={})", describe_target(&config), tls.mode().name());
        // Durable before return, whatever the server's default says.
        let options = match config.get_options() {
            Some(existing) => format!("{existing} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_owned(),
        };
        config.options(&options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("pkiplane");
        }
        let manager =
            Manager::from_config(config, tls.connector()?, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::unavailable("building the PostgreSQL pool").because(e))?;
        let store = Self { pool, target, key_encryption: Default::default() };
        let mut client = store.client().await?;
        schema::apply(&mut client).await.map_err(|e| store.with_target(e))?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let context = format!("connecting to PostgreSQL at {}", self.target);
        self.pool.get().await.map_err(|e| pool_err(&context)(e))
    }

    fn with_target(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Unavailable { .. } => e.context(format_args!("PostgreSQL at {}", self.target)),
            other => other,
        }
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<i32, StoreError> {
        schema::schema_version(&self.client().await?).await
    }

    /// Sets every issuer's CRL number counter to at least `floor`: after restoring a
    /// backup, CRLs published after the backup was made may carry numbers the restored
    /// counters have not reached.
    pub async fn raise_crl_numbers(&self, floor: u64) -> Result<u64, StoreError> {
        let floor = i64::try_from(floor).map_err(|_| StoreError::invalid(format!("CRL number {floor} too large")))?;
        self.execute("raising the CRL numbers", "UPDATE crl_numbers SET last = GREATEST(last, $1)", &[&floor]).await
    }
}

impl PostgresStore {
    pub(crate) async fn raw_query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.client().await?.query(sql, params).await.map_err(pg_err("reading stored keys"))
    }

    pub(crate) async fn raw_execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.execute("replacing a stored key", sql, params).await
    }
}

/// `host:port/database` of a connection configuration.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default database)"))
}

#[async_trait]
impl Inventory for PostgresStore {
    fn approvals(&self) -> Option<&dyn pkiplane_core::approval::ApprovalStore> {
        Some(self)
    }

    async fn write_pending(&self, record: &CertificateRecord) -> Result<(), StoreError> {
        // The issuance's synced "issued" commit comes later in the same WAL and flushes
        // this one with it (see `Inventory::write_pending`).
        self.unsynced("recording a pending certificate", async |tx| inventory::insert_pending(tx, record).await).await
    }

    async fn mark_issued(&self, issuer: &ObjectRef, serial: &str, der: &[u8]) -> Result<(), StoreError> {
        inventory::mark_issued(&self.client().await?, &issuer.to_string(), serial, der, SystemTime::now()).await
    }

    async fn mark_abandoned(&self, issuer: &ObjectRef, serial: &str) -> Result<(), StoreError> {
        inventory::mark_abandoned(&self.client().await?, &issuer.to_string(), serial).await
    }

    async fn recover_pending(&self, before: SystemTime) -> Result<u64, StoreError> {
        inventory::recover_pending(&self.client().await?, before).await
    }

    async fn revoke(
        &self,
        issuer: &ObjectRef,
        serial: &str,
        revocation: Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("starting a revocation"))?;
        let outcome = inventory::revoke(&tx, &issuer.to_string(), serial, revocation).await?;
        tx.commit().await.map_err(pg_err("committing a revocation"))?;
        Ok(outcome)
    }

    async fn get(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        inventory::get(&self.client().await?, &issuer.to_string(), serial).await
    }

    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, StoreError> {
        inventory::find_serial(&self.client().await?, serial).await
    }

    async fn list(&self, filter: &InventoryFilter) -> Result<Vec<CertificateRecord>, StoreError> {
        inventory::list(&self.client().await?, filter, SystemTime::now()).await
    }

    async fn counts(
        &self,
        group: GroupBy,
        now: SystemTime,
        expiring_within: Duration,
    ) -> Result<Vec<InventoryCounts>, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for the certificates and the denials.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err("counting the inventory"))?;
        let counts = inventory::counts(&tx, group, now, expiring_within).await?;
        tx.commit().await.map_err(pg_err("counting the inventory"))?;
        Ok(counts)
    }

    async fn revoked_entries(&self, issuer: &ObjectRef, now: SystemTime) -> Result<Vec<RevokedEntry>, StoreError> {
        inventory::revoked_entries(&self.client().await?, &issuer.to_string(), now).await
    }

    async fn next_crl_number(&self, issuer: &ObjectRef) -> Result<u64, StoreError> {
        inventory::next_crl_number(&self.client().await?, &issuer.to_string()).await
    }

    async fn latest_not_after(
        &self,
        issuer: &ObjectRef,
        created_by: SystemTime,
    ) -> Result<Option<SystemTime>, StoreError> {
        inventory::latest_not_after(&self.client().await?, &issuer.to_string(), created_by).await
    }

    async fn record_denial(&self, denial: &DenialRecord) -> Result<(), StoreError> {
        inventory::record_denial(&self.client().await?, denial).await
    }

    async fn save_crl(&self, crl: &PublishedCrl) -> Result<(), StoreError> {
        ca::save_crl(&self.client().await?, crl).await
    }

    async fn last_crl(&self, issuer: &ObjectRef) -> Result<Option<PublishedCrl>, StoreError> {
        ca::load_crl(&self.client().await?, issuer).await
    }
}

#[async_trait]
impl CaMaterialStore for PostgresStore {
    async fn load_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredCaMaterial>, StoreError> {
        ca::load_ca(&self.client().await?, &issuer.to_string()).await
    }

    async fn save_ca(&self, issuer: &ObjectRef, material: &StoredCaMaterial) -> Result<(), StoreError> {
        ca::save_ca(&self.client().await?, &issuer.to_string(), material, SystemTime::now()).await
    }

    async fn load_next_ca(&self, issuer: &ObjectRef) -> Result<Option<StoredNextCa>, StoreError> {
        ca::load_next(&self.client().await?, &issuer.to_string()).await
    }

    async fn save_next_ca(&self, issuer: &ObjectRef, next: Option<&StoredNextCa>) -> Result<(), StoreError> {
        ca::save_next(&self.client().await?, &issuer.to_string(), next, SystemTime::now()).await
    }

    async fn load_retired_cas(&self, issuer: &ObjectRef) -> Result<Vec<StoredRetiredCa>, StoreError> {
        ca::load_retired(&self.client().await?, &issuer.to_string()).await
    }

    async fn save_retired_ca(&self, issuer: &ObjectRef, retired: &StoredRetiredCa) -> Result<(), StoreError> {
        ca::save_retired(&self.client().await?, &issuer.to_string(), retired).await
    }

    async fn remove_retired_ca(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("removing a retired CA key"))?;
        ca::remove_retired(&tx, &issuer.to_string(), key_id).await?;
        tx.commit().await.map_err(pg_err("removing a retired CA key"))
    }

    async fn load_ocsp_responder(
        &self,
        issuer: &ObjectRef,
        ca_key_id: &[u8],
    ) -> Result<Option<StoredOcspResponder>, StoreError> {
        ca::load_responder(&self.client().await?, &issuer.to_string(), ca_key_id).await
    }

    async fn save_ocsp_responder(&self, issuer: &ObjectRef, responder: &StoredOcspResponder) -> Result<(), StoreError> {
        ca::save_responder(&self.client().await?, &issuer.to_string(), responder, SystemTime::now()).await
    }
}
