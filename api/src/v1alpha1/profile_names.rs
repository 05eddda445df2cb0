//! The name rules of a CertificateProfile: subject attributes and subjectAltNames.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rules for the subject distinguished name.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectRules {
    /// One rule per subject attribute, at most one per name. Attributes without a rule
    /// are handled by otherAttributes. The certificate's subject lists attributes in this
    /// order, least specific first as DER and `openssl x509 -subject` do: put O before CN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub attributes: Vec<SubjectAttributeRule>,
    /// What happens to CSR subject attributes no rule names: Drop leaves them out of the
    /// certificate, Refuse denies the request. Default Drop.
    #[serde(default)]
    pub other_attributes: OtherAttributes,
}

/// Subject attributes a profile can have rules for (the core type, with its JSON Schema).
pub use pkiplane_core::x509::names::SubjectAttribute as SubjectAttributeName;

/// Whether an attribute must, may or must not appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum Presence {
    Required,
    #[default]
    Optional,
    Forbidden,
}

/// Where an attribute's value comes from when the rule fixes none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ValueFrom {
    #[default]
    #[serde(rename = "CSR")]
    Csr,
    #[serde(rename = "FirstDNSName")]
    FirstDnsName,
    #[serde(rename = "FirstIPAddress")]
    FirstIpAddress,
    #[serde(rename = "FirstURI")]
    FirstUri,
    FirstEmail,
    Claim,
}

/// What happens to subject attributes no rule names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum OtherAttributes {
    #[default]
    Drop,
    Refuse,
}

/// The rule for one subject attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.value) || !has(self.from) || self.from == 'CSR'",
        "message": "value fixes the attribute; from applies only when there is no value"
    },
    {
        "rule": "has(self.claim) == (has(self.from) && self.from == 'Claim')",
        "message": "claim names the claim to read and is set exactly when from is Claim"
    },
    {
        "rule": "!has(self.value) || !has(self.presence) || self.presence != 'Forbidden'",
        "message": "a Forbidden attribute cannot have a value"
    }
]))]
pub struct SubjectAttributeRule {
    /// The attribute: CN, O, OU, C, ST, L, serialNumber, emailAddress, UID or DC.
    pub name: SubjectAttributeName,
    /// Required: every certificate has the attribute (from value, the CSR or from).
    /// Optional: it appears when the CSR or from provides it. Forbidden: a CSR that has it
    /// is denied. Default Optional.
    #[serde(default)]
    pub presence: Presence,
    /// A fixed value, e.g. "Example Devices" for O. It wins over anything the CSR says:
    /// a different CSR value is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub value: Option<String>,
    /// Where the value comes from when there is no fixed value. CSR: as requested
    /// (checked by pattern and mustMatchSAN). FirstDNSName, FirstIPAddress, FirstURI,
    /// FirstEmail: the first SAN of that type, when the CSR has no value. Claim: a fact
    /// the requester's authentication proved (see claim); a CSR value must equal it.
    /// Default CSR.
    #[serde(default)]
    pub from: ValueFrom,
    /// The claim to read when from is Claim, e.g. "serialNumber" (the serial number in
    /// an EST client's IDevID certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub claim: Option<String>,
    /// The value must equal one of the certificate's SANs (the usual rule for a CN).
    /// Default false.
    #[serde(default, rename = "mustMatchSAN")]
    pub must_match_san: bool,
    /// A regular expression the whole value must match, e.g. "[A-Z0-9]{8,20}" (anchors
    /// are implied). Syntax: Rust regex-lite (no look-around, no backreferences).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub pattern: Option<String>,
}

fn default_max_count() -> i32 {
    100
}

/// subjectAltName rules. Each SAN type is allowed only when its section is present; an
/// empty section (e.g. `dns: {}`) allows any well-formed value of that type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.required) && self.required) || has(self.dns) || has(self.ip) || has(self.uri) || has(self.email)",
    "message": "required needs at least one of dns, ip, uri or email"
}]))]
pub struct SubjectAltNames {
    /// Most SANs one certificate may carry. Default 100.
    #[serde(default = "default_max_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_count: i32,
    /// At least one SAN must be present. Default false.
    #[serde(default)]
    pub required: bool,
    /// DNS names. Absent: DNS SANs are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsNameRules>,
    /// IP addresses. Absent: IP SANs are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddressRules>,
    /// URIs, e.g. SPIFFE IDs. Absent: URI SANs are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<UriRules>,
    /// E-mail addresses (rfc822Name). Absent: e-mail SANs are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailRules>,
}

impl Default for SubjectAltNames {
    fn default() -> Self {
        Self { max_count: default_max_count(), required: false, dns: None, ip: None, uri: None, email: None }
    }
}

/// DNS name rules.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsNameRules {
    /// Allowed DNS suffixes: "example.com" allows example.com and every name below it,
    /// ".example.com" only the names below it. Empty: any well-formed DNS name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)))]
    pub suffixes: Vec<String>,
    /// Allow wildcard names such as "*.example.com" (leftmost label only). Default false.
    #[serde(default)]
    pub allow_wildcards: bool,
}

/// IP address rules.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpAddressRules {
    /// Allowed ranges as CIDRs, e.g. "10.0.0.0/8", "::1/128"; a bare address allows just
    /// that address. Empty: any address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 64)))]
    pub cidrs: Vec<String>,
}

/// URI rules.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UriRules {
    /// Allowed URI patterns with a scheme, e.g. "spiffe://example.org/ns/*/sa/*": `*`
    /// matches within one path segment, `**` across segments. Empty: any URI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 2048)))]
    pub patterns: Vec<String>,
}

/// E-mail address rules.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailRules {
    /// Allowed mail domains, matched exactly against the part after "@", e.g.
    /// "example.com". Empty: any domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1, max = 253)))]
    pub domains: Vec<String>,
}
