//! `pkiplane policy lint`: the admission webhook's validation, offline, over manifests
//! (for CI in GitOps repositories). Every Issuer, CertificateProfile and
//! EnrollmentEndpoint is validated as a CREATE against the view of all of them, with the
//! webhook's messages.
//!
//! Exit status: 0 nothing denied, 1 at least one denial, 2 unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use kube::core::ObjectMeta;
use pkiplane_api::Manifests;
use pkiplane_webhook::{Finding, lint};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Manifest files or directories (repeatable): Issuers, CertificateProfiles,
    /// EnrollmentEndpoints and the Secrets they reference, as you would `kubectl apply`.
    #[arg(short = 'f', long = "filename", required = true)]
    pub manifests: Vec<PathBuf>,
    /// text: one line per denial (`Kind ns/name: field: reason`) and per warning; json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    pub output: LintFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    #[default]
    Text,
    Json,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    denied: usize,
    objects: Vec<ObjectReport>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectReport {
    kind: &'static str,
    namespace: String,
    name: String,
    allowed: bool,
    denials: Vec<DenialReport>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct DenialReport {
    field: String,
    reason: String,
}

pub fn run(args: &LintArgs) -> Result<ExitCode> {
    let manifests = load_all(&args.manifests)?;
    for w in &manifests.warnings {
        eprintln!("warning: {w}");
    }
    let findings = lint(&manifests);
    let denied = findings.iter().filter(|f| !f.verdict.is_allowed()).count();
    match args.output {
        LintFormat::Text => {
            for f in &findings {
                print!("{f}");
            }
            eprintln!("{} objects checked, {denied} denied", findings.len());
        }
        LintFormat::Json => {
            let report = Report { denied, objects: findings.iter().map(object_report).collect() };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(if denied == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn object_report(f: &Finding) -> ObjectReport {
    ObjectReport {
        kind: f.kind,
        namespace: f.id.namespace.clone(),
        name: f.id.name.clone(),
        allowed: f.verdict.is_allowed(),
        denials: f
            .verdict
            .denials
            .iter()
            .map(|d| DenialReport { field: d.field.clone(), reason: d.reason.clone() })
            .collect(),
        warnings: f.verdict.warnings.clone(),
    }
}

/// Every path's objects in one set. A later path redefining an object replaces it, as a
/// later `kubectl apply` would (so `-f base/ -f overlay.yaml` checks the overlay applied
/// over the base).
fn load_all(paths: &[PathBuf]) -> Result<Manifests> {
    let mut all = Manifests::default();
    for path in paths {
        let m = Manifests::load(path)?;
        replace_same(&mut all.issuers, m.issuers, |o| &o.metadata);
        replace_same(&mut all.profiles, m.profiles, |o| &o.metadata);
        replace_same(&mut all.endpoints, m.endpoints, |o| &o.metadata);
        replace_same(&mut all.secrets, m.secrets, |o| &o.metadata);
        all.warnings.extend(m.warnings);
    }
    Ok(all)
}

fn replace_same<T>(into: &mut Vec<T>, new: Vec<T>, meta: impl Fn(&T) -> &ObjectMeta) {
    for obj in new {
        let same = |o: &T| meta(o).namespace == meta(&obj).namespace && meta(o).name == meta(&obj).name;
        into.retain(|o| !same(o));
        into.push(obj);
    }
}
