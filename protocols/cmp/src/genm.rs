//! General messages: genm -> genp (RFC 9810 section 5.3.19, RFC 9483 section 4.3).
//!
//! | InfoType (request)        | answer                                                   |
//! |---------------------------|----------------------------------------------------------|
//! | id-it-caCerts             | the issuing CA, its chain and root (SEQUENCE OF cert)    |
//! | id-it-rootCaCert          | id-it-rootCaKeyUpdate (see below)                        |
//! | id-it-certReqTemplate     | CertReqTemplateContent derived from the profile          |
//! | id-it-crlStatusList       | id-it-crls with the Issuer's current CRL, or absent when |
//! |                           | the client's thisUpdate is current                       |
//! | id-it-currentCRL          | the Issuer's current CRL                                 |
//! | id-it-signKeyPairTypes    | the key algorithms the profile accepts                   |
//! | anything else             | id-it-unsupportedOIDs listing it                         |
//!
//! Root CA update (RFC 9810 section 5.3.19.15, [`crate::genm_root`]): while the root
//! above the profile's Issuer has a staged next key, rootCaKeyUpdate carries newWithNew,
//! newWithOld and oldWithNew; otherwise it is returned without a value, which RFC 9483
//! section 4.3.2 prescribes for "no update".
//!
//! The answers come from the profile's Issuer: the profile named in the path, or the
//! endpoint's default.

use crate::state::{CmpTransaction, TransactionState};
use cmpv2::r#gen::InfoTypeAndValue;
use der::asn1::{Any, AnyRef, ObjectIdentifier, SetOfVec};
use der::{Decode, Encode, Sequence};
use pkiplane_core::keys::{Curve, KeyFamily};
use pkiplane_core::profile::{Presence, Profile};
use pkiplane_core::x509::extensions::{extended_key_usage, key_usage};
use pkiplane_core::x509::names::build_name;
use spki07::AlgorithmIdentifierOwned;
use x509_cert02::attr::AttributeTypeAndValue;

use crate::convert::{old_from_der, to_old};
use crate::error::CmpError;
use crate::exchange::Exchange;
use crate::respond::Reply;
use crate::wire::body::ResponseBody;
use crate::wire::oids;
use crate::wire::template::CertTemplate;

/// `CertReqTemplateContent ::= SEQUENCE { certTemplate CertTemplate, keySpec Controls OPTIONAL }`
#[derive(Sequence)]
struct CertReqTemplateContent {
    cert_template: CertTemplate,
    key_spec: Option<Vec<AttributeTypeAndValue>>,
}

/// `CRLStatus ::= SEQUENCE { source CRLSource, thisUpdate Time OPTIONAL }`
#[derive(Sequence)]
struct CrlStatus<'a> {
    source: AnyRef<'a>,
    this_update: Option<x509_cert02::time::Time>,
}

fn itav(oid: ObjectIdentifier, value: Option<Any>) -> InfoTypeAndValue {
    InfoTypeAndValue { oid, value }
}

fn ec_alg(curve: Curve) -> Result<AlgorithmIdentifierOwned, CmpError> {
    let curve_oid =
        ObjectIdentifier::from_bytes(curve.oid().as_bytes()).map_err(|e| CmpError::system_failure(e.to_string()))?;
    Ok(AlgorithmIdentifierOwned { oid: oids::EC_PUBLIC_KEY, parameters: Some(Any::encode_from(&curve_oid)?) })
}

/// The key algorithms a profile accepts, as AlgorithmIdentifiers.
fn key_algorithms(p: &Profile) -> Result<Vec<AlgorithmIdentifierOwned>, CmpError> {
    let mut out = Vec::new();
    for f in &p.keys.families {
        match f {
            KeyFamily::Ecdsa => {
                for c in &p.keys.ecdsa_curves {
                    out.push(ec_alg(*c)?);
                }
            }
            KeyFamily::Rsa => {
                out.push(AlgorithmIdentifierOwned { oid: oids::RSA_ENCRYPTION, parameters: Some(Any::null()) })
            }
            KeyFamily::Ed25519 => out.push(AlgorithmIdentifierOwned { oid: oids::ED25519, parameters: None }),
        }
    }
    Ok(out)
}

/// The certificate request template of a profile (RFC 9483 section 4.3.3): the subject
/// attributes the profile requires (fixed values filled in, the others empty for the
/// client to fill), the keyUsage and extendedKeyUsage the certificate will carry, and
/// the preferred key type as keySpec.
fn request_template(p: &Profile) -> Result<Any, CmpError> {
    let attrs: Vec<_> = p
        .subject
        .rules
        .iter()
        .filter(|r| r.presence == Presence::Required || r.value.is_some())
        .map(|r| (r.attribute, r.value.clone().unwrap_or_default()))
        .collect();
    let subject = build_name(&attrs).map_err(CmpError::system_failure)?;
    let mut exts = Vec::new();
    if !p.key_usage.is_empty() {
        exts.push(key_usage(&p.key_usage).map_err(|e| CmpError::system_failure(e.to_string()))?);
    }
    if !p.extended_key_usage.is_empty() {
        exts.push(extended_key_usage(&p.extended_key_usage).map_err(|e| CmpError::system_failure(e.to_string()))?);
    }
    let extensions = exts.iter().map(|e| to_old("extension", e)).collect::<Result<Vec<_>, _>>()?;
    let template = CertTemplate {
        version: None,
        serial_number: None,
        signature: None,
        issuer: None,
        validity: None,
        subject: (!attrs.is_empty()).then(|| to_old("subject", &subject)).transpose()?,
        subject_public_key_info: None,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let key_spec = match (p.keys.families.first(), p.keys.ecdsa_curves.first()) {
        (Some(KeyFamily::Ecdsa), Some(c)) => {
            Some(AttributeTypeAndValue { oid: oids::REG_CTRL_ALG_ID, value: Any::encode_from(&ec_alg(*c)?)? })
        }
        (Some(KeyFamily::Ed25519), _) => Some(AttributeTypeAndValue {
            oid: oids::REG_CTRL_ALG_ID,
            value: Any::encode_from(&AlgorithmIdentifierOwned { oid: oids::ED25519, parameters: None })?,
        }),
        (Some(KeyFamily::Rsa), _) => Some(AttributeTypeAndValue {
            oid: oids::REG_CTRL_RSA_KEY_LEN,
            value: Any::encode_from(&p.keys.rsa_min_bits)?,
        }),
        _ => None,
    };
    let content = CertReqTemplateContent { cert_template: template, key_spec: key_spec.map(|k| vec![k]) };
    Ok(Any::encode_from(&content)?)
}

/// The thisUpdate of a CRL (DER).
fn crl_this_update(crl: &[u8]) -> Result<std::time::SystemTime, CmpError> {
    let list: x509_cert02::crl::CertificateList = old_from_der("CRL", crl)?;
    Ok(list.tbs_cert_list.this_update.to_system_time())
}

/// genm.
pub async fn handle(
    ex: &Exchange<'_>,
    mut tx: CmpTransaction,
    itavs: Vec<InfoTypeAndValue>,
) -> Result<Reply, CmpError> {
    let issuer = ex.issuer().ok_or_else(|| {
        CmpError::system_unavail(format!("the issuer of profile {} is not loaded", ex.profile.profile))
    })?;
    let profile = ex
        .state
        .ca()
        .profile(&ex.profile.profile)
        .ok_or_else(|| CmpError::system_unavail(format!("profile {} is not loaded", ex.profile.profile)))?;
    let mut out = Vec::new();
    let mut unsupported: SetOfVec<ObjectIdentifier> = SetOfVec::new();
    for i in &itavs {
        let oid = i.oid;
        if oid == oids::IT_CA_CERTS {
            let mut certs: Vec<x509_cert02::Certificate> = vec![old_from_der("CA certificate", &issuer.cert.der)?];
            for c in &issuer.chain {
                certs.push(old_from_der("CA certificate", &c.der)?);
            }
            out.push(itav(oid, Some(Any::encode_from(&certs)?)));
        } else if oid == oids::IT_ROOT_CA_CERT {
            let update = crate::genm_root::root_ca_key_update(ex.state.ca(), issuer.clone())?;
            out.push(itav(oids::IT_ROOT_CA_KEY_UPDATE, update));
        } else if oid == oids::IT_CERT_REQ_TEMPLATE {
            out.push(itav(oid, Some(request_template(&profile)?)));
        } else if oid == oids::IT_CRL_STATUS_LIST || oid == oids::IT_CURRENT_CRL {
            let crl = ex.state.crl(&issuer.id).await.map_err(|e| CmpError::from_core(&e))?;
            let crl_any = Any::from_der(&crl)?;
            if oid == oids::IT_CURRENT_CRL {
                out.push(itav(oid, Some(crl_any)));
                continue;
            }
            let ours = crl_this_update(&crl)?;
            let current = match &i.value {
                Some(v) => {
                    let der = v.to_der()?;
                    let parsed = Vec::<CrlStatus<'_>>::from_der(&der)?;
                    parsed.iter().any(|s| s.this_update.is_some_and(|t| t.to_system_time() >= ours))
                }
                None => false,
            };
            if current {
                out.push(itav(oids::IT_CRLS, None));
                continue;
            }
            out.push(itav(oids::IT_CRLS, Some(Any::encode_from(&vec![crl_any])?)));
        } else if oid == oids::IT_SIGN_KEY_PAIR_TYPES {
            out.push(itav(oid, Some(Any::encode_from(&key_algorithms(&profile)?)?)));
        } else {
            let _ = unsupported.insert(oid);
        }
    }
    if !unsupported.is_empty() {
        let list: Vec<ObjectIdentifier> = unsupported.into_vec();
        out.push(itav(oids::IT_UNSUPPORTED_OIDS, Some(Any::encode_from(&list)?)));
    }
    tx.state = TransactionState::Complete;
    ex.save(&mut tx).await?;
    Ok(Reply::new(ResponseBody::Genp(out)))
}
