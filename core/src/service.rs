//! What a protocol needs from the CA, as one trait.
//!
//! The protocol crates talk to the CA only through [`Authority`], so the same protocol
//! code runs next to the CA (standalone `pkiplane serve`: the in-process [`Ca`]) or in an
//! endpoint pod that holds no CA key (`pkiplane endpoint`: a remote client of the CA
//! service over mutual TLS). Everything a caller could use to influence policy stays on
//! the CA side: pkiplane's own certificates are asked for by *role*
//! ([`InternalRole`]) and the CA builds their profile, so a remote caller never sends one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::approval::{ApprovalFilter, ApprovalRequest};
use crate::error::CoreError;
use crate::inventory::{CertificateRecord, RevokeOutcome};
use crate::issuance::{Ca, IssuanceRequest, IssueOutcome, Issued, RevocationRequest};
use crate::issuer::IssuerInfo;
use crate::keys::KeyFamily;
use crate::model::{ObjectRef, Protocol, Requester};
use crate::policy::RequestedValidity;
use crate::profile::*;
use crate::x509::csr::ParsedCsr;
use crate::x509::extensions::ID_KP_CMC_RA;
use crate::x509::names::SubjectAttribute;
use crate::x509::{KeyUsageBit, eku_from_name};

/// The jobs pkiplane's own certificates do. Each has a fixed internal profile built by
/// the CA ([`InternalRole::profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InternalRole {
    /// An endpoint's TLS server certificate (DNS/IP SANs, serverAuth).
    ServingTls,
    /// A SCEP endpoint's RA certificate (RSA, keyEncipherment + digitalSignature).
    ScepRa,
    /// A CMP endpoint's response-protection certificate (cmcRA).
    CmpProtection,
    /// An EST endpoint's signer of server-generated key packages.
    EstSigner,
}

/// Lifetime of serving certificates pkiplane issues for its own endpoints.
pub const SERVING_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Lifetime of SCEP RA certificates (capped by the Issuer's own notAfter by policy).
pub const RA_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// Longest lifetime of a CMP protection certificate.
pub const CMP_PROTECTION_MAX_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// Lifetime of a key-package signing certificate.
pub const EST_SIGNER_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

impl InternalRole {
    pub const ALL: [InternalRole; 4] =
        [InternalRole::ServingTls, InternalRole::ScepRa, InternalRole::CmpProtection, InternalRole::EstSigner];

    /// The role's name on the wire (`serving-tls`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            InternalRole::ServingTls => "serving-tls",
            InternalRole::ScepRa => "scep-ra",
            InternalRole::CmpProtection => "cmp-protection",
            InternalRole::EstSigner => "est-signer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The requester identity recorded in the inventory for this role.
    fn requester_identity(self) -> &'static str {
        match self {
            InternalRole::ServingTls => "pkiplane-serve",
            InternalRole::ScepRa => "pkiplane-scep-ra",
            InternalRole::CmpProtection => "pkiplane-cmp",
            InternalRole::EstSigner => "pkiplane-est",
        }
    }

    /// The id of the internal profile of `endpoint` for this role under `issuer`.
    pub fn profile_id(self, endpoint: &ObjectRef, issuer: &ObjectRef) -> ObjectRef {
        let name = match self {
            InternalRole::ServingTls => format!("{}.serving-tls", endpoint.name),
            InternalRole::ScepRa => format!("{}.scep-ra", endpoint.name),
            InternalRole::CmpProtection => format!("{}.cmp-protection.{}", endpoint.name, issuer.name),
            InternalRole::EstSigner => format!("{}.est-keygen-signer", endpoint.name),
        };
        ObjectRef::new(&endpoint.namespace, name)
    }

    /// The profile certificates of this role are issued under. `lifetime` is honoured
    /// only where the role allows a choice (CMP protection), capped by the role's maximum.
    pub fn profile(self, endpoint: &ObjectRef, issuer: &ObjectRef, lifetime: Option<Duration>) -> Profile {
        let id = self.profile_id(endpoint, issuer);
        let issuer = issuer.clone();
        let required = |attribute| SubjectRule {
            attribute,
            presence: Presence::Required,
            value: None,
            source: ValueSource::Csr,
            must_match_san: false,
            pattern: None,
        };
        match self {
            InternalRole::ServingTls => Profile {
                sans: SanPolicy {
                    max_count: 100,
                    required: true,
                    dns: Some(DnsRule { suffixes: vec![], allow_wildcards: false }),
                    ip: Some(IpRule::default()),
                    uri: None,
                    email: None,
                },
                ..Profile::internal(
                    id,
                    format!("TLS server certificate of endpoint {endpoint}"),
                    issuer,
                    SERVING_LIFETIME,
                    vec![KeyUsageBit::DigitalSignature],
                    eku_from_name("serverAuth").into_iter().collect(),
                )
            },
            InternalRole::ScepRa => Profile {
                keys: KeyPolicy {
                    families: vec![KeyFamily::Rsa],
                    ecdsa_curves: vec![],
                    rsa_min_bits: 2048,
                    rsa_max_bits: 4096,
                },
                subject: SubjectPolicy {
                    rules: vec![required(SubjectAttribute::Organization), required(SubjectAttribute::CommonName)],
                    unlisted: UnlistedAttributes::Refuse,
                },
                ..Profile::internal(
                    id,
                    format!("SCEP RA certificate of endpoint {endpoint}"),
                    issuer,
                    RA_LIFETIME,
                    vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment],
                    vec![],
                )
            },
            InternalRole::CmpProtection => Profile::internal(
                id,
                format!("CMP protection certificate of endpoint {endpoint}"),
                issuer,
                lifetime.unwrap_or(SERVING_LIFETIME).min(CMP_PROTECTION_MAX_LIFETIME),
                vec![KeyUsageBit::DigitalSignature],
                vec![ID_KP_CMC_RA],
            ),
            InternalRole::EstSigner => Profile {
                renewal: RenewalPolicy::RemainingFraction(0.5),
                subject: SubjectPolicy {
                    rules: vec![required(SubjectAttribute::CommonName)],
                    unlisted: UnlistedAttributes::Refuse,
                },
                ..Profile::internal(
                    id,
                    format!("signs server-generated key packages of EST endpoint {endpoint}"),
                    issuer,
                    EST_SIGNER_LIFETIME,
                    vec![KeyUsageBit::DigitalSignature],
                    vec![],
                )
            },
        }
    }
}

/// A request for one of pkiplane's own certificates: the role says which profile, the
/// CSR carries the key and names (judged by that profile like any request).
#[derive(Clone, Debug)]
pub struct InternalCertRequest {
    pub role: InternalRole,
    pub endpoint: ObjectRef,
    pub issuer: ObjectRef,
    pub csr: ParsedCsr,
    /// A shorter lifetime than the role's default, where the role allows one.
    pub lifetime: Option<Duration>,
}

/// The certificate authority as a protocol sees it: one word, `Authority`, whatever
/// stands behind it. Implemented in-process by [`Ca`] and remotely by
/// `RemoteAuthority`, the CA service's client (`pkiplane-caservice`). Two issuing verbs,
/// one per meaning: [`Authority::issue`] under a CertificateProfile (policy, maybe
/// approval) and [`Authority::issue_internal`] for pkiplane's own certificates.
///
/// `issuer` and `profile` are synchronous: a remote implementation answers them from a
/// snapshot it keeps fresh, since protocols consult them on every request.
#[async_trait]
pub trait Authority: Send + Sync {
    /// Issues a certificate: policy, durable record, signature; or the request waits for
    /// approval (see [`Ca::issue`]).
    async fn issue(&self, req: IssuanceRequest) -> Result<IssueOutcome, CoreError>;
    /// Issues one of pkiplane's own certificates under the role's internal profile.
    async fn issue_internal(&self, req: InternalCertRequest) -> Result<Issued, CoreError>;
    /// Revokes a certificate (see [`Ca::revoke`]).
    async fn revoke(&self, req: RevocationRequest) -> Result<RevokeOutcome, CoreError>;
    /// The public view of an Issuer.
    fn issuer(&self, id: &ObjectRef) -> Option<Arc<IssuerInfo>>;
    /// A compiled CertificateProfile.
    fn profile(&self, id: &ObjectRef) -> Option<Arc<Profile>>;
    /// Inventory records with this serial, across issuers.
    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, CoreError>;
    /// The inventory record of (issuer, serial).
    async fn certificate(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, CoreError>;
    /// The inventory records of one protocol exchange (see `IssuanceRequest::exchange`):
    /// how a protocol finds a certificate its exchange did not get to record (a crash
    /// between signing and saving the protocol's state).
    async fn exchange_certificates(&self, exchange: &str) -> Result<Vec<CertificateRecord>, CoreError>;
    /// A fresh CRL of `issuer` (DER).
    async fn generate_crl(&self, issuer: &ObjectRef) -> Result<Vec<u8>, CoreError>;
    /// Asks again for the approval request `request_id` (see [`Ca::approval_outcome`]):
    /// pending, denied with the approver's reason, or its one certificate.
    async fn approval_outcome(&self, request_id: &str) -> Result<IssueOutcome, CoreError>;
    /// Approval requests matching `filter`, newest first (see [`Ca::approval_requests`]).
    async fn approval_requests(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, CoreError>;
    /// Approves one waiting request (see [`Ca::approve`]).
    async fn approve(
        &self,
        request_id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, CoreError>;
    /// Denies one waiting request, for `reason` (see [`Ca::deny`]).
    async fn deny(&self, request_id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest, CoreError>;
}

impl Ca {
    /// Issues a certificate of `req.role` under the profile the CA builds for the role.
    pub async fn issue_internal(&self, req: InternalCertRequest) -> Result<Issued, CoreError> {
        let profile = req.role.profile(&req.endpoint, &req.issuer, req.lifetime);
        let request = IssuanceRequest {
            csr: req.csr,
            profile: profile.id.clone(),
            requester: Requester::new(Protocol::Local, req.role.requester_identity()).at_endpoint(req.endpoint),
            requested: RequestedValidity::default(),
            renewal_of: None,
            exchange: None,
        };
        self.issue_under(request, profile).await
    }
}

#[async_trait]
impl Authority for Ca {
    async fn issue(&self, req: IssuanceRequest) -> Result<IssueOutcome, CoreError> {
        Ca::issue(self, req).await
    }

    async fn issue_internal(&self, req: InternalCertRequest) -> Result<Issued, CoreError> {
        Ca::issue_internal(self, req).await
    }

    async fn revoke(&self, req: RevocationRequest) -> Result<RevokeOutcome, CoreError> {
        Ca::revoke(self, req).await
    }

    fn issuer(&self, id: &ObjectRef) -> Option<Arc<IssuerInfo>> {
        self.issuer_info(id)
    }

    fn profile(&self, id: &ObjectRef) -> Option<Arc<Profile>> {
        Ca::profile(self, id)
    }

    async fn find_serial(&self, serial: &str) -> Result<Vec<CertificateRecord>, CoreError> {
        Ok(self.inventory().find_serial(serial).await?)
    }

    async fn certificate(&self, issuer: &ObjectRef, serial: &str) -> Result<Option<CertificateRecord>, CoreError> {
        Ok(self.inventory().get(issuer, serial).await?)
    }

    async fn exchange_certificates(&self, exchange: &str) -> Result<Vec<CertificateRecord>, CoreError> {
        let filter = crate::inventory::InventoryFilter { exchange: Some(exchange.to_owned()), ..Default::default() };
        Ok(self.inventory().list(&filter).await?)
    }

    async fn generate_crl(&self, issuer: &ObjectRef) -> Result<Vec<u8>, CoreError> {
        Ca::generate_crl(self, issuer).await
    }

    async fn approval_outcome(&self, request_id: &str) -> Result<IssueOutcome, CoreError> {
        Ca::approval_outcome(self, request_id).await
    }

    async fn approval_requests(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRequest>, CoreError> {
        Ca::approval_requests(self, filter).await
    }

    async fn approve(
        &self,
        request_id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRequest, CoreError> {
        Ca::approve(self, request_id, approver, reason).await
    }

    async fn deny(&self, request_id: &str, approver: &str, reason: &str) -> Result<ApprovalRequest, CoreError> {
        Ca::deny(self, request_id, approver, reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_profiles_are_per_endpoint() {
        for r in InternalRole::ALL {
            assert_eq!(InternalRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(InternalRole::parse("root-ca"), None);
        let ep = ObjectRef::new("pki", "acme");
        let iss = ObjectRef::new("pki", "int");
        let p = InternalRole::ServingTls.profile(&ep, &iss, None);
        assert_eq!(p.id, ObjectRef::new("pki", "acme.serving-tls"));
        assert_eq!(p.issuer, iss);
        assert_eq!(p.requesters.protocols, vec![Protocol::Local]);
        let cmp = InternalRole::CmpProtection.profile(&ep, &iss, Some(Duration::from_secs(10 * 365 * 86_400)));
        assert_eq!(cmp.validity.max, CMP_PROTECTION_MAX_LIFETIME);
    }
}
