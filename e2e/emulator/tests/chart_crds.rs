//! The Helm chart ships the generated CRDs in `charts/pkiplane/crds/` (Helm installs that
//! directory before the templates). They are copies of `crds/<plural>.pkiplane.dev.yaml`,
//! which a test in the api crate keeps fresh; this test keeps the chart's copies equal to
//! them. Fix with `charts/pkiplane/sync-crds.sh`.

use std::collections::BTreeMap;
use std::path::Path;

fn yaml_files(dir: &Path, suffix: &str) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("reading a CRD"))
        })
        .collect()
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let generated = yaml_files(&root.join("crds"), ".pkiplane.dev.yaml");
    let chart = yaml_files(&root.join("charts/pkiplane/crds"), ".yaml");
    assert!(!generated.is_empty(), "no crds/*.pkiplane.dev.yaml");
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "charts/pkiplane/crds/ has other files than crds/: run charts/pkiplane/sync-crds.sh"
    );
    for (name, text) in &generated {
        assert!(chart[name] == *text, "charts/pkiplane/crds/{name} is stale: run charts/pkiplane/sync-crds.sh");
    }
}
