//! `pkiplane revoke`: revoke a certificate through a server's admin API (`--server`), or
//! in a data directory no server owns. The issuer's next CRL lists it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Result, bail};
use pkiplane_core::audit::AuditEvent;
use pkiplane_core::inventory::{Inventory, Revocation, RevocationReason, RevokeOutcome};
use pkiplane_core::model::{Protocol, Requester};

use super::remote::{RemoteArgs, segment};
use crate::admin::view::{RevokeAnswer, RevokeRequest, normalize_serial, parse_reason, reason_name};

#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// Serial number in hex (colons and case ignored).
    pub serial: String,
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
    #[arg(long, default_value = "unspecified", value_parser = parse_reason)]
    pub reason: RevocationReason,
    /// Who revokes, for the audit trail (offline only: a server records the
    /// authenticated user).
    #[arg(long, env = "USER", default_value = "local-operator")]
    pub identity: String,
}

pub async fn run(a: &RevokeArgs) -> Result<ExitCode> {
    let serial = normalize_serial(&a.serial);
    if let Some(client) = a.remote.client().await? {
        let body = RevokeRequest { reason: Some(reason_name(a.reason).to_owned()) };
        let answer: RevokeAnswer =
            client.post(&format!("/admin/v1/certificates/{}/revoke", segment(&serial)), &body).await?;
        if answer.already_revoked {
            eprintln!("{serial} was already revoked ({}, {}); nothing changed", answer.reason, answer.revoked_at);
        } else {
            eprintln!("revoked {serial} ({}); the issuer {}'s next CRL lists it", answer.reason, answer.issuer);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = crate::datadir::DataDir::own_existing(
        &a.data_dir,
        "revoke",
        &format!(
            "{}, or revoke through an endpoint (ACME revokeCert, CMP rr)",
            super::remote::use_server_instead(&a.data_dir)
        ),
    )?;
    let store = super::open_owned_store(&data_dir, false).await?;
    let found = store.find_serial(&serial).await?;
    let record = match found.as_slice() {
        [one] => one,
        [] => bail!("no certificate with serial {serial} in the inventory"),
        _ => bail!("serial {serial} exists under several issuers; this cannot happen with random serials"),
    };
    let now = SystemTime::now();
    match store.revoke(&record.issuer, &serial, Revocation { reason: a.reason, at: now }).await? {
        RevokeOutcome::Revoked => {
            let who = Requester::new(Protocol::Local, a.identity.clone());
            let mut ev = AuditEvent::new("revoked", &who, &record.profile, now);
            ev.issuer = Some(record.issuer.to_string());
            ev.serial = Some(&serial);
            ev.reasons = vec![format!("{:?}", a.reason)];
            ev.emit();
            eprintln!("revoked {serial} ({:?}); the issuer's next CRL lists it", a.reason);
            Ok(ExitCode::SUCCESS)
        }
        RevokeOutcome::AlreadyRevoked(r) => {
            eprintln!("{serial} was already revoked ({:?}); nothing changed", r.reason);
            Ok(ExitCode::SUCCESS)
        }
        RevokeOutcome::NotFound => bail!("no certificate with serial {serial}"),
        RevokeOutcome::NotIssued(status) => bail!("certificate {serial} is {} and cannot be revoked", status.as_str()),
    }
}
