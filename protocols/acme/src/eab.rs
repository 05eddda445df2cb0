//! External account binding (RFC 8555 section 7.3.4): a newAccount request proves the
//! holder knows an HMAC key handed out beforehand by MACing the account's JWK.

use crate::state::EabUse;
use serde_json::Value;

use crate::jwk::Jwk;
use crate::jws::Jws;
use crate::problem::{AcmeError, ProblemType};
use crate::settings::EabSettings;

/// Checks the `externalAccountBinding` of a newAccount payload against the configured
/// keys. Returns the key use to record, or None when no binding was sent and none is
/// required.
pub fn verify(
    config: Option<&EabSettings>,
    binding: Option<&Value>,
    account_key: &Jwk,
    new_account_url: &str,
) -> Result<Option<EabUse>, AcmeError> {
    let Some(config) = config else {
        // No EAB configured: a binding is ignored (RFC 8555 section 7.3.4 lets servers
        // that do not use EAB disregard the field).
        return Ok(None);
    };
    let Some(binding) = binding else {
        if config.required {
            return Err(AcmeError::new(
                ProblemType::ExternalAccountRequired,
                "this server requires an external account binding for new accounts",
            ));
        }
        return Ok(None);
    };
    let jws = Jws::parse_value(binding)?;
    let h = &jws.header;
    if !matches!(h.alg.as_str(), "HS256" | "HS384" | "HS512") {
        return Err(AcmeError::malformed(format!(
            "external account binding must be MACed with HS256, HS384 or HS512, not {}",
            h.alg
        )));
    }
    if h.nonce.is_some() {
        return Err(AcmeError::malformed("the external account binding must not carry a nonce"));
    }
    if h.jwk.is_some() {
        return Err(AcmeError::malformed("the external account binding must name its key by `kid`"));
    }
    if h.url.as_deref() != Some(new_account_url) {
        return Err(AcmeError::unauthorized("the external account binding's `url` is not the newAccount URL"));
    }
    let kid = h.kid.clone().ok_or_else(|| AcmeError::malformed("the external account binding has no `kid`"))?;
    let key = config
        .keys
        .get(&kid)
        .ok_or_else(|| AcmeError::unauthorized(format!("external account key ID `{kid}` is not known")))?;
    jws.verify_hmac(&key.0)?;
    let bound = Jwk::from_value(&jws.json()?)?;
    if bound.thumbprint() != account_key.thumbprint() {
        return Err(AcmeError::unauthorized("the external account binding is for a different account key"));
    }
    Ok(Some(EabUse { kid, single_use: !config.reusable }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use zeroize::Zeroizing;

    use super::*;
    use crate::settings::EabKey;
    use crate::signer::{AccountKey, hmac_jws};

    const URL: &str = "https://acme.test/new-account";

    fn config(required: bool) -> EabSettings {
        let mut keys = BTreeMap::new();
        keys.insert("kid-1".to_owned(), EabKey(Zeroizing::new(vec![42; 32])));
        EabSettings { required, reusable: false, keys }
    }

    #[test]
    fn verifies_the_mac_over_the_account_key() {
        let key = AccountKey::generate_es256();
        let jwk = Jwk::from_value(&key.jwk()).unwrap();
        let cfg = config(true);
        for alg in ["HS256", "HS384", "HS512"] {
            let b = hmac_jws(alg, &[42; 32], json!({"kid": "kid-1", "url": URL}), &key.jwk());
            let used = verify(Some(&cfg), Some(&b), &jwk, URL).unwrap().unwrap();
            assert_eq!(used, EabUse { kid: "kid-1".into(), single_use: true });
        }
        // Wrong MAC key.
        let b = hmac_jws("HS256", &[43; 32], json!({"kid": "kid-1", "url": URL}), &key.jwk());
        assert_eq!(verify(Some(&cfg), Some(&b), &jwk, URL).unwrap_err().kind, ProblemType::Unauthorized);
        // Unknown key ID.
        let b = hmac_jws("HS256", &[42; 32], json!({"kid": "nope", "url": URL}), &key.jwk());
        assert_eq!(verify(Some(&cfg), Some(&b), &jwk, URL).unwrap_err().kind, ProblemType::Unauthorized);
        // Binding made for another account key.
        let other = AccountKey::generate_es256();
        let b = hmac_jws("HS256", &[42; 32], json!({"kid": "kid-1", "url": URL}), &other.jwk());
        assert_eq!(verify(Some(&cfg), Some(&b), &jwk, URL).unwrap_err().kind, ProblemType::Unauthorized);
        // Missing when required; absent is fine when optional.
        assert_eq!(verify(Some(&cfg), None, &jwk, URL).unwrap_err().kind, ProblemType::ExternalAccountRequired);
        assert_eq!(verify(Some(&config(false)), None, &jwk, URL).unwrap(), None);
        // A nonce in the binding is malformed.
        let b = hmac_jws("HS256", &[42; 32], json!({"kid": "kid-1", "url": URL, "nonce": "x"}), &key.jwk());
        assert_eq!(verify(Some(&cfg), Some(&b), &jwk, URL).unwrap_err().kind, ProblemType::Malformed);
    }
}
