//! CustomResourceDefinitions generated from the Rust types.
//!
//! `crds/` at the repository root holds the output of [`write_crds`]; a unit test fails
//! when it is stale. The YAML is deterministic: keys sorted, kinds in a fixed order.

use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use crate::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};

/// What to run when `crds/` is stale.
pub const REGENERATE_HINT: &str = "cargo run -p pkiplane -- crds --out crds/";

const HEADER: &str = "# Generated from pkiplane-api (api/src/v1alpha1) by `pkiplane crds`. Do not edit.\n";

/// The three CRDs, in dependency order: Issuer, CertificateProfile, EnrollmentEndpoint.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    [Issuer::crd(), CertificateProfile::crd(), EnrollmentEndpoint::crd()].into_iter().map(polish).collect()
}

/// All CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> String {
    let docs: Vec<String> = all_crds().iter().map(crd_yaml).collect();
    format!("{HEADER}{}", docs.join(""))
}

/// The files of `crds/`: one per CRD (`<plural>.<group>.yaml`) and `all.yaml`.
pub fn crd_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = all_crds()
        .iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            (format!("{name}.yaml"), format!("{HEADER}{}", crd_yaml(crd)))
        })
        .collect();
    files.push(("all.yaml".into(), crds_yaml()));
    files
}

/// Writes [`crd_files`] into `dir` (created if missing) and returns the paths written.
pub fn write_crds(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in crd_files() {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// The files in `dir` that are missing or differ from what [`write_crds`] would write.
pub fn stale_crd_files(dir: &Path) -> Vec<String> {
    crd_files()
        .into_iter()
        .filter(|(name, text)| std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text.as_str()))
        .map(|(name, _)| name)
        .collect()
}

fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    let value = serde_json::to_value(crd).expect("a CRD serialises to JSON");
    let text = serde_yaml::to_string(&sorted_yaml(&value)).expect("JSON values serialise to YAML");
    format!("---\n{text}")
}

/// JSON to YAML with every mapping's keys sorted, whatever serde_json's map ordering.
fn sorted_yaml(v: &Value) -> serde_yaml::Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_yaml::Mapping::new();
            for k in keys {
                out.insert(serde_yaml::Value::String(k.clone()), sorted_yaml(&map[k]));
            }
            serde_yaml::Value::Mapping(out)
        }
        Value::Array(items) => serde_yaml::Value::Sequence(items.iter().map(sorted_yaml).collect()),
        other => serde_yaml::to_value(other).expect("JSON scalars convert to YAML"),
    }
}

/// Reflows doc-comment descriptions so `kubectl explain` shows paragraphs, not the
/// source's line breaks.
fn polish(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises to JSON");
    reflow_descriptions(&mut value);
    serde_json::from_value(value).expect("a reflowed CRD deserialises")
}

fn reflow_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if k == "description" => *s = reflow(s),
                    _ => reflow_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

/// Joins wrapped lines with spaces; keeps blank lines (paragraphs) and list items.
fn reflow(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let prev = lines[i - 1];
            let list_item = line.starts_with("- ") || line.starts_with("* ");
            out.push(if line.is_empty() || prev.is_empty() || list_item { '\n' } else { ' ' });
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests;
