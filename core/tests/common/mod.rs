//! Test support: real CSRs and keys from the `openssl` command line, and a permissive
//! profile to tighten one rule at a time.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use pkiplane_core::issuer::NameConstraintsConfig;
use pkiplane_core::keys::{Curve, KeyFamily};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::{Decision, IssuerFacts, PolicyInput, RequestedValidity, Violation, evaluate};
use pkiplane_core::profile::*;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};

/// Key kinds `openssl genpkey` makes for the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    P256,
    P384,
    Rsa1024,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

pub fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir")).path()
}

pub fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl").args(args).output().expect("openssl must be installed (see .ci/setup)");
    assert!(out.status.success(), "openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// A private key file (generated once per test binary and kind).
pub fn key(kind: Kind) -> PathBuf {
    // One key per kind for the whole test binary: tests running side by side wait for the
    // first to make it (two made at once would give one test two different keys).
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir().join(format!("{kind:?}.key"));
    if !path.exists() {
        let tmp = dir().join(format!("{kind:?}.{}.tmp", std::process::id() as u64 ^ rand_suffix()));
        let p = tmp.to_str().unwrap();
        match kind {
            Kind::P256 => openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p]),
            Kind::P384 => openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", p]),
            Kind::Rsa1024 => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", p]),
            Kind::Rsa2048 => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p]),
            Kind::Rsa3072 => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", p]),
            Kind::Rsa4096 => openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", p]),
            Kind::Ed25519 => openssl(&["genpkey", "-algorithm", "ED25519", "-out", p]),
        };
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn rand_suffix() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

/// A CSR made by `openssl req`: subject (`/CN=x/O=y` form), SANs (`DNS:a`, `IP:1.2.3.4`,
/// ...) and extra `-addext` lines; `extra` are more `openssl req` arguments.
pub fn csr_pem(kind: Kind, subject: &str, sans: &[&str], addext: &[&str], extra: &[&str]) -> Vec<u8> {
    let k = key(kind);
    let mut args: Vec<String> = vec!["req".into(), "-new".into(), "-key".into(), k.to_str().unwrap().into()];
    // A `-config` in `extra` supplies the subject (and attributes, which -subj would drop).
    if !extra.contains(&"-config") {
        args.push("-subj".into());
        args.push(if subject.is_empty() { "/".into() } else { subject.into() });
    }
    if !sans.is_empty() {
        args.push("-addext".into());
        args.push(format!("subjectAltName={}", sans.join(",")));
    }
    for a in addext {
        args.push("-addext".into());
        args.push((*a).into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    openssl(&argv).stdout
}

pub fn csr(kind: Kind, subject: &str, sans: &[&str]) -> ParsedCsr {
    parse(&csr_pem(kind, subject, sans, &[], &[]))
}

pub fn parse(pem: &[u8]) -> ParsedCsr {
    ParsedCsr::from_pem_or_der(pem, CsrOptions::default()).expect("CSR parses")
}

pub fn profile() -> Profile {
    Profile {
        id: ObjectRef::new("pki", "test"),
        description: String::new(),
        issuer: ObjectRef::new("pki", "ca"),
        keys: KeyPolicy::default(),
        validity: ValidityPolicy {
            duration: Duration::from_secs(47 * 86_400),
            max: Duration::from_secs(90 * 86_400),
            backdate: Duration::from_secs(300),
        },
        renewal: RenewalPolicy::RemainingFraction(1.0 / 3.0),
        subject: SubjectPolicy::default(),
        sans: SanPolicy {
            max_count: 10,
            required: false,
            dns: Some(DnsRule { suffixes: vec![], allow_wildcards: true }),
            ip: Some(IpRule::default()),
            uri: Some(UriRule::default()),
            email: Some(EmailRule::default()),
        },
        key_usage: vec![pkiplane_core::x509::KeyUsageBit::DigitalSignature],
        extended_key_usage: vec![],
        crl_distribution_points: vec![],
        ca_issuers_urls: vec![],
        ocsp_urls: vec![],
        csr_extensions: CsrExtensionPolicy::default(),
        requesters: RequesterPolicy::default(),
        approval_required: false,
    }
}

pub fn requester() -> Requester {
    Requester::new(Protocol::Est, "device-1").at_endpoint(ObjectRef::new("pki", "est"))
}

pub struct Eval {
    pub now: SystemTime,
    pub issuer_not_after: SystemTime,
    pub constraints: Vec<NameConstraintsConfig>,
    pub requested: RequestedValidity,
    pub requester: Requester,
}

impl Default for Eval {
    fn default() -> Self {
        let now = SystemTime::now();
        Self {
            now,
            issuer_not_after: now + Duration::from_secs(10 * 365 * 86_400),
            constraints: vec![],
            requested: RequestedValidity::default(),
            requester: requester(),
        }
    }
}

impl Eval {
    pub fn run(&self, profile: &Profile, csr: &ParsedCsr) -> Decision {
        let id = ObjectRef::new("pki", "ca");
        let facts = IssuerFacts { id: &id, not_after: self.issuer_not_after, name_constraints: &self.constraints };
        evaluate(&PolicyInput {
            csr,
            profile,
            issuer: &facts,
            requester: &self.requester,
            requested: self.requested,
            now: self.now,
        })
    }
}

pub fn allow(profile: &Profile, csr: &ParsedCsr) -> pkiplane_core::policy::CertificateTemplate {
    match Eval::default().run(profile, csr) {
        Decision::Allow(t) => *t,
        Decision::Deny(v) => panic!("expected allow, denied: {v:?}"),
    }
}

/// Asserts a denial that names `rule` and returns all violations.
pub fn deny(profile: &Profile, csr: &ParsedCsr, rule: &str) -> Vec<Violation> {
    deny_with(&Eval::default(), profile, csr, rule)
}

pub fn deny_with(eval: &Eval, profile: &Profile, csr: &ParsedCsr, rule: &str) -> Vec<Violation> {
    match eval.run(profile, csr) {
        Decision::Allow(t) => panic!("expected denial by {rule}, allowed: {:?}", t.summary()),
        Decision::Deny(v) => {
            assert!(v.iter().any(|x| x.rule == rule), "expected rule {rule}, got {v:?}");
            v
        }
    }
}

pub fn only_ecdsa(curves: &[Curve]) -> KeyPolicy {
    KeyPolicy { families: vec![KeyFamily::Ecdsa], ecdsa_curves: curves.to_vec(), ..KeyPolicy::default() }
}
