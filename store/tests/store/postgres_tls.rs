//! TLS to a real PostgreSQL server (`ssl=on`, a server certificate from a test CA made
//! here): libpq's sslmode, sslrootcert, sslcert and sslkey as the URL sets them.
//!
//! The servers' pg_hba.conf accepts nothing but TLS (`hostssl`; plain TCP is rejected), so
//! a connection that works was encrypted.

use std::path::{Path, PathBuf};

use pkiplane_core::inventory::{CertStatus, Inventory, StoreError};
use pkiplane_store::PostgresStore;
use pkiplane_store::testing::{ServerTls, TestPostgres, shared_schema_url};
use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tempfile::TempDir;

use crate::common::{issue, pending, root};

/// Users: `pkiplane` with a password; `pkiplane_cert` with a password and a client
/// certificate whose CN is its name (`clientcert=verify-full`); plain TCP refused.
const HBA: &str = "\
hostssl all pkiplane_cert 127.0.0.1/32 scram-sha-256 clientcert=verify-full
hostssl all pkiplane      127.0.0.1/32 scram-sha-256
host    all all           127.0.0.1/32 reject
";

/// A test CA, the files a client is given, and a server using a certificate from it.
struct TlsFixture {
    server: TestPostgres,
    dir: TempDir,
}

impl TlsFixture {
    /// A server whose certificate names `pg.test` only, issued by a fresh test CA.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = test_ca("pkiplane test database CA");
        let server_key = KeyPair::generate().unwrap();
        let server_cert =
            CertificateParams::new(vec!["pg.test".to_owned()]).unwrap().signed_by(&server_key, &ca).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "pkiplane_cert");
        let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
        let other_ca = test_ca("another CA");
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other_ca.pem()),
            ("client.crt", client_cert.pem()),
            ("client.key", client_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        let server = TestPostgres::start_tls(&ServerTls {
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
            client_ca_pem: ca.pem(),
            hba: HBA.to_owned(),
        });
        Self { server, dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A URL to the server as `host` (resolved to 127.0.0.1 by `hostaddr`) with `params`.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://pkiplane:{}@{host}:{}/postgres?hostaddr=127.0.0.1&connect_timeout=5&{params}",
            self.server.password(),
            self.server.port()
        )
    }
}

fn test_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn enc(path: &Path) -> String {
    path.display().to_string().replace('/', "%2F")
}

async fn refused(url: &str) -> String {
    match PostgresStore::connect(url).await {
        Ok(_) => panic!("connected with {url}"),
        Err(e) => {
            assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
            e.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_channel_binding_connects_and_the_store_works() {
    let f = TlsFixture::start();
    let ca = enc(&f.file("ca.pem"));
    // `channel_binding=require`: SCRAM-SHA-256-PLUS bound to the server's certificate.
    let url = f.url("pg.test", &format!("sslmode=verify-full&sslrootcert={ca}&channel_binding=require"));
    let store = PostgresStore::connect(&url).await.unwrap();
    let described = format!("{store:?}");
    assert!(described.contains("sslmode=verify-full") && !described.contains(f.server.password()), "{described}");
    issue(&store, &pending("7001")).await;
    let record = store.get(&root(), "7001").await.unwrap().expect("the issued record reads back");
    assert_eq!(record.status, CertStatus::Issued);
    // The same without sslmode: verify-full is the default.
    let store = PostgresStore::connect(&f.url("pg.test", &format!("sslrootcert={ca}"))).await.unwrap();
    assert!(store.get(&root(), "7001").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_or_from_another_ca_is_refused() {
    let f = TlsFixture::start();
    let ca = enc(&f.file("ca.pem"));
    let err = refused(&f.url("db.example", &format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    assert!(err.contains("not valid for name") && err.contains("db.example"), "{err}");
    // No sslmode: the same (verify-full).
    let err = refused(&f.url("db.example", &format!("sslrootcert={ca}"))).await;
    assert!(err.contains("not valid for name"), "{err}");
    // verify-ca checks the chain, not the name.
    PostgresStore::connect(&f.url("db.example", &format!("sslmode=verify-ca&sslrootcert={ca}"))).await.unwrap();
    let other = enc(&f.file("other-ca.pem"));
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let err = refused(&f.url("pg.test", &format!("sslmode={mode}&sslrootcert={other}"))).await;
        assert!(err.contains("invalid peer certificate") && err.contains("UnknownIssuer"), "{mode}: {err}");
    }
    // require and prefer without a CA encrypt and check nothing, as in libpq.
    PostgresStore::connect(&f.url("db.example", "sslmode=require")).await.unwrap();
    PostgresStore::connect(&f.url("db.example", "sslmode=prefer")).await.unwrap();
    // sslmode=disable reaches the server, whose pg_hba.conf rejects plain TCP.
    let err = refused(&f.url("pg.test", "sslmode=disable")).await;
    assert!(err.contains("pg_hba.conf") && err.contains("no encryption"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_authentication() {
    let f = TlsFixture::start();
    f.server.psql("CREATE ROLE pkiplane_cert LOGIN PASSWORD 'cert-user-pw'");
    f.server.psql("CREATE DATABASE certdb OWNER pkiplane_cert");
    let ca = enc(&f.file("ca.pem"));
    let base = format!(
        "postgres://pkiplane_cert:cert-user-pw@pg.test:{}/certdb?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}",
        f.server.port()
    );
    let with_cert = format!("{base}&sslcert={}&sslkey={}", enc(&f.file("client.crt")), enc(&f.file("client.key")));
    let store = PostgresStore::connect(&with_cert).await.unwrap();
    issue(&store, &pending("7002")).await;
    assert!(store.get(&root(), "7002").await.unwrap().is_some());
    let err = refused(&base).await;
    assert!(err.contains("certificate"), "{err}");
    // A key that is not the certificate's is refused before any connection.
    let wrong_key = f.dir.path().join("wrong.key");
    std::fs::write(&wrong_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = refused(&format!("{base}&sslcert={}&sslkey={}", enc(&f.file("client.crt")), enc(&wrong_key))).await;
    assert!(err.contains("does not fit the certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_to_a_server_without_tls_is_refused() {
    // The shared test server runs with ssl=off.
    let url = shared_schema_url().await.replace("sslmode=disable", "sslmode=require");
    let err = refused(&url).await;
    assert!(err.contains("server does not support TLS"), "{err}");
    // prefer falls back to plain TCP there, as in libpq.
    PostgresStore::connect(&url.replace("sslmode=require", "sslmode=prefer")).await.unwrap();
    // No sslmode means verify-full, which needs a CA: said before connecting.
    let url = url.replace("sslmode=require&", "");
    let err = refused(&url).await;
    assert!(err.contains("reads as verify-full") && err.contains("sslrootcert"), "{err}");
}

/// A CA bundle replaced on disk (a Secret's rotation) is used by the connections opened
/// after it, without restarting the store: a bundle of the wrong CA makes them fail, the
/// right one again makes them work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ca_bundle_is_used_by_new_connections() {
    let mut f = TlsFixture::start();
    let bundle = f.file("bundle.pem");
    std::fs::copy(f.file("ca.pem"), &bundle).unwrap();
    let store = PostgresStore::connect(&f.url("pg.test", &format!("sslmode=verify-full&sslrootcert={}", enc(&bundle))))
        .await
        .unwrap();
    issue(&store, &pending("7003")).await;
    // The database restarts (every pooled connection is gone) with the bundle replaced.
    std::fs::copy(f.file("other-ca.pem"), &bundle).unwrap();
    f.server.stop();
    f.server.start_again();
    let mut last = String::new();
    for _attempt in 0..5 {
        match store.get(&root(), "7003").await {
            Ok(_) => panic!("a new connection trusted the replaced bundle's CA"),
            Err(e) => last = e.to_string(),
        }
        if last.contains("UnknownIssuer") {
            break;
        }
    }
    assert!(last.contains("UnknownIssuer"), "{last}");
    std::fs::copy(f.file("ca.pem"), &bundle).unwrap();
    assert!(store.get(&root(), "7003").await.unwrap().is_some());
}
