//! Proof of possession for CRMF requests (RFC 4211 section 4, RFC 9483 section 4.1.1).
//!
//! ```text
//! ProofOfPossession ::= CHOICE {
//!     raVerified        [0] NULL,
//!     signature         [1] POPOSigningKey,
//!     keyEncipherment   [2] POPOPrivKey,
//!     keyAgreement      [3] POPOPrivKey }
//! POPOSigningKey ::= SEQUENCE {
//!     poposkInput           [0] POPOSigningKeyInput OPTIONAL,
//!     algorithmIdentifier   AlgorithmIdentifier,
//!     signature             BIT STRING }
//! ```
//!
//! A signature POP without poposkInput signs the DER of the CertRequest (RFC 4211
//! section 4.1); it is checked against the template's public key. poposkInput (only
//! for templates without a subject) MUST NOT be used in the Lightweight CMP Profile and
//! is refused, as are the indirect methods for encryption and key agreement keys.
//! `raVerified` is accepted only from an authenticated registration authority.

use crmf::pop::ProofOfPossession;

use crate::error::CmpError;
use crate::protection::sig::{self, SigError};
use crate::wire::FailBit;
use crate::wire::body::CertReqItem;

/// Checks the POP of `item`, whose template holds the public key `spki_der`.
pub fn verify(item: &CertReqItem, spki_der: &[u8], sender_is_ra: bool) -> Result<(), CmpError> {
    match &item.popo {
        None => Err(CmpError::bad_pop("the request carries no proof of possession (popo)")),
        Some(ProofOfPossession::RaVerified(_)) if sender_is_ra => Ok(()),
        Some(ProofOfPossession::RaVerified(_)) => Err(CmpError::bad_pop(
            "raVerified proof of possession is accepted only from a registration authority (cmcRA certificate)",
        )),
        Some(ProofOfPossession::Signature(pk)) => {
            if pk.poposk_input.is_some() {
                return Err(CmpError::bad_pop(
                    "POPOSigningKey with poposkInput is not supported (RFC 9483 section 4.1.1); sign the CertRequest",
                ));
            }
            let signature =
                pk.signature.as_bytes().ok_or_else(|| CmpError::bad_pop("the POP signature has unused bits"))?;
            match sig::verify(&pk.alg_id, spki_der, &item.cert_req_der, signature) {
                Ok(()) => Ok(()),
                Err(SigError::Invalid) => {
                    Err(CmpError::bad_pop("the POP signature does not verify with the template's public key"))
                }
                Err(SigError::Unsupported(m)) => Err(CmpError::new(FailBit::BadAlg, format!("POP: {m}")))
                    .map_err(|e| CmpError { fail: e.fail.with(FailBit::BadPop), ..e }),
                Err(SigError::BadKey(m)) => Err(CmpError::bad_cert_template(format!("template public key: {m}"))),
            }
        }
        Some(ProofOfPossession::KeyEncipherment(_) | ProofOfPossession::KeyAgreement(_)) => Err(CmpError::bad_pop(
            "indirect proof of possession (keyEncipherment, keyAgreement) is not supported: pkiplane certifies signing keys",
        )),
    }
}
