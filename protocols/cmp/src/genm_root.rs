//! Root CA key update (RFC 9810 section 5.3.19.15, RFC 9483 section 4.3.2): the answer to
//! a genm `id-it-rootCaCert` while the root above the profile's Issuer has a staged next
//! key (core `issuer::rollover`).
//!
//! ```text
//! RootCaKeyUpdateContent ::= SEQUENCE {
//!    newWithNew       CMPCertificate,
//!    newWithOld   [0] CMPCertificate OPTIONAL,
//!    oldWithNew   [1] CMPCertificate OPTIONAL
//! }
//! ```
//!
//! (The CMP ASN.1 module is `EXPLICIT TAGS`.) With no rollover staged the value is absent,
//! which RFC 9483 section 4.3.2 prescribes for "no update available".

use std::sync::Arc;

use der::Sequence;
use der::asn1::Any;
use pkiplane_core::issuer::IssuerInfo;
use pkiplane_core::service::Authority;

use crate::convert::old_from_der;
use crate::error::CmpError;

/// `RootCaKeyUpdateContent` (see the module documentation).
#[derive(Sequence)]
pub struct RootCaKeyUpdateContent {
    pub new_with_new: x509_cert02::Certificate,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub new_with_old: Option<x509_cert02::Certificate>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub old_with_new: Option<x509_cert02::Certificate>,
}

/// The root Issuer above (or equal to) `issuer`, following `parent` links (bounded, so a
/// malformed snapshot cannot loop).
fn root_of(ca: &Arc<dyn Authority>, issuer: Arc<IssuerInfo>) -> Arc<IssuerInfo> {
    let mut current = issuer;
    for _ in 0..16 {
        match current.parent.as_ref().and_then(|p| ca.issuer(p)) {
            Some(parent) => current = parent,
            None => break,
        }
    }
    current
}

/// The rootCaKeyUpdate value for `issuer`'s root: `Some` while a next root is staged.
pub fn root_ca_key_update(ca: &Arc<dyn Authority>, issuer: Arc<IssuerInfo>) -> Result<Option<Any>, CmpError> {
    let root = root_of(ca, issuer);
    // Only a self-signed root with its link certificates is a root key update.
    let Some(next) = root.next.as_ref().filter(|n| n.new_with_old.is_some()) else {
        return Ok(None);
    };
    let cert = |d: &[u8]| old_from_der::<x509_cert02::Certificate>("certificate", d);
    let content = RootCaKeyUpdateContent {
        new_with_new: cert(&next.cert.der)?,
        new_with_old: next.new_with_old.as_ref().map(|c| cert(&c.der)).transpose()?,
        old_with_new: next.old_with_new.as_ref().map(|c| cert(&c.der)).transpose()?,
    };
    Ok(Some(Any::encode_from(&content)?))
}

/// The three certificates (DER) of a `RootCaKeyUpdateContent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootCaKeyUpdateDer {
    pub new_with_new: Vec<u8>,
    pub new_with_old: Option<Vec<u8>>,
    pub old_with_new: Option<Vec<u8>>,
}

/// Reads the rootCaKeyUpdate of a genp PKIMessage (as `openssl cmp -rspout` saves it):
/// `Ok(None)` when the genp has the ITAV without a value ("no update"); an error when
/// the message is not a genp with a rootCaKeyUpdate ITAV. For tests and tools.
pub fn root_ca_key_update_of_genp(message_der: &[u8]) -> Result<Option<RootCaKeyUpdateDer>, String> {
    use der::{Decode, Encode};

    use crate::wire::body::{ResponseBody, decode_response};
    let msg = crate::wire::message::decode(message_der).map_err(|e| e.to_string())?;
    let ResponseBody::Genp(itavs) = decode_response(msg.body_tag, &msg.body).map_err(|e| e.to_string())? else {
        return Err("not a genp".into());
    };
    let itav = itavs
        .iter()
        .find(|i| i.oid == crate::wire::oids::IT_ROOT_CA_KEY_UPDATE)
        .ok_or("the genp has no id-it-rootCaKeyUpdate")?;
    let Some(value) = &itav.value else { return Ok(None) };
    let content = RootCaKeyUpdateContent::from_der(&value.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("RootCaKeyUpdateContent: {e}"))?;
    let der = |c: &x509_cert02::Certificate| c.to_der().map_err(|e| e.to_string());
    Ok(Some(RootCaKeyUpdateDer {
        new_with_new: der(&content.new_with_new)?,
        new_with_old: content.new_with_old.as_ref().map(der).transpose()?,
        old_with_new: content.old_with_new.as_ref().map(der).transpose()?,
    }))
}
