//! PKCS#10 certificate requests (RFC 2986): decoding with bounded input, proof of
//! possession (the request's self-signature, checked with `ring`), and the parts the
//! policy engine judges.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_RSASSA_PSS, ID_SHA_256, ID_SHA_384, ID_SHA_512,
    SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::{Decode, Encode, Sequence};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::RdnSequence;
use x509_cert::request::CertReq;
use zeroize::Zeroizing;

use super::cert::Signed;
use super::names::{NameAttribute, attribute_value_text, name_attributes};
use super::pem::{MAX_INPUT, PemError, pem_or_der};
use super::{San, extensions::SUBJECT_ALT_NAME_OID};
use crate::keys::algorithm::ID_ED25519;
use crate::keys::{Curve, PublicKeyInfo};

/// PKCS#9 extensionRequest (RFC 2985 section 5.4.2).
pub const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
/// Microsoft's older extension request attribute, still sent by some Windows/SCEP clients.
pub const MS_EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.14");
/// PKCS#9 challengePassword (RFC 2985 section 5.4.1).
pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// Why a CSR could not be accepted as a well-formed, self-signed request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("CSR is {0} bytes, larger than the {MAX_INPUT}-byte limit")]
    TooLarge(usize),
    #[error("CSR PEM: {0}")]
    Pem(#[from] PemError),
    #[error("CSR is not valid DER: {0}")]
    Der(String),
    #[error("CSR signature algorithm {0} is not supported")]
    UnsupportedSignatureAlgorithm(String),
    #[error("CSR is signed with {0}, which is too weak for proof of possession")]
    WeakSignatureAlgorithm(String),
    #[error("CSR key ({0}) cannot be verified")]
    UnsupportedKey(String),
    #[error("CSR signature does not verify: the requester did not prove possession of the private key")]
    BadSignature,
    #[error("CSR requests extension {0} more than once")]
    DuplicateExtension(String),
    #[error("CSR extension {0} is malformed: {1}")]
    MalformedExtension(String, String),
    #[error("CSR subject: {0}")]
    BadSubject(String),
}

/// Verification options for CSRs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CsrOptions {
    /// Accept SHA-1 signatures (only for legacy SCEP gear, when an endpoint opts in).
    pub allow_sha1: bool,
}

/// A CSR whose signature has been verified.
#[derive(Clone)]
pub struct ParsedCsr {
    pub der: Vec<u8>,
    pub subject: RdnSequence,
    pub subject_attributes: Vec<NameAttribute>,
    pub spki: SubjectPublicKeyInfoOwned,
    pub spki_der: Vec<u8>,
    pub key: PublicKeyInfo,
    /// SANs from the extensionRequest.
    pub sans: Vec<San>,
    /// SAN forms pkiplane does not issue (otherName, directoryName, ...), described.
    pub unsupported_sans: Vec<String>,
    /// Every other requested extension.
    pub extensions: Vec<Extension>,
    pub challenge_password: Option<Zeroizing<String>>,
    pub signature_algorithm: ObjectIdentifier,
}

impl std::fmt::Debug for ParsedCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCsr")
            .field("subject", &super::names::format_dn(&self.subject))
            .field("key", &self.key)
            .field("sans", &self.sans)
            .field("extensions", &self.extensions.iter().map(|e| e.extn_id.to_string()).collect::<Vec<_>>())
            .field("challenge_password", &self.challenge_password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ParsedCsr {
    /// Parses PEM (`CERTIFICATE REQUEST`, or the older `NEW CERTIFICATE REQUEST`) or DER.
    pub fn from_pem_or_der(input: &[u8], opts: CsrOptions) -> Result<Self, CsrError> {
        if input.len() > MAX_INPUT {
            return Err(CsrError::TooLarge(input.len()));
        }
        let der = match pem_or_der(input, "CERTIFICATE REQUEST") {
            Err(PemError::WrongLabel { found, .. }) if found == "NEW CERTIFICATE REQUEST" => {
                super::pem::decode_all(input)?.remove(0).der
            }
            other => other?,
        };
        Self::from_der(&der, opts)
    }

    /// Parses DER and verifies the self-signature.
    pub fn from_der(der: &[u8], opts: CsrOptions) -> Result<Self, CsrError> {
        Self::parse(der, Some(opts))
    }

    /// Parses a request this process verified on receipt and stored without its
    /// challengePassword ([`ParsedCsr::without_challenge_password`]): the signature, which
    /// covered the removed attribute, is not checked again (an approval path issuing a
    /// stored request relies on the proof of possession made when it arrived).
    pub fn from_stored_der(der: &[u8]) -> Result<Self, CsrError> {
        Self::parse(der, None)
    }

    /// A request of `subject` for the key `spki` (also as DER, and as the policy sees it),
    /// with no SANs, extensions or challenge yet: the start of a request read from
    /// another format (a CMP CertTemplate). Fails when the subject is not accepted.
    pub fn from_parts(
        der: Vec<u8>,
        subject: RdnSequence,
        spki: SubjectPublicKeyInfoOwned,
        spki_der: Vec<u8>,
        key: PublicKeyInfo,
        signature_algorithm: ObjectIdentifier,
    ) -> Result<Self, String> {
        Ok(ParsedCsr {
            der,
            subject_attributes: name_attributes(&subject)?,
            subject,
            spki,
            spki_der,
            key,
            sans: Vec::new(),
            unsupported_sans: Vec::new(),
            extensions: Vec::new(),
            challenge_password: None,
            signature_algorithm,
        })
    }

    fn parse(der: &[u8], verify: Option<CsrOptions>) -> Result<Self, CsrError> {
        if der.len() > MAX_INPUT {
            return Err(CsrError::TooLarge(der.len()));
        }
        let req = CertReq::from_der(der).map_err(|e| CsrError::Der(e.to_string()))?;
        // The signature covers the requester's own encoding of certificationRequestInfo.
        // Re-encoding the decoded value would sort SET OF attributes into DER order, and
        // clients that emit them unsorted (Go's x509, hence many SCEP clients) would fail
        // proof of possession: verify over the bytes as received.
        let signed = Signed::from_der(der).map_err(|e| CsrError::Der(e.to_string()))?;
        let info_der = signed.tbs.to_der().map_err(|e| CsrError::Der(e.to_string()))?;
        let spki_der = req.info.public_key.to_der().map_err(|e| CsrError::Der(e.to_string()))?;
        let spki_ref = SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(|e| CsrError::Der(e.to_string()))?;
        let key = PublicKeyInfo::from_spki(&spki_ref);
        let signature = req.signature.as_bytes().ok_or_else(|| CsrError::Der("signature has unused bits".into()))?;
        if let Some(opts) = verify {
            verify_signature(&req.algorithm, &key, &req.info.public_key, &info_der, signature, opts)?;
        }

        let subject: RdnSequence = req.info.subject.clone().into();
        let mut parsed =
            Self::from_parts(der.to_vec(), subject, req.info.public_key.clone(), spki_der, key, req.algorithm.oid)
                .map_err(CsrError::BadSubject)?;
        for attr in req.info.attributes.iter() {
            if attr.oid == EXTENSION_REQUEST || attr.oid == MS_EXTENSION_REQUEST {
                for value in attr.values.iter() {
                    let exts: Vec<Extension> = value.decode_as::<Vec<Extension>>().map_err(|e: der::Error| {
                        CsrError::MalformedExtension("extensionRequest".into(), e.to_string())
                    })?;
                    for ext in exts {
                        parsed.add_extension(ext)?;
                    }
                }
            } else if attr.oid == CHALLENGE_PASSWORD
                && let Some(v) = attr.values.iter().next()
            {
                parsed.challenge_password = attribute_value_text(v).map(Zeroizing::new);
            }
        }
        Ok(parsed)
    }

    fn add_extension(&mut self, ext: Extension) -> Result<(), CsrError> {
        let seen = ext.extn_id == SUBJECT_ALT_NAME_OID && (!self.sans.is_empty() || !self.unsupported_sans.is_empty())
            || self.extensions.iter().any(|e| e.extn_id == ext.extn_id);
        if seen {
            return Err(CsrError::DuplicateExtension(super::extensions::extension_name(&ext.extn_id)));
        }
        if ext.extn_id == SUBJECT_ALT_NAME_OID {
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| CsrError::MalformedExtension("subjectAltName".into(), e.to_string()))?;
            for gn in &san.0 {
                match San::from_general_name(gn) {
                    Ok(s) => self.sans.push(s),
                    Err(what) => self.unsupported_sans.push(what),
                }
            }
            return Ok(());
        }
        self.extensions.push(ext);
        Ok(())
    }

    /// The request as the CA keeps it for later (an approval record): the PKCS#10 request
    /// without its challengePassword; for a request that arrived in another form (a CMP
    /// certTemplate) an unsigned PKCS#10 of what it asks for (subject, key, SANs,
    /// extensions), which [`ParsedCsr::from_stored_der`] reads back the same way.
    pub fn to_stored_der(&self) -> Result<Vec<u8>, CsrError> {
        if CertReq::from_der(&self.der).is_ok() {
            return self.without_challenge_password();
        }
        let der_err = |e: der::Error| CsrError::Der(e.to_string());
        let mut extensions = self.extensions.clone();
        if !self.sans.is_empty() {
            extensions
                .insert(0, super::extensions::subject_alt_name(&self.sans, self.subject.is_empty()).map_err(der_err)?);
        }
        let mut attributes = x509_cert::attr::Attributes::new();
        if !extensions.is_empty() {
            let value = der::Any::encode_from(&extensions).map_err(der_err)?;
            let values = der::asn1::SetOfVec::try_from(vec![value]).map_err(der_err)?;
            attributes.insert(x509_cert::attr::Attribute { oid: EXTENSION_REQUEST, values }).map_err(der_err)?;
        }
        let req = CertReq {
            info: x509_cert::request::CertReqInfo {
                version: x509_cert::request::Version::V1,
                subject: x509_cert::name::Name::from_der(&self.subject.to_der().map_err(der_err)?).map_err(der_err)?,
                public_key: self.spki.clone(),
                attributes,
            },
            algorithm: AlgorithmIdentifierOwned { oid: self.signature_algorithm, parameters: None },
            signature: der::asn1::BitString::new(0, Vec::new()).map_err(der_err)?,
        };
        req.to_der().map_err(der_err)
    }

    /// The public key as PEM, for display.
    pub fn public_key_pem(&self) -> String {
        super::pem::encode("PUBLIC KEY", &self.spki_der)
    }

    /// This request without its challengePassword attribute, for keeping: a request
    /// stored after it was verified must not keep the secret that authorised it. The
    /// attributes are signed, so the result's signature no longer verifies; read it with
    /// [`ParsedCsr::from_stored_der`] or [`stored_request_key`], not [`ParsedCsr::from_der`].
    pub fn without_challenge_password(&self) -> Result<Vec<u8>, CsrError> {
        without_challenge_password(&self.der)
    }
}

/// `der` (a PKCS#10 request) with every challengePassword attribute removed.
pub fn without_challenge_password(der: &[u8]) -> Result<Vec<u8>, CsrError> {
    let mut req = CertReq::from_der(der).map_err(|e| CsrError::Der(e.to_string()))?;
    let kept: Vec<_> = req.info.attributes.iter().filter(|a| a.oid != CHALLENGE_PASSWORD).cloned().collect();
    if kept.len() == req.info.attributes.len() {
        return Ok(der.to_vec());
    }
    req.info.attributes = kept.try_into().map_err(|e: der::Error| CsrError::Der(e.to_string()))?;
    req.to_der().map_err(|e| CsrError::Der(e.to_string()))
}

/// The public key (SubjectPublicKeyInfo DER) of a request stored by this process after
/// verification (its signature is not checked again).
pub fn stored_request_key(der: &[u8]) -> Result<Vec<u8>, CsrError> {
    let req = CertReq::from_der(der).map_err(|e| CsrError::Der(e.to_string()))?;
    req.info.public_key.to_der().map_err(|e| CsrError::Der(e.to_string()))
}

/// Why an RSASSA-PSS signature algorithm is not verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PssRefusal {
    /// The parameters are missing or are not RSASSA-PSS-params.
    Malformed,
    /// A hash other than SHA-256/384/512, or a salt not as long as the hash.
    Unsupported,
}

/// The verifier for RSASSA-PSS with `params_der` (RSASSA-PSS-params, RFC 4055 section
/// 3.1, DER): SHA-256/384/512 with the salt as long as the hash, which is what `ring`
/// verifies. CSRs and CMP message protection share it.
pub fn rsa_pss_verifier(params_der: Option<&[u8]>) -> Result<&'static dyn VerificationAlgorithm, PssRefusal> {
    let params = params_der.and_then(|der| PssParams::from_der(der).ok()).ok_or(PssRefusal::Malformed)?;
    match (params.hash.map(|h| h.oid), params.salt_length.unwrap_or(20)) {
        (Some(h), 32) if h == ID_SHA_256 => Ok(&signature::RSA_PSS_2048_8192_SHA256),
        (Some(h), 48) if h == ID_SHA_384 => Ok(&signature::RSA_PSS_2048_8192_SHA384),
        (Some(h), 64) if h == ID_SHA_512 => Ok(&signature::RSA_PSS_2048_8192_SHA512),
        _ => Err(PssRefusal::Unsupported),
    }
}

/// RSASSA-PSS-params (RFC 4055 section 3.1), the fields pkiplane needs.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

fn verification_algorithm(
    alg: &AlgorithmIdentifierOwned,
    key: &PublicKeyInfo,
    opts: CsrOptions,
) -> Result<&'static dyn VerificationAlgorithm, CsrError> {
    let oid = alg.oid;
    let unsupported = || CsrError::UnsupportedSignatureAlgorithm(signature_algorithm_name(&oid));
    match key {
        PublicKeyInfo::Ecdsa(curve) => match (curve, oid) {
            (Curve::P256, o) if o == ECDSA_WITH_SHA_256 => Ok(&signature::ECDSA_P256_SHA256_ASN1),
            (Curve::P256, o) if o == ECDSA_WITH_SHA_384 => Ok(&signature::ECDSA_P256_SHA384_ASN1),
            (Curve::P384, o) if o == ECDSA_WITH_SHA_256 => Ok(&signature::ECDSA_P384_SHA256_ASN1),
            (Curve::P384, o) if o == ECDSA_WITH_SHA_384 => Ok(&signature::ECDSA_P384_SHA384_ASN1),
            (Curve::P521, _) => Err(CsrError::UnsupportedKey("ECDSA P-521".into())),
            _ => Err(unsupported()),
        },
        PublicKeyInfo::Rsa { bits } => {
            if *bits < 1024 {
                return Err(CsrError::UnsupportedKey(format!("RSA {bits}")));
            }
            if oid == SHA_256_WITH_RSA_ENCRYPTION {
                Ok(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
            } else if oid == SHA_384_WITH_RSA_ENCRYPTION {
                Ok(&signature::RSA_PKCS1_2048_8192_SHA384)
            } else if oid == SHA_512_WITH_RSA_ENCRYPTION {
                Ok(&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY)
            } else if oid == SHA_1_WITH_RSA_ENCRYPTION {
                if opts.allow_sha1 {
                    Ok(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY)
                } else {
                    Err(CsrError::WeakSignatureAlgorithm("sha1WithRSAEncryption".into()))
                }
            } else if oid == ID_RSASSA_PSS {
                let params = alg.parameters.as_ref().and_then(|p| p.to_der().ok());
                rsa_pss_verifier(params.as_deref()).map_err(|refusal| match refusal {
                    PssRefusal::Malformed => CsrError::Der("RSASSA-PSS without valid parameters".into()),
                    PssRefusal::Unsupported => CsrError::UnsupportedSignatureAlgorithm(
                        "RSASSA-PSS other than SHA-256/384/512 with salt length equal to the hash length".into(),
                    ),
                })
            } else {
                Err(unsupported())
            }
        }
        PublicKeyInfo::Ed25519 if oid == ID_ED25519 => Ok(&signature::ED25519),
        PublicKeyInfo::Ed25519 => Err(unsupported()),
        PublicKeyInfo::Other(what) => Err(CsrError::UnsupportedKey(what.clone())),
    }
}

fn verify_signature(
    alg: &AlgorithmIdentifierOwned,
    key: &PublicKeyInfo,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
    opts: CsrOptions,
) -> Result<(), CsrError> {
    let verifier = verification_algorithm(alg, key, opts)?;
    let key_bytes =
        spki.subject_public_key.as_bytes().ok_or_else(|| CsrError::Der("public key has unused bits".into()))?;
    UnparsedPublicKey::new(verifier, key_bytes).verify(message, signature).map_err(|_| CsrError::BadSignature)
}

/// A readable name for a signature algorithm OID.
pub fn signature_algorithm_name(oid: &ObjectIdentifier) -> String {
    let names = [
        (ECDSA_WITH_SHA_256, "ecdsa-with-SHA256"),
        (ECDSA_WITH_SHA_384, "ecdsa-with-SHA384"),
        (ECDSA_WITH_SHA_512, "ecdsa-with-SHA512"),
        (SHA_1_WITH_RSA_ENCRYPTION, "sha1WithRSAEncryption"),
        (SHA_256_WITH_RSA_ENCRYPTION, "sha256WithRSAEncryption"),
        (SHA_384_WITH_RSA_ENCRYPTION, "sha384WithRSAEncryption"),
        (SHA_512_WITH_RSA_ENCRYPTION, "sha512WithRSAEncryption"),
        (ID_RSASSA_PSS, "RSASSA-PSS"),
        (ID_ED25519, "Ed25519"),
    ];
    names.iter().find(|(o, _)| o == oid).map(|(_, n)| n.to_string()).unwrap_or_else(|| oid.to_string())
}
