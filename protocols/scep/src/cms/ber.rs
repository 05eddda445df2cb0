//! The one BER form SCEP peers built on Go's `pkcs7` package send that the `der` crate
//! does not read: an EnvelopedData whose `encryptedContent` is a *constructed* `[0]` of
//! definite length, the ciphertext split into OCTET STRING segments (X.690 section
//! 8.7.3.2; `der` reassembles constructed strings only of indefinite length). Debian's
//! `scep` 2.1.0 client sends its PKCSReq so, and micromdm's scepserver its CertReps.
//!
//! ```text
//! EnvelopedData ::= SEQUENCE {                      -- RFC 5652 section 6.1
//!   version CMSVersion,
//!   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//!   recipientInfos RecipientInfos,                  -- SET OF
//!   encryptedContentInfo EncryptedContentInfo,
//!   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
//!
//! EncryptedContentInfo ::= SEQUENCE {
//!   contentType ContentType,
//!   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
//!   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }  -- OCTET STRING
//! ```
//!
//! [`primitive_encrypted_content`] rewrites just that field into its DER form (one
//! primitive `[0]` holding the concatenated segments), element by element with the
//! `der` crate's own TLV reading; everything else is copied unchanged.

use der::{AnyRef, Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};

const ENCRYPTED_CONTENT: TagNumber = TagNumber(0);

/// The EnvelopedData `der` with a constructed `encryptedContent` made primitive; None
/// when it has no such field (nothing to rewrite) or is not an EnvelopedData.
pub fn primitive_encrypted_content(enveloped: &[u8]) -> der::Result<Option<Vec<u8>>> {
    let outer = AnyRef::from_der(enveloped)?;
    if outer.tag() != Tag::Sequence {
        return Ok(None);
    }
    let mut elements = Vec::new();
    let mut rewritten = false;
    let mut after_recipients = false;
    for element in elements_of(outer.value())? {
        // The encryptedContentInfo is the SEQUENCE right after the recipientInfos SET.
        if after_recipients && element.tag() == Tag::Sequence && !rewritten {
            match flatten_info(element)? {
                Some(info) => {
                    elements.push(info);
                    rewritten = true;
                    continue;
                }
                None => return Ok(None),
            }
        }
        after_recipients = element.tag() == Tag::Set;
        elements.push(element.to_der()?);
    }
    if !rewritten {
        return Ok(None);
    }
    Ok(Some(AnyRef::new(Tag::Sequence, &elements.concat())?.to_der()?))
}

/// The elements (TLVs) of a constructed value's contents.
fn elements_of(contents: &[u8]) -> der::Result<Vec<AnyRef<'_>>> {
    let mut reader = SliceReader::new(contents)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.decode()?);
    }
    Ok(out)
}

/// The EncryptedContentInfo with a primitive `[0]`; None when it is primitive already.
fn flatten_info(info: AnyRef<'_>) -> der::Result<Option<Vec<u8>>> {
    let mut parts = Vec::new();
    let mut flattened = false;
    for element in elements_of(info.value())? {
        match element.tag() {
            Tag::ContextSpecific { constructed: true, number } if number == ENCRYPTED_CONTENT => {
                let ciphertext = segments(element.value())?;
                let primitive = Tag::ContextSpecific { constructed: false, number: ENCRYPTED_CONTENT };
                parts.push(AnyRef::new(primitive, &ciphertext)?.to_der()?);
                flattened = true;
            }
            _ => parts.push(element.to_der()?),
        }
    }
    if !flattened {
        return Ok(None);
    }
    Ok(Some(AnyRef::new(Tag::Sequence, &parts.concat())?.to_der()?))
}

/// The concatenated contents of the primitive OCTET STRING segments in `contents`.
/// Nested constructed segments (allowed by X.690, sent by no SCEP peer seen) are refused.
fn segments(contents: &[u8]) -> der::Result<Vec<u8>> {
    let mut out = Vec::new();
    for segment in elements_of(contents)? {
        if segment.tag() != Tag::OctetString {
            return Err(
                der::ErrorKind::TagUnexpected { expected: Some(Tag::OctetString), actual: segment.tag() }.into()
            );
        }
        out.extend_from_slice(segment.value());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLV with a short-form length.
    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        assert!(value.len() < 128);
        [vec![tag, value.len() as u8], value.to_vec()].concat()
    }

    fn enveloped(encrypted_content: Vec<u8>) -> Vec<u8> {
        let version = tlv(0x02, &[0]);
        let recipients = tlv(0x31, &tlv(0x30, &tlv(0x02, &[2])));
        let oid_data = tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
        let alg = tlv(0x30, &tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x07]));
        let info = tlv(0x30, &[oid_data, alg, encrypted_content].concat());
        tlv(0x30, &[version, recipients, info].concat())
    }

    #[test]
    fn constructed_segments_become_one_primitive_field() {
        let ber = enveloped(tlv(0xa0, &[tlv(0x04, b"abc"), tlv(0x04, b"defg")].concat()));
        let der = enveloped(tlv(0x80, b"abcdefg"));
        assert_eq!(primitive_encrypted_content(&ber).unwrap(), Some(der.clone()));
        // Already DER: nothing to rewrite.
        assert_eq!(primitive_encrypted_content(&der).unwrap(), None);
    }

    #[test]
    fn segments_other_than_primitive_octet_strings_are_refused() {
        let foreign = tlv(0xa0, &tlv(0x02, &[1]));
        assert!(primitive_encrypted_content(&enveloped(foreign)).is_err());
        let nested = tlv(0xa0, &tlv(0x24, &tlv(0x04, b"ab")));
        assert!(primitive_encrypted_content(&enveloped(nested)).is_err());
    }

    #[test]
    fn not_an_enveloped_data_is_left_alone() {
        assert_eq!(primitive_encrypted_content(&tlv(0x04, b"x")).unwrap(), None);
        assert!(primitive_encrypted_content(b"\x30\x05\x02").is_err());
    }
}
