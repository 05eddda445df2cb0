//! Shared support for the `pkiplane` binary tests: a quickstart copy whose endpoints
//! listen on free ports, and a `pkiplane serve` process that stops with the test.
#![allow(dead_code)]

pub mod metrics;
pub mod split;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart.yaml");
pub const BIN: &str = env!("CARGO_BIN_EXE_pkiplane");

/// The quickstart with every `listen.port` set to 0 (a free port, reported in the ready
/// file), so tests run side by side and beside a developer's own `pkiplane serve`.
pub fn quickstart_free_ports(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(QUICKSTART).unwrap();
    let mut out = String::new();
    let mut in_listen = false;
    for line in text.lines() {
        if line.trim_start().starts_with("listen:") {
            in_listen = true;
        } else if in_listen && line.trim_start().starts_with("port:") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}port: 0\n"));
            in_listen = false;
            continue;
        } else if !line.starts_with("    ") {
            in_listen = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    let path = dir.join("quickstart.yaml");
    std::fs::write(&path, out).unwrap();
    path
}

/// A running `pkiplane serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub ready: serde_json::Value,
    pub publish_url: String,
    /// Where `/metrics` is served (`--metrics-listen`, a free port).
    pub metrics_url: String,
    /// The admin API (`--admin-listen`, a free port).
    pub admin_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `pkiplane serve -f manifests` on `data` and waits for its ready file.
    pub fn start(manifests: &Path, data: &Path, ready: &Path) -> Server {
        Self::start_with(manifests, data, ready, &[], None)
    }

    /// [`Server::start`] with extra environment variables (e.g. a failpoint).
    pub fn start_with_env(manifests: &Path, data: &Path, ready: &Path, env: &[(&str, &str)]) -> Server {
        Self::spawn(manifests, data, ready, &[], None, env)
    }

    /// [`Server::start`] with `extra` arguments, and with at most `open_files` open
    /// files (soft and hard limit) when given.
    pub fn start_with(manifests: &Path, data: &Path, ready: &Path, extra: &[&str], open_files: Option<u64>) -> Server {
        Self::spawn(manifests, data, ready, extra, open_files, &[])
    }

    fn spawn(
        manifests: &Path,
        data: &Path,
        ready: &Path,
        extra: &[&str],
        open_files: Option<u64>,
        env: &[(&str, &str)],
    ) -> Server {
        let _ = std::fs::remove_file(ready);
        // Appended to across restarts on the same data directory.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.with_extension("log")).unwrap();
        let mut command = match open_files {
            Some(n) => {
                let mut c = Command::new("bash");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(["serve", "-f", manifests.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
            .args(extra)
            .args([
                "--publish-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--ready-file",
                ready.to_str().unwrap(),
                "--shutdown-grace",
                "5s",
            ])
            .env("PKIPLANE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(
                Instant::now() < deadline,
                "serve did not become ready; see {}",
                data.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ready: serde_json::Value = serde_json::from_slice(&std::fs::read(ready).unwrap()).unwrap();
        let publish_url = ready["publishUrl"].as_str().unwrap().to_string();
        let metrics_url = ready["metricsUrl"].as_str().unwrap().to_string();
        let admin_url = ready["adminUrl"].as_str().unwrap().to_string();
        Server { child, ready, publish_url, metrics_url, admin_url }
    }

    /// Waits (bounded) for the process to end, e.g. at a failpoint; its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ready-file entry of endpoint `namespace/name`.
    pub fn endpoint(&self, namespace: &str, name: &str) -> &serde_json::Value {
        self.ready["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["namespace"] == namespace && e["name"] == name)
            .unwrap_or_else(|| panic!("endpoint {namespace}/{name} not in the ready file: {}", self.ready))
    }
}

/// A TCP port on 127.0.0.1 outside the kernel's ephemeral range (see there).
#[allow(unused_imports)] // not every test binary picks ports
pub use pkiplane_store::testing::free_port;

/// The path a `scripts/tools/<script>` installer prints last (it builds or installs the
/// tool on first use and caches it).
pub fn tool_path(script: &str) -> String {
    let path = format!("{}/../scripts/tools/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash").arg(&path).output().unwrap();
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap().to_string()
}

/// `pkiplane inventory list --protocol <protocol> -o json` on a data directory.
pub fn inventory(data: &Path, protocol: &str) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["inventory", "list", "--data-dir", data.to_str().unwrap(), "--protocol", protocol, "-o", "json"])
        .args(admin_flags(data))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The flags that reach the admin API of the server running on `data` (the data
/// directory's `admin.json`), or none when no server runs there.
pub fn admin_flags(data: &Path) -> Vec<String> {
    // A server that crashed left its admin.json: only a held lock means one runs.
    let lock = std::fs::File::open(data.join("owner.lock"));
    if lock.as_ref().is_ok_and(|l| l.try_lock().is_ok()) {
        return Vec::new();
    }
    drop(lock);
    let Ok(text) = std::fs::read(data.join("admin.json")) else { return Vec::new() };
    let d: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let mut flags = vec!["--server".to_owned(), d["url"].as_str().unwrap().to_owned()];
    if let Some(ca) = d["caFile"].as_str() {
        flags.extend(["--ca-file".to_owned(), ca.to_owned()]);
    }
    if let Some(token) = d["tokenFile"].as_str() {
        flags.extend(["--token-file".to_owned(), token.to_owned()]);
    }
    flags
}

/// A P-256 key and CSR made by `openssl req` in `dir` (`<name>.key`, `<name>.csr`) for the
/// DNS name `dns` (also the CN); returns the CSR's path.
pub fn p256_csr(dir: &Path, name: &str, dns: &str) -> PathBuf {
    p256_csr_with(dir, name, &format!("/CN={dns}"), Some(&format!("DNS:{dns}")), CsrForm::Pem)
}

/// How `p256_csr_with` writes the CSR.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CsrForm {
    Pem,
    Der,
}

/// A P-256 key and CSR made by `openssl req` in `dir` (`<name>.key`, `<name>.csr`, or
/// `<name>.csr.der`) with `subject` and, when given, `subjectAltName=<san>`; returns the
/// CSR's path.
pub fn p256_csr_with(dir: &Path, name: &str, subject: &str, san: Option<&str>, form: CsrForm) -> PathBuf {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(if form == CsrForm::Der { format!("{name}.csr.der") } else { format!("{name}.csr") });
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout"])
        .arg(&key)
        .args(["-subj", subject]);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    if form == CsrForm::Der {
        cmd.args(["-outform", "DER"]);
    }
    let out = cmd.arg("-out").arg(&csr).output().unwrap();
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    csr
}

/// `pkiplane issue` of `csr` under `profile` on the data directory `data` (also while a
/// serve runs on it), written to `out`; returns the serial as openssl prints it.
pub fn issue_with_cli(manifests: &Path, data: &Path, profile: &str, csr: &Path, out: &Path) -> String {
    let issued = Command::new(BIN)
        .args(["issue", "-f"])
        .arg(manifests)
        .arg("--data-dir")
        .arg(data)
        .args(["--profile", profile, "--csr"])
        .arg(csr)
        .arg("--out")
        .arg(out)
        .env("PKIPLANE_LOG", "warn")
        .output()
        .unwrap();
    assert!(issued.status.success(), "pkiplane issue: {}", String::from_utf8_lossy(&issued.stderr));
    let serial = Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(out).output().unwrap();
    String::from_utf8_lossy(&serial.stdout).trim().trim_start_matches("serial=").to_string()
}

/// What a finished process wrote (stdout, then stderr), for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `openssl` with `args`, which must succeed.
pub fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `openssl verify` of the PEM certificate `leaf` through `intermediate` to `root`.
pub fn verify_chain(root: &Path, intermediate: &Path, leaf: &Path) {
    openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        intermediate.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
}

/// The arguments of `pkiplane issue` of `csr` under enterprise-tls-47d into `data`, as
/// `identity` when given.
pub fn issue_args<'a>(manifests: &'a str, data: &'a Path, csr: &'a Path, identity: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "issue",
        "-f",
        manifests,
        "--data-dir",
        data.to_str().unwrap(),
        "--profile",
        "enterprise-tls-47d",
        "--csr",
        csr.to_str().unwrap(),
    ];
    if let Some(identity) = identity {
        args.extend(["--identity", identity]);
    }
    args
}
