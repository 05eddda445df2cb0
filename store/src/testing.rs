//! A throwaway PostgreSQL server for tests (feature `testing`).
//!
//! [`TestPostgres::start`] installs Debian's PostgreSQL through `scripts/tools/postgres.sh`
//! when missing, runs `initdb` in a fresh folder under the temporary directory (as the
//! user that script names: `postgres` when the tests run as root, since PostgreSQL refuses
//! root) and starts a server listening on 127.0.0.1 only, on a port outside the kernel's
//! ephemeral range, with password authentication and `fsync` on. Dropping it stops the
//! server and removes the folder.
//!
//! A test killed outright cannot run its drop: the server is started with a parent-death
//! signal (`setpriv --pdeathsig KILL`) from a thread that lives as long as the test
//! process, so it dies with the process, and the next start removes folders whose
//! process is gone.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL server of one test.
pub struct TestPostgres {
    dir: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
    child: Option<Child>,
    tls: bool,
}

/// TLS for a test server ([`TestPostgres::start_tls`]): `ssl=on` with this certificate
/// and key (PEM), client certificates checked against `client_ca_pem`, and `hba` as the
/// whole of pg_hba.conf.
#[derive(Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
    pub hba: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("hba", &self.hba).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres").field("dir", &self.dir).field("port", &self.port).finish()
    }
}

impl TestPostgres {
    /// Starts a fresh server; panics (a test failure) when it cannot.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a fresh server with TLS on (see [`ServerTls`]).
    pub fn start_tls(tls: &ServerTls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Self {
        let (bin, user) = install();
        let root = std::env::temp_dir().join("pkiplane-postgres");
        std::fs::create_dir_all(&root).expect("creating the test PostgreSQL root");
        set_mode(&root, 0o755);
        remove_stale(&root);
        let dir = root.join(format!("{}-{}", std::process::id(), random_hex(6)));
        std::fs::create_dir(&dir).expect("creating the test PostgreSQL folder");
        set_mode(&dir, 0o700);
        let password = random_hex(16);
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, format!("{password}\n")).expect("writing the password file");
        if let Some(tls) = tls {
            Self::write_tls(&dir, tls);
        }
        let run_as = is_root().then_some(user);
        if let Some(user) = &run_as {
            let status = Command::new("chown").args(["-R", user]).arg(&dir).status().expect("running chown");
            assert!(status.success(), "chown {user} {} failed", dir.display());
        }
        let mut server = Self { dir, bin, run_as, port: 0, password, child: None, tls: tls.is_some() };
        let out = server
            .as_user(&server.bin.join("initdb"))
            .arg("-D")
            .arg(server.data())
            .args(["-U", "pkiplane", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"])
            .arg(format!("--pwfile={}", pwfile.display()))
            // Skips only initdb's own final flush of the files it wrote (a throwaway
            // cluster); the server itself runs with fsync on.
            .arg("--no-sync")
            .output()
            .expect("running initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_file(&pwfile);
        server.start_again();
        server
    }

    /// Writes the server's TLS files into DIR/tls (the server refuses a key others can read).
    fn write_tls(dir: &Path, tls: &ServerTls) {
        let tls_dir = dir.join("tls");
        std::fs::create_dir(&tls_dir).expect("creating the TLS folder");
        for (name, content) in [
            ("server.crt", &tls.cert_pem),
            ("server.key", &tls.key_pem),
            ("client-ca.crt", &tls.client_ca_pem),
            ("pg_hba.conf", &tls.hba),
        ] {
            std::fs::write(tls_dir.join(name), content).expect("writing a TLS file");
            set_mode(&tls_dir.join(name), 0o600);
        }
    }

    /// The connection URL (database `postgres`, user `pkiplane`), without TLS.
    pub fn url(&self) -> String {
        format!("postgres://pkiplane:{}@127.0.0.1:{}/postgres?sslmode=disable", self.password, self.port)
    }

    /// Runs `sql` as the superuser `pkiplane` through psql (libpq) over TCP, with TLS
    /// when the server has it; panics when it fails.
    pub fn psql(&self, sql: &str) {
        let sslmode = if self.tls { "require" } else { "disable" };
        let out = Command::new(self.bin.join("psql"))
            .arg(format!("host=127.0.0.1 port={} user=pkiplane dbname=postgres sslmode={sslmode}", self.port))
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("running psql");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The password of the user `pkiplane` (for URLs a test builds itself).
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_user(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .args(["--init-groups", "--pdeathsig", "KILL", "--"])
                    .arg(program);
                cmd
            }
            None => {
                let mut cmd = Command::new("setpriv");
                cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
                cmd
            }
        }
    }

    /// Stops the server cleanly (what an operator's restart does); [`Self::start_again`]
    /// brings it back on the same port with the same data.
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    /// Stops the server at once, like a crash (no checkpoint; recovery replays the WAL).
    pub fn crash(&mut self) {
        self.pg_ctl_stop("immediate");
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        let Some(mut child) = self.child.take() else { return };
        let _ =
            self.as_user(&self.bin.join("pg_ctl")).arg("-D").arg(self.data()).args(["stop", "-w", "-m", mode]).output();
        // The postmaster exits once stopped; kill it if pg_ctl could not.
        if !wait_exit(&mut child, Duration::from_secs(30)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) and waits until it accepts connections. The first start
    /// picks a port; later ones keep it.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the test PostgreSQL is already running");
        for _attempt in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            let log = std::fs::File::create(self.dir.join("server.log")).expect("creating the server log");
            let mut cmd = self.as_user(&self.bin.join("postgres"));
            cmd.arg("-D").arg(self.data()).arg("-p").arg(self.port.to_string());
            for setting in
                ["listen_addresses=127.0.0.1", "unix_socket_directories=", "fsync=on", "synchronous_commit=on"]
            {
                cmd.args(["-c", setting]);
            }
            if self.tls {
                let tls = self.dir.join("tls");
                cmd.args(["-c", "ssl=on"]);
                for (setting, file) in [
                    ("ssl_cert_file", "server.crt"),
                    ("ssl_key_file", "server.key"),
                    ("ssl_ca_file", "client-ca.crt"),
                    ("hba_file", "pg_hba.conf"),
                ] {
                    cmd.arg("-c").arg(format!("{setting}={}", tls.join(file).display()));
                }
            }
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
            let mut child = spawn_from_lasting_thread(cmd).expect("starting postgres");
            match self.wait_ready(&mut child) {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                // Most likely the port was taken between the pick and the bind.
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("test PostgreSQL did not start on port {} ({why}); retrying", self.port);
                    self.port = 0;
                }
            }
        }
        panic!("the test PostgreSQL did not start; its log:\n{}", self.log());
    }

    fn wait_ready(&self, child: &mut Child) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("postgres exited: {status}"));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-t", "1", "-p"])
                .arg(self.port.to_string())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("not ready in time".to_owned())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("server.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

/// The process-wide shared server: `scripts/tools/postgres.sh serve` under a
/// parent-death signal, so it stops and removes its folder when the test process ends.
struct SharedServer {
    port: u16,
    password: String,
}

/// A URL of a fresh, empty schema on a server shared by the tests of this process (far
/// cheaper than a server per test). Tests that stop or break their server use
/// [`TestPostgres::start`] instead.
pub async fn shared_schema_url() -> String {
    static SHARED: OnceLock<SharedServer> = OnceLock::new();
    let server = SHARED.get_or_init(start_shared);
    let base = format!("postgres://pkiplane:{}@127.0.0.1:{}/postgres", server.password, server.port);
    let (client, connection) =
        tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connecting to the shared test PostgreSQL");
    let task = tokio::spawn(connection);
    let schema = format!("test_{}", random_hex(8));
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("creating a test schema");
    drop(client);
    let _ = task.await;
    format!("{base}?sslmode=disable&options=-c%20search_path%3D{schema}")
}

fn start_shared() -> SharedServer {
    let (bin, user) = install();
    let root = std::env::temp_dir().join("pkiplane-postgres");
    std::fs::create_dir_all(&root).expect("creating the test PostgreSQL root");
    set_mode(&root, 0o755);
    remove_stale(&root);
    let dir = root.join(format!("{}-shared-{}", std::process::id(), random_hex(6)));
    let password = random_hex(16);
    let pwfile = root.join(format!("{}-pw-{}", std::process::id(), random_hex(6)));
    std::fs::write(&pwfile, format!("{password}\n")).expect("writing the password file");
    set_mode(&pwfile, 0o600);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/postgres.sh");
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "TERM", "--", "bash"]).arg(&script).arg("serve").arg(&dir).arg(port.to_string());
        cmd.arg(&pwfile).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = spawn_from_lasting_thread(cmd).expect("starting scripts/tools/postgres.sh serve");
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-t", "1", "-p"])
                .arg(port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                let _ = std::fs::remove_file(&pwfile);
                let _ = user;
                return SharedServer { port, password };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the shared test PostgreSQL did not start");
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of the PostgreSQL server and client programs (pg_dump, pg_restore...).
pub fn bin_dir() -> PathBuf {
    install().0
}

/// Runs `scripts/tools/postgres.sh` once per process: the server binaries' directory and
/// the user to run them as.
fn install() -> (PathBuf, String) {
    static INSTALLED: OnceLock<(PathBuf, String)> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tools/postgres.sh");
            let out = Command::new("bash").arg(&script).output().expect("running scripts/tools/postgres.sh");
            assert!(out.status.success(), "postgres.sh failed: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let bin = PathBuf::from(lines.next().expect("postgres.sh printed no bin directory"));
            let user = lines.next().expect("postgres.sh printed no user").to_owned();
            (bin, user)
        })
        .clone()
}

/// Spawns `cmd` from a thread that never ends: a parent-death signal fires when the
/// thread that forked exits, so a short-lived test thread must not be that parent.
fn spawn_from_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("test-postgres-spawner".to_owned())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    sender.lock().unwrap_or_else(|e| e.into_inner()).send((cmd, reply)).expect("spawner thread gone");
    answer.recv().expect("spawner thread gone")
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Removes the folders of test servers whose process is gone (killed before its drop).
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for servers that need a fixed
/// port). Chosen outside the kernel's ephemeral range, so no outgoing connection of a
/// test running beside this one can take it between this pick and the server's bind.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range.split_whitespace().filter_map(|n| n.parse::<u32>().ok());
    let (lo, hi) = (bounds.next().unwrap_or(32768), bounds.next().unwrap_or(60999));
    let (base, span) = if lo > 12000 { (10000, lo - 10000) } else { (hi + 1, 65535 - hi) };
    let random = RandomState::new();
    for attempt in 0u32..1000 {
        let port = (base + (random.hash_one(attempt) % u64::from(span)) as u32) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port outside the ephemeral range {lo}-{hi}")
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Schema version before ACME state was kept per endpoint (ACME rows without an endpoint).
pub const SQLITE_VERSION_BEFORE_ACME_ENDPOINTS: usize = 8;

/// Creates a SQLite database at `path` as a release with schema version `version` left it:
/// only the first `version` schema steps applied (for tests of upgrades).
pub fn sqlite_at_version(path: &Path, version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("creating the old database");
    for parts in &crate::migrations::MIGRATIONS[..version] {
        conn.execute_batch(&parts.concat()).expect("applying an old schema step");
    }
    conn.pragma_update(None, "user_version", version as i64).expect("setting the old schema version");
    conn
}
