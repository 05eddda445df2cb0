//! Issuance in explicit steps, Boulder style:
//!
//! 1. **check policy**: the policy engine turns the request into a template or a denial;
//! 2. **persist**: a `pending` inventory record is made durable;
//! 3. **sign**: the issuer signs the TBSCertificate built from the template;
//! 4. **store**: the record becomes `issued` with the certificate, durably;
//!
//! and only then is the certificate returned. A crash between 2 and 4 leaves a `pending`
//! record, which start-up recovery marks `abandoned`: the inventory never misses a
//! certificate that left the CA, and says plainly which issuances did not complete.
//!
//! A crash after 4 and before the protocol has answered leaves an `issued` certificate
//! its client never received. The pending record names the protocol exchange that asked
//! for it ([`IssuanceRequest::exchange`]), so each protocol finds it again and applies
//! one rule: the certificate is delivered by the protocol's own retry path where there
//! is one (a SCEP resend or CertPoll of the same transactionID, an ACME order poll),
//! and revoked where the protocol says an unaccepted certificate is (CMP: a certificate
//! not confirmed by confirmWaitTime). EST has neither an exchange nor a retry path: like
//! any response lost on the network, its certificate stays issued.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};

use crate::audit::AuditEvent;
use crate::clock::SharedClock;
use crate::error::CoreError;
use crate::inventory::{
    CertStatus, CertificateRecord, DenialRecord, Inventory, PublishedCrl, RevocationReason, RevokeOutcome, StoreError,
};
use crate::issuer::IssuerInfo;
use crate::issuer::{CaKey, Issuer, RetiredCa};
use crate::model::{ObjectRef, Requester};
use crate::observe::{Event, ObserverSlot, Origin};
use crate::policy::{self, CertificateTemplate, Decision, IssuerFacts, PolicyInput, RequestedValidity};
use crate::profile::Profile;
use crate::x509::cert::{CertInfo, CertificateFields, sign_certificate};
use crate::x509::csr::ParsedCsr;
use crate::x509::names::format_dn;
use crate::x509::pem;

/// Environment variable naming a test failpoint, so tests can prove crash consistency
/// with the real binary: `issuance-after-persist` aborts the process right after step 2;
/// `issuance-after-store` right after step 4, before the certificate is returned to the
/// protocol. Either may be limited to one protocol: `issuance-after-store:CMP`.
pub const FAILPOINT_ENV: &str = "PKIPLANE_FAILPOINT";

/// Where a failpoint aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailAt {
    AfterPersist,
    AfterStore,
}

/// The failpoint of [`FAILPOINT_ENV`], if set and this build has the test-only feature
/// `failpoints` (production builds never read the variable).
fn failpoint() -> Option<(FailAt, Option<crate::model::Protocol>)> {
    if !cfg!(feature = "failpoints") {
        return None;
    }
    let v = std::env::var(FAILPOINT_ENV).ok()?;
    let (at, protocol) = match v.split_once(':') {
        Some((at, p)) => (at.to_owned(), Some(p.parse().ok()?)),
        None => (v, None),
    };
    let at = match at.as_str() {
        "issuance-after-persist" => FailAt::AfterPersist,
        "issuance-after-store" => FailAt::AfterStore,
        _ => return None,
    };
    Some((at, protocol))
}

/// A request to revoke the certificate `serial` of `issuer`, on behalf of `requester`.
#[derive(Clone, Debug)]
pub struct RevocationRequest {
    pub issuer: ObjectRef,
    pub serial: String,
    pub reason: RevocationReason,
    pub requester: Requester,
}

impl RevocationRequest {
    pub fn new(issuer: &ObjectRef, serial: &str, reason: RevocationReason, requester: &Requester) -> Self {
        Self { issuer: issuer.clone(), serial: serial.to_owned(), reason, requester: requester.clone() }
    }
}

/// A request for a certificate, as a protocol hands it to the CA.
#[derive(Clone, Debug)]
pub struct IssuanceRequest {
    pub csr: ParsedCsr,
    pub profile: ObjectRef,
    pub requester: Requester,
    pub requested: RequestedValidity,
    /// Serial (hex) of the certificate this one renews or replaces, same issuer.
    pub renewal_of: Option<String>,
    /// The protocol exchange that will deliver the certificate, as a key the protocol can
    /// look it up by after a crash: `cmp:<endpoint>:<transactionID>`,
    /// `scep:<endpoint>:<transactionID>`, `acme:<endpoint>:<order>` (see
    /// [`exchange_key`]). None where the exchange is a single request (EST, the CLI).
    pub exchange: Option<String>,
}

/// The exchange key of `id` (a transactionID, an order id) at `endpoint` for `protocol`.
pub fn exchange_key(protocol: crate::model::Protocol, endpoint: &ObjectRef, id: &str) -> String {
    format!("{}:{endpoint}:{id}", protocol.as_str().to_ascii_lowercase())
}

/// What an issuance request came to.
#[derive(Clone, Debug)]
pub enum IssueOutcome {
    /// Signed, and its inventory record is durable.
    Issued(Box<Issued>),
    /// Policy allowed it, but the profile waits for a person's approval: the request is
    /// kept as an approval record (see [`crate::approval`]) and nothing was signed. Each
    /// protocol answers with its own pending reply and asks again later.
    Pending(Pending),
    /// A person denied the request (see [`Ca::deny`]); the protocol answers with its
    /// rejection, naming the reason.
    Denied(ApprovalDenied),
}

impl IssueOutcome {
    /// The certificate, when one was issued.
    pub fn issued(self) -> Option<Issued> {
        match self {
            IssueOutcome::Issued(issued) => Some(*issued),
            IssueOutcome::Pending(_) | IssueOutcome::Denied(_) => None,
        }
    }
}

/// A request an approver denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalDenied {
    pub profile: ObjectRef,
    pub request_id: String,
    /// Who denied it.
    pub by: String,
    pub reason: String,
}

impl std::fmt::Display for ApprovalDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request {} for profile {} was denied by {}: {}", self.request_id, self.profile, self.by, self.reason)
    }
}

/// A request waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub profile: ObjectRef,
    /// The approval request's id: what an approver names (`pkiplane approve ID`) and what
    /// the protocol asks again with ([`Ca::approval_outcome`]).
    pub request_id: String,
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "profile {} requires approval; the request is pending", self.profile)
    }
}

/// A signed certificate whose inventory record is durable.
#[derive(Clone, Debug)]
pub struct Issued {
    pub record: CertificateRecord,
    pub der: Vec<u8>,
    /// The issuing CA and every certificate above it, PEM.
    pub chain_pem: String,
    /// What the policy changed or left out.
    pub notes: Vec<String>,
}

impl Issued {
    pub fn certificate_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// Leaf followed by the chain: what ACME and most clients want.
    pub fn full_chain_pem(&self) -> String {
        format!("{}{}", self.certificate_pem(), self.chain_pem)
    }
}

/// 128 bits from the CSPRNG, made positive and non-zero in its first byte so the DER
/// encoding keeps all 16 bytes (RFC 5280 section 4.1.2.2; CA/B BR 7.1 asks for 64 bits).
pub fn random_serial() -> Vec<u8> {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The OS RNG failing is unrecoverable; refusing to continue beats a weak serial.
        std::process::abort();
    }
    bytes[0] = (bytes[0] & 0x7f).max(1);
    bytes.to_vec()
}

/// The CA: issuers, profiles and the inventory, and the only place certificates are signed.
pub struct Ca {
    issuers: RwLock<HashMap<ObjectRef, Arc<Issuer>>>,
    /// The public view of each issuer, kept beside it so protocols get it without a copy.
    issuer_infos: RwLock<HashMap<ObjectRef, Arc<IssuerInfo>>>,
    profiles: RwLock<HashMap<ObjectRef, Arc<Profile>>>,
    /// The retired keys of each issuer still answering for their certificates.
    retired: RwLock<HashMap<ObjectRef, Vec<Arc<RetiredCa>>>>,
    inventory: Arc<dyn Inventory>,
    failpoint: Option<(FailAt, Option<crate::model::Protocol>)>,
    observer: ObserverSlot,
    clock: SharedClock,
}

impl Ca {
    pub fn new(inventory: Arc<dyn Inventory>) -> Self {
        Self {
            issuers: RwLock::default(),
            issuer_infos: RwLock::default(),
            profiles: RwLock::default(),
            retired: RwLock::default(),
            inventory,
            failpoint: failpoint(),
            observer: ObserverSlot::default(),
            clock: crate::clock::system(),
        }
    }

    /// The same CA reading the time from `clock` (tests of the approval state machine).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The time decisions are made at.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Where issuance, denial, revocation, CRL and store-write events go (see
    /// [`crate::observe`]); set once, at start.
    pub fn observer(&self) -> &ObserverSlot {
        &self.observer
    }

    pub fn inventory(&self) -> &Arc<dyn Inventory> {
        &self.inventory
    }

    pub fn put_issuer(&self, issuer: Arc<Issuer>) {
        let info = Arc::new(IssuerInfo::from_issuer(&issuer));
        self.issuer_infos.write().unwrap_or_else(|e| e.into_inner()).insert(issuer.id.clone(), info);
        self.issuers.write().unwrap_or_else(|e| e.into_inner()).insert(issuer.id.clone(), issuer);
    }

    pub fn put_profile(&self, profile: Profile) {
        self.profiles.write().unwrap_or_else(|e| e.into_inner()).insert(profile.id.clone(), Arc::new(profile));
    }

    pub fn remove_profile(&self, id: &ObjectRef) {
        self.profiles.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    pub fn issuer(&self, id: &ObjectRef) -> Option<Arc<Issuer>> {
        self.issuers.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The public view of an issuer (certificates, key id; no key).
    pub fn issuer_info(&self, id: &ObjectRef) -> Option<Arc<IssuerInfo>> {
        self.issuer_infos.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    pub fn issuers(&self) -> Vec<Arc<Issuer>> {
        let mut v: Vec<_> = self.issuers.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Replaces the retired keys of `issuer` (see [`crate::issuer::retired`]).
    pub fn put_retired(&self, issuer: &ObjectRef, keys: Vec<Arc<RetiredCa>>) {
        let mut map = self.retired.write().unwrap_or_else(|e| e.into_inner());
        if keys.is_empty() {
            map.remove(issuer);
        } else {
            map.insert(issuer.clone(), keys);
        }
    }

    /// The retired keys of `issuer` still kept, oldest first.
    pub fn retired(&self, issuer: &ObjectRef) -> Vec<Arc<RetiredCa>> {
        self.retired.read().unwrap_or_else(|e| e.into_inner()).get(issuer).cloned().unwrap_or_default()
    }

    /// Every key `issuer` answers for: the current one first, then the retired ones
    /// (a retired copy of the current key, left by an interrupted rollover, is skipped).
    pub fn keys(&self, issuer: &ObjectRef) -> Vec<CaKey> {
        let Some(current) = self.issuer(issuer) else { return vec![] };
        let retired: Vec<CaKey> =
            self.retired(issuer).into_iter().filter(|r| r.key_id != current.key_id).map(CaKey::Retired).collect();
        std::iter::once(CaKey::Current(current)).chain(retired).collect()
    }

    /// The latest notAfter of the CA certificates this CA holds (current and retired, of
    /// every Issuer) that the key `key_id` signed, other than its own: a retired parent key
    /// still answers for the intermediates it certified.
    pub fn latest_ca_cert_signed_by(&self, key_id: &[u8]) -> Option<SystemTime> {
        let current: Vec<CertInfo> = self.issuers().iter().map(|i| i.cert.clone()).collect();
        let retired: Vec<CertInfo> =
            self.retired.read().unwrap_or_else(|e| e.into_inner()).values().flatten().map(|r| r.cert.clone()).collect();
        current
            .iter()
            .chain(retired.iter())
            .filter(|c| c.subject_key_id.as_deref() != Some(key_id))
            .filter(|c| c.authority_key_id().as_deref() == Some(key_id))
            .map(|c| c.not_after)
            .max()
    }

    pub fn profile(&self, id: &ObjectRef) -> Option<Arc<Profile>> {
        self.profiles.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    pub fn profiles(&self) -> Vec<Arc<Profile>> {
        let mut v: Vec<_> = self.profiles.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub(crate) fn profile_and_issuer(&self, profile: &ObjectRef) -> Result<(Arc<Profile>, Arc<Issuer>), CoreError> {
        let profile = self.profile(profile).ok_or_else(|| CoreError::UnknownProfile(profile.clone()))?;
        let issuer = self
            .issuer(&profile.issuer)
            .ok_or_else(|| CoreError::IssuerUnavailable(profile.issuer.clone(), "not loaded".into()))?;
        Ok((profile, issuer))
    }

    /// Step 1 alone: what would be issued, or why not (no side effects).
    pub fn evaluate(&self, req: &IssuanceRequest, now: SystemTime) -> Result<Decision, CoreError> {
        let (profile, issuer) = self.profile_and_issuer(&req.profile)?;
        Ok(self.evaluate_under(req, &profile, &issuer, now))
    }

    fn evaluate_under(&self, req: &IssuanceRequest, profile: &Profile, issuer: &Issuer, now: SystemTime) -> Decision {
        let facts =
            IssuerFacts { id: &issuer.id, not_after: issuer.not_after(), name_constraints: &issuer.name_constraints };
        policy::evaluate(&PolicyInput {
            csr: &req.csr,
            profile,
            issuer: &facts,
            requester: &req.requester,
            requested: req.requested,
            now,
        })
    }

    /// Issues a certificate: check policy, persist, sign, store, then return. When the
    /// profile requires approval the request is kept as an approval record (durable before
    /// this returns) and the answer is [`IssueOutcome::Pending`] with its id; the same
    /// request asked again (a protocol's retry, see [`crate::approval::retry_key`]) is
    /// answered from its record: pending, denied, or the one certificate issued for it.
    pub async fn issue(&self, req: IssuanceRequest) -> Result<IssueOutcome, CoreError> {
        let started = Instant::now();
        let (profile, issuer) = self.profile_and_issuer(&req.profile)?;
        let now = self.now();
        let template = self.allowed(&req, &profile, &issuer, now).await?;
        if profile.approval_required {
            return self.await_approval(req, &profile, &issuer, &template, now).await;
        }
        let (protocol, endpoint) = (req.requester.protocol, req.requester.endpoint.clone());
        let issued = self.sign_and_store(req, &profile, &issuer, template, now).await?;
        let origin = Origin { issuer: &issuer.id, profile: &profile.id, protocol, endpoint: endpoint.as_ref() };
        self.observer.emit(Event::Issued { origin, took: started.elapsed() });
        Ok(IssueOutcome::Issued(Box::new(issued)))
    }

    /// Issues under a profile that is not one of the loaded CertificateProfiles: pkiplane's
    /// own certificates (an endpoint's TLS server certificate), which still go through the
    /// policy engine and land in the inventory like every other.
    pub(crate) async fn issue_under(&self, req: IssuanceRequest, profile: Profile) -> Result<Issued, CoreError> {
        let issuer = self
            .issuer(&profile.issuer)
            .ok_or_else(|| CoreError::IssuerUnavailable(profile.issuer.clone(), "not loaded".into()))?;
        // pkiplane's own certificates never wait for approval (their profiles are built
        // by the core, see `InternalRole::profile`).
        let now = self.now();
        let template = self.allowed(&req, &profile, &issuer, now).await?;
        self.sign_and_store(req, &profile, &issuer, template, now).await
    }

    /// Step 1: the policy decision; a denial is counted and audited.
    pub(crate) async fn allowed(
        &self,
        req: &IssuanceRequest,
        profile: &Profile,
        issuer: &Issuer,
        now: SystemTime,
    ) -> Result<Box<CertificateTemplate>, CoreError> {
        match self.evaluate_under(req, profile, issuer, now) {
            Decision::Allow(t) => Ok(t),
            Decision::Deny(violations) => {
                self.record_denial(req, profile, &violations, now).await;
                Err(CoreError::Denied { profile: profile.id.clone(), violations })
            }
        }
    }

    /// Steps 2 to 4: persist the pending record, sign, store the certificate.
    async fn sign_and_store(
        &self,
        req: IssuanceRequest,
        profile: &Profile,
        issuer: &Issuer,
        template: Box<CertificateTemplate>,
        now: SystemTime,
    ) -> Result<Issued, CoreError> {
        let (serial, record) = self.persist_pending(&req, &template, now).await?;
        self.sign_persisted(&req, profile, issuer, &template, serial, record, now).await
    }

    /// Step 2: persist the pending record. Serials are random; a collision is retried.
    pub(crate) async fn persist_pending(
        &self,
        req: &IssuanceRequest,
        template: &CertificateTemplate,
        now: SystemTime,
    ) -> Result<(Vec<u8>, CertificateRecord), CoreError> {
        let mut attempt = 0;
        let (serial, record) = loop {
            let serial = random_serial();
            let record = pending_record(req, template, &serial, now);
            let write = Instant::now();
            let inserted = self.inventory.insert_pending(&record).await;
            self.observer.emit(Event::StoreWrite { operation: "insert_pending", took: write.elapsed() });
            match inserted {
                Ok(()) => break (serial, record),
                Err(StoreError::DuplicateSerial { .. }) if attempt < 3 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        };
        self.fail_at(FailAt::AfterPersist, req);
        Ok((serial, record))
    }

    /// Steps 3 and 4: sign the persisted record's certificate and store it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sign_persisted(
        &self,
        req: &IssuanceRequest,
        profile: &Profile,
        issuer: &Issuer,
        template: &CertificateTemplate,
        serial: Vec<u8>,
        mut record: CertificateRecord,
        now: SystemTime,
    ) -> Result<Issued, CoreError> {
        // Step 3: sign.
        let der = match sign(issuer, template, &serial) {
            Ok(der) => der,
            Err(e) => {
                let _ = self.inventory.mark_abandoned(&issuer.id, &record.serial).await;
                let mut ev = AuditEvent::new("failed", &req.requester, &profile.id, now);
                ev.reasons = vec![e.to_string()];
                ev.emit();
                return Err(e);
            }
        };

        // Step 4: store, durably, before anyone sees the certificate.
        let write = Instant::now();
        let stored = self.inventory.mark_issued(&issuer.id, &record.serial, &der).await;
        self.observer.emit(Event::StoreWrite { operation: "mark_issued", took: write.elapsed() });
        stored?;
        record.status = CertStatus::Issued;
        record.der = Some(der.clone());
        self.fail_at(FailAt::AfterStore, req);

        let mut ev = AuditEvent::new("issued", &req.requester, &profile.id, now);
        ev.issuer = Some(issuer.id.to_string());
        ev.serial = Some(&record.serial);
        ev.subject = Some(record.subject.clone());
        ev.sans = record.sans.clone();
        ev.emit();

        Ok(Issued { record, der, chain_pem: issuer.chain_pem(), notes: template.notes.clone() })
    }

    /// Aborts the process at `at` when the failpoint names it (and the request's protocol).
    fn fail_at(&self, at: FailAt, req: &IssuanceRequest) {
        if let Some((point, protocol)) = self.failpoint
            && point == at
            && protocol.is_none_or(|p| p == req.requester.protocol)
        {
            std::process::abort();
        }
    }

    pub(crate) async fn record_denial(
        &self,
        req: &IssuanceRequest,
        profile: &Profile,
        violations: &[policy::Violation],
        now: SystemTime,
    ) {
        let mut ev = AuditEvent::new("denied", &req.requester, &profile.id, now).with_reasons(violations);
        ev.issuer = Some(profile.issuer.to_string());
        ev.subject = Some(format_dn(&req.csr.subject));
        ev.sans = req.csr.sans.iter().map(|s| s.to_string()).collect();
        ev.emit();
        let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
        let denial = DenialRecord {
            issuer: Some(profile.issuer.clone()),
            profile: profile.id.clone(),
            protocol: req.requester.protocol,
            endpoint: req.requester.endpoint.clone(),
            requester: req.requester.identity.clone(),
            rules: rules.join(","),
            at: now,
        };
        let origin = Origin {
            issuer: &profile.issuer,
            profile: &profile.id,
            protocol: req.requester.protocol,
            endpoint: req.requester.endpoint.as_ref(),
        };
        self.observer.emit(Event::Denied { origin, rules: &rules });
        if let Err(e) = self.inventory.record_denial(&denial).await {
            tracing::warn!(error = %e, "could not count a policy denial");
        }
    }

    /// Revokes a certificate (an audited decision, counted by the observer).
    pub async fn revoke(&self, req: RevocationRequest) -> Result<RevokeOutcome, CoreError> {
        let RevocationRequest { issuer, serial, reason, requester } = &req;
        let (serial, reason) = (serial.as_str(), *reason);
        let now = SystemTime::now();
        let write = Instant::now();
        let outcome = self.inventory.revoke(issuer, serial, crate::inventory::Revocation { reason, at: now }).await;
        self.observer.emit(Event::StoreWrite { operation: "revoke", took: write.elapsed() });
        let outcome = outcome?;
        if outcome == RevokeOutcome::Revoked {
            let profile = self
                .inventory
                .get(issuer, serial)
                .await?
                .map(|r| r.profile)
                .unwrap_or_else(|| ObjectRef::new(&issuer.namespace, "unknown"));
            self.observer.emit(Event::Revoked { issuer, profile: &profile });
            let mut ev = AuditEvent::new("revoked", requester, &profile, now);
            ev.issuer = Some(issuer.to_string());
            ev.serial = Some(serial);
            ev.reasons = vec![format!("{reason:?}")];
            ev.emit();
        }
        Ok(outcome)
    }

    /// A fresh CRL for `issuer` (DER), with the next CRL number.
    pub async fn generate_crl(&self, issuer: &ObjectRef) -> Result<Vec<u8>, CoreError> {
        Ok(self.publish_crl(issuer).await?.der)
    }

    /// A fresh CRL for `issuer` with the next CRL number, kept as the issuer's last
    /// published CRL (see [`PublishedCrl`]; failing to keep it does not withhold it).
    pub async fn publish_crl(&self, issuer: &ObjectRef) -> Result<PublishedCrl, CoreError> {
        let issuer =
            self.issuer(issuer).ok_or_else(|| CoreError::IssuerUnavailable(issuer.clone(), "not loaded".into()))?;
        let now = SystemTime::now();
        let entries = self.inventory.revoked_entries(&issuer.id, now).await?;
        let number = self.inventory.next_crl_number(&issuer.id).await?;
        let next_update = now + issuer.crl_validity;
        let der = crate::crl::build_crl(&issuer, &entries, number, now, next_update)
            .map_err(|e| CoreError::Signing(e.into()))?;
        self.observer.emit(Event::CrlPublished { issuer: &issuer.id, number, next_update });
        let mut serials: Vec<String> = entries.into_iter().map(|e| e.serial).collect();
        serials.sort();
        let crl = PublishedCrl {
            issuer: issuer.id.clone(),
            this_update: now,
            next_update,
            key_id: issuer.key_id.clone(),
            serials,
            der,
        };
        if let Err(e) = self.inventory.save_crl(&crl).await {
            tracing::warn!(issuer = %issuer.id, error = %e, "could not keep the new CRL as the last published one");
        }
        Ok(crl)
    }
}

impl Ca {
    /// A fresh CRL of `issuer` signed by its key `key_id` (current or retired), with the
    /// next CRL number. Like every CRL of the Issuer it lists all of its revoked,
    /// unexpired certificates (see [`crate::issuer::retired`]).
    pub async fn generate_key_crl(&self, issuer: &ObjectRef, key_id: &[u8]) -> Result<Vec<u8>, CoreError> {
        let key = self
            .keys(issuer)
            .into_iter()
            .find(|k| k.key_id() == key_id)
            .ok_or_else(|| CoreError::NotFound(format!("issuer {issuer} has no key {}", hex::encode(key_id))))?;
        let validity = self.issuer(issuer).map(|i| i.crl_validity).unwrap_or_default();
        let now = SystemTime::now();
        let entries = self.inventory.revoked_entries(issuer, now).await?;
        let number = self.inventory.next_crl_number(issuer).await?;
        crate::crl::build_key_crl(&key, &entries, number, now, now + validity).map_err(|e| CoreError::Signing(e.into()))
    }
}

fn pending_record(req: &IssuanceRequest, t: &CertificateTemplate, serial: &[u8], now: SystemTime) -> CertificateRecord {
    CertificateRecord {
        serial: hex::encode(serial),
        issuer: t.issuer.clone(),
        profile: t.profile.clone(),
        protocol: req.requester.protocol,
        endpoint: req.requester.endpoint.clone(),
        requester: req.requester.identity.clone(),
        subject: format_dn(&t.subject),
        sans: t.sans.iter().map(|s| s.to_string()).collect(),
        key_algorithm: t.key.to_string(),
        not_before: t.not_before,
        not_after: t.not_after,
        status: CertStatus::Pending,
        revocation: None,
        der: None,
        renewed_from: req.renewal_of.clone(),
        created_at: now,
        exchange: req.exchange.clone(),
    }
}

fn sign(issuer: &Issuer, t: &CertificateTemplate, serial: &[u8]) -> Result<Vec<u8>, CoreError> {
    let extensions = t.extensions(&issuer.key_id).map_err(|e| CoreError::Signing(e.into()))?;
    let fields = CertificateFields {
        serial,
        issuer: issuer.subject(),
        subject: &t.subject,
        not_before: t.not_before,
        not_after: t.not_after,
        spki: &t.spki,
        extensions,
    };
    sign_certificate(&fields, issuer.signer()).map_err(|e| CoreError::Signing(e.into()))
}
