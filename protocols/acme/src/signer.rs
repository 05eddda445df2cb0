//! A minimal ACME request signer: account keys (ES256, ES384, EdDSA, RS256) that produce
//! flattened JWS (RFC 7515 section 7.2.2). The server never signs requests; this is for
//! tests and tools that need to send hand-made (including deliberately wrong) requests.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::jwk::b64;

/// An account key pair.
pub enum AccountKey {
    Es256(EcdsaKeyPair),
    Es384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountKey({}, <redacted>)", self.alg())
    }
}

impl AccountKey {
    pub fn generate_es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        Self::Es256(
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key"),
        )
    }

    pub fn generate_es384() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("keygen");
        Self::Es384(
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key"),
        )
    }

    pub fn generate_ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        Self::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key"))
    }

    /// An RSA key from PKCS#8 DER (ring cannot generate RSA keys).
    pub fn rsa_from_pkcs8(der: &[u8]) -> Result<Self, String> {
        RsaKeyPair::from_pkcs8(der).map(Self::Rs256).map_err(|e| e.to_string())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            AccountKey::Es256(_) => "ES256",
            AccountKey::Es384(_) => "ES384",
            AccountKey::Ed25519(_) => "EdDSA",
            AccountKey::Rs256(_) => "RS256",
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match self {
            AccountKey::Es256(k) | AccountKey::Es384(k) => {
                let p = k.public_key().as_ref();
                let n = (p.len() - 1) / 2;
                let crv = if n == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&p[1..=n]), "y": b64(&p[1 + n..])})
            }
            AccountKey::Ed25519(k) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())}),
            AccountKey::Rs256(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            AccountKey::Es256(k) | AccountKey::Es384(k) => k.sign(&rng, message).expect("sign").as_ref().to_vec(),
            AccountKey::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            AccountKey::Rs256(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).expect("sign");
                sig
            }
        }
    }

    /// A flattened JWS over `payload` (None: POST-as-GET) with the given header members;
    /// `alg` is added unless the header sets it.
    pub fn jws(&self, mut header: Value, payload: Option<&Value>) -> Value {
        if header.get("alg").is_none() {
            header["alg"] = json!(self.alg());
        }
        let protected = b64(header.to_string().as_bytes());
        let payload = payload.map(|p| b64(p.to_string().as_bytes())).unwrap_or_default();
        let sig = self.sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64(&sig)})
    }
}

/// An HMAC-signed flattened JWS (external account binding, RFC 8555 section 7.3.4).
pub fn hmac_jws(alg: &str, key: &[u8], header: Value, payload: &Value) -> Value {
    let mut header = header;
    header["alg"] = json!(alg);
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(payload.to_string().as_bytes());
    let algorithm = match alg {
        "HS384" => ring::hmac::HMAC_SHA384,
        "HS512" => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA256,
    };
    let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, key), format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}
