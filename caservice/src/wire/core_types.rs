//! Core types on the wire: CSRs, issuance requests and results, errors, issuers.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use pkiplane_core::approval::ApprovalError;
use pkiplane_core::error::CoreError;
use pkiplane_core::inventory::{CertStatus, CertificateRecord, Revocation, RevokeOutcome, StoreError};
use pkiplane_core::issuance::{ApprovalDenied, IssuanceRequest, IssueOutcome, Issued, Pending};
use pkiplane_core::issuer::IssuerInfo;
use pkiplane_core::issuer::NextCa;
use pkiplane_core::keys::PublicKeyInfo;
use pkiplane_core::model::{ObjectRef, Requester};
use pkiplane_core::policy::{RequestedValidity, Violation};
use pkiplane_core::x509::San;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::csr::{CsrError, ParsedCsr};
use pkiplane_core::x509::names::name_attributes;
use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::name::RdnSequence;

use super::{ProfileWire, WireError};

/// Base64 (standard) bytes.
pub mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD.decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn b64_list(v: &[Vec<u8>]) -> Vec<String> {
    v.iter().map(|b| STANDARD.encode(b)).collect()
}

fn from_b64(s: &str) -> Result<Vec<u8>, WireError> {
    STANDARD.decode(s).map_err(|e| WireError(format!("base64: {e}")))
}

fn der_err(what: &str) -> impl Fn(der::Error) -> WireError + '_ {
    move |e| WireError(format!("{what}: {e}"))
}

/// A CSR the endpoint verified (or, for CMP, a certificate template whose proof of
/// possession it verified): every parsed field, since CMP requests have no PKCS#10 DER
/// to parse again. The challenge password never travels.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsrWire {
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    #[serde(with = "b64")]
    pub subject: Vec<u8>,
    #[serde(with = "b64")]
    pub spki: Vec<u8>,
    pub key: PublicKeyInfo,
    /// `[kind, value]` with kind DNS, IP, URI or email.
    pub sans: Vec<(String, String)>,
    pub unsupported_sans: Vec<String>,
    /// DER of each requested extension.
    pub extensions: Vec<String>,
    pub signature_algorithm: String,
}

impl CsrWire {
    pub fn from_csr(c: &ParsedCsr) -> Result<Self, WireError> {
        let mut extensions = Vec::new();
        for e in &c.extensions {
            extensions.push(e.to_der().map_err(der_err("extension"))?);
        }
        Ok(Self {
            der: c.der.clone(),
            subject: c.subject.to_der().map_err(der_err("subject"))?,
            spki: c.spki_der.clone(),
            key: c.key.clone(),
            sans: c.sans.iter().map(|s| (s.kind().as_str().to_owned(), s.value())).collect(),
            unsupported_sans: c.unsupported_sans.clone(),
            extensions: b64_list(&extensions),
            signature_algorithm: c.signature_algorithm.to_string(),
        })
    }

    pub fn into_csr(self) -> Result<ParsedCsr, WireError> {
        let subject = RdnSequence::from_der(&self.subject).map_err(der_err("subject"))?;
        let subject_attributes = name_attributes(&subject).map_err(WireError)?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&self.spki).map_err(der_err("public key"))?;
        let mut sans = Vec::new();
        for (kind, value) in &self.sans {
            sans.push(match kind.as_str() {
                "DNS" => San::Dns(value.clone()),
                "IP" => San::Ip(value.parse().map_err(|_| WireError(format!("IP SAN `{value}`")))?),
                "URI" => San::Uri(value.clone()),
                "email" => San::Email(value.clone()),
                other => return Err(WireError(format!("SAN kind `{other}`"))),
            });
        }
        let mut extensions = Vec::new();
        for e in &self.extensions {
            extensions.push(Extension::from_der(&from_b64(e)?).map_err(der_err("extension"))?);
        }
        let signature_algorithm = const_oid::ObjectIdentifier::new(&self.signature_algorithm)
            .map_err(|e| WireError(format!("signature algorithm: {e}")))?;
        Ok(ParsedCsr {
            der: self.der,
            subject,
            subject_attributes,
            spki,
            spki_der: self.spki,
            key: self.key,
            sans,
            unsupported_sans: self.unsupported_sans,
            extensions,
            challenge_password: None,
            signature_algorithm,
        })
    }
}

/// `POST /v1/issue`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRequestWire {
    pub csr: CsrWire,
    pub profile: ObjectRef,
    pub requester: Requester,
    pub not_before: Option<SystemTime>,
    pub not_after: Option<SystemTime>,
    pub renewal_of: Option<String>,
    #[serde(default)]
    pub exchange: Option<String>,
}

impl IssueRequestWire {
    pub fn from_request(r: &IssuanceRequest) -> Result<Self, WireError> {
        Ok(Self {
            csr: CsrWire::from_csr(&r.csr)?,
            profile: r.profile.clone(),
            requester: r.requester.clone(),
            not_before: r.requested.not_before,
            not_after: r.requested.not_after,
            renewal_of: r.renewal_of.clone(),
            exchange: r.exchange.clone(),
        })
    }

    pub fn into_request(self) -> Result<IssuanceRequest, WireError> {
        Ok(IssuanceRequest {
            csr: self.csr.into_csr()?,
            profile: self.profile,
            requester: self.requester,
            requested: RequestedValidity { not_before: self.not_before, not_after: self.not_after },
            renewal_of: self.renewal_of,
            exchange: self.exchange,
        })
    }
}

/// An issued certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedWire {
    pub record: CertificateRecord,
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    pub chain_pem: String,
    pub notes: Vec<String>,
}

impl From<&Issued> for IssuedWire {
    fn from(i: &Issued) -> Self {
        Self { record: i.record.clone(), der: i.der.clone(), chain_pem: i.chain_pem.clone(), notes: i.notes.clone() }
    }
}

impl From<IssuedWire> for Issued {
    fn from(i: IssuedWire) -> Self {
        Issued { record: i.record, der: i.der, chain_pem: i.chain_pem, notes: i.notes }
    }
}

/// `POST /v1/issue`'s answer: a certificate, or the request waits for approval.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum IssueOutcomeWire {
    Issued(Box<IssuedWire>),
    #[serde(rename_all = "camelCase")]
    Pending {
        profile: ObjectRef,
        request_id: String,
    },
    /// An approver denied the request.
    #[serde(rename_all = "camelCase")]
    Denied {
        profile: ObjectRef,
        request_id: String,
        by: String,
        reason: String,
    },
}

impl From<&IssueOutcome> for IssueOutcomeWire {
    fn from(o: &IssueOutcome) -> Self {
        match o {
            IssueOutcome::Issued(i) => Self::Issued(Box::new(IssuedWire::from(i.as_ref()))),
            IssueOutcome::Pending(p) => Self::Pending { profile: p.profile.clone(), request_id: p.request_id.clone() },
            IssueOutcome::Denied(d) => Self::Denied {
                profile: d.profile.clone(),
                request_id: d.request_id.clone(),
                by: d.by.clone(),
                reason: d.reason.clone(),
            },
        }
    }
}

impl From<IssueOutcomeWire> for IssueOutcome {
    fn from(o: IssueOutcomeWire) -> Self {
        match o {
            IssueOutcomeWire::Issued(i) => IssueOutcome::Issued(Box::new((*i).into())),
            IssueOutcomeWire::Pending { profile, request_id } => IssueOutcome::Pending(Pending { profile, request_id }),
            IssueOutcomeWire::Denied { profile, request_id, by, reason } => {
                IssueOutcome::Denied(ApprovalDenied { profile, request_id, by, reason })
            }
        }
    }
}

/// `POST /v1/roles/issue`: an internal certificate for the caller's own endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleIssueWire {
    pub role: String,
    pub endpoint: ObjectRef,
    pub issuer: ObjectRef,
    pub csr: CsrWire,
    pub lifetime_seconds: Option<u64>,
}

/// `POST /v1/revoke`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeWire {
    pub issuer: ObjectRef,
    pub serial: String,
    /// RFC 5280 reason code.
    pub reason: u8,
    pub requester: Requester,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum RevokeOutcomeWire {
    Revoked,
    AlreadyRevoked { revocation: Revocation },
    NotFound,
    NotIssued { status: CertStatus },
}

impl From<&RevokeOutcome> for RevokeOutcomeWire {
    fn from(o: &RevokeOutcome) -> Self {
        match o {
            RevokeOutcome::Revoked => Self::Revoked,
            RevokeOutcome::AlreadyRevoked(r) => Self::AlreadyRevoked { revocation: *r },
            RevokeOutcome::NotFound => Self::NotFound,
            RevokeOutcome::NotIssued(s) => Self::NotIssued { status: *s },
        }
    }
}

impl From<RevokeOutcomeWire> for RevokeOutcome {
    fn from(o: RevokeOutcomeWire) -> Self {
        match o {
            RevokeOutcomeWire::Revoked => Self::Revoked,
            RevokeOutcomeWire::AlreadyRevoked { revocation } => Self::AlreadyRevoked(revocation),
            RevokeOutcomeWire::NotFound => Self::NotFound,
            RevokeOutcomeWire::NotIssued { status } => Self::NotIssued(status),
        }
    }
}

/// `POST /v1/certificates/lookup`: by serial, within one issuer or across all.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupWire {
    pub serial: String,
    pub issuer: Option<ObjectRef>,
    /// Instead of a serial: the certificates of one protocol exchange of the caller.
    #[serde(default)]
    pub exchange: Option<String>,
}

/// `POST /v1/crl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlRequestWire {
    pub issuer: ObjectRef,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlWire {
    #[serde(with = "b64")]
    pub der: Vec<u8>,
}

/// The public view of an Issuer, for the endpoint's snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerInfoWire {
    pub id: ObjectRef,
    #[serde(with = "b64")]
    pub certificate: Vec<u8>,
    /// DER, nearest first.
    pub chain: Vec<String>,
    pub key_id: String,
    pub crl_validity_seconds: u64,
    /// The staged next CA (key rollover), absent while none is staged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextCaWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ObjectRef>,
}

/// A staged next CA: its certificate, the chain above it, and for a root the RFC 9810
/// section 4.4 link certificates (all DER, base64).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextCaWire {
    pub certificate: String,
    #[serde(default)]
    pub chain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_with_old: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_with_new: Option<String>,
}

impl From<&NextCa> for NextCaWire {
    fn from(n: &NextCa) -> Self {
        Self {
            certificate: STANDARD.encode(&n.cert.der),
            chain: n.chain.iter().map(|c| STANDARD.encode(&c.der)).collect(),
            new_with_old: n.new_with_old.as_ref().map(|c| STANDARD.encode(&c.der)),
            old_with_new: n.old_with_new.as_ref().map(|c| STANDARD.encode(&c.der)),
        }
    }
}

impl NextCaWire {
    pub fn into_next(self) -> Result<NextCa, WireError> {
        let cert = |c: &str| -> Result<CertInfo, WireError> {
            CertInfo::from_der(&from_b64(c)?).map_err(der_err("next CA certificate"))
        };
        Ok(NextCa {
            cert: cert(&self.certificate)?,
            chain: self.chain.iter().map(|c| cert(c)).collect::<Result<_, _>>()?,
            new_with_old: self.new_with_old.as_deref().map(cert).transpose()?,
            old_with_new: self.old_with_new.as_deref().map(cert).transpose()?,
        })
    }
}

impl From<&IssuerInfo> for IssuerInfoWire {
    fn from(i: &IssuerInfo) -> Self {
        Self {
            id: i.id.clone(),
            certificate: i.cert.der.clone(),
            chain: i.chain.iter().map(|c| STANDARD.encode(&c.der)).collect(),
            key_id: hex::encode(&i.key_id),
            crl_validity_seconds: i.crl_validity.as_secs(),
            next: i.next.as_ref().map(NextCaWire::from),
            parent: i.parent.clone(),
        }
    }
}

impl IssuerInfoWire {
    pub fn into_info(self) -> Result<IssuerInfo, WireError> {
        let cert = CertInfo::from_der(&self.certificate).map_err(der_err("issuer certificate"))?;
        let mut chain = Vec::new();
        for c in &self.chain {
            chain.push(CertInfo::from_der(&from_b64(c)?).map_err(der_err("issuer chain"))?);
        }
        Ok(IssuerInfo {
            id: self.id,
            cert,
            chain,
            key_id: hex::decode(&self.key_id).map_err(|e| WireError(format!("key id: {e}")))?,
            crl_validity: Duration::from_secs(self.crl_validity_seconds),
            next: self.next.map(NextCaWire::into_next).transpose()?,
            parent: self.parent,
        })
    }
}

/// `GET /v1/snapshot`: what an endpoint consults synchronously.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotWire {
    pub issuers: Vec<IssuerInfoWire>,
    pub profiles: Vec<ProfileWire>,
}

/// A [`CoreError`], variant by variant, so a denial through the CA service names the
/// same rules (and maps to the same protocol errors) as in process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "variant", rename_all = "camelCase")]
pub enum CoreErrorWire {
    Csr { kind: String, message: String },
    Denied { profile: ObjectRef, violations: Vec<(String, String)> },
    UnknownProfile { profile: ObjectRef },
    IssuerUnavailable { issuer: ObjectRef, reason: String },
    Store { store: StoreErrorWire },
    Signing { message: String },
    NotFound { message: String },
    Approval { error: ApprovalError },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StoreErrorWire {
    DuplicateSerial { issuer: String, serial: String },
    NotFound { issuer: String, serial: String },
    WrongState { serial: String, status: CertStatus, expected: CertStatus },
    Invalid { message: String },
    Unavailable { message: String },
    Corrupt { message: String },
}

impl From<&StoreError> for StoreErrorWire {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::DuplicateSerial { issuer, serial } => {
                Self::DuplicateSerial { issuer: issuer.clone(), serial: serial.clone() }
            }
            StoreError::NotFound { issuer, serial } => {
                Self::NotFound { issuer: issuer.clone(), serial: serial.clone() }
            }
            StoreError::WrongState { serial, status, expected } => {
                Self::WrongState { serial: serial.clone(), status: *status, expected: *expected }
            }
            StoreError::Invalid { .. } => Self::Invalid { message: e.detail() },
            StoreError::Unavailable { .. } => Self::Unavailable { message: e.detail() },
            StoreError::Corrupt { .. } => Self::Corrupt { message: e.detail() },
        }
    }
}

impl From<StoreErrorWire> for StoreError {
    fn from(e: StoreErrorWire) -> Self {
        match e {
            StoreErrorWire::DuplicateSerial { issuer, serial } => Self::DuplicateSerial { issuer, serial },
            StoreErrorWire::NotFound { issuer, serial } => Self::NotFound { issuer, serial },
            StoreErrorWire::WrongState { serial, status, expected } => Self::WrongState { serial, status, expected },
            StoreErrorWire::Invalid { message } => Self::invalid(message),
            StoreErrorWire::Unavailable { message } => Self::unavailable(message),
            StoreErrorWire::Corrupt { message } => Self::corrupt(message),
        }
    }
}

fn csr_error_wire(e: &CsrError) -> (String, String) {
    let (kind, message) = match e {
        CsrError::TooLarge(n) => ("tooLarge", n.to_string()),
        CsrError::Pem(p) => ("der", p.to_string()),
        CsrError::Der(m) => ("der", m.clone()),
        CsrError::UnsupportedSignatureAlgorithm(m) => ("unsupportedSignatureAlgorithm", m.clone()),
        CsrError::WeakSignatureAlgorithm(m) => ("weakSignatureAlgorithm", m.clone()),
        CsrError::UnsupportedKey(m) => ("unsupportedKey", m.clone()),
        CsrError::BadSignature => ("badSignature", String::new()),
        CsrError::DuplicateExtension(m) => ("duplicateExtension", m.clone()),
        CsrError::MalformedExtension(a, b) => ("malformedExtension", format!("{a}\n{b}")),
        CsrError::BadSubject(m) => ("badSubject", m.clone()),
    };
    (kind.to_owned(), message)
}

fn csr_error(kind: &str, m: String) -> CsrError {
    match kind {
        "tooLarge" => CsrError::TooLarge(m.parse().unwrap_or(0)),
        "unsupportedSignatureAlgorithm" => CsrError::UnsupportedSignatureAlgorithm(m),
        "weakSignatureAlgorithm" => CsrError::WeakSignatureAlgorithm(m),
        "unsupportedKey" => CsrError::UnsupportedKey(m),
        "badSignature" => CsrError::BadSignature,
        "duplicateExtension" => CsrError::DuplicateExtension(m),
        "malformedExtension" => {
            let (a, b) = m.split_once('\n').unwrap_or((m.as_str(), ""));
            CsrError::MalformedExtension(a.to_owned(), b.to_owned())
        }
        "badSubject" => CsrError::BadSubject(m),
        _ => CsrError::Der(m),
    }
}

impl From<&CoreError> for CoreErrorWire {
    fn from(e: &CoreError) -> Self {
        match e {
            CoreError::Csr(c) => {
                let (kind, message) = csr_error_wire(c);
                Self::Csr { kind, message }
            }
            CoreError::Denied { profile, violations } => Self::Denied {
                profile: profile.clone(),
                violations: violations.iter().map(|v| (v.rule.clone(), v.message.clone())).collect(),
            },
            CoreError::UnknownProfile(p) => Self::UnknownProfile { profile: p.clone() },
            CoreError::IssuerUnavailable(i, r) => Self::IssuerUnavailable { issuer: i.clone(), reason: r.clone() },
            CoreError::Store(s) => Self::Store { store: s.into() },
            CoreError::Signing(m) => Self::Signing { message: m.to_string() },
            CoreError::NotFound(m) => Self::NotFound { message: m.clone() },
            CoreError::Approval(a) => Self::Approval { error: a.clone() },
        }
    }
}

impl From<CoreErrorWire> for CoreError {
    fn from(e: CoreErrorWire) -> Self {
        match e {
            CoreErrorWire::Csr { kind, message } => CoreError::Csr(csr_error(&kind, message)),
            CoreErrorWire::Denied { profile, violations } => CoreError::Denied {
                profile,
                violations: violations.into_iter().map(|(r, m)| Violation::new(r, m)).collect(),
            },
            CoreErrorWire::UnknownProfile { profile } => CoreError::UnknownProfile(profile),
            CoreErrorWire::IssuerUnavailable { issuer, reason } => CoreError::IssuerUnavailable(issuer, reason),
            CoreErrorWire::Store { store } => CoreError::Store(store.into()),
            CoreErrorWire::Signing { message } => CoreError::Signing(message.into()),
            CoreErrorWire::NotFound { message } => CoreError::NotFound(message),
            CoreErrorWire::Approval { error } => CoreError::Approval(error),
        }
    }
}

/// `POST /v1/approvals/decide`: approve or deny one request (the operator only).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDecisionWire {
    pub request_id: String,
    pub approve: bool,
    pub approver: String,
    pub reason: Option<String>,
}

/// `POST /v1/approvals/outcome`: ask again for one request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalOutcomeWire {
    pub request_id: String,
}
