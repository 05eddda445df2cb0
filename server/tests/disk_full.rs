//! A really full disk: the data directory on a 4 MiB tmpfs mounted inside a private
//! mount namespace (`unshare -m`, so nothing of it is seen outside the test; root is
//! required, as for the project's other namespace tests), filled with `dd`.
//!
//! While no new CRL can be made, the publication endpoint serves the last good CRL
//! (kept in the store, so also after a restart) until its nextUpdate, and only then
//! answers 503; a start-up that needs to write reports "disk full".

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, quickstart_free_ports, text};

/// Issuers only (no endpoints, so a start-up needs no write), the CRL valid for 30s:
/// a new one is due after 15s.
const ISSUERS: &str = r#"
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: root, namespace: pki}
spec:
  selfSigned: {}
  subject: "CN=Disk Full Root"
  keyAlgorithm: ECDSA-P256
  validity: 10y
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: issuing, namespace: pki}
spec:
  parentRef: {name: root}
  subject: "CN=Disk Full Issuing CA"
  keyAlgorithm: ECDSA-P256
  validity: 5y
  crl: {validity: 30s}
"#;

/// A process killed (and reaped) when dropped.
struct Killed(Option<Child>);

impl Killed {
    fn new(child: Child) -> Self {
        Self(Some(child))
    }

    fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or_default()
    }

    /// The process, no longer killed on drop.
    fn into_inner(mut self) -> Child {
        self.0.take().expect("a process")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A private mount namespace with a tmpfs at `mnt`, held open by a `sleep` (bounded).
fn namespace_with_tmpfs(mnt: &Path) -> Killed {
    assert!(
        Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0"),
        "this test mounts a tmpfs in a private mount namespace and must run as root"
    );
    let mut holder = Command::new("unshare")
        .args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=4m,mode=0755 tmpfs "$0" && echo mounted && exec sleep 600"#)
        .arg(mnt)
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux)");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "mounted", "mounting the tmpfs failed");
    Killed::new(holder)
}

/// `args` run inside the holder's mount namespace.
fn inside(holder: &Killed, program: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.args(["-t", &holder.id().to_string(), "-m", "--", program]);
    c
}

/// `pkiplane serve` inside the namespace; the ready file is outside it.
fn serve(holder: &Killed, manifests: &Path, data: &Path, ready: &Path, log: &Path) -> Child {
    let _ = std::fs::remove_file(ready);
    inside(holder, BIN)
        .args(["serve", "-f", manifests.to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .args(["--publish-listen", "127.0.0.1:0", "--ready-file", ready.to_str().unwrap()])
        .args(["--shutdown-grace", "5s"])
        .env("PKIPLANE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
        .spawn()
        .unwrap()
}

fn publish_url(ready: &Path, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "serve did not become ready: {}", std::fs::read_to_string(log).unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(ready).unwrap()).unwrap();
    v["publishUrl"].as_str().unwrap().to_owned()
}

/// (HTTP status, body) of the issuing CA's CRL.
fn fetch_crl(base: &str, to: &Path) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", to.to_str().unwrap(), "-w", "%{http_code}"])
        .arg(format!("{base}/issuers/pki/issuing/crl"))
        .output()
        .unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), std::fs::read(to).unwrap_or_default())
}

fn crl_number(der: &[u8], dir: &Path) -> String {
    let f = dir.join("number.der");
    std::fs::write(&f, der).unwrap();
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in", f.to_str().unwrap(), "-noout", "-crlnumber"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_last_good_crl_is_served_while_the_disk_is_full_until_its_next_update() {
    let d = tempfile::tempdir().unwrap();
    let mnt: PathBuf = d.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let manifests = d.path().join("issuers.yaml");
    std::fs::write(&manifests, ISSUERS).unwrap();
    let (ready, log) = (d.path().join("ready.json"), d.path().join("serve.log"));
    let data = mnt.join("data");
    let holder = namespace_with_tmpfs(&mnt);

    let server = Killed::new(serve(&holder, &manifests, &data, &ready, &log));
    let base = publish_url(&ready, &log);
    let (status, first) = fetch_crl(&base, &d.path().join("crl1.der"));
    assert_eq!(status, "200");
    let made = Instant::now();
    let first_number = crl_number(&first, d.path());

    // Fill the file system to the last byte.
    let fill = inside(&holder, "sh")
        .arg("-c")
        .arg(r#"for bs in 64k 4k 512 1; do dd if=/dev/zero of="$0/filler-$bs" bs=$bs 2>/dev/null; done; df -k "$0""#)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&fill.stdout).contains("100%"), "{}", text(&fill));

    // A start-up that must write (the quickstart issues serving certificates) says so.
    let quickstart = quickstart_free_ports(d.path());
    let refused = inside(&holder, BIN)
        .args(["serve", "-f", quickstart.to_str().unwrap(), "--data-dir"])
        .arg(mnt.join("other"))
        .args(["--publish-listen", "127.0.0.1:0"])
        .env("PKIPLANE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("disk full"), "{}", text(&refused));

    // Past half the CRL's life a new one is due; none can be made: the last good one.
    std::thread::sleep(Duration::from_secs(16).saturating_sub(made.elapsed()));
    let (status, during) = fetch_crl(&base, &d.path().join("crl2.der"));
    assert!(made.elapsed() < Duration::from_secs(29), "too slow to check before nextUpdate");
    assert_eq!(status, "200", "{}", String::from_utf8_lossy(&during));
    assert_eq!(during, first, "the last good CRL, byte for byte");
    assert!(std::fs::read_to_string(&log).unwrap().contains("serving the last good one until its nextUpdate"));

    // Kept across a restart on the still-full disk.
    stop(server.into_inner());
    let server = Killed::new(serve(&holder, &manifests, &data, &ready, &log));
    let base = publish_url(&ready, &log);
    let (status, after_restart) = fetch_crl(&base, &d.path().join("crl3.der"));
    assert!(made.elapsed() < Duration::from_secs(29), "too slow to check before nextUpdate");
    assert_eq!(status, "200");
    assert_eq!(after_restart, first);

    // Past its nextUpdate the old CRL is not served any more.
    std::thread::sleep(Duration::from_secs(31).saturating_sub(made.elapsed()));
    let (status, _) = fetch_crl(&base, &d.path().join("crl4.der"));
    assert_eq!(status, "503");

    // Space again: a new CRL with a higher number.
    let freed = inside(&holder, "sh").arg("-c").arg(r#"rm -f "$0"/filler-*"#).arg(&mnt).output().unwrap();
    assert!(freed.status.success());
    let (status, fresh) = fetch_crl(&base, &d.path().join("crl5.der"));
    assert_eq!(status, "200");
    assert_ne!(fresh, first);
    let fresh_number = crl_number(&fresh, d.path());
    assert!(fresh_number != first_number, "{first_number} then {fresh_number}");
    drop(server);
}
