//! The chart's monitoring objects: off by default; when enabled, the PrometheusRule's
//! rules pass `promtool check rules`, and every pkiplane metric the alerts and the
//! Grafana dashboard query is one docs/monitoring.md lists (the names the binaries
//! export; server/tests/metrics.rs checks those against a real exposition).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render(sets: &[&str]) -> Vec<serde_yaml::Value> {
    let helm = common::tool_path("helm.sh");
    let mut cmd = Command::new(helm);
    cmd.args(["template", "pkiplane"]).arg(root().join("charts/pkiplane"));
    cmd.args(["--namespace", "pkiplane-system", "--kube-version", "1.34.12"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<serde_yaml::Value>(doc).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

fn kinds(objects: &[serde_yaml::Value]) -> BTreeSet<String> {
    objects.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect()
}

/// Every `pkiplane_...` name in `text`, without the histogram series suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("pkiplane_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn monitoring_objects_are_off_by_default() {
    let objects = render(&[]);
    let k = kinds(&objects);
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule"] {
        assert!(!k.contains(kind), "{kind} rendered without its flag");
    }
    assert!(!objects.iter().any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "pkiplane-dashboard"));
    // The operator's metrics port has a Service either way.
    assert!(objects.iter().any(|o| o["kind"] == "Service" && o["metadata"]["name"] == "pkiplane-operator-metrics"));
}

#[test]
fn alert_rules_pass_promtool_and_query_documented_metrics() {
    let promtool = common::tool_path("promtool.sh");
    let objects = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
    ]);
    let k = kinds(&objects);
    for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(k.contains(kind), "{kind} missing with the flags on: {k:?}");
    }
    // The webhook's HTTPS metrics are scraped with its certificate verified, not skipped.
    let webhook = objects
        .iter()
        .find(|o| {
            o["kind"] == "ServiceMonitor" && o["metadata"]["name"].as_str().is_some_and(|n| n.contains("webhook"))
        })
        .expect("the webhook's ServiceMonitor");
    let tls = &webhook["spec"]["endpoints"][0]["tlsConfig"];
    assert_eq!(tls["ca"]["secret"]["name"], "pkiplane-webhook-tls", "{tls:?}");
    assert_eq!(tls["ca"]["secret"]["key"], "ca.crt");
    assert_eq!(tls["serverName"], "pkiplane-webhook.pkiplane-system.svc");
    assert!(tls["insecureSkipVerify"].is_null(), "{tls:?}");
    let rule = objects.iter().find(|o| o["kind"] == "PrometheusRule").unwrap();
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("pkiplane.rules.yaml");
    std::fs::write(&rules, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = Command::new(&promtool).args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: BTreeSet<&str> =
        rule["spec"]["groups"][0]["rules"].as_sequence().unwrap().iter().filter_map(|r| r["alert"].as_str()).collect();
    for want in ["PkiplaneCaExpiring", "PkiplaneCrlStale", "PkiplaneDenialsRising", "PkiplaneEndpointDown"] {
        assert!(alerts.contains(want), "{want} missing: {alerts:?}");
    }

    let doc = std::fs::read_to_string(root().join("docs/monitoring.md")).unwrap();
    let documented = metric_names(&doc);
    let dashboard = std::fs::read_to_string(root().join("charts/pkiplane/dashboards/pkiplane.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    let queried = metric_names(&serde_yaml::to_string(&rule["spec"]).unwrap())
        .union(&metric_names(&dashboard))
        .cloned()
        .collect::<BTreeSet<_>>();
    let missing: Vec<_> = queried.difference(&documented).collect();
    assert!(missing.is_empty(), "queried but not in docs/monitoring.md: {missing:?}");
}
