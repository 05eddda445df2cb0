//! `pkiplane revoke`: revoke a certificate in a data directory's inventory. The next CRL
//! that `pkiplane serve` publishes lists it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Result, bail};
use pkiplane_core::audit::AuditEvent;
use pkiplane_core::inventory::{Inventory, RevocationReason, RevokeOutcome};
use pkiplane_core::model::{Protocol, Requester};

#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// Serial number in hex (colons and case ignored).
    pub serial: String,
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.
    #[arg(long, default_value = "unspecified", value_parser = parse_reason)]
    pub reason: RevocationReason,
    /// Who revokes, for the audit trail.
    #[arg(long, env = "USER", default_value = "local-operator")]
    pub identity: String,
}

fn parse_reason(s: &str) -> Result<RevocationReason, String> {
    let all = [
        ("unspecified", RevocationReason::Unspecified),
        ("keyCompromise", RevocationReason::KeyCompromise),
        ("cACompromise", RevocationReason::CaCompromise),
        ("affiliationChanged", RevocationReason::AffiliationChanged),
        ("superseded", RevocationReason::Superseded),
        ("cessationOfOperation", RevocationReason::CessationOfOperation),
        ("certificateHold", RevocationReason::CertificateHold),
        ("privilegeWithdrawn", RevocationReason::PrivilegeWithdrawn),
        ("aACompromise", RevocationReason::AaCompromise),
    ];
    all.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, r)| *r)
        .ok_or_else(|| format!("unknown reason `{s}` ({})", all.map(|(n, _)| n).join(", ")))
}

pub async fn run(a: &RevokeArgs) -> Result<ExitCode> {
    let data_dir = crate::datadir::DataDir::own_existing(
        &a.data_dir,
        "revoke",
        "stop it first, or revoke through an endpoint (ACME revokeCert, CMP rr)",
    )?;
    let store = super::open_owned_store(&data_dir, false).await?;
    let serial = a.serial.replace(':', "").to_ascii_lowercase();
    let found = store.find_serial(&serial).await?;
    let record = match found.as_slice() {
        [one] => one,
        [] => bail!("no certificate with serial {serial} in the inventory"),
        _ => bail!("serial {serial} exists under several issuers; this cannot happen with random serials"),
    };
    let now = SystemTime::now();
    match store.revoke(&record.issuer, &serial, a.reason, now).await? {
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
