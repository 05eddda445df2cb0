//! `Issuer`: a certificate authority.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, IssuerRef, SecretRef};

/// The desired state of an Issuer: where its CA certificate and key come from and, for a
/// CA pkiplane creates, what that certificate looks like.
// Each printcolumn repeats `type_ = ...`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pkiplane.dev",
    version = "v1alpha1",
    kind = "Issuer",
    namespaced,
    status = "IssuerStatus",
    derive = "PartialEq",
    shortname = "pkiss",
    shortname = "pkiissuer",
    category = "pkiplane",
    doc = "A certificate authority: a self-signed root, an intermediate signed by another Issuer, or a CA imported from a Secret. CertificateProfiles name the Issuer that signs their certificates.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the CA certificate and key are in place"
    ),
    printcolumn(
        name = "Parent",
        type_ = "string",
        json_path = ".spec.parentRef.name",
        description = "The Issuer that signed this intermediate"
    ),
    printcolumn(name = "Key", type_ = "string", json_path = ".spec.keyAlgorithm", priority = 1),
    printcolumn(
        name = "NotAfter",
        // A string, not a date: kubectl prints a date column as an age, and a time in the
        // future as "<invalid>".
        type_ = "string",
        json_path = ".status.notAfter",
        description = "When the CA certificate expires (RFC 3339)"
    ),
    printcolumn(name = "Issued", type_ = "integer", json_path = ".status.issued", priority = 1),
    printcolumn(name = "Revoked", type_ = "integer", json_path = ".status.revoked", priority = 1),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.selfSigned) ? 1 : 0) + (has(self.parentRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) == 1",
        "message": "set exactly one of selfSigned, parentRef or secretRef"
    },
    {
        "rule": "has(self.secretRef) || has(self.subject)",
        "message": "subject is required unless the CA is imported from a Secret (secretRef)",
        "fieldPath": ".subject",
        "reason": "FieldValueRequired"
    },
    {
        "rule": "!has(self.secretRef) || !(has(self.subject) || has(self.keyAlgorithm) || has(self.validity) || has(self.pathLen) || has(self.nameConstraints) || has(self.renewBefore))",
        "message": "an imported CA (secretRef) takes its subject, key, validity and constraints from its certificate: remove subject, keyAlgorithm, validity, pathLen, nameConstraints and renewBefore"
    }
]))]
pub struct IssuerSpec {
    /// Make a self-signed root CA: pkiplane generates the key and signs the certificate
    /// with it. Set to `{}`. Exactly one of selfSigned, parentRef and secretRef is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_signed: Option<SelfSigned>,

    /// Make an intermediate CA signed by another Issuer in the same namespace: pkiplane
    /// generates the key and the parent signs the certificate. The parent's name
    /// constraints and pathLen apply. Exactly one of selfSigned, parentRef and secretRef
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<IssuerRef>,

    /// Import an existing CA from a Secret in the same namespace: `tls.crt` holds the CA
    /// certificate (PEM), `tls.key` its private key (PEM, PKCS#8 or SEC1/PKCS#1), and the
    /// optional `ca.crt` the certificates above it up to the root. A Secret of type
    /// kubernetes.io/tls fits. Exactly one of selfSigned, parentRef and secretRef is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// Subject distinguished name of the CA certificate in RFC 4514 form, most specific
    /// attribute first, e.g. "CN=Example Root CA,O=Example,C=DE". Known attributes: CN, O,
    /// OU, C, ST, L, serialNumber, emailAddress, UID, DC. Required unless the CA is
    /// imported (secretRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject: Option<String>,

    /// Algorithm of the CA key pkiplane generates. Default ECDSA-P256. Not allowed for
    /// imported CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<CaKeyAlgorithm>,

    /// Lifetime of the CA certificate, e.g. "20y" or "5y" (units y = 365 days, w, d, h, m,
    /// s). Default 10y for a root (selfSigned), 5y for an intermediate (parentRef). An
    /// intermediate never outlives its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub validity: Option<String>,

    /// basicConstraints pathLenConstraint: how many intermediate CAs may follow this one
    /// in a chain. 0 means this CA signs only end-entity certificates. Unset means no
    /// limit (for a root) or as the parent allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 255))]
    pub path_len: Option<i32>,

    /// Name constraints (RFC 5280 section 4.2.1.10) written into the CA certificate and
    /// enforced on everything it issues: names outside the permitted subtrees or inside
    /// the excluded ones are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_constraints: Option<NameConstraints>,

    /// Certificate revocation lists this CA publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<CrlSettings>,

    /// Start rolling over to a new CA certificate this long before the current one
    /// expires, e.g. "1y". The new certificate is published in status.nextCertificate
    /// before it takes over. Unset: no automatic rollover. Not allowed for imported CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub renew_before: Option<String>,
}

/// Marks a self-signed root CA. Has no fields: write `selfSigned: {}`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SelfSigned {}

/// Key algorithms for CA keys (the core type, with its JSON Schema).
pub use pkiplane_core::keys::KeyAlgorithm as CaKeyAlgorithm;

/// Permitted and excluded name subtrees. An empty list leaves that name form
/// unconstrained (permitted) or excludes nothing (excluded).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameConstraints {
    /// DNS subtrees names must fall within: "example.com" permits example.com and every
    /// name below it; ".example.com" only names below it.
    #[serde(default, rename = "permittedDNSDomains", skip_serializing_if = "Vec::is_empty")]
    pub permitted_dns_domains: Vec<String>,
    /// DNS subtrees that are refused, same form as permittedDNSDomains.
    #[serde(default, rename = "excludedDNSDomains", skip_serializing_if = "Vec::is_empty")]
    pub excluded_dns_domains: Vec<String>,
    /// IP ranges addresses must fall within, as CIDRs, e.g. "10.0.0.0/8", "::1/128".
    #[serde(default, rename = "permittedIPRanges", skip_serializing_if = "Vec::is_empty")]
    pub permitted_ip_ranges: Vec<String>,
    /// IP ranges that are refused, as CIDRs.
    #[serde(default, rename = "excludedIPRanges", skip_serializing_if = "Vec::is_empty")]
    pub excluded_ip_ranges: Vec<String>,
    /// E-mail constraints: a full address ("pki@example.com"), every address at a host
    /// ("example.com") or every address in a domain below it (".example.com").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permitted_email_addresses: Vec<String>,
    /// E-mail addresses or domains that are refused, same form as
    /// permittedEmailAddresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_email_addresses: Vec<String>,
    /// Hosts URIs must have, as DNS subtrees: "example.org" permits
    /// spiffe://example.org/... and https://x.example.org/...
    #[serde(default, rename = "permittedURIDomains", skip_serializing_if = "Vec::is_empty")]
    pub permitted_uri_domains: Vec<String>,
    /// URI hosts that are refused, same form as permittedURIDomains.
    #[serde(default, rename = "excludedURIDomains", skip_serializing_if = "Vec::is_empty")]
    pub excluded_uri_domains: Vec<String>,
}

/// CRL settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrlSettings {
    /// How long each CRL is valid (thisUpdate to nextUpdate), e.g. "24h". A new CRL is
    /// published well before the current one expires. Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), extend("default" = "24h"))]
    pub validity: Option<String>,
}

/// The observed state of an Issuer.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerStatus {
    /// Current service state. The Ready condition is True when the CA certificate and key
    /// are in place and the CA can sign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The certificates above the CA certificate up to and including the root, PEM,
    /// nearest first. Empty for a root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// SHA-256 fingerprint of the CA certificate's DER encoding, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Start of the CA certificate's validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// End of the CA certificate's validity (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// Serial number of the CA certificate, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Number of the latest CRL published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_number: Option<i64>,
    /// Certificates this CA has issued, ever.
    #[serde(default)]
    pub issued: i64,
    /// Issued certificates that are neither expired nor revoked.
    #[serde(default)]
    pub active: i64,
    /// Certificates this CA has revoked, ever.
    #[serde(default)]
    pub revoked: i64,
    /// During a rollover, the CA certificate that takes over next (PEM), published early
    /// so relying parties can trust it before it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_certificate: Option<String>,
}
