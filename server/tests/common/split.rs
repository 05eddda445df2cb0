//! `pkiplane ca` and `pkiplane endpoint` as separate processes (the quickstart split
//! into the CA's manifests and per-endpoint configs), an internal CA made with openssl,
//! and the clients the tests drive them with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BIN, QUICKSTART};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn sh(dir: &Path, cmd: &str) -> std::process::Output {
    let out = Command::new("bash").arg("-c").arg(cmd).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    out
}

/// An internal CA and leaf certificates for the CA service and the endpoints, as the
/// operator would make them (P-256, one URI SAN each).
pub fn internal_pki(dir: &Path) {
    sh(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ica.key -out ica.crt \
         -subj /CN=pkiplane-internal-ca -days 2 2>/dev/null && \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-ca.key -out rogue-ca.crt \
         -subj /CN=rogue -days 2 2>/dev/null",
    );
    let leaf = |name: &str, sans: &str, ca: &str| {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        sh(
            dir,
            &format!(
                "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}/tls.key \
                 -subj /CN={name} -out {name}.csr 2>/dev/null && \
                 printf 'subjectAltName={sans}\\n' > {name}.ext && \
                 openssl x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -days 1 \
                 -extfile {name}.ext -out {name}/tls.crt 2>/dev/null && cp ica.crt {name}/ca.crt"
            ),
        );
    };
    leaf("ca-tls", "IP:127.0.0.1,URI:spiffe://pkiplane.dev/ca", "ica");
    leaf("est-tls", "URI:spiffe://pkiplane.dev/ns/pki/endpoint/est", "ica");
    leaf("acme-tls", "URI:spiffe://pkiplane.dev/ns/pki/endpoint/acme", "ica");
    leaf("rogue-tls", "URI:spiffe://pkiplane.dev/ns/pki/endpoint/est", "rogue-ca");
}

/// The quickstart's documents: (kind, name, text).
pub fn documents() -> Vec<(String, String, String)> {
    let all = std::fs::read_to_string(QUICKSTART).unwrap();
    all.split("\n---")
        .map(|d| {
            let field = |key: &str| {
                d.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned())).unwrap_or_default()
            };
            (field("kind:"), field("  name:"), d.to_owned())
        })
        .collect()
}

/// Writes the CA's manifests and one endpoint config per name; returns their paths.
pub fn split_quickstart(dir: &Path, endpoints: &[(&str, &[&str])]) -> (PathBuf, Vec<PathBuf>) {
    let docs = documents();
    let ca: Vec<&str> = docs
        .iter()
        .filter(|(k, _, _)| matches!(k.as_str(), "Issuer" | "CertificateProfile" | "Secret"))
        .map(|(_, _, t)| t.as_str())
        .collect();
    let ca_path = dir.join("ca.yaml");
    std::fs::write(&ca_path, ca.join("\n---")).unwrap();
    let mut paths = Vec::new();
    for (name, secrets) in endpoints {
        let mut parts: Vec<&str> = docs
            .iter()
            .filter(|(k, n, _)| k == "EnrollmentEndpoint" && n == name)
            .map(|(_, _, t)| t.as_str())
            .collect();
        parts.extend(
            docs.iter().filter(|(k, n, _)| k == "Secret" && secrets.contains(&n.as_str())).map(|(_, _, t)| t.as_str()),
        );
        let p = dir.join(format!("{name}-endpoint.yaml"));
        std::fs::write(&p, parts.join("\n---")).unwrap();
        paths.push(p);
    }
    (ca_path, paths)
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(args: &[&str], log: &Path) -> Proc {
    let err = std::fs::File::create(log).unwrap();
    Proc(Command::new(BIN).args(args).stdout(Stdio::null()).stderr(err).spawn().unwrap())
}

/// Waits until `url` answers 200 (plain HTTP).
pub fn wait_ok(url: &str, log: &Path) {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let out = Command::new("curl").args(["-sf", "-o", "/dev/null", url]).output().unwrap();
        if out.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{url} never became ready:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// curl against the internal API with an identity directory; (exit success, HTTP code, body).
pub fn api(dir: &Path, identity: &str, method: &str, url: &str, body: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir).args(["-s", "-o", "body.out", "-w", "%{http_code}", "--cacert", "ica.crt"]);
    cmd.args(["--cert", &format!("{identity}/tls.crt"), "--key", &format!("{identity}/tls.key"), "-X", method]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data", b]);
    }
    let out = cmd.arg(url).output().unwrap();
    let body = std::fs::read_to_string(dir.join("body.out")).unwrap_or_default();
    (out.status.success(), text(&out.stdout), body)
}

/// EST simpleenroll with HTTP Basic through the endpoint; returns the certificate PEM path.
pub fn est_enroll(dir: &Path, base: &str, name: &str) -> PathBuf {
    sh(
        dir,
        &format!(
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key \
             -subj /CN={name}.localhost -addext subjectAltName=DNS:{name}.localhost -outform DER -out {name}.csr.der 2>/dev/null && \
             openssl base64 -in {name}.csr.der > {name}.csr.b64 && \
             curl -sSf --cacert root.pem -u device-enroller:est-demo-password \
               -H 'content-type: application/pkcs10' --data-binary @{name}.csr.b64 \
               {base}/.well-known/est/tls/simpleenroll -o {name}.p7.b64 && \
             openssl base64 -d -in {name}.p7.b64 | openssl pkcs7 -inform DER -print_certs -out {name}.pem"
        ),
    );
    dir.join(format!("{name}.pem"))
}

pub fn not_after_days(dir: &Path, pem: &Path) -> i64 {
    let out = sh(dir, &format!("openssl x509 -in {} -noout -enddate", pem.display()));
    let end = text(&out.stdout).trim().trim_start_matches("notAfter=").to_owned();
    let out = sh(dir, &format!("date -d '{end}' +%s"));
    let secs: i64 = text(&out.stdout).trim().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    (secs - now + 43_200) / 86_400
}

/// Starts `pkiplane ca` on the CA manifests with its listeners on the given ports (and
/// `--store`, `--kek-file` and `/metrics` on `metrics_port` when given) and waits until
/// it is ready.
pub fn start_ca(
    dir: &Path,
    ca_yaml: &Path,
    data: &Path,
    ports: (u16, u16),
    store: Option<&str>,
    kek: Option<&Path>,
    metrics_port: Option<u16>,
) -> Proc {
    let (api_port, pub_port) = ports;
    let ca_log = dir.join("ca.log");
    let (api, publish) = (format!("127.0.0.1:{api_port}"), format!("127.0.0.1:{pub_port}"));
    let tls = dir.join("ca-tls");
    let mut args = vec!["ca", "--manifests", ca_yaml.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    args.extend(["--listen", &api, "--publish-listen", &publish, "--tls-dir", tls.to_str().unwrap()]);
    // The admin API (local token), which the inventory helpers ask while the CA runs.
    args.extend(["--admin-listen", "127.0.0.1:0"]);
    if let Some(url) = store {
        args.extend(["--store", url]);
    }
    if let Some(kek) = kek {
        args.extend(["--kek-file", kek.to_str().unwrap()]);
    }
    let metrics = metrics_port.map(|port| format!("127.0.0.1:{port}"));
    if let Some(metrics) = &metrics {
        args.extend(["--metrics-listen", metrics]);
    }
    let ca = spawn(&args, &ca_log);
    wait_ok(&format!("http://127.0.0.1:{pub_port}/readyz"), &ca_log);
    ca
}

/// Starts `pkiplane endpoint` for one endpoint config, talking to the CA at `ca_url`.
pub fn start_endpoint(dir: &Path, ca_url: &str, name: &str, config: &Path, port: u16, health: u16) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let p = spawn(
        &[
            "endpoint",
            "--config",
            config.to_str().unwrap(),
            "--internal-tls",
            dir.join(format!("{name}-tls")).to_str().unwrap(),
            "--credentials",
            dir.join("no-credentials").to_str().unwrap(),
            "--ca-url",
            ca_url,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--health-listen",
            &format!("127.0.0.1:{health}"),
        ],
        &log,
    );
    wait_ok(&format!("http://127.0.0.1:{health}/readyz"), &log);
    p
}
