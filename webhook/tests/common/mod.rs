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
    let mut out = Manifests::default();
    out.issuers = overlaid(&base.issuers, &overlay.issuers);
    out.profiles = overlaid(&base.profiles, &overlay.profiles);
    out.endpoints = overlaid(&base.endpoints, &overlay.endpoints);
    out.secrets = overlaid(&base.secrets, &overlay.secrets);
    out
}

/// The objects of `base` that `overlay` does not replace (same namespace and name),
/// then those of `overlay`.
fn overlaid<K: kube::Resource + Clone>(base: &[K], overlay: &[K]) -> Vec<K> {
    let same = |a: &K, b: &K| a.meta().namespace == b.meta().namespace && a.meta().name == b.meta().name;
    let mut out: Vec<K> = base.iter().filter(|o| !overlay.iter().any(|n| same(n, o))).cloned().collect();
    out.extend(overlay.iter().cloned());
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
