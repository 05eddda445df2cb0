//! `pkiplane scep challenge`: mint a one-time SCEP challenge password, optionally bound to
//! the identity it may enrol, for an endpoint of a data directory.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use pkiplane_api::{FieldError, Manifests};
use pkiplane_core::audit::rfc3339;
use pkiplane_core::model::ObjectRef;
use pkiplane_scep::{ChallengeBinding, mint_challenge};

#[derive(clap::Subcommand, Debug)]
pub enum ScepCommand {
    /// Mint a one-time challenge password (printed once; only its hash is stored).
    Challenge(ChallengeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ChallengeArgs {
    /// Manifest file or directory with the SCEP EnrollmentEndpoint.
    #[arg(short = 'f', long = "filename")]
    pub manifests: PathBuf,
    #[arg(long, env = "PKIPLANE_DATA_DIR", default_value = "pkiplane-data")]
    pub data_dir: PathBuf,
    /// The SCEP EnrollmentEndpoint (`namespace/name`, or `name` in `default`).
    #[arg(long)]
    pub endpoint: ObjectRef,
    /// How long the challenge stays usable (e.g. 1h); at most the endpoint's ttl.
    #[arg(long, default_value = "1h", value_parser = pkiplane_core::duration::parse_duration)]
    pub ttl: Duration,
    /// Only a CSR with this subject commonName may use the challenge.
    #[arg(long)]
    pub cn: Option<String>,
    /// Only these SANs may appear in the CSR (`DNS:name`, `IP:addr`, `URI:uri`, `email:addr`; repeatable).
    #[arg(long = "san")]
    pub sans: Vec<String>,
    /// Print JSON (id, challenge, expires) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: &ScepCommand) -> Result<()> {
    let ScepCommand::Challenge(a) = cmd;
    let manifests = Manifests::load(&a.manifests)?;
    let Some(ep) = manifests.endpoint(&a.endpoint.namespace, &a.endpoint.name) else {
        bail!("no EnrollmentEndpoint {} in {}", a.endpoint, a.manifests.display());
    };
    // The base URL does not matter for minting; the challenge is keyed by endpoint.
    let config = pkiplane_api::scep_settings(ep, &manifests, "http://127.0.0.1")
        .map_err(|e| anyhow!("{}", FieldError::join(&e)))?;
    let Some(dynamic) = &config.dynamic_challenges else {
        bail!("endpoint {} does not enable dynamicChallenges", a.endpoint);
    };
    if a.ttl > dynamic.ttl {
        bail!(
            "--ttl exceeds the endpoint's dynamicChallenges.ttl ({})",
            pkiplane_core::duration::format_duration(dynamic.ttl)
        );
    }
    let data_dir = crate::datadir::DataDir::own_existing(
        &a.data_dir,
        "scep challenge",
        "while it runs, mint one-time challenges through the SCEP endpoint: POST <scep url>/challenges with the dynamicChallenges.apiSecretRef token",
    )?;
    let store = super::open_owned_store(&data_dir, true).await?;
    let minted = mint_challenge(
        store.as_ref(),
        &config.endpoint,
        a.ttl,
        ChallengeBinding { common_name: a.cn.clone(), sans: a.sans.clone() },
        "cli",
        std::time::SystemTime::now(),
    )
    .await
    .map_err(|e| anyhow!("{e}"))?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "id": minted.challenge.id,
                "challenge": minted.value.as_str(),
                "expires": rfc3339(minted.challenge.expires),
                "commonName": minted.challenge.common_name,
                "sans": minted.challenge.sans,
            })
        );
    } else {
        println!("{}", minted.value.as_str());
        eprintln!(
            "challenge {} for {} expires {} (one use{})",
            minted.challenge.id,
            a.endpoint,
            rfc3339(minted.challenge.expires),
            match (&minted.challenge.common_name, minted.challenge.sans.is_empty()) {
                (None, true) => String::new(),
                (cn, _) =>
                    format!(", bound to CN={} SANs={}", cn.as_deref().unwrap_or("*"), minted.challenge.sans.join(",")),
            }
        );
    }
    Ok(())
}
