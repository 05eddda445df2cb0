//! Challenge passwords (RFC 8894 section 2.2): how a PKCSReq is authenticated.
//!
//! * **Static**: one password per endpoint from a Secret, compared in constant time,
//!   re-read at every request (rotation without restart, see [`crate::settings`]).
//! * **One-time**: minted by [`mint_challenge`] (the library function behind
//!   `pkiplane scep challenge`) or the authenticated HTTP API `POST /scep/challenges`;
//!   each expires, may be bound to a commonName and SANs, and is consumed atomically
//!   in the [`ScepStore`]. Only its SHA-256 is stored.

use std::time::{Duration, SystemTime};

use crate::state::{ChallengeKey, ChallengeUse, ScepChallenge, ScepStore};
use pkiplane_core::model::{ObjectRef, Protocol, Requester};
use pkiplane_core::x509::csr::ParsedCsr;
use pkiplane_core::x509::names::SubjectAttribute;
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::cms::random_bytes;
use crate::error::ScepError;
use crate::settings::ScepSettings;

/// Longest lifetime a minted challenge may be given.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The identity a one-time challenge may enrol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChallengeBinding {
    /// The subject commonName the CSR must carry.
    pub common_name: Option<String>,
    /// SANs (`DNS:name`, `IP:addr`, `URI:uri`, `email:addr`): the CSR may carry only these.
    pub sans: Vec<String>,
}

impl ChallengeBinding {
    /// Checks the SAN strings' syntax and normalises them (`DNS` names lower-case).
    pub fn normalized(mut self) -> Result<Self, String> {
        let mut out = Vec::new();
        for s in &self.sans {
            let (kind, value) = s.split_once(':').ok_or_else(|| format!("SAN `{s}` is not KIND:value"))?;
            let v = match kind.to_ascii_lowercase().as_str() {
                "dns" => format!("DNS:{}", value.to_ascii_lowercase()),
                "ip" => {
                    format!("IP:{}", value.parse::<std::net::IpAddr>().map_err(|_| format!("`{value}` is not an IP"))?)
                }
                "uri" => format!("URI:{value}"),
                "email" => format!("email:{value}"),
                _ => return Err(format!("SAN kind `{kind}` (expected DNS, IP, URI or email)")),
            };
            out.push(v);
        }
        self.sans = out;
        if self.common_name.as_deref().is_some_and(str::is_empty) {
            self.common_name = None;
        }
        Ok(self)
    }
}

/// A freshly minted challenge: `value` is shown once and never stored.
pub struct MintedChallenge {
    pub challenge: ScepChallenge,
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for MintedChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedChallenge").field("challenge", &self.challenge).field("value", &"<redacted>").finish()
    }
}

/// SHA-256 of a challenge value, lowercase hex (how the store keys challenges).
pub fn challenge_hash(value: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(value))
}

/// Mints a one-time challenge for `endpoint`, valid for `ttl`, bound to `binding`.
/// This is what `pkiplane scep challenge` and `POST /scep/challenges` call.
pub async fn mint_challenge(
    store: &dyn ScepStore,
    endpoint: &ObjectRef,
    ttl: Duration,
    binding: ChallengeBinding,
    created_by: &str,
    now: SystemTime,
) -> Result<MintedChallenge, ScepError> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ScepError::BadRequest(format!("ttl must be between 1s and {} days", MAX_TTL.as_secs() / 86_400)));
    }
    let binding = binding.normalized().map_err(ScepError::BadRequest)?;
    // 160 bits, hex: printable in any challengePassword encoding and any device UI.
    let value = Zeroizing::new(hex::encode(random_bytes(20)?));
    let challenge = ScepChallenge {
        id: hex::encode(random_bytes(8)?),
        endpoint: endpoint.clone(),
        secret_sha256: challenge_hash(value.as_bytes()),
        expires: now + ttl,
        common_name: binding.common_name,
        sans: binding.sans,
        created_by: created_by.to_owned(),
        created_at: now,
        used_at: None,
    };
    store.add_challenge(&challenge).await?;
    tracing::info!(endpoint = %endpoint, challenge = %challenge.id, created_by, bound = challenge.is_bound(), "minted a one-time SCEP challenge");
    Ok(MintedChallenge { challenge, value })
}

/// Authenticates a PKCSReq by its challengePassword; the Requester carries what was
/// proved (`claims`: `scepChallenge` = static | one-time, `challengeId`,
/// `boundCommonName`).
pub async fn authenticate(
    config: &ScepSettings,
    store: &dyn ScepStore,
    csr: &ParsedCsr,
    now: SystemTime,
) -> Result<Requester, ScepError> {
    let requester = |identity: String| Requester::new(Protocol::Scep, identity).at_endpoint(config.endpoint.clone());
    let Some(password) = csr.challenge_password.as_ref().filter(|p| !p.is_empty()) else {
        return Err(ScepError::BadRequest("the request carries no challengePassword".into()));
    };
    if let Some(expected) = config.static_challenge.as_ref().and_then(|s| s.current())
        && bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_slice(), password.as_bytes()))
    {
        return Ok(requester("scep:static-challenge".into()).with_claim("scepChallenge", "static"));
    }
    if config.dynamic_challenges.is_some() {
        let key =
            ChallengeKey { endpoint: config.endpoint.clone(), secret_sha256: challenge_hash(password.as_bytes()) };
        if let Some(c) = store.challenge(&key).await? {
            check_binding(&c, csr)?;
            return match store.consume_challenge(&key, now).await? {
                ChallengeUse::Consumed(c) => {
                    let mut r = requester(format!("scep:challenge/{}", c.id))
                        .with_claim("scepChallenge", "one-time")
                        .with_claim("challengeId", c.id.clone());
                    if let Some(cn) = &c.common_name {
                        r = r.with_claim("boundCommonName", cn.clone());
                    }
                    Ok(r)
                }
                ChallengeUse::AlreadyUsed => {
                    Err(ScepError::BadRequest(format!("one-time challenge {} has been used already", c.id)))
                }
                ChallengeUse::Expired => Err(ScepError::BadRequest(format!("one-time challenge {} has expired", c.id))),
                ChallengeUse::Unknown => Err(ScepError::BadRequest("unknown challenge password".into())),
            };
        }
    }
    Err(ScepError::BadRequest("wrong challenge password".into()))
}

/// A bound challenge refuses a CSR naming another commonName or any SAN outside its
/// list.
fn check_binding(c: &ScepChallenge, csr: &ParsedCsr) -> Result<(), ScepError> {
    if let Some(cn) = &c.common_name {
        let csr_cns: Vec<&str> = csr
            .subject_attributes
            .iter()
            .filter(|a| a.attribute == Some(SubjectAttribute::CommonName))
            .map(|a| a.value.as_str())
            .collect();
        if csr_cns != [cn.as_str()] {
            return Err(ScepError::BadRequest(format!(
                "one-time challenge {} is bound to CN={cn}, the request names CN={}",
                c.id,
                csr_cns.join(",")
            )));
        }
    }
    if !c.sans.is_empty() || c.common_name.is_some() {
        let mut unsupported = csr.unsupported_sans.iter();
        if let Some(u) = unsupported.next() {
            return Err(ScepError::BadRequest(format!("one-time challenge {} does not allow {u}", c.id)));
        }
        for san in &csr.sans {
            let s = match san {
                pkiplane_core::x509::San::Dns(d) => format!("DNS:{}", d.to_ascii_lowercase()),
                other => other.to_string(),
            };
            if !c.sans.contains(&s) {
                return Err(ScepError::BadRequest(format!("one-time challenge {} does not allow SAN {s}", c.id)));
            }
        }
    }
    Ok(())
}
