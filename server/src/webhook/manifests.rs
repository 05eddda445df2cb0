//! `pkiplane webhook manifests`: the ValidatingWebhookConfiguration and
//! MutatingWebhookConfiguration for the webhook Service, as YAML the chart and the e2e
//! harness apply. Both cover pkiplane.dev/v1alpha1 issuers, certificateprofiles and
//! enrollmentendpoints on CREATE and UPDATE, fail closed, time out after 5 s, and skip
//! the system namespaces and the control-plane namespace itself.

use std::path::PathBuf;

use anyhow::{Context, Result};
use k8s_openapi::ByteString;
use serde_json::{Value, json};

/// Names of the two configurations and the Service they call.
pub const VALIDATING_NAME: &str = "pkiplane-validating";
pub const MUTATING_NAME: &str = "pkiplane-mutating";
pub const SERVICE_NAME: &str = "pkiplane-webhook";
pub const SERVICE_PORT: u16 = 9444;
/// Seconds the API server waits for an answer (its own limit is 30).
pub const TIMEOUT_SECONDS: u16 = 5;
/// Namespaces the webhook never sees objects of.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

#[derive(clap::Args, Debug)]
pub struct ManifestsArgs {
    /// Namespace of the pkiplane-webhook Service (also excluded from admission).
    #[arg(long, env = "POD_NAMESPACE", default_value = "pkiplane-system")]
    pub namespace: String,
    /// PEM bundle of the CA that signed the webhook's serving certificate.
    #[arg(long)]
    pub ca_bundle: PathBuf,
}

pub fn run(args: &ManifestsArgs) -> Result<()> {
    let bundle = std::fs::read(&args.ca_bundle).with_context(|| format!("reading {}", args.ca_bundle.display()))?;
    if !String::from_utf8_lossy(&bundle).contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!("{} holds no PEM certificate", args.ca_bundle.display());
    }
    for doc in configurations(&args.namespace, &bundle) {
        print!("---\n{}", serde_yaml::to_string(&doc)?);
    }
    Ok(())
}

/// The two configurations, validating first.
pub fn configurations(namespace: &str, ca_bundle_pem: &[u8]) -> [Value; 2] {
    let webhook = |name: &str, path: &str, reinvocation: bool| {
        let mut w = json!({
            "name": format!("{name}.pkiplane.dev"),
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "service": {"name": SERVICE_NAME, "namespace": namespace, "path": path, "port": SERVICE_PORT},
                "caBundle": ByteString(ca_bundle_pem.to_vec()),
            },
            "rules": [{
                "apiGroups": ["pkiplane.dev"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["issuers", "certificateprofiles", "enrollmentendpoints"],
                "scope": "Namespaced",
            }],
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": SYSTEM_NAMESPACES.iter().copied().chain(std::iter::once(namespace)).collect::<Vec<_>>(),
            }]},
        });
        if reinvocation {
            w["reinvocationPolicy"] = json!("Never");
        }
        w
    };
    let labels = json!({"app.kubernetes.io/name": "pkiplane", "app.kubernetes.io/component": "webhook"});
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": VALIDATING_NAME, "labels": labels},
            "webhooks": [webhook("validate", "/validate", false)],
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": MUTATING_NAME, "labels": labels},
            "webhooks": [webhook("default", "/mutate", true)],
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_fail_closed_and_skip_system_namespaces() {
        let [validating, mutating] = configurations("pkiplane-system", b"-----BEGIN CERTIFICATE-----\n");
        for (doc, kind, path) in [
            (&validating, "ValidatingWebhookConfiguration", "/validate"),
            (&mutating, "MutatingWebhookConfiguration", "/mutate"),
        ] {
            assert_eq!(doc["kind"], kind);
            let w = &doc["webhooks"][0];
            assert_eq!(w["failurePolicy"], "Fail");
            assert_eq!(w["sideEffects"], "None");
            assert_eq!(w["timeoutSeconds"], 5);
            assert_eq!(w["clientConfig"]["service"]["path"], path);
            assert_eq!(w["clientConfig"]["service"]["port"], 9444);
            assert_eq!(w["clientConfig"]["caBundle"], "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==");
            let excluded = &w["namespaceSelector"]["matchExpressions"][0]["values"];
            assert_eq!(*excluded, json!(["kube-system", "kube-public", "kube-node-lease", "pkiplane-system"]));
            assert_eq!(w["rules"][0]["operations"], json!(["CREATE", "UPDATE"]));
        }
    }
}
