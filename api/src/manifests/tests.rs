use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::convert::{FieldError, check_endpoint, issuer_from_resource, profile_from_resource};

const MIXED: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: pki}
---
apiVersion: pkiplane.dev/v1alpha1
kind: Issuer
metadata: {name: root}
spec: {selfSigned: {}, subject: CN=Root}
---
# an empty document
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: pki}
data: {a: aGVsbG8=, b: b2xk}
stringData: {b: new, c: plain}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
---
apiVersion: v1
kind: List
items:
  - apiVersion: pkiplane.dev/v1alpha1
    kind: CertificateProfile
    metadata: {name: web, namespace: pki}
    spec: {issuerRef: {name: root}, validity: {duration: 30d}}
"#;

#[test]
fn loads_kinds_defaults_namespace_and_warns() {
    let m = Manifests::from_yaml(MIXED, "mixed.yaml").unwrap();
    assert_eq!(m.issuers.len(), 1);
    assert_eq!(m.issuers[0].metadata.namespace.as_deref(), Some("default"));
    assert!(m.issuer("default", "root").is_some());
    assert!(m.profile("pki", "web").is_some(), "List items are read");
    assert!(m.endpoints.is_empty());
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(m.warnings[0].contains("mixed.yaml, document 5: skipped v1 ConfigMap unrelated"), "{}", m.warnings[0]);
    assert!(m.secret("pki", "creds").is_some());
    assert_eq!(m.secret_value("pki", "creds", "a").unwrap(), b"hello");
    assert_eq!(m.secret_value("pki", "creds", "b").unwrap(), b"new", "stringData wins over data");
    assert_eq!(m.secret_value("pki", "creds", "c").unwrap(), b"plain");
    let missing_key = m.secret_value("pki", "creds", "d").unwrap_err();
    assert_eq!(missing_key.to_string(), "Secret pki/creds has no key `d`");
    let missing = m.secret_value("default", "creds", "a").unwrap_err();
    assert_eq!(missing.to_string(), "Secret default/creds not found");
}

#[test]
fn errors_name_file_and_document() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: x}\nspec: {selfSigned: {}, subjekt: CN=x}\n";
    let err = Manifests::from_yaml(text, "bad.yaml").unwrap_err().to_string();
    assert!(err.starts_with("bad.yaml, document 2: Issuer x: "), "{err}");
    assert!(err.contains("spec: unknown field `subjekt`"), "the field path is named: {err}");
    assert!(err.contains("line 8"), "and the line: {err}");

    for (text, fragment) in [
        ("kind: Issuer\n", "apiVersion and kind are required"),
        ("- a\n- b\n", "expected a Kubernetes object"),
        ("apiVersion: pkiplane.dev/v1beta1\nkind: Issuer\nmetadata: {name: x}\n", "is not supported"),
        ("apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nspec: {selfSigned: {}}\n", "metadata.name is required"),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '***'}\n", "Secret s"),
        ("a: [unclosed\n", "document 1"),
    ] {
        let err = Manifests::from_yaml(text, "f.yaml").unwrap_err().to_string();
        assert!(err.starts_with("f.yaml, document 1: "), "{err}");
        assert!(err.contains(fragment), "`{err}` lacks `{fragment}`");
    }
}

#[test]
fn duplicates_are_refused() {
    let one =
        "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: x}\nspec: {selfSigned: {}, subject: CN=x}\n";
    let mut m = Manifests::from_yaml(one, "a.yaml").unwrap();
    let err = m.add_yaml(&format!("---\n{one}"), "b.yaml").unwrap_err().to_string();
    assert_eq!(err, "b.yaml, document 1: Issuer default/x is already defined at a.yaml, document 1");
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pkiplane-api-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn directories_are_read_recursively_in_order() {
    let dir = TempDir::new();
    let issuer = |name: &str| {
        format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {{name: {name}}}\nspec: {{selfSigned: {{}}, subject: CN={name}}}\n"
        )
    };
    std::fs::create_dir_all(dir.0.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(dir.0.join(".hidden")).unwrap();
    std::fs::write(dir.0.join("b.yml"), issuer("b")).unwrap();
    std::fs::write(dir.0.join("a.yaml"), issuer("a")).unwrap();
    std::fs::write(dir.0.join("sub/deeper/c.YAML"), issuer("c")).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(dir.0.join(".hidden/x.yaml"), "not yaml: [").unwrap();
    let m = Manifests::load(&dir.0).unwrap();
    let names: Vec<&str> = m.issuers.iter().map(|i| i.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);

    let single = Manifests::load(dir.0.join("b.yml")).unwrap();
    assert_eq!(single.issuers.len(), 1);
    let empty = TempDir::new();
    assert!(Manifests::load(&empty.0).unwrap().warnings[0].contains("no *.yaml"));
    let err = Manifests::load(dir.0.join("missing.yaml")).unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }), "{err}");
}

#[test]
fn quickstart_loads_and_converts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml");
    let m = Manifests::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let issuers: Vec<&str> = m.issuers.iter().map(|i| i.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(issuers, ["example-root", "example-intermediate", "manufacturer-root"]);
    let profiles: Vec<&str> = m.profiles.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(profiles, ["enterprise-tls-47d", "device-ldevid-1y", "device-idevid-20y", "scep-device-90d"]);
    let endpoints: Vec<&str> = m.endpoints.iter().map(|e| e.metadata.name.as_deref().unwrap()).collect();
    assert_eq!(endpoints, ["acme", "est", "scep", "cmp"]);
    for i in &m.issuers {
        let config = issuer_from_resource(i, &m).unwrap_or_else(|e| panic!("{}", FieldError::join(&e)));
        assert_eq!(config.id.namespace, "pki");
    }
    for p in &m.profiles {
        let profile = profile_from_resource(p).unwrap_or_else(|e| panic!("{}", FieldError::join(&e)));
        assert!(m.issuer(&profile.issuer.namespace, &profile.issuer.name).is_some(), "{} has no issuer", profile.id);
    }
    for e in &m.endpoints {
        check_endpoint(e).unwrap_or_else(|e| panic!("{}", FieldError::join(&e)));
        for binding in &e.spec.profiles {
            assert!(m.profile(e.metadata.namespace.as_deref().unwrap(), &binding.name).is_some());
        }
    }
}
