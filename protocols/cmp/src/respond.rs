//! Building response messages: header (RFC 9810 section 5.1.1, RFC 9483 section 3.1),
//! body, protection and extraCerts.
//!
//! Responses are protected the way the request was: with the requester's shared secret
//! (fresh salt, same algorithms) after MAC-based protection, otherwise signed with the
//! endpoint's CMP protection certificate, which heads extraCerts followed by its chain
//! (RFC 9483 section 3.3). A request that could not be authenticated gets a signed
//! error message.

use std::sync::Arc;
use std::time::SystemTime;

use cmpv2::r#gen::InfoTypeAndValue;
use ring::rand::{SecureRandom, SystemRandom};
use x509_cert02::ext::pkix::name::GeneralName;

use crate::convert;
use crate::credential::CmpCredential;
use crate::error::CmpError;
use crate::protection::mac::MacProtection;
use crate::settings::SharedSecret;
use crate::wire::body::ResponseBody;
use crate::wire::message::{self, Header, OutHeader};
use crate::wire::status::{ErrorMsg, StatusInfo};

/// How a response is protected.
#[derive(Clone, Debug)]
pub enum Protect {
    Mac {
        kid: String,
        secret: SharedSecret,
        mac: MacProtection,
    },
    Sign(Arc<CmpCredential>),
    /// Only when no credential exists at all (a misconfigured endpoint).
    None,
}

/// A response before it is encoded.
#[derive(Clone, Debug)]
pub struct Reply {
    pub body: ResponseBody,
    pub general_info: Vec<InfoTypeAndValue>,
    /// Certificates for extraCerts beyond the protection chain (e.g. the chain of an
    /// issued certificate).
    pub extra_certs: Vec<Vec<u8>>,
}

impl Reply {
    pub fn new(body: ResponseBody) -> Self {
        Self { body, general_info: Vec::new(), extra_certs: Vec::new() }
    }

    /// An error message body (RFC 9810 section 5.3.21).
    pub fn error(e: &CmpError) -> Self {
        let status = StatusInfo::rejection(e.fail, e.text.clone()).unwrap_or_else(|_| StatusInfo::accepted());
        Self::new(ResponseBody::Error(ErrorMsg { status_info: status, error_code: None, error_details: None }))
    }
}

/// A fresh 128-bit nonce.
pub fn nonce() -> Vec<u8> {
    let mut n = vec![0u8; 16];
    if SystemRandom::new().fill(&mut n).is_err() {
        std::process::abort();
    }
    n
}

/// Everything the response header takes from the exchange.
pub struct Envelope<'a> {
    pub request: Option<&'a Header>,
    pub pvno: u8,
    pub sender: GeneralName,
    pub sender_nonce: Vec<u8>,
    pub now: SystemTime,
}

/// Encodes and protects a response.
pub fn encode(env: Envelope<'_>, protect: &Protect, reply: Reply) -> Result<Vec<u8>, der::Error> {
    let req = env.request;
    let (protection_alg, sender_kid, mac) = match protect {
        Protect::Mac { kid, mac, .. } => {
            let fresh = mac.fresh();
            (Some(fresh.algorithm_identifier()?), Some(kid.as_bytes().to_vec()), Some(fresh))
        }
        Protect::Sign(c) => (
            Some(
                convert::to_old("signature algorithm", &c.signer.signature_algorithm().algorithm_identifier())
                    .map_err(|_| der::ErrorKind::Failed)?,
            ),
            (!c.key_id.is_empty()).then(|| c.key_id.clone()),
            None,
        ),
        Protect::None => (None, None, None),
    };
    let header = OutHeader {
        pvno: env.pvno,
        sender: env.sender,
        recipient: req.map(|h| h.sender.clone()).unwrap_or_else(convert::null_dn),
        message_time: env.now,
        protection_alg,
        sender_kid,
        transaction_id: req.and_then(|h| h.transaction_id.clone()),
        sender_nonce: env.sender_nonce,
        recip_nonce: req.and_then(|h| h.sender_nonce.clone()),
        free_text: Vec::new(),
        general_info: reply.general_info,
    };
    let header_der = message::encode_header(&header)?;
    let body_der = message::encode_body(reply.body.tag(), &reply.body.content_der()?)?;
    let protected = message::protected_part(&header_der, &body_der)?;
    let mut extra = Vec::new();
    let protection = match (protect, &mac) {
        (Protect::Mac { secret, .. }, Some(m)) => Some(m.compute(&secret.0, &protected)),
        (Protect::Sign(c), _) => {
            extra.extend(c.extra_certs());
            Some(c.signer.sign(&protected).map_err(|_| der::ErrorKind::Failed)?)
        }
        _ => None,
    };
    for c in reply.extra_certs {
        if !extra.contains(&c) {
            extra.push(c);
        }
    }
    message::encode_message(&header_der, &body_der, protection.as_deref(), &extra)
}
