//! The CMS (RFC 5652) layer of SCEP, on the RustCrypto `cms` crate's types:
//! [`incoming`] reads and verifies a client's SignedData, [`envelope`] opens and builds
//! EnvelopedData, [`outgoing`] builds the RA-signed CertRep and degenerate certs-only
//! structures.

pub mod ber;
pub mod envelope;
pub mod incoming;
pub mod outgoing;

use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, EncodingRules, Reader, SliceReader, Tag, Tagged};
use x509_cert::attr::Attributes;

use crate::error::ScepError;

/// The first value of attribute `oid`.
pub fn attribute<'a>(attrs: &'a Attributes, oid: &ObjectIdentifier) -> Option<&'a Any> {
    attrs.iter().find(|a| a.oid == *oid).and_then(|a| a.values.iter().next())
}

/// The text of a PrintableString (or, leniently, UTF8String / IA5String) value.
pub fn printable_text(any: &Any) -> Option<String> {
    match any.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => String::from_utf8(any.value().to_vec()).ok(),
        _ => None,
    }
}

/// Decodes DER, falling back to BER (indefinite lengths, constructed strings), which
/// some SCEP clients send.
pub fn decode_ber_or_der<'a, T>(bytes: &'a [u8]) -> Result<T, ScepError>
where
    T: Decode<'a, Error = der::Error>,
{
    match T::from_der(bytes) {
        Ok(v) => Ok(v),
        Err(der_err) => {
            let ber = || -> der::Result<T> {
                let mut reader = SliceReader::new_with_encoding_rules(bytes, EncodingRules::Ber)?;
                let value = T::decode(&mut reader)?;
                reader.finish()?;
                Ok(value)
            };
            ber().map_err(|_| ScepError::Malformed(der_err.to_string()))
        }
    }
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, ScepError> {
    use ring::rand::SecureRandom;
    let mut out = vec![0u8; len];
    ring::rand::SystemRandom::new().fill(&mut out).map_err(|_| ScepError::Internal("the OS RNG failed".into()))?;
    Ok(out)
}
