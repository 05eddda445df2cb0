//! The JSON payloads of the ACME requests that change something, as typed structs (RFC
//! 8555 section 7). Unknown fields are ignored, as the RFC asks of servers (section 6.7.1
//! reserves extension fields); a field of the wrong type is `malformed`.

use serde::Deserialize;
use serde_json::Value;

/// newAccount (section 7.3).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    #[serde(default)]
    pub terms_of_service_agreed: bool,
    #[serde(default)]
    pub only_return_existing: bool,
    /// The JWS binding this account to an external one (section 7.3.4), verified by
    /// `eab::verify`.
    #[serde(default)]
    pub external_account_binding: Option<Value>,
}

/// A change to an account: new contacts (section 7.3.2) or deactivation (section 7.3.6).
#[derive(Debug, Default, Deserialize)]
pub struct AccountChange {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A change to an authorization: only deactivation (section 7.5.2).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizationChange {
    #[serde(default)]
    pub status: Option<String>,
}

/// newOrder (section 7.4), with the ARI `replaces` (RFC 9773 section 5) and the profiles
/// extension's `profile`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// Kept as JSON: each entry is judged on its own, so that every bad one is named in a
    /// `rejectedIdentifier` subproblem (`identifier::parse_list`).
    #[serde(default)]
    pub identifiers: Option<Vec<Value>>,
    /// RFC 3339 date-times, parsed by `time::parse`.
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
    /// A label of the endpoint's exposed profiles; the default profile when absent.
    #[serde(default)]
    pub profile: Option<String>,
    /// The ARI certificate identifier of the certificate this order replaces.
    #[serde(default)]
    pub replaces: Option<String>,
}

/// finalize (section 7.4).
#[derive(Debug, Deserialize)]
pub struct Finalize {
    /// The PKCS#10 request, base64url DER.
    pub csr: String,
}

/// revokeCert (section 7.6).
#[derive(Debug, Deserialize)]
pub struct Revocation {
    /// The certificate, base64url DER.
    pub certificate: String,
    /// A CRL reason code; kept as JSON so that a bad one gets `badRevocationReason`
    /// rather than `malformed`.
    #[serde(default)]
    pub reason: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_extension_fields() {
        let a: NewAccount = serde_json::from_str(r#"{"termsOfServiceAgreed": true, "resource": "new-reg"}"#).unwrap();
        assert!(a.terms_of_service_agreed && !a.only_return_existing && a.contact.is_none());
        assert!(serde_json::from_str::<NewAccount>(r#"{"contact": "mailto:a@example.com"}"#).is_err());
        let r: Revocation = serde_json::from_str(r#"{"certificate": "AAAA", "reason": "x"}"#).unwrap();
        assert_eq!(r.reason, Some(Value::from("x")));
        assert!(serde_json::from_str::<Revocation>("{}").is_err(), "certificate is required");
        let o: NewOrder = serde_json::from_str(r#"{"identifiers": [{"type": "dns", "value": "a.example"}]}"#).unwrap();
        assert_eq!(o.identifiers.map(|l| l.len()), Some(1));
        assert!(o.profile.is_none() && o.replaces.is_none() && o.not_before.is_none());
        assert!(serde_json::from_str::<NewOrder>(r#"{"notBefore": 5}"#).is_err());
        assert!(serde_json::from_str::<Finalize>(r#"{"csr": 1}"#).is_err());
    }
}
