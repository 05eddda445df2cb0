//! Envelope encryption of private keys at rest: each key is encrypted under a fresh
//! data key (AES-256-GCM), and the data key under a key-encryption key (KEK, AES-256-GCM)
//! named by its id. The AEAD primitive is ring's (already in the tree for TLS and
//! signatures); nothing here implements cryptography.
//!
//! A sealed value is self-describing, so the database columns stay as they are:
//!
//! ```text
//! "PKPSEAL1" | id length (1 byte) | KEK id | KEK nonce (12) | wrapped data key (32 + 16)
//!            | data nonce (12) | ciphertext + tag
//! ```
//!
//! A PKCS#8 private key (DER, starting with a SEQUENCE tag) never starts with the magic,
//! which tells plaintext left from before sealing apart. The associated data binds a
//! sealed value to the row it belongs to (table and key columns): a value copied to
//! another row does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"PKPSEAL1";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// Why a sealed value did not open, or a keyring did not load.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed with key-encryption key `{0}`, which the keyring does not hold")]
    MissingKey(String),
    #[error("does not open with key-encryption key `{0}` (a different key under that id, or altered data)")]
    WrongKeyOrTampered(String),
    #[error("not a sealed value")]
    NotSealed,
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    #[error("key-encryption keys: {0}")]
    Keyring(String),
    #[error("no randomness: {0}")]
    Random(String),
}

/// One key-encryption key.
struct Kek {
    id: String,
    key: LessSafeKey,
}

/// The key-encryption keys: the first seals, every one opens (rotation: put the new key
/// first, keep the old ones until `rekey` has rewrapped everything).
pub struct KeyEncryptionKeys {
    keys: Vec<Kek>,
}

impl std::fmt::Debug for KeyEncryptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyEncryptionKeys").field("ids", &ids).field("keys", &"<redacted>").finish()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl KeyEncryptionKeys {
    /// Builds a keyring from (id, 32-byte key) pairs; the first seals.
    pub fn new(keys: Vec<(String, Zeroizing<Vec<u8>>)>) -> Result<Self, SealError> {
        if keys.is_empty() {
            return Err(SealError::Keyring("no key".to_owned()));
        }
        let mut out: Vec<Kek> = Vec::new();
        for (id, bytes) in keys {
            if !valid_id(&id) {
                return Err(SealError::Keyring(format!("key id `{id}`: use 1-64 of A-Z a-z 0-9 . _ -")));
            }
            if out.iter().any(|k| k.id == id) {
                return Err(SealError::Keyring(format!("key id `{id}` appears twice")));
            }
            if bytes.len() != KEY_LEN {
                return Err(SealError::Keyring(format!("key `{id}` is {} bytes, not 32", bytes.len())));
            }
            let unbound =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::Keyring(format!("key `{id}`")))?;
            out.push(Kek { id, key: LessSafeKey::new(unbound) });
        }
        Ok(Self { keys: out })
    }

    /// Parses a KEK file: one key a line, `ID:BASE64` (32 bytes once decoded); blank lines
    /// and `#` comments are skipped; the first key seals.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        use base64::Engine;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((id, b64)) = line.split_once(':') else {
                return Err(SealError::Keyring(format!("line {}: expected ID:BASE64", n + 1)));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| SealError::Keyring(format!("line {}: key `{}` is not base64", n + 1, id.trim())))?;
            keys.push((id.trim().to_owned(), Zeroizing::new(bytes)));
        }
        Self::new(keys)
    }

    /// The id of the key that seals.
    pub fn active_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether the keyring holds `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Seals `plaintext` for the row described by `context`, under the active key.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let rng = SystemRandom::new();
        let random = |buf: &mut [u8]| rng.fill(buf).map_err(|_| SealError::Random("the system RNG failed".to_owned()));
        let kek = &self.keys[0];
        let mut data_key = Zeroizing::new([0u8; KEY_LEN]);
        random(data_key.as_mut_slice())?;
        let (mut kek_nonce, mut data_nonce) = ([0u8; NONCE_LEN], [0u8; NONCE_LEN]);
        random(&mut kek_nonce)?;
        random(&mut data_nonce)?;

        let mut wrapped = data_key.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(kek_nonce),
                Aad::from(wrap_aad(&kek.id, context)),
                &mut wrapped,
            )
            .map_err(|_| SealError::Malformed("wrapping failed"))?;
        let dek = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, data_key.as_slice()).map_err(|_| SealError::Malformed("data key"))?,
        );
        let mut body = plaintext.to_vec();
        dek.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(data_nonce),
            Aad::from(context.as_bytes()),
            &mut body,
        )
        .map_err(|_| SealError::Malformed("sealing failed"))?;

        let mut out = Vec::with_capacity(MAGIC.len() + 1 + kek.id.len() + 2 * NONCE_LEN + wrapped.len() + body.len());
        out.extend_from_slice(MAGIC);
        out.push(kek.id.len() as u8);
        out.extend_from_slice(kek.id.as_bytes());
        out.extend_from_slice(&kek_nonce);
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&data_nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a sealed value of the row described by `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let parts = parse(sealed)?;
        let kek = self
            .keys
            .iter()
            .find(|k| k.id == parts.kek_id)
            .ok_or_else(|| SealError::MissingKey(parts.kek_id.to_owned()))?;
        let wrong = || SealError::WrongKeyOrTampered(parts.kek_id.to_owned());
        let mut wrapped = Zeroizing::new(parts.wrapped.to_vec());
        let data_key = kek
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(parts.kek_nonce),
                Aad::from(wrap_aad(&kek.id, context)),
                &mut wrapped,
            )
            .map_err(|_| wrong())?;
        let dek = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, data_key).map_err(|_| wrong())?);
        let mut body = Zeroizing::new(parts.body.to_vec());
        let plain = dek
            .open_in_place(Nonce::assume_unique_for_key(parts.data_nonce), Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| wrong())?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

/// Whether `value` is sealed (else it is plaintext from before sealing).
pub fn is_sealed(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

/// The id of the key that sealed `value`.
pub fn sealed_with(value: &[u8]) -> Result<&str, SealError> {
    Ok(parse(value)?.kek_id)
}

fn wrap_aad(kek_id: &str, context: &str) -> Vec<u8> {
    format!("pkiplane data key|{kek_id}|{context}").into_bytes()
}

struct Parts<'a> {
    kek_id: &'a str,
    kek_nonce: [u8; NONCE_LEN],
    wrapped: &'a [u8],
    data_nonce: [u8; NONCE_LEN],
    body: &'a [u8],
}

fn parse(value: &[u8]) -> Result<Parts<'_>, SealError> {
    let rest = value.strip_prefix(MAGIC.as_slice()).ok_or(SealError::NotSealed)?;
    let (&id_len, rest) = rest.split_first().ok_or(SealError::Malformed("truncated"))?;
    let id_len = usize::from(id_len);
    let wrapped_len = KEY_LEN + TAG_LEN;
    if rest.len() < id_len + 2 * NONCE_LEN + wrapped_len + TAG_LEN {
        return Err(SealError::Malformed("truncated"));
    }
    let (id, rest) = rest.split_at(id_len);
    let kek_id = std::str::from_utf8(id).map_err(|_| SealError::Malformed("key id"))?;
    let (kek_nonce, rest) = rest.split_at(NONCE_LEN);
    let (wrapped, rest) = rest.split_at(wrapped_len);
    let (data_nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = |b: &[u8]| <[u8; NONCE_LEN]>::try_from(b).map_err(|_| SealError::Malformed("nonce"));
    Ok(Parts { kek_id, kek_nonce: nonce(kek_nonce)?, wrapped, data_nonce: nonce(data_nonce)?, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &[(&str, u8)]) -> KeyEncryptionKeys {
        KeyEncryptionKeys::new(spec.iter().map(|(id, b)| (id.to_string(), Zeroizing::new(vec![*b; 32]))).collect())
            .unwrap()
    }

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_row() {
        let keys = ring(&[("k1", 1)]);
        let secret = b"\x30\x81\x87 a PKCS#8 key";
        let sealed = keys.seal(secret, "ca_material|pki/root").unwrap();
        assert!(is_sealed(&sealed) && !is_sealed(secret));
        assert_eq!(sealed_with(&sealed).unwrap(), "k1");
        assert!(!sealed.windows(secret.len()).any(|w| w == secret), "plaintext visible in the sealed value");
        assert_eq!(keys.open(&sealed, "ca_material|pki/root").unwrap().as_slice(), secret);
        // Another row, another key under the same id, a missing id, altered bytes.
        assert_eq!(keys.open(&sealed, "ca_material|pki/other"), Err(SealError::WrongKeyOrTampered("k1".into())));
        assert_eq!(
            ring(&[("k1", 9)]).open(&sealed, "ca_material|pki/root"),
            Err(SealError::WrongKeyOrTampered("k1".into()))
        );
        assert_eq!(ring(&[("k2", 1)]).open(&sealed, "ca_material|pki/root"), Err(SealError::MissingKey("k1".into())));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open(&altered, "ca_material|pki/root"), Err(SealError::WrongKeyOrTampered("k1".into())));
        assert_eq!(keys.open(secret, "x"), Err(SealError::NotSealed));
        assert!(matches!(keys.open(&sealed[..20], "x"), Err(SealError::Malformed(_))));
        // Two seals of the same key differ (fresh data key and nonces).
        assert_ne!(keys.seal(secret, "c").unwrap(), keys.seal(secret, "c").unwrap());
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = ring(&[("k1", 1)]);
        let sealed_old = old.seal(b"old", "c").unwrap();
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert_eq!(rotated.active_id(), "k2");
        assert_eq!(rotated.open(&sealed_old, "c").unwrap().as_slice(), b"old");
        assert_eq!(sealed_with(&rotated.seal(b"new", "c").unwrap()).unwrap(), "k2");
    }

    #[test]
    fn key_files_parse_strictly_and_debug_shows_no_key() {
        let text = "# rotated 2026-12\nk2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n\nk1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n";
        let keys = KeyEncryptionKeys::parse(text).unwrap();
        assert_eq!(keys.active_id(), "k2");
        assert!(keys.holds("k1") && !keys.holds("k3"));
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1") && debug.contains("<redacted>") && !debug.contains("AQEB"), "{debug}");
        for bad in ["", "k1", "k1:AQID", "k 1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "k1:***"] {
            assert!(matches!(KeyEncryptionKeys::parse(bad), Err(SealError::Keyring(_))), "{bad:?}");
        }
        let twice = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\nk1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
        assert!(KeyEncryptionKeys::parse(twice).unwrap_err().to_string().contains("twice"));
    }
}
