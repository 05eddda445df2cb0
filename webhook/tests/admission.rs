//! AdmissionReview handling: operations, unknown kinds, the denial message, stranding
//! warnings on updates, and defaulting patches.

mod common;

use common::quickstart;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, Issuer};
use pkiplane_webhook::defaults::Defaulting;
use pkiplane_webhook::{AdmissionMode, ClusterView, review};
use serde_json::{Value, json};

fn request(
    kind: &str,
    operation: &str,
    object: Value,
    old: Option<Value>,
    dry_run: bool,
) -> AdmissionRequest<DynamicObject> {
    let (group, version) = if kind == "ConfigMap" { ("", "v1") } else { ("pkiplane.dev", "v1alpha1") };
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5d4b6a0c-0000-4000-8000-000000000001",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "name": object["metadata"]["name"].clone(),
            "namespace": "pki",
            "operation": operation,
            "userInfo": {"username": "tester"},
            "object": if operation == "DELETE" { Value::Null } else { object.clone() },
            "oldObject": old.unwrap_or(Value::Null),
            "dryRun": dry_run,
        }
    }))
    .expect("review parses");
    review.try_into().expect("has a request")
}

fn view() -> ClusterView {
    ClusterView::from_manifests(&quickstart())
}

fn quickstart_json(kind: &str, name: &str) -> Value {
    let q = quickstart();
    let value = match kind {
        "Issuer" => serde_json::to_value(q.issuers.iter().find(|o| o.metadata.name.as_deref() == Some(name))),
        "CertificateProfile" => {
            serde_json::to_value(q.profiles.iter().find(|o| o.metadata.name.as_deref() == Some(name)))
        }
        _ => serde_json::to_value(q.endpoints.iter().find(|o| o.metadata.name.as_deref() == Some(name))),
    };
    value.expect("serialises")
}

fn validate(req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    review(req, &view(), AdmissionMode::Validate)
}

#[test]
fn every_denial_is_in_the_status_message() {
    let bad = json!({
        "apiVersion": "pkiplane.dev/v1alpha1", "kind": "CertificateProfile",
        "metadata": {"name": "bad", "namespace": "pki"},
        "spec": {"issuerRef": {"name": "nope"}, "validity": {"duration": "47d"}, "crlDistributionPoints": ["ldap://x"]}
    });
    for dry_run in [false, true] {
        let response = validate(&request("CertificateProfile", "CREATE", bad.clone(), None, dry_run));
        assert!(!response.allowed);
        assert_eq!(response.uid, "5d4b6a0c-0000-4000-8000-000000000001");
        assert_eq!(response.result.code, 403);
        assert_eq!(
            response.result.message,
            "spec.crlDistributionPoints[0]: `ldap://x` is not an http:// or https:// URL; \
             spec.issuerRef.name: Issuer pki/nope does not exist; create it first, or fix the name"
        );
    }
}

#[test]
fn the_quickstart_objects_are_admitted() {
    for (kind, name) in [
        ("Issuer", "example-intermediate"),
        ("CertificateProfile", "enterprise-tls-47d"),
        ("EnrollmentEndpoint", "est"),
    ] {
        let response = validate(&request(kind, "CREATE", quickstart_json(kind, name), None, false));
        assert!(response.allowed, "{kind} {name}: {}", response.result.message);
    }
}

#[test]
fn deletions_and_unknown_kinds_are_allowed() {
    let profile = quickstart_json("CertificateProfile", "enterprise-tls-47d");
    let response = validate(&request("CertificateProfile", "DELETE", profile, None, false));
    assert!(response.allowed);
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "pki"}});
    let response = validate(&request("ConfigMap", "CREATE", config_map, None, false));
    assert!(response.allowed);
    assert!(response.result.message.contains("does not check /v1 ConfigMap"), "{}", response.result.message);
}

#[test]
fn an_unreadable_object_is_refused_with_the_reason() {
    let broken = json!({
        "apiVersion": "pkiplane.dev/v1alpha1", "kind": "Issuer",
        "metadata": {"name": "x", "namespace": "pki"}, "spec": {"selfSigned": {}, "subject": 42}
    });
    let response = validate(&request("Issuer", "CREATE", broken, None, false));
    assert!(!response.allowed);
    assert!(response.result.message.starts_with("cannot read the Issuer:"), "{}", response.result.message);
}

#[test]
fn switching_a_profiles_issuer_warns_about_stranded_certificates() {
    let mut old = quickstart_json("CertificateProfile", "device-ldevid-1y");
    old["status"] = json!({"issued": 12, "active": 7, "revoked": 2});
    let mut new = old.clone();
    new["spec"]["issuerRef"]["name"] = json!("manufacturer-root");
    let response = validate(&request("CertificateProfile", "UPDATE", new.clone(), Some(old.clone()), false));
    assert!(response.allowed, "{}", response.result.message);
    let warnings = response.warnings.unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "switching spec.issuerRef from example-intermediate to manufacturer-root strands 7 active certificates"
        ),
        "{warnings:?}"
    );
    // The same change with nothing active strands nothing.
    old["status"]["active"] = json!(0);
    let response = validate(&request("CertificateProfile", "UPDATE", new, Some(old), false));
    assert!(response.warnings.unwrap_or_default().is_empty());
}

#[test]
fn removing_a_profile_from_an_endpoint_warns_with_its_count() {
    let mut old = quickstart_json("EnrollmentEndpoint", "est");
    old["status"] = json!({"profiles": [
        {"name": "ldevid", "profile": "device-ldevid-1y", "issued": 40, "active": 31, "revoked": 1},
        {"name": "tls", "profile": "enterprise-tls-47d", "issued": 5, "active": 1, "revoked": 0}
    ]});
    let mut new = old.clone();
    new["spec"]["profiles"] = json!([{"name": "enterprise-tls-47d", "label": "tls", "default": true}]);
    let response = validate(&request("EnrollmentEndpoint", "UPDATE", new, Some(old), false));
    assert!(response.allowed, "{}", response.result.message);
    let warnings = response.warnings.unwrap_or_default();
    assert_eq!(
        warnings,
        vec![
            "removing profile device-ldevid-1y (exposed as `ldevid`) from this endpoint strands 31 active \
             certificates: they stay valid, but their holders cannot renew them here"
                .to_string()
        ]
    );
}

/// Applies the mutating webhook's patch to `object`.
fn mutated(kind: &str, object: &Value) -> (Value, usize) {
    let response = review(&request(kind, "CREATE", object.clone(), None, false), &view(), AdmissionMode::Mutate);
    assert!(response.allowed);
    let Some(patch) = response.patch else { return (object.clone(), 0) };
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("a JSON patch");
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).expect("the patch applies");
    (out, patch.0.len())
}

#[test]
fn defaults_apply_and_are_idempotent() {
    let minimal = [
        (
            "Issuer",
            json!({"apiVersion": "pkiplane.dev/v1alpha1", "kind": "Issuer",
            "metadata": {"name": "root", "namespace": "pki"}, "spec": {"selfSigned": {}, "subject": "CN=Root"}}),
        ),
        (
            "CertificateProfile",
            json!({"apiVersion": "pkiplane.dev/v1alpha1", "kind": "CertificateProfile",
            "metadata": {"name": "p", "namespace": "pki"},
            "spec": {"issuerRef": {"name": "example-intermediate"}, "validity": {"duration": "47d"}}}),
        ),
        (
            "EnrollmentEndpoint",
            json!({"apiVersion": "pkiplane.dev/v1alpha1", "kind": "EnrollmentEndpoint",
            "metadata": {"name": "e", "namespace": "pki"},
            "spec": {"protocol": "ACME", "profiles": [{"name": "enterprise-tls-47d"}],
                     "tls": {"issuerRef": {"name": "example-intermediate"}, "dnsNames": ["acme.example.com"]}}}),
        ),
    ];
    for (kind, object) in minimal {
        let (once, n) = mutated(kind, &object);
        assert!(n > 0, "{kind}: nothing defaulted");
        let (twice, again) = mutated(kind, &once);
        assert_eq!(again, 0, "{kind}: defaulting again patched {twice}");
        // The defaulted object still reads as its type and validates.
        let response = validate(&request(kind, "CREATE", once.clone(), None, false));
        assert!(response.allowed, "{kind}: {}", response.result.message);
    }
    let (issuer, _) = mutated(
        "Issuer",
        &json!({"apiVersion": "pkiplane.dev/v1alpha1", "kind": "Issuer",
        "metadata": {"name": "i", "namespace": "pki"},
        "spec": {"parentRef": {"name": "example-root"}, "subject": "CN=I"}}),
    );
    assert_eq!(issuer["spec"]["keyAlgorithm"], "ECDSA-P256");
    assert_eq!(issuer["spec"]["validity"], "5y");
    assert_eq!(issuer["spec"]["crl"]["validity"], "1d");
}

#[test]
fn defaulted_values_are_the_ones_pkiplane_assumes() {
    let q = quickstart();
    let endpoint = q.endpoints.iter().find(|e| e.metadata.name.as_deref() == Some("acme")).unwrap();
    let mut value = serde_json::to_value(endpoint).unwrap();
    json_patch::patch(&mut value, &endpoint.defaults()).unwrap();
    let defaulted: EnrollmentEndpoint = serde_json::from_value(value).unwrap();
    assert_eq!(defaulted.spec.service.and_then(|s| s.port), Some(443));
    let acme = defaulted.spec.acme.unwrap();
    assert_eq!((acme.http01_port, acme.tls_alpn01_port), (Some(5002), Some(5001)), "set values are kept");
    assert_eq!(acme.order_lifetime.as_deref(), Some("24h"));

    let profile = q.profiles.iter().find(|p| p.metadata.name.as_deref() == Some("device-idevid-20y")).unwrap();
    let mut value = serde_json::to_value(profile).unwrap();
    json_patch::patch(&mut value, &profile.defaults()).unwrap();
    let defaulted: CertificateProfile = serde_json::from_value(value).unwrap();
    assert_eq!(defaulted.spec.validity.max.as_deref(), Some("20y"));
    assert_eq!(defaulted.spec.renewal.clone().and_then(|r| r.remaining_fraction).as_deref(), Some("1/3"));
    // The compiled policy is the same before and after defaulting.
    let before = pkiplane_api::profile_from_resource(profile).unwrap();
    let after = pkiplane_api::profile_from_resource(&defaulted).unwrap();
    assert_eq!((before.keys, before.validity, before.renewal), (after.keys, after.validity, after.renewal));

    let issuer: &Issuer =
        q.issuers.iter().find(|i| i.metadata.name.as_deref() == Some("example-intermediate")).unwrap();
    assert!(issuer.defaults().is_empty(), "every default of the intermediate is already set");
}
