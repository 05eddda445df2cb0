//! CA key rollover: staging the next CA before the current one expires, and promoting it.
//!
//! Timing (all relative to the *current* CA certificate, lifetime = notAfter - notBefore):
//!
//! - **Renewal window** `W`: the Issuer's `renewBefore` when set, otherwise the last 1/6
//!   of the lifetime ([`DEFAULT_RENEW_FRACTION`]). Once `now >= notAfter - W` a next CA is
//!   staged: persisted first ([`CaMaterialStore::save_next_ca`]), then announced (SCEP
//!   GetNextCACert, CMP rootCaKeyUpdate, EST /cacerts).
//! - **Promotion margin** `M = min(lifetime / 12, W / 2)`: once `now >= notAfter - M`
//!   (and the next CA's notBefore has passed) the next CA becomes current. `M <= W / 2`
//!   guarantees the next CA is announced for at least half the renewal window first.
//!
//! What is staged:
//!
//! - a generated **root**: a new key and a new self-signed root with the same subject and
//!   validity length, plus the two link certificates of RFC 9810 (RFC 4210) section 4.4:
//!   `newWithOld` (the new public key signed by the old key) and `oldWithNew` (the old
//!   public key signed by the new key);
//! - a generated **intermediate**: a new key and a certificate from the *current* parent.
//!   When the parent is promoted to a new key, an intermediate still signed by the old
//!   parent key is re-issued under the new parent at once (see [`reconcile`]). An
//!   intermediate whose notAfter was capped by its parent's stages nothing: a next CA
//!   from the same parent would end just as soon; it waits for the parent's rollover;
//! - an **imported** CA never rolls over: it is renewed by replacing its Secret.
//!
//! The key a promotion (or an intermediate's re-issue) replaces is kept as a retired key
//! before the new one is saved (see [`super::retired`]): it signs CRLs and OCSP answers for
//! its certificates until the last of them expires.

use std::time::{Duration, SystemTime};

use super::{Issuer, IssuerConfig, IssuerError, IssuerSource};
use crate::inventory::{CaMaterialStore, StoreError, StoredNextCa};
use crate::keys::{CaSigner, KeyAlgorithm, SecretKey};
use crate::x509::cert::{CertInfo, CertificateFields, sign_certificate};
use crate::x509::extensions::{authority_key_identifier, basic_constraints, key_usage, subject_key_identifier};
use crate::x509::{KeyUsageBit, pem};

/// Without `renewBefore`, the next CA is staged in the last 1/6 of the current lifetime.
pub const DEFAULT_RENEW_FRACTION: u32 = 6;
/// The next CA becomes current in the last 1/12 of the lifetime (at most half the window).
pub const PROMOTION_FRACTION: u32 = 12;

/// The public half of a staged next CA: what protocols announce.
#[derive(Clone, Debug)]
pub struct NextCa {
    /// The next CA certificate (for a root: `newWithNew`, self-signed by the new key).
    pub cert: CertInfo,
    /// The chain above the next CA, nearest first (empty for a root).
    pub chain: Vec<CertInfo>,
    /// RFC 9810 section 4.4 `newWithOld`: the new public key signed by the old key (roots).
    pub new_with_old: Option<CertInfo>,
    /// RFC 9810 section 4.4 `oldWithNew`: the old public key signed by the new key (roots).
    pub old_with_new: Option<CertInfo>,
}

impl NextCa {
    /// The next CA certificate and, for a root, the two link certificates, as PEM.
    pub fn announcement_pem(&self) -> String {
        std::iter::once(&self.cert)
            .chain(self.new_with_old.iter())
            .chain(self.old_with_new.iter())
            .map(|c| pem::encode("CERTIFICATE", &c.der))
            .collect()
    }
}

/// What [`reconcile`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloverOutcome {
    /// Nothing to do (or a staged next CA was loaded from the store).
    Unchanged,
    /// A next CA was made and persisted.
    Staged,
    /// The next CA became current (or an intermediate was re-issued under a new parent key).
    Promoted,
}

#[derive(Debug, thiserror::Error)]
pub enum RolloverError {
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn lifetime(cert: &CertInfo) -> Duration {
    cert.not_after.duration_since(cert.not_before).unwrap_or_default()
}

/// The renewal window `W` of `cert`: `renew_before`, or the last 1/6 of its lifetime.
pub fn renewal_window(cert: &CertInfo, renew_before: Option<Duration>) -> Duration {
    renew_before.unwrap_or_else(|| lifetime(cert) / DEFAULT_RENEW_FRACTION)
}

/// The promotion margin `M = min(lifetime / 12, W / 2)`.
pub fn promotion_margin(cert: &CertInfo, renew_before: Option<Duration>) -> Duration {
    (lifetime(cert) / PROMOTION_FRACTION).min(renewal_window(cert, renew_before) / 2)
}

/// Whether a next CA for `cert` should be staged at `now`.
pub fn stage_due(cert: &CertInfo, renew_before: Option<Duration>, now: SystemTime) -> bool {
    now + renewal_window(cert, renew_before) >= cert.not_after
}

/// Whether `next` should replace `cert` at `now`.
pub fn promotion_due(cert: &CertInfo, next: &CertInfo, renew_before: Option<Duration>, now: SystemTime) -> bool {
    now + promotion_margin(cert, renew_before) >= cert.not_after && now >= next.not_before
}

fn key_algorithm(config: &IssuerConfig) -> Option<KeyAlgorithm> {
    match &config.source {
        IssuerSource::SelfSigned(p) | IssuerSource::Intermediate { params: p, .. } => Some(p.key),
        IssuerSource::Imported(_) => None,
    }
}

/// Makes the next CA of `current` (signed by `parent` for an intermediate), with the link
/// certificates for a root. Nothing is persisted here.
pub fn stage(
    config: &IssuerConfig,
    current: &Issuer,
    parent: Option<&Issuer>,
    now: SystemTime,
) -> Result<StoredNextCa, IssuerError> {
    let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
    let (next, material) = Issuer::create(config, parent, now)?;
    let (new_with_old, old_with_new) = if matches!(config.source, IssuerSource::SelfSigned(_)) {
        // newWithOld: the new key certified by the old one, usable until the old expires.
        let nwo = link_certificate(&next.cert, &next.key_id, current, now, current.cert.not_after)
            .map_err(|e| invalid(format!("newWithOld: {e}")))?;
        // oldWithNew: the old key certified by the new one, for the rest of the old's life.
        let own = link_certificate(&current.cert, &current.key_id, &next, now, current.cert.not_after)
            .map_err(|e| invalid(format!("oldWithNew: {e}")))?;
        (Some(nwo), Some(own))
    } else {
        (None, None)
    };
    Ok(StoredNextCa { material, new_with_old_der: new_with_old, old_with_new_der: old_with_new })
}

/// A CA certificate for `subject`'s name and public key, signed by `signer`.
fn link_certificate(
    subject: &CertInfo,
    subject_key_id: &[u8],
    signer: &Issuer,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Vec<u8>, String> {
    let extensions = [
        basic_constraints(true, subject.basic_constraints.as_ref().and_then(|b| b.path_len_constraint)),
        key_usage(&[KeyUsageBit::DigitalSignature, KeyUsageBit::KeyCertSign, KeyUsageBit::CrlSign]),
        subject_key_identifier(subject_key_id),
        authority_key_identifier(&signer.key_id),
    ]
    .into_iter()
    .collect::<der::Result<Vec<_>>>()
    .map_err(|e| e.to_string())?;
    let serial = crate::issuance::random_serial();
    let fields = CertificateFields {
        serial: &serial,
        issuer: &signer.cert.subject,
        subject: &subject.subject,
        not_before: not_before.min(subject.not_before.max(signer.cert.not_before)),
        not_after,
        spki: &subject.spki,
        extensions,
    };
    sign_certificate(&fields, signer.signer()).map_err(|e| e.to_string())
}

/// Loads the staged next CA of `issuer` from `stored` into `issuer.next` after checking it
/// fits (same spec, key matches, a CA certificate).
pub fn attach(config: &IssuerConfig, issuer: &mut Issuer, stored: &StoredNextCa) -> Result<(), IssuerError> {
    let invalid = |m: String| IssuerError::Invalid(config.id.clone(), m);
    if stored.material.spec_hash != config.spec_hash() {
        return Err(invalid("the staged next CA was made for a different spec".into()));
    }
    let alg = key_algorithm(config).ok_or_else(|| invalid("imported issuers do not roll over".into()))?;
    let cert = CertInfo::from_der(&stored.material.certificate_der).map_err(|e| invalid(format!("next CA: {e}")))?;
    let key = SecretKey::from_pkcs8(alg, stored.material.private_key_pkcs8.to_vec());
    if !cert.is_ca() || !crate::keys::key_matches_spki(&key, &cert.spki_der) {
        return Err(invalid("the staged next CA certificate does not match its key".into()));
    }
    // The key must load as a signer: a next CA that cannot sign must not be announced.
    CaSigner::new(&key).map_err(|e| invalid(format!("next CA key: {e}")))?;
    let parse = |d: &Option<Vec<u8>>| -> Result<Option<CertInfo>, IssuerError> {
        d.as_deref().map(CertInfo::from_der).transpose().map_err(|e| invalid(format!("link certificate: {e}")))
    };
    let chain = if matches!(config.source, IssuerSource::Intermediate { .. }) { issuer.chain.clone() } else { vec![] };
    issuer.next = Some(NextCa {
        cert,
        chain,
        new_with_old: parse(&stored.new_with_old_der)?,
        old_with_new: parse(&stored.old_with_new_der)?,
    });
    Ok(())
}

/// Whether `issuer` already ends with its parent: a next CA from the same parent could not
/// outlive it, so the intermediate waits for the parent's own rollover (after which it is
/// re-issued under the new parent key) instead of staging a next CA that ends just as soon.
fn capped_by_parent(issuer: &Issuer, parent: Option<&Issuer>) -> bool {
    parent.is_some_and(|p| p.cert.not_after <= issuer.cert.not_after)
}

/// Brings `issuer` up to date at `now`: loads a persisted next CA, promotes it when due,
/// or stages (and persists, before returning) a new one when due. Returns the issuer to
/// put into service and what happened. Imported issuers are returned unchanged.
pub async fn reconcile(
    config: &IssuerConfig,
    mut issuer: Issuer,
    parent: Option<&Issuer>,
    materials: &dyn CaMaterialStore,
    renew_before: Option<Duration>,
    now: SystemTime,
) -> Result<(Issuer, RolloverOutcome), RolloverError> {
    if key_algorithm(config).is_none() {
        return Ok((issuer, RolloverOutcome::Unchanged));
    }
    // An intermediate still signed by a parent key that has since been replaced.
    if let Some(p) = parent
        && issuer.cert.authority_key_id().is_some_and(|aki| aki != p.key_id)
    {
        let (fresh, material) = Issuer::create(config, Some(p), now)?;
        retire_current(config, materials, now).await?;
        materials.save_ca(&config.id, &material).await?;
        materials.save_next_ca(&config.id, None).await?;
        return Ok((fresh, RolloverOutcome::Promoted));
    }
    if issuer.next.is_none()
        && let Some(stored) = materials.load_next_ca(&config.id).await?
    {
        let stale = stored.material.certificate_der == issuer.cert.der;
        if stale || attach(config, &mut issuer, &stored).is_err() {
            materials.save_next_ca(&config.id, None).await?;
        }
    }
    if let Some(next) = &issuer.next {
        if promotion_due(&issuer.cert, &next.cert, renew_before, now) {
            let Some(stored) = materials.load_next_ca(&config.id).await? else {
                return Ok((issuer, RolloverOutcome::Unchanged));
            };
            let promoted = Issuer::from_material(config, &stored.material, parent)?;
            // Retired, then current: a crash in between leaves a retired copy of the
            // current key (ignored on load) or next == current (cleared on restart).
            retire_current(config, materials, now).await?;
            materials.save_ca(&config.id, &stored.material).await?;
            materials.save_next_ca(&config.id, None).await?;
            return Ok((promoted, RolloverOutcome::Promoted));
        }
        return Ok((issuer, RolloverOutcome::Unchanged));
    }
    if stage_due(&issuer.cert, renew_before, now) && !capped_by_parent(&issuer, parent) {
        let stored = stage(config, &issuer, parent, now)?;
        materials.save_next_ca(&config.id, Some(&stored)).await?;
        attach(config, &mut issuer, &stored)?;
        return Ok((issuer, RolloverOutcome::Staged));
    }
    Ok((issuer, RolloverOutcome::Unchanged))
}

/// Keeps the stored current CA key of `config` as a retired key (see [`super::retired`]):
/// the certificates it signed still need CRLs and OCSP answers.
async fn retire_current(
    config: &IssuerConfig,
    materials: &dyn CaMaterialStore,
    now: SystemTime,
) -> Result<(), RolloverError> {
    if let Some(current) = materials.load_ca(&config.id).await? {
        let retired = super::retired::retire(&current, now)
            .map_err(|e| IssuerError::Invalid(config.id.clone(), format!("retiring the current CA key: {e}")))?;
        materials.save_retired_ca(&config.id, &retired).await?;
    }
    Ok(())
}

/// Whether [`reconcile`] has anything to do for a loaded `issuer` at `now` (a cheap check
/// for the periodic task, which then reloads the issuer from the store).
pub fn needs_reconcile(
    issuer: &Issuer,
    parent: Option<&Issuer>,
    renew_before: Option<Duration>,
    now: SystemTime,
) -> bool {
    if parent.is_some_and(|p| issuer.cert.authority_key_id().is_some_and(|aki| aki != p.key_id)) {
        return true;
    }
    match &issuer.next {
        Some(next) => promotion_due(&issuer.cert, &next.cert, renew_before, now),
        None => stage_due(&issuer.cert, renew_before, now) && !capped_by_parent(issuer, parent),
    }
}
