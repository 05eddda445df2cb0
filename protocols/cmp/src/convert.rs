//! Crossing between the wire types (der 0.7, x509-cert 0.2, spki 0.7, what `cmpv2` and
//! `crmf` are built on) and the workspace's (der 0.8, x509-cert 0.3, spki 0.8, what the
//! core speaks). Every crossing goes through DER bytes: encode on one side, decode on
//! the other, so nothing depends on the two versions' Rust types agreeing.

use pkiplane_core::x509::names::format_dn;
use x509_cert::name::RdnSequence;
use x509_cert02::ext::pkix::name::GeneralName;

/// A value that did not survive the crossing (malformed input, in practice).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ConvertError {
    pub what: &'static str,
    pub message: String,
}

fn err(what: &'static str) -> impl Fn(String) -> ConvertError {
    move |message| ConvertError { what, message }
}

/// der 0.7 value -> der 0.8 type.
pub fn to_new<A, B>(what: &'static str, value: &A) -> Result<B, ConvertError>
where
    A: der::Encode,
    B: for<'a> der08::Decode<'a>,
{
    let bytes = value.to_der().map_err(|e| err(what)(e.to_string()))?;
    B::from_der(&bytes).map_err(|e| err(what)(e.to_string()))
}

/// der 0.8 value -> der 0.7 type.
pub fn to_old<A, B>(what: &'static str, value: &A) -> Result<B, ConvertError>
where
    A: der08::Encode,
    B: for<'a> der::Decode<'a>,
{
    let bytes = der08::Encode::to_der(value).map_err(|e| err(what)(e.to_string()))?;
    B::from_der(&bytes).map_err(|e| err(what)(e.to_string()))
}

/// DER -> der 0.7 type.
pub fn old_from_der<B>(what: &'static str, bytes: &[u8]) -> Result<B, ConvertError>
where
    B: for<'a> der::Decode<'a>,
{
    B::from_der(bytes).map_err(|e| err(what)(e.to_string()))
}

/// A `directoryName` GeneralName for a core name.
pub fn directory_name(name: &RdnSequence) -> Result<GeneralName, ConvertError> {
    Ok(GeneralName::DirectoryName(to_old("name", name)?))
}

/// The NULL-DN sender or recipient (RFC 9810 section 5.1.1: an empty directoryName
/// when the name is not known).
pub fn null_dn() -> GeneralName {
    GeneralName::DirectoryName(x509_cert02::name::Name::default())
}

/// The core name inside a directoryName GeneralName, if it is one.
pub fn general_name_dn(name: &GeneralName) -> Option<RdnSequence> {
    match name {
        GeneralName::DirectoryName(n) => to_new("name", n).ok(),
        _ => None,
    }
}

/// A GeneralName for logs and status strings.
pub fn describe_general_name(name: &GeneralName) -> String {
    match general_name_dn(name) {
        Some(dn) if dn.is_empty() => "NULL-DN".into(),
        Some(dn) => format_dn(&dn),
        None => "a non-directoryName GeneralName".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkiplane_core::x509::names::parse_dn;

    #[test]
    fn names_cross_both_ways() {
        let dn = parse_dn("CN=device 1,O=Example").unwrap();
        let gn = directory_name(&dn).unwrap();
        assert_eq!(general_name_dn(&gn).unwrap(), dn);
        assert_eq!(describe_general_name(&null_dn()), "NULL-DN");
        let _ = der::Encode::to_der(&gn).unwrap();
        let _ = <x509_cert::name::Name as der08::Decode>::from_der(&der08::Encode::to_der(&dn).unwrap()).unwrap();
    }
}
