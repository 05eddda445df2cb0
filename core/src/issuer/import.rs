//! Reading CA private keys from PEM: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and
//! PKCS#1 (`RSA PRIVATE KEY`), as found in Kubernetes TLS Secrets.

use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1};
use der::asn1::{AnyRef, Null, OctetString};
use der::{Encode, Sequence};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::keys::{KeyAlgorithm, SecretKey};
use crate::x509::pem::decode_all;

/// `PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm AlgorithmIdentifier,
/// privateKey OCTET STRING }` (RFC 5208 section 5), the part needed to wrap older formats.
#[derive(Sequence)]
struct PrivateKeyInfo {
    version: u8,
    algorithm: AlgorithmIdentifierOwned,
    private_key: OctetString,
}

/// Reads a private key from PEM and works out its algorithm.
pub fn parse_private_key_pem(pem: &str) -> Result<SecretKey, String> {
    let blocks = decode_all(pem.as_bytes()).map_err(|e| format!("private key: {e}"))?;
    let block = blocks
        .into_iter()
        .find(|b| b.label.ends_with("PRIVATE KEY"))
        .ok_or("no PRIVATE KEY block found (expected PKCS#8, SEC1 or PKCS#1 PEM)")?;
    let der = Zeroizing::new(block.der);
    let candidates: Vec<Zeroizing<Vec<u8>>> = match block.label.as_str() {
        "PRIVATE KEY" => vec![der.clone()],
        "EC PRIVATE KEY" => [SECP_256_R_1, SECP_384_R_1]
            .into_iter()
            .filter_map(|curve| wrap(ID_EC_PUBLIC_KEY, der::Any::encode_from(&curve).ok(), &der))
            .collect(),
        "RSA PRIVATE KEY" => wrap(RSA_ENCRYPTION, Some(der::Any::from(AnyRef::from(Null))), &der).into_iter().collect(),
        "ENCRYPTED PRIVATE KEY" => {
            return Err("encrypted private keys are not supported; store the key unencrypted in the Secret".into());
        }
        other => return Err(format!("unsupported private key PEM label `{other}`")),
    };
    for pkcs8 in candidates {
        if let Some(alg) = detect(&pkcs8) {
            return Ok(SecretKey::from_pkcs8(alg, pkcs8.to_vec()));
        }
    }
    Err("the private key is not an ECDSA P-256/P-384, RSA 2048/3072/4096 or Ed25519 key pkiplane can use".into())
}

fn wrap(oid: const_oid::ObjectIdentifier, parameters: Option<der::Any>, inner: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let info = PrivateKeyInfo {
        version: 0,
        algorithm: AlgorithmIdentifierOwned { oid, parameters },
        private_key: OctetString::new(inner.to_vec()).ok()?,
    };
    info.to_der().ok().map(Zeroizing::new)
}

fn detect(pkcs8: &[u8]) -> Option<KeyAlgorithm> {
    let rng = SystemRandom::new();
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng).is_ok() {
        return Some(KeyAlgorithm::EcdsaP256);
    }
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8, &rng).is_ok() {
        return Some(KeyAlgorithm::EcdsaP384);
    }
    if let Ok(kp) = RsaKeyPair::from_pkcs8(pkcs8) {
        return match kp.public().modulus_len() * 8 {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        };
    }
    if Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).is_ok() {
        return Some(KeyAlgorithm::Ed25519);
    }
    None
}
