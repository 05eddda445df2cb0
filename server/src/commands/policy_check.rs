//! `pkiplane policy check`: what a profile would issue for a CSR, or every reason it
//! would not, without issuing anything. Meant for GitOps pipelines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Result, anyhow};
use pkiplane_api::Manifests;
use pkiplane_core::inventory::memory::MemoryInventory;
use pkiplane_core::issuance::IssuanceRequest;
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::policy::{Decision, RequestedValidity};
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use serde::Serialize;

use crate::bootstrap::{build_ca, resolve_profile};
use crate::output::{Format, print_structured};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Manifest file or directory (Issuers, CertificateProfiles, Secrets).
    #[arg(short = 'f', long = "filename")]
    pub manifests: PathBuf,
    /// The CertificateProfile, as `name` or `namespace/name`.
    #[arg(long)]
    pub profile: String,
    /// The CSR (PEM or DER); `-` reads standard input.
    #[arg(long)]
    pub csr: PathBuf,
    /// The protocol the request would arrive over. Default: the profile's first allowed
    /// protocol, or ACME when the profile allows all.
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// The endpoint the request would arrive through (`namespace/name`).
    #[arg(long)]
    pub endpoint: Option<ObjectRef>,
    /// The requester's authenticated identity.
    #[arg(long, default_value = "policy-check")]
    pub identity: String,
    /// A claim the requester's authentication proved, as key=value (repeatable).
    #[arg(long = "claim", value_parser = parse_claim)]
    pub claims: Vec<(String, String)>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: Format,
}

fn parse_claim(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not key=value"))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Verdict {
    allowed: bool,
    profile: String,
    protocol: String,
    requester: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<pkiplane_core::policy::template::TemplateSummary>,
    violations: Vec<pkiplane_core::policy::Violation>,
}

/// Exit status: 0 allowed, 1 denied; errors (exit 2) are returned.
pub async fn run(args: &CheckArgs) -> Result<ExitCode> {
    let manifests = Manifests::load(&args.manifests)?;
    let csr_bytes = super::read_input(&args.csr)?;
    let csr = ParsedCsr::from_pem_or_der(&csr_bytes, CsrOptions::default())
        .map_err(|e| anyhow!("{}: {e}", args.csr.display()))?;
    // Issuers are made afresh in memory: the check needs their constraints and
    // lifetimes, never their keys.
    let mem = Arc::new(MemoryInventory::new());
    let (ca, _) = build_ca(&manifests, mem.clone(), mem.as_ref(), SystemTime::now()).await?;
    let profile_id = resolve_profile(&ca, &args.profile)?;
    let profile = ca.profile(&profile_id).ok_or_else(|| anyhow!("profile vanished"))?;
    let protocol =
        args.protocol.unwrap_or_else(|| profile.requesters.protocols.first().copied().unwrap_or(Protocol::Acme));
    let mut requester = Requester::new(protocol, args.identity.clone());
    requester.endpoint = args.endpoint.clone();
    requester.claims = args.claims.iter().cloned().collect::<BTreeMap<_, _>>();
    let req = IssuanceRequest {
        csr,
        profile: profile_id.clone(),
        requester: requester.clone(),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    };
    let decision = ca.evaluate(&req, SystemTime::now())?;
    let verdict = Verdict {
        allowed: matches!(decision, Decision::Allow(_)),
        profile: profile_id.to_string(),
        protocol: protocol.to_string(),
        requester: requester.identity.clone(),
        certificate: match &decision {
            Decision::Allow(t) => Some(t.summary()),
            Decision::Deny(_) => None,
        },
        violations: decision.violations().to_vec(),
    };
    if !print_structured(args.output, &verdict)? {
        print_text(&verdict);
    }
    Ok(if verdict.allowed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_text(v: &Verdict) {
    let via = format!("requested over {} by `{}`", v.protocol, v.requester);
    match &v.certificate {
        Some(c) => {
            println!("ALLOWED by profile {} ({via}); the certificate would be:", v.profile);
            println!("  issuer:            {}", c.issuer);
            println!("  subject:           {}", if c.subject.is_empty() { "(empty)" } else { &c.subject });
            println!("  subjectAltNames:   {}", join(&c.subject_alt_names));
            println!("  public key:        {}", c.key);
            println!("  validity:          {} to {} ({})", c.not_before, c.not_after, c.lifetime);
            println!("  basicConstraints:  {}", c.basic_constraints);
            println!("  keyUsage:          {}", join(&c.key_usage));
            println!("  extendedKeyUsage:  {}", join(&c.extended_key_usage));
            println!("  CRL DP:            {}", join(&c.crl_distribution_points));
            println!("  AIA caIssuers:     {}", join(&c.ca_issuers));
            println!("  AIA OCSP:          {}", join(&c.ocsp));
            println!("  copied from CSR:   {}", join(&c.copied_extensions));
            for n in &c.notes {
                println!("  note: {n}");
            }
        }
        None => {
            println!("DENIED by profile {} ({via}):", v.profile);
            for x in &v.violations {
                println!("  - {}: {}", x.rule, x.message);
            }
        }
    }
}

fn join(v: &[String]) -> String {
    if v.is_empty() { "(none)".into() } else { v.join(", ") }
}
