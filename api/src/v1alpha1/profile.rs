//! `CertificateProfile`: the policy, and its top-level sections (keys, validity,
//! renewal, extensions, requesters). Subject and SAN rules are in `profile_names`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, InventoryCounts, IssuerRef, RequesterProtocol};
use super::profile_names::{SubjectAltNames, SubjectRules};

/// The desired state of a CertificateProfile: everything about the certificates it
/// produces and who may ask for them. Enrollment protocols only carry requests; this
/// policy decides, identically for ACME, EST, SCEP and CMP.
// Each printcolumn repeats `type_ = ...`, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pkiplane.dev",
    version = "v1alpha1",
    kind = "CertificateProfile",
    namespaced,
    status = "CertificateProfileStatus",
    derive = "PartialEq",
    shortname = "certprofile",
    shortname = "cprof",
    category = "pkiplane",
    doc = "A certificate policy: which Issuer signs, which keys, names, lifetimes and extensions certificates get, and who may request them. EnrollmentEndpoints expose profiles over ACME, EST, SCEP and CMP; the policy is enforced the same way whichever protocol carries the request.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the profile is valid and its Issuer ready"
    ),
    printcolumn(name = "Issuer", type_ = "string", json_path = ".spec.issuerRef.name"),
    printcolumn(name = "Validity", type_ = "string", json_path = ".spec.validity.duration"),
    printcolumn(name = "Issued", type_ = "integer", json_path = ".status.issued"),
    printcolumn(name = "Active", type_ = "integer", json_path = ".status.active"),
    printcolumn(name = "Expiring", type_ = "integer", json_path = ".status.expiringSoon", priority = 1),
    printcolumn(name = "Revoked", type_ = "integer", json_path = ".status.revoked", priority = 1),
    printcolumn(name = "Denied", type_ = "integer", json_path = ".status.denied", priority = 1),
    printcolumn(name = "Waiting", type_ = "integer", json_path = ".status.waitingApproval"),
    printcolumn(name = "LastIssued", type_ = "date", json_path = ".status.lastIssuanceTime", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateProfileSpec {
    /// The Issuer (same namespace) that signs certificates of this profile. Lifetimes are
    /// capped so no certificate outlives its issuer.
    pub issuer_ref: IssuerRef,

    /// Free text shown to operators and, where the protocol has a place for it, to
    /// clients (for example the ACME profile description).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub description: String,

    /// Which public keys a CSR may carry. Default: ECDSA P-256/P-384, RSA 2048-8192 bits
    /// and Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyRules>,

    /// How long certificates live.
    pub validity: Validity,

    /// When clients should renew; drives ACME renewal information (ARI) and the
    /// expiringSoon counts. Default: when a third of the lifetime remains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<Renewal>,

    /// Rules for the subject distinguished name. Default: the CSR's CN is kept (if any)
    /// and every other attribute is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectRules>,

    /// Rules for subjectAltName entries. Only the SAN types listed here are allowed;
    /// without this section no SANs are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_alt_names: Option<SubjectAltNames>,

    /// KeyUsage bits (RFC 5280 section 4.2.1.3) of every certificate. Default
    /// [digitalSignature]; an empty list leaves the extension out. keyCertSign and cRLSign
    /// are not offered: profiles issue end-entity certificates only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ["digitalSignature"], "x-kubernetes-list-type" = "set"))]
    pub key_usage: Option<Vec<KeyUsageName>>,

    /// Extended key usages, by name (serverAuth, clientAuth, codeSigning,
    /// emailProtection, timeStamping, ocspSigning, cmcRA) or dotted OID, e.g.
    /// "1.3.6.1.5.5.7.3.17". Empty: no extendedKeyUsage extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"), inner(length(min = 1, max = 128)))]
    pub extended_key_usage: Vec<String>,

    /// HTTP URLs where relying parties fetch the issuer's CRL, written into the
    /// cRLDistributionPoints extension, e.g.
    /// "http://pki.example.com/issuers/pki/example-intermediate/crl".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub crl_distribution_points: Vec<String>,

    /// URLs written into the authorityInfoAccess extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_info_access: Option<AuthorityInfoAccess>,

    /// What happens to extensions the CSR asks for. SANs are always read from the CSR and
    /// judged by subjectAltNames; every other extension is decided by this profile unless
    /// listed under copy. Default: requested extensions are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr_extensions: Option<CsrExtensions>,

    /// Who may use this profile. Default: any requester of any endpoint that exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requesters: Option<Requesters>,

    /// Manual approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

pub use pkiplane_core::keys::KeyFamily as KeyFamilyName;

pub use pkiplane_core::keys::Curve as CurveName;

fn default_families() -> Vec<KeyFamilyName> {
    vec![KeyFamilyName::Ecdsa, KeyFamilyName::Rsa, KeyFamilyName::Ed25519]
}

fn default_curves() -> Vec<CurveName> {
    vec![CurveName::P256, CurveName::P384]
}

fn default_rsa_min_bits() -> i32 {
    2048
}

fn default_rsa_max_bits() -> i32 {
    8192
}

/// Allowed public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.rsaMinBits <= self.rsaMaxBits",
    "message": "rsaMinBits must not exceed rsaMaxBits"
}]))]
pub struct KeyRules {
    /// Allowed key families: ECDSA, RSA, Ed25519. Default all three.
    #[serde(default = "default_families")]
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "set"))]
    pub algorithms: Vec<KeyFamilyName>,
    /// Allowed curves for ECDSA keys: P-256, P-384, P-521. Default [P-256, P-384].
    #[serde(default = "default_curves")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ecdsa_curves: Vec<CurveName>,
    /// Smallest RSA modulus in bits. At least 2048 (smaller keys are weak). Default 2048.
    #[serde(default = "default_rsa_min_bits")]
    #[schemars(range(min = 2048, max = 16384))]
    pub rsa_min_bits: i32,
    /// Largest RSA modulus in bits. Default 8192.
    #[serde(default = "default_rsa_max_bits")]
    #[schemars(range(min = 2048, max = 16384))]
    pub rsa_max_bits: i32,
}

impl Default for KeyRules {
    fn default() -> Self {
        Self {
            algorithms: default_families(),
            ecdsa_curves: default_curves(),
            rsa_min_bits: default_rsa_min_bits(),
            rsa_max_bits: default_rsa_max_bits(),
        }
    }
}

/// Certificate lifetimes. Durations are whole numbers with units y (365 days), w, d, h,
/// m, s, e.g. "47d", "1y", "1h30m".
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Validity {
    /// Lifetime of a certificate when the requester asks for none, e.g. "47d". Capped so
    /// the certificate never outlives its Issuer.
    #[schemars(pattern(DURATION_PATTERN))]
    pub duration: String,
    /// Longest lifetime a requester may ask for (ACME notAfter, CMP validity), at least
    /// duration. Default: duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub max: Option<String>,
    /// notBefore is set this far in the past to absorb clients' clock skew, e.g. "5m";
    /// at most 1h. Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), extend("default" = "5m"))]
    pub backdate: Option<String>,
}

/// When certificates are due for renewal: at most one of remainingFraction and before.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.remainingFraction) && has(self.before))",
    "message": "set at most one of remainingFraction or before"
}]))]
pub struct Renewal {
    /// Renew when this fraction of the lifetime remains, as a fraction "1/3" or a decimal
    /// "0.25" (quoted: it is a string), strictly between 0 and 1. Default "1/3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub remaining_fraction: Option<String>,
    /// Renew this long before notAfter, e.g. "15d"; shorter than validity.duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub before: Option<String>,
}

/// KeyUsage bits an end-entity certificate can carry (RFC 5280 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsageName {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    EncipherOnly,
    DecipherOnly,
}

impl KeyUsageName {
    /// The RFC 5280 name, as core's `KeyUsageBit` parses it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsageName::DigitalSignature => "digitalSignature",
            KeyUsageName::NonRepudiation => "nonRepudiation",
            KeyUsageName::KeyEncipherment => "keyEncipherment",
            KeyUsageName::DataEncipherment => "dataEncipherment",
            KeyUsageName::KeyAgreement => "keyAgreement",
            KeyUsageName::EncipherOnly => "encipherOnly",
            KeyUsageName::DecipherOnly => "decipherOnly",
        }
    }
}

/// authorityInfoAccess URLs (RFC 5280 section 4.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorityInfoAccess {
    /// HTTP URLs where the issuing CA's certificate can be downloaded (DER), e.g.
    /// "http://pki.example.com/issuers/pki/example-intermediate/ca.crt".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub ca_issuers: Vec<String>,
    /// HTTP URLs of OCSP responders for these certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub ocsp: Vec<String>,
}

/// Handling of extensions requested in CSRs.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.copy) || !has(self.refuse) || self.copy.all(c, !(c in self.refuse))",
    "message": "an extension cannot be both copied and refused"
}]))]
pub struct CsrExtensions {
    /// Requested extensions copied verbatim into the certificate, by dotted OID or name:
    /// tlsFeature (OCSP must-staple), certificatePolicies, subjectDirectoryAttributes,
    /// smimeCapabilities, ocspNoCheck. Extensions the profile decides (basicConstraints,
    /// keyUsage, extendedKeyUsage, subjectAltName, nameConstraints, key identifiers,
    /// CRL distribution points, authorityInfoAccess) cannot be copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128)), extend("x-kubernetes-list-type" = "set"))]
    pub copy: Vec<String>,
    /// Requested extensions that make the request fail, by dotted OID or the same names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128)), extend("x-kubernetes-list-type" = "set"))]
    pub refuse: Vec<String>,
}

/// Who may use the profile. Every list left empty allows everyone.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requesters {
    /// Protocols requests may arrive through: ACME, EST, SCEP, CMP, and LOCAL for
    /// pkiplane's own tooling (`pkiplane issue`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub protocols: Vec<RequesterProtocol>,
    /// EnrollmentEndpoints requests may arrive through: "name" (same namespace) or
    /// "namespace/name".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 507)))]
    pub endpoints: Vec<String>,
    /// Patterns the authenticated requester identity must match, `*` matching any run
    /// of characters, e.g. "CN=device-*" for EST client certificates or an ACME account
    /// URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 1024)))]
    pub identities: Vec<String>,
    /// Claims the requester's authentication must have proved, with their required
    /// values; "*" accepts any value. For example {"serialNumber": "*"} admits only
    /// devices whose serial number the protocol authenticated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_claims: BTreeMap<String, String>,
}

/// Manual approval settings.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    /// Requests wait for a person's approval before they are signed. Default false.
    #[serde(default)]
    pub required: bool,
}

/// The observed state of a CertificateProfile: validity and inventory counts.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateProfileStatus {
    /// Current service state. Ready is True when the profile is valid and its Issuer is
    /// ready; otherwise the message names the problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Certificates issued under this profile, ever.
    #[serde(default)]
    pub issued: i64,
    /// Certificates that are neither expired nor revoked.
    #[serde(default)]
    pub active: i64,
    /// Active certificates inside their renewal window.
    #[serde(default)]
    pub expiring_soon: i64,
    /// Certificates revoked, ever.
    #[serde(default)]
    pub revoked: i64,
    /// Requests the policy denied.
    #[serde(default)]
    pub denied: i64,
    /// Requests waiting for a person's approval (`pkiplane approvals list`).
    #[serde(default)]
    pub waiting_approval: i64,
    /// The same counts per protocol, keyed ACME, EST, SCEP, CMP, LOCAL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_protocol: BTreeMap<String, InventoryCounts>,
    /// When the last certificate was issued (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_issuance_time: Option<Time>,
}
