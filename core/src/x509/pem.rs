//! PEM (RFC 7468) reading and writing, with clear errors for the wrong label.

use der::pem::LineEnding;

/// Largest PEM or DER input accepted anywhere in the core (1 MiB): requests and
/// manifests are far smaller, and a bound keeps garbage from costing memory.
pub const MAX_INPUT: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("input is {0} bytes, larger than the {MAX_INPUT}-byte limit")]
    TooLarge(usize),
    #[error("no PEM block found (expected `-----BEGIN {0}-----`)")]
    Missing(&'static str),
    #[error("PEM block is labelled `{found}`, expected `{expected}`")]
    WrongLabel { expected: &'static str, found: String },
    #[error("malformed PEM: {0}")]
    Malformed(String),
}

/// One decoded PEM block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// All PEM blocks in `input`, in order (text outside blocks is ignored).
pub fn decode_all(input: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    if input.len() > MAX_INPUT {
        return Err(PemError::TooLarge(input.len()));
    }
    let text = std::str::from_utf8(input).map_err(|_| PemError::Malformed("not UTF-8 text".into()))?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let label_end =
            after[11..].find("-----").ok_or_else(|| PemError::Malformed("unterminated BEGIN line".into()))? + 11;
        let label = &after[11..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after.find(&end_marker).ok_or_else(|| PemError::Malformed(format!("no END line for {label}")))?;
        let block = &after[..end + end_marker.len()];
        let (found, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| PemError::Malformed(format!("{label}: {e}")))?;
        blocks.push(PemBlock { label: found.to_string(), der });
        rest = &after[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// The single block labelled `label` (the first one if there are several).
pub fn decode_one(input: &[u8], label: &'static str) -> Result<Vec<u8>, PemError> {
    let blocks = decode_all(input)?;
    let first = blocks.into_iter().next().ok_or(PemError::Missing(label))?;
    if first.label != label {
        return Err(PemError::WrongLabel { expected: label, found: first.label });
    }
    Ok(first.der)
}

/// Every block, all of which must be labelled `label` (a certificate chain).
pub fn decode_chain(input: &[u8], label: &'static str) -> Result<Vec<Vec<u8>>, PemError> {
    let mut out = Vec::new();
    for b in decode_all(input)? {
        if b.label != label {
            return Err(PemError::WrongLabel { expected: label, found: b.label });
        }
        out.push(b.der);
    }
    Ok(out)
}

/// PEM text for `der` with `label`, LF line endings.
pub fn encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, LineEnding::LF, der).unwrap_or_default()
}

/// Accepts either PEM with `label` or raw DER.
pub fn pem_or_der(input: &[u8], label: &'static str) -> Result<Vec<u8>, PemError> {
    if input.len() > MAX_INPUT {
        return Err(PemError::TooLarge(input.len()));
    }
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    decode_one(input, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_labels() {
        let pem = encode("CERTIFICATE", &[0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(decode_one(pem.as_bytes(), "CERTIFICATE").unwrap(), vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert!(matches!(decode_one(pem.as_bytes(), "CERTIFICATE REQUEST"), Err(PemError::WrongLabel { .. })));
        assert_eq!(decode_one(b"hello", "CERTIFICATE"), Err(PemError::Missing("CERTIFICATE")));
        let two = format!("{pem}junk\n{pem}");
        assert_eq!(decode_chain(two.as_bytes(), "CERTIFICATE").unwrap().len(), 2);
    }

    #[test]
    fn limits_and_garbage() {
        assert!(matches!(decode_all(&vec![b'a'; MAX_INPUT + 1]), Err(PemError::TooLarge(_))));
        assert!(decode_all(b"-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
        assert!(decode_all(b"-----BEGIN X-----\nAAAA\n").is_err());
        assert!(decode_all(&[0xff, 0xfe]).is_err());
    }
}
