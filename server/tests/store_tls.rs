//! The binary's TLS to PostgreSQL as the Helm chart sets it up: the URL from the Secret
//! without TLS parameters, `PGSSLMODE` and `PGSSLROOTCERT` in the environment. A real
//! PostgreSQL with `ssl=on`, a server certificate for `localhost` from a CA made here
//! with openssl, and a pg_hba.conf that accepts TLS only.

use std::path::Path;
use std::process::{Command, Output};

use pkiplane_store::testing::{ServerTls, TestPostgres};

const BIN: &str = env!("CARGO_BIN_EXE_pkiplane");

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("sh").arg("-c").arg(format!("openssl {args}")).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key -out {name}.pem \
             -subj /CN={name} -days 2 -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    );
}

fn store_command(url: &str, env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["store", "mark-restored", "--store", url]).env_remove("PGSSLMODE").env_remove("PGSSLROOTCERT");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn the_cli_verifies_the_database_certificate_with_settings_from_the_environment() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    make_ca(dir, "db-ca");
    make_ca(dir, "other-ca");
    openssl(
        dir,
        "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        dir,
        "x509 -req -in server.csr -CA db-ca.pem -CAkey db-ca.key -CAcreateserial -days 2 -extfile ext.cnf \
         -out server.crt",
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let pg = TestPostgres::start_tls(&ServerTls {
        cert_pem: read("server.crt"),
        key_pem: read("server.key"),
        client_ca_pem: read("db-ca.pem"),
        hba: "hostssl all pkiplane 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n".to_owned(),
    });
    // As in the chart's Secret: no TLS parameters in the URL.
    let url = format!("postgres://pkiplane:{}@localhost:{}/postgres?hostaddr=127.0.0.1", pg.password(), pg.port());

    let ok = store_command(&url, &[("PGSSLMODE", Path::new("verify-full")), ("PGSSLROOTCERT", &dir.join("db-ca.pem"))]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(stdout.contains("CRL number counters continue from"), "{stdout}");

    let wrong = store_command(&url, &[("PGSSLROOTCERT", &dir.join("other-ca.pem"))]);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(stderr.contains("sslmode=verify-full") && !stderr.contains(pg.password()), "{stderr}");

    // No sslmode and no CA anywhere: verify-full is assumed, and the advice is given.
    let none = store_command(&url, &[]);
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success() && stderr.contains("reads as verify-full"), "{stderr}");
    assert!(stderr.contains("sslrootcert") && stderr.contains("sslmode=disable"), "{stderr}");
}
