//! `/csrattrs` (RFC 7030 section 4.5): what the profile wants to see in a CSR, derived
//! from the profile so that the answer and the policy never disagree.
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! Attribute { ATTRIBUTE:IOSet } ::= SEQUENCE {
//!      type   ATTRIBUTE.&id({IOSet}),
//!      values SET SIZE(1..MAX) OF ATTRIBUTE.&Type({IOSet}{@type}) }
//! ```
//! (RFC 7030 4.5.2 as corrected by RFC 8951 section 4). pkiplane sends, in this order:
//! - `challengePassword` (OID) when the endpoint requires channel binding (RFC 7030 3.5);
//! - the key types the profile allows: `id-ecPublicKey` as an attribute whose values are
//!   the allowed curves, `rsaEncryption` and `id-Ed25519` as OIDs;
//! - the signature algorithms that go with them (`ecdsa-with-SHA256`/`SHA384`,
//!   `sha256WithRSAEncryption`), which tell the client the hash to use;
//! - the subject attributes the profile requires from the CSR (OIDs; attributes the
//!   profile fixes or derives from claims are left out);
//! - `extensionRequest` as an attribute whose values are the OIDs of the extensions the
//!   profile wants requested: subjectAltName when SANs are required, and the extensions
//!   the profile copies from CSRs (the form of RFC 7030's own example).

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
};
use der::asn1::SetOfVec;
use der::{Any, Encode};
use pkiplane_core::keys::{Curve, KeyFamily};
use pkiplane_core::profile::{Presence, Profile, ValueSource};
use pkiplane_core::x509::csr::{CHALLENGE_PASSWORD, EXTENSION_REQUEST};
use pkiplane_core::x509::extensions::SUBJECT_ALT_NAME_OID;
use x509_cert::attr::Attribute;

use crate::error::EstError;
use crate::{EstState, RequestContext, wire};

const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

enum AttrOrOid {
    Oid(ObjectIdentifier),
    Attribute(ObjectIdentifier, Vec<ObjectIdentifier>),
}

/// The CsrAttrs DER for `profile`.
pub fn csr_attrs(profile: &Profile, channel_binding: bool) -> der::Result<Vec<u8>> {
    let mut items = Vec::new();
    if channel_binding {
        items.push(AttrOrOid::Oid(CHALLENGE_PASSWORD));
    }
    let keys = &profile.keys;
    let curves: Vec<Curve> = keys.ecdsa_curves.iter().copied().filter(|c| *c != Curve::P521).collect();
    if keys.families.contains(&KeyFamily::Ecdsa) && !curves.is_empty() {
        items.push(AttrOrOid::Attribute(ID_EC_PUBLIC_KEY, curves.iter().map(|c| c.oid()).collect()));
    }
    if keys.families.contains(&KeyFamily::Rsa) {
        items.push(AttrOrOid::Oid(RSA_ENCRYPTION));
    }
    if keys.families.contains(&KeyFamily::Ed25519) {
        items.push(AttrOrOid::Oid(ID_ED25519));
    }
    if keys.families.contains(&KeyFamily::Ecdsa) {
        if curves.contains(&Curve::P256) {
            items.push(AttrOrOid::Oid(ECDSA_WITH_SHA_256));
        }
        if curves.contains(&Curve::P384) {
            items.push(AttrOrOid::Oid(ECDSA_WITH_SHA_384));
        }
    }
    if keys.families.contains(&KeyFamily::Rsa) {
        items.push(AttrOrOid::Oid(SHA_256_WITH_RSA_ENCRYPTION));
    }
    for rule in &profile.subject.rules {
        let from_csr = rule.value.is_none() && matches!(rule.source, ValueSource::Csr);
        if rule.presence == Presence::Required && from_csr {
            items.push(AttrOrOid::Oid(rule.attribute.oid()));
        }
    }
    let mut extensions = Vec::new();
    if profile.sans.required {
        extensions.push(SUBJECT_ALT_NAME_OID);
    }
    for oid in &profile.csr_extensions.copy {
        if !extensions.contains(oid) {
            extensions.push(*oid);
        }
    }
    if !extensions.is_empty() {
        items.push(AttrOrOid::Attribute(EXTENSION_REQUEST, extensions));
    }

    let mut seq: Vec<Any> = Vec::with_capacity(items.len());
    for item in items {
        seq.push(match item {
            AttrOrOid::Oid(oid) => Any::encode_from(&oid)?,
            AttrOrOid::Attribute(oid, values) => {
                let mut set = SetOfVec::new();
                for v in values {
                    set.insert(Any::encode_from(&v)?)?;
                }
                Any::encode_from(&Attribute { oid, values: set })?
            }
        });
    }
    seq.to_der()
}

/// `GET /csrattrs`. No authentication is required (RFC 7030 4.5.1).
pub fn csrattrs(state: &EstState, ctx: &RequestContext) -> Result<axum::response::Response, EstError> {
    let profile = state
        .ca
        .profile(&ctx.profile.profile)
        .ok_or_else(|| EstError::NotFound(format!("profile {} is not loaded", ctx.profile.profile)))?;
    let der = csr_attrs(&profile, state.config.require_channel_binding)
        .map_err(|e| EstError::internal(format!("encoding csrattrs: {e}")))?;
    Ok(wire::base64_response(wire::CSRATTRS, &der))
}

#[cfg(test)]
mod tests {
    /// Writes the golden csrattrs vector: `PKIPLANE_WRITE_VECTORS=1 cargo test -p pkiplane-est`.
    #[test]
    fn write_vector_when_asked() {
        if std::env::var("PKIPLANE_WRITE_VECTORS").is_err() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifests = pkiplane_api::Manifests::load(dir.join("../../examples/quickstart.yaml")).unwrap();
        let profile =
            pkiplane_api::profile_from_resource(manifests.profile("pki", "device-ldevid-1y").unwrap()).unwrap();
        let der = super::csr_attrs(&profile, false).unwrap();
        std::fs::write(dir.join("tests/vectors/csrattrs-device-ldevid-1y.der"), der).unwrap();
    }
}
