//! `/serverkeygen` (RFC 7030 4.4): pkiplane generates the key pair, builds the CSR for it
//! from the client's request (subject and SANs), issues it through the CA like any
//! request and returns both as `multipart/mixed` (4.4.2): an `application/pkcs8` part
//! (or, when the client asked for encryption, an `application/pkcs7-mime;
//! smime-type=server-generated-key` part, see [`crate::envelope`]) and the certificate
//! as `application/pkcs7-mime; smime-type=certs-only`.
//!
//! The key algorithm is the client's CSR key algorithm when the profile allows it and
//! pkiplane can generate it (so a client can ask for P-384 by signing its request with a
//! P-384 key), else the first the profile allows: ECDSA on its first curve, RSA of the
//! smallest size within its bounds, Ed25519.

use axum::body::Body;
use axum::response::Response;
use pkiplane_core::issuance::IssuanceRequest;
use pkiplane_core::keys::{Curve, KeyAlgorithm, KeyFamily, PublicKeyInfo, SecretKey, generate_key};
use pkiplane_core::policy::RequestedValidity;
use pkiplane_core::profile::KeyPolicy;
use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
use pkiplane_core::x509::csr_build::build_csr;

use crate::envelope::{self, KeyProtection};
use crate::error::EstError;
use crate::wire::{self, Part};
use crate::{EstState, RequestContext, auth, cms, enroll};

/// Whether `policy` allows keys of `alg`.
fn allows(policy: &KeyPolicy, alg: KeyAlgorithm) -> bool {
    match alg.public_info() {
        PublicKeyInfo::Ecdsa(c) => policy.families.contains(&KeyFamily::Ecdsa) && policy.ecdsa_curves.contains(&c),
        PublicKeyInfo::Rsa { bits } => {
            policy.families.contains(&KeyFamily::Rsa) && bits >= policy.rsa_min_bits && bits <= policy.rsa_max_bits
        }
        PublicKeyInfo::Ed25519 => policy.families.contains(&KeyFamily::Ed25519),
        PublicKeyInfo::Other(_) => false,
    }
}

/// The algorithm of the key pkiplane generates; see the module documentation.
pub fn choose_algorithm(policy: &KeyPolicy, requested: &PublicKeyInfo) -> Option<KeyAlgorithm> {
    if let Some(alg) = KeyAlgorithm::ALL.into_iter().find(|a| a.public_info() == *requested)
        && allows(policy, alg)
    {
        return Some(alg);
    }
    for family in &policy.families {
        let candidates: Vec<KeyAlgorithm> = match family {
            KeyFamily::Ecdsa => policy
                .ecdsa_curves
                .iter()
                .filter_map(|c| match c {
                    Curve::P256 => Some(KeyAlgorithm::EcdsaP256),
                    Curve::P384 => Some(KeyAlgorithm::EcdsaP384),
                    Curve::P521 => None,
                })
                .collect(),
            KeyFamily::Rsa => vec![KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096],
            KeyFamily::Ed25519 => vec![KeyAlgorithm::Ed25519],
        };
        if let Some(alg) = candidates.into_iter().find(|a| allows(policy, *a)) {
            return Some(alg);
        }
    }
    None
}

/// `POST /serverkeygen`.
pub async fn serverkeygen(state: &EstState, ctx: &RequestContext, body: Body) -> Result<Response, EstError> {
    let who = auth::authenticate(state, ctx).await?;
    let client_csr = enroll::read_csr(state, ctx, body).await?;
    enroll::check_channel_binding(state, ctx, &client_csr)?;
    let profile = state
        .ca
        .profile(&ctx.profile.profile)
        .ok_or_else(|| EstError::NotFound(format!("profile {} is not loaded", ctx.profile.profile)))?;

    // Decide how the key goes back before anything is generated or issued.
    let protection = envelope::requested_protection(&client_csr.der).map_err(EstError::bad_request)?;
    let recipient = match &protection {
        KeyProtection::None => None,
        KeyProtection::Symmetric(id) => {
            return Err(EstError::bad_request(format!(
                "the CSR asks for the key to be encrypted with the pre-shared symmetric key `{}` (DecryptKeyIdentifier, RFC 7030 4.4.1.1); this endpoint has no symmetric keys: omit the attribute to receive the key over TLS only, or use AsymmetricDecryptKeyIdentifier",
                hex::encode(id)
            )));
        }
        KeyProtection::Asymmetric(id) => {
            let cert = who.client_cert.as_ref().filter(|c| envelope::key_identifier(&c.info) == *id).ok_or_else(|| {
                EstError::bad_request(format!(
                    "the CSR asks for the key to be encrypted to the key with identifier {} (AsymmetricDecryptKeyIdentifier, RFC 7030 4.4.1.2), but that is not the key of the TLS client certificate, the only client key this server knows",
                    hex::encode(id)
                ))
            })?;
            envelope::can_envelope_to(&cert.info).map_err(EstError::bad_request)?;
            Some(cert.info.clone())
        }
    };

    let alg = choose_algorithm(&profile.keys, &client_csr.key).ok_or_else(|| {
        EstError::forbidden(format!(
            "profile {} allows no key algorithm pkiplane can generate (keys.algorithms / keys.ecdsaCurves)",
            profile.id
        ))
    })?;
    let key: SecretKey = tokio::task::spawn_blocking(move || generate_key(alg))
        .await
        .map_err(|e| EstError::internal(format!("key generation task: {e}")))?
        .map_err(EstError::internal)?;
    let csr_der = build_csr(&key, &client_csr.subject, &client_csr.sans)
        .map_err(|e| EstError::internal(format!("building the CSR for the generated key: {e}")))?;
    let csr = ParsedCsr::from_der(&csr_der, CsrOptions::default()).map_err(EstError::internal)?;
    let req = IssuanceRequest {
        csr,
        profile: ctx.profile.profile.clone(),
        requester: who.requester(state),
        requested: RequestedValidity::default(),
        renewal_of: None,
        exchange: None,
    };
    let issued = enroll::issue(state, req).await?;
    tracing::info!(
        endpoint = %state.config.endpoint,
        serial = %issued.record.serial,
        requester = %issued.record.requester,
        key = %alg,
        encrypted = recipient.is_some(),
        "EST server-generated key issued"
    );
    let cert_part = cms::certs_only(std::slice::from_ref(&issued.der))
        .map_err(|e| EstError::internal(format!("encoding the certificate response: {e}")))?;
    let key_part = match recipient {
        None => Part { content_type: wire::PKCS8, der: key.pkcs8_der().to_vec() },
        Some(recipient) => {
            let signer = state
                .signers
                .get(state.ca.as_ref(), &state.config.endpoint, &profile.issuer)
                .await
                .map_err(|e| EstError::internal(format!("key package signer: {e}")))?;
            let package = envelope::key_package(key.pkcs8_der()).map_err(EstError::internal)?;
            let signed = cms::signed_data(
                envelope::ID_CT_KP_A_KEY_PACKAGE,
                &package,
                &signer.signer,
                &signer.cert_der,
                &signer.certs,
            )
            .map_err(EstError::internal)?;
            // The EnvelopedData carries the SignedData itself (its ContentInfo content).
            let signed_content = strip_content_info(&signed).map_err(EstError::internal)?;
            let enveloped =
                envelope::envelope(cms::ID_SIGNED_DATA, &signed_content, &recipient).map_err(EstError::internal)?;
            Part { content_type: wire::SERVER_GENERATED_KEY, der: enveloped }
        }
    };
    Ok(wire::multipart_response(&[key_part, Part { content_type: wire::CERTS_ONLY, der: cert_part }]))
}

/// The DER of a ContentInfo's `content` (the `[0] EXPLICIT` payload).
fn strip_content_info(ci: &[u8]) -> Result<Vec<u8>, String> {
    use der::{Decode, Encode};
    let ci = ::cms::content_info::ContentInfo::from_der(ci).map_err(|e| e.to_string())?;
    ci.content.to_der().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_follows_request_then_profile() {
        let mut p = KeyPolicy::default();
        assert_eq!(choose_algorithm(&p, &PublicKeyInfo::Ecdsa(Curve::P384)), Some(KeyAlgorithm::EcdsaP384));
        assert_eq!(choose_algorithm(&p, &PublicKeyInfo::Rsa { bits: 1024 }), Some(KeyAlgorithm::EcdsaP256));
        p.families = vec![KeyFamily::Rsa];
        p.rsa_min_bits = 3072;
        assert_eq!(choose_algorithm(&p, &PublicKeyInfo::Ed25519), Some(KeyAlgorithm::Rsa3072));
        p.rsa_min_bits = 8192;
        assert_eq!(choose_algorithm(&p, &PublicKeyInfo::Ed25519), None);
    }
}
