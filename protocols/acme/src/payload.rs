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
    }
}
