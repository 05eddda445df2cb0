use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn repo_crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("crds")
}

#[test]
fn crds_dir_is_up_to_date() {
    let stale = stale_crd_files(&repo_crds_dir());
    assert!(
        stale.is_empty(),
        "crds/ is stale: run `{REGENERATE_HINT}` (or `cargo test -p pkiplane-api -- --ignored regenerate_crds_dir`). \
         Stale or missing: {}",
        stale.join(", ")
    );
}

/// Rewrites `crds/` from the code; run with `--ignored` when the types change.
#[test]
#[ignore]
fn regenerate_crds_dir() {
    let written = write_crds(&repo_crds_dir()).unwrap();
    assert_eq!(written.len(), 4);
}

#[test]
fn output_is_deterministic() {
    assert_eq!(crds_yaml(), crds_yaml());
    let files = crd_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "issuers.pkiplane.dev.yaml",
            "certificateprofiles.pkiplane.dev.yaml",
            "enrollmentendpoints.pkiplane.dev.yaml",
            "all.yaml"
        ]
    );
    assert_eq!(crds_yaml().matches("\n---\n").count(), 3);
}

#[test]
fn names_short_names_and_categories() {
    let crds = all_crds();
    let expect = [
        ("issuers", "Issuer", vec!["pkiss", "pkiissuer"]),
        ("certificateprofiles", "CertificateProfile", vec!["certprofile", "cprof"]),
        ("enrollmentendpoints", "EnrollmentEndpoint", vec!["ee", "enroll"]),
    ];
    for (crd, (plural, kind, short)) in crds.iter().zip(expect) {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "pkiplane.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(names.plural, plural);
        assert_eq!(names.kind, kind);
        assert_eq!(names.short_names.as_deref().unwrap(), short.as_slice());
        assert_eq!(names.categories.as_deref().unwrap(), ["pkiplane"]);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        let columns = version.additional_printer_columns.as_ref().unwrap();
        assert_eq!(columns[0].name, "Ready");
        assert_eq!(columns.last().unwrap().name, "Age");
    }
}

#[test]
fn descriptions_are_reflowed() {
    assert_eq!(
        reflow("a wrapped\nline.\n\nNext paragraph:\n- item\n- item"),
        "a wrapped line.\n\nNext paragraph:\n- item\n- item"
    );
    let yaml = crds_yaml();
    assert!(yaml.contains("Exactly one of selfSigned, parentRef and secretRef is set."));
}

#[test]
fn schemas_are_structural() {
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        let schema = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
        let schema = serde_json::to_value(schema).unwrap();
        let mut errors = Vec::new();
        check_structural(&name, &schema, &mut errors);
        assert!(errors.is_empty(), "non-structural schema:\n{}", errors.join("\n"));
    }
}

#[test]
fn key_rules_reach_the_schema() {
    let yaml = crds_yaml();
    for needle in [
        "set exactly one of selfSigned, parentRef or secretRef",
        "profile labels must be unique",
        "acme settings need protocol ACME",
        "x-kubernetes-list-map-keys",
        "^([0-9]+[ywdhms])+$",
    ] {
        assert!(yaml.contains(needle), "CRDs lack `{needle}`");
    }
    // keyAlgorithm has no schema default on purpose: CEL rejects it for imported CAs.
    assert!(!yaml.contains("default: ECDSA-P256"));
}

const KNOWN_FORMATS: [&str; 6] = ["int32", "int64", "double", "date-time", "byte", "float"];

fn check_structural(path: &str, s: &Value, errors: &mut Vec<String>) {
    let Some(obj) = s.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for key in ["$ref", "anyOf", "oneOf", "allOf", "not", "definitions", "$defs", "const"] {
        if obj.contains_key(key) {
            errors.push(format!("{path}: has `{key}`"));
        }
    }
    let open = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let ty = obj.get("type").and_then(Value::as_str);
    if ty.is_none() && !open {
        errors.push(format!("{path}: no single `type`"));
    }
    if let Some(f) = obj.get("format").and_then(Value::as_str)
        && !KNOWN_FORMATS.contains(&f)
    {
        errors.push(format!("{path}: unknown format `{f}`"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        errors.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (k, child) in props {
            check_structural(&format!("{path}.{k}"), child, errors);
        }
    }
    match obj.get("additionalProperties") {
        Some(child @ Value::Object(_)) => check_structural(&format!("{path}.*"), child, errors),
        Some(other) => errors.push(format!("{path}: additionalProperties is {other}")),
        None => {}
    }
    if ty == Some("array") {
        match obj.get("items") {
            Some(items @ Value::Object(_)) => {
                check_structural(&format!("{path}[]"), items, errors);
                if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                    let required: Vec<&str> = items["required"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    for key in obj["x-kubernetes-list-map-keys"].as_array().into_iter().flatten() {
                        let key = key.as_str().unwrap_or_default();
                        if !required.contains(&key) {
                            errors.push(format!("{path}: list-map key `{key}` is not required in items"));
                        }
                    }
                }
            }
            _ => errors.push(format!("{path}: array without a single items schema")),
        }
    }
}
