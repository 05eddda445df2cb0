//! JSON Web Keys (RFC 7517) of account keys: parsing, RFC 7638 thumbprints, signature
//! verification with `ring` for the JWS algorithms ACME servers accept (RFC 8555 section
//! 6.2: ES256, ES384, RS256 with at least 2048 bits, EdDSA with Ed25519), and comparison
//! with a certificate's public key (revocation by certificate key, RFC 8555 section 7.6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::Decode;
use der::asn1::UintRef;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use spki::SubjectPublicKeyInfoRef;

use crate::problem::{AcmeError, ProblemType};

/// id-Ed25519 (RFC 8410 section 3).
const ID_ED25519: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.101.112");

/// JWS algorithms accepted for account keys.
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// Strict base64url without padding (RFC 7515 section 2).
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    if s.contains('=') {
        return None;
    }
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Elliptic curves of ECDSA account keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcCurve {
    P256,
    P384,
}

impl EcCurve {
    fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
        }
    }
}

/// A public account key.
#[derive(Clone, PartialEq, Eq)]
pub enum Jwk {
    Ec {
        curve: EcCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    /// Big-endian modulus and exponent without leading zero bytes.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jwk({})", self.thumbprint())
    }
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn member(v: &Value, name: &str) -> Result<Vec<u8>, AcmeError> {
    let s = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed(format!("JWK member `{name}` is missing or not a string")))?;
    b64_decode(s).ok_or_else(|| AcmeError::malformed(format!("JWK member `{name}` is not base64url")))
}

impl Jwk {
    /// Parses a public JWK; private members, unknown key types and weak keys are refused.
    pub fn from_value(v: &Value) -> Result<Jwk, AcmeError> {
        if !v.is_object() {
            return Err(AcmeError::malformed("the JWK is not a JSON object"));
        }
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| v.get(m).is_some()) {
            return Err(AcmeError::malformed("the JWK contains private key material"));
        }
        let bad_key = |d: String| AcmeError::new(ProblemType::BadPublicKey, d);
        match v.get("kty").and_then(Value::as_str) {
            Some("EC") => {
                let curve = match v.get("crv").and_then(Value::as_str) {
                    Some("P-256") => EcCurve::P256,
                    Some("P-384") => EcCurve::P384,
                    other => return Err(bad_key(format!("EC curve {other:?} is not supported (P-256, P-384)"))),
                };
                let (x, y) = (member(v, "x")?, member(v, "y")?);
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err(bad_key(format!("EC {} coordinates have the wrong length", curve.name())));
                }
                Ok(Jwk::Ec { curve, x, y })
            }
            Some("RSA") => {
                let (n, e) = (strip_zeros(&member(v, "n")?), strip_zeros(&member(v, "e")?));
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(2048..=8192).contains(&bits) {
                    return Err(bad_key(format!("RSA keys need 2048 to 8192 bits, this one has {bits}")));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(bad_key("RSA public exponent is out of range".into()));
                }
                Ok(Jwk::Rsa { n, e })
            }
            Some("OKP") => match v.get("crv").and_then(Value::as_str) {
                Some("Ed25519") => {
                    let x = member(v, "x")?;
                    if x.len() != 32 {
                        return Err(bad_key("Ed25519 keys are 32 bytes".into()));
                    }
                    Ok(Jwk::Ed25519 { x })
                }
                other => Err(bad_key(format!("OKP curve {other:?} is not supported (Ed25519)"))),
            },
            other => Err(bad_key(format!("key type {other:?} is not supported (EC, RSA, OKP)"))),
        }
    }

    pub fn from_json(text: &str) -> Result<Jwk, AcmeError> {
        let v: Value = serde_json::from_str(text).map_err(|e| AcmeError::malformed(format!("JWK: {e}")))?;
        Self::from_value(&v)
    }

    /// The required members in lexicographic order, no whitespace (RFC 7638 section 3.2).
    pub fn canonical_json(&self) -> String {
        match self {
            Jwk::Ec { curve, x, y } => {
                format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, curve.name(), b64(x), b64(y))
            }
            Jwk::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Jwk::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// base64url(SHA-256(canonical JSON)) (RFC 7638 section 3.1).
    pub fn thumbprint(&self) -> String {
        b64(ring::digest::digest(&ring::digest::SHA256, self.canonical_json().as_bytes()).as_ref())
    }

    /// Whether `alg` is the algorithm this key signs with.
    pub fn matches_alg(&self, alg: &str) -> bool {
        matches!(
            (self, alg),
            (Jwk::Ec { curve: EcCurve::P256, .. }, "ES256")
                | (Jwk::Ec { curve: EcCurve::P384, .. }, "ES384")
                | (Jwk::Rsa { .. }, "RS256")
                | (Jwk::Ed25519 { .. }, "EdDSA")
        )
    }

    /// Verifies a JWS signature (ECDSA signatures in the fixed r||s form, RFC 7518
    /// section 3.4).
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        if !self.matches_alg(alg) {
            return false;
        }
        match self {
            Jwk::Ec { curve, x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() * 2);
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let alg: &dyn signature::VerificationAlgorithm = match curve {
                    EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(alg, point).verify(message, sig).is_ok()
            }
            Jwk::Rsa { n, e } => RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            Jwk::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig).is_ok(),
        }
    }

    /// Whether this is the key of a SubjectPublicKeyInfo (DER).
    pub fn matches_spki(&self, spki_der: &[u8]) -> bool {
        let Ok(spki) = SubjectPublicKeyInfoRef::from_der(spki_der) else {
            return false;
        };
        let Some(bits) = spki.subject_public_key.as_bytes() else {
            return false;
        };
        let oid = spki.algorithm.oid;
        match self {
            Jwk::Ec { curve, x, y } => {
                let curve_oid = match curve {
                    EcCurve::P256 => const_oid::db::rfc5912::SECP_256_R_1,
                    EcCurve::P384 => const_oid::db::rfc5912::SECP_384_R_1,
                };
                let params = spki.algorithm.parameters.and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
                oid == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY
                    && params == Some(curve_oid)
                    && bits.len() == 1 + x.len() + y.len()
                    && bits[0] == 4
                    && bits[1..=x.len()] == x[..]
                    && bits[1 + x.len()..] == y[..]
            }
            Jwk::Rsa { n, e } => {
                #[derive(der::Sequence)]
                struct RsaPublicKey<'a> {
                    n: UintRef<'a>,
                    e: UintRef<'a>,
                }
                oid == const_oid::db::rfc5912::RSA_ENCRYPTION
                    && RsaPublicKey::from_der(bits)
                        .is_ok_and(|k| strip_zeros(k.n.as_bytes()) == *n && strip_zeros(k.e.as_bytes()) == *e)
            }
            Jwk::Ed25519 { x } => oid == ID_ED25519 && bits == x.as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RSA key of RFC 7638 section 3.1 and its published thumbprint.
    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let v = serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"});
        let jwk = Jwk::from_value(&v).unwrap();
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(Jwk::from_json(&jwk.canonical_json()).unwrap(), jwk);
    }

    #[test]
    fn refuses_private_weak_and_unknown_keys() {
        let e = Jwk::from_value(&serde_json::json!({"kty": "oct", "k": "AAAA"})).unwrap_err();
        assert_eq!(e.kind, ProblemType::Malformed);
        let e = Jwk::from_value(&serde_json::json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"})).unwrap_err();
        assert_eq!(e.kind, ProblemType::BadPublicKey);
        assert!(e.detail.contains("1024"), "{}", e.detail);
        let e = Jwk::from_value(&serde_json::json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"})).unwrap_err();
        assert_eq!(e.kind, ProblemType::BadPublicKey);
        assert!(b64_decode("AQAB=").is_none());
    }
}
