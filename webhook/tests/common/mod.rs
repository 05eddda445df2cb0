//! Shared by the webhook's tests: the quickstart as the cluster, fixtures merged into it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pkiplane_api::Manifests;
use pkiplane_webhook::ClusterView;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub fn quickstart() -> Manifests {
    Manifests::load(repo_root().join("examples/quickstart.yaml")).expect("quickstart loads")
}

/// `base` with `overlay`'s objects added, replacing those with the same kind and name.
pub fn merged(base: &Manifests, overlay: &Manifests) -> Manifests {
    fn same(a: &kube::core::ObjectMeta, b: &kube::core::ObjectMeta) -> bool {
        a.namespace == b.namespace && a.name == b.name
    }
    let mut out = Manifests::default();
    out.issuers = base
        .issuers
        .iter()
        .filter(|o| !overlay.issuers.iter().any(|n| same(&n.metadata, &o.metadata)))
        .cloned()
        .collect();
    out.issuers.extend(overlay.issuers.iter().cloned());
    out.profiles = base
        .profiles
        .iter()
        .filter(|o| !overlay.profiles.iter().any(|n| same(&n.metadata, &o.metadata)))
        .cloned()
        .collect();
    out.profiles.extend(overlay.profiles.iter().cloned());
    out.endpoints = base
        .endpoints
        .iter()
        .filter(|o| !overlay.endpoints.iter().any(|n| same(&n.metadata, &o.metadata)))
        .cloned()
        .collect();
    out.endpoints.extend(overlay.endpoints.iter().cloned());
    out.secrets = base
        .secrets
        .iter()
        .filter(|o| !overlay.secrets.iter().any(|n| same(&n.metadata, &o.metadata)))
        .cloned()
        .collect();
    out.secrets.extend(overlay.secrets.iter().cloned());
    out
}

/// The quickstart with `overlay` merged in, as a view.
pub fn view_with(overlay: &Manifests) -> ClusterView {
    ClusterView::from_manifests(&merged(&quickstart(), overlay))
}

/// Every `*.yaml` fixture under `tests/fixtures/<dir>`, sorted.
pub fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir))
            .expect("fixture directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
}

/// The `# expect: ...` lines of a fixture.
pub fn expectations(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("# expect: ")).map(|s| s.trim().to_string()).collect()
}
