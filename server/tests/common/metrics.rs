//! Reading a Prometheus exposition in tests: one sample's value, and `promtool check
//! metrics` on it.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// The value of the sample `name` whose labels include every pair of `want` (0 when
/// there is none: a counter not yet incremented has no sample).
pub fn sample(exposition: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let mut found = Vec::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let Some(rest) = rest.strip_prefix('{') else { continue };
        let (labels, value) = rest.split_once("} ").unwrap();
        let labels: BTreeMap<&str, &str> = labels
            .split("\",")
            .filter_map(|kv| kv.split_once("=\""))
            .map(|(k, v)| (k, v.trim_end_matches('"')))
            .collect();
        if want.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            found.push(value.split_whitespace().next().unwrap().parse::<f64>().unwrap());
        }
    }
    assert!(found.len() <= 1, "{name} {want:?} matches several samples: {found:?}");
    found.first().copied().unwrap_or(0.0)
}

/// Fails the test unless `promtool check metrics` (parse and lint) accepts `exposition`.
pub fn promtool_check_metrics(promtool: &str, exposition: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
