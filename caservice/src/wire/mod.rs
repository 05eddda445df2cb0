//! The JSON of the internal API. Public shapes (`/v1/issuers`, `/v1/summary`,
//! `/v1/internal-certificates`) are what the operator reads (docs/architecture.md, "Trust
//! boundaries"); the rest is private to this
//! crate (server and client are built from the same types, so they cannot drift).

mod core_types;
mod profile;
pub mod state;

use pkiplane_core::inventory::InventoryCounts;
use pkiplane_core::model::ObjectRef;
use serde::{Deserialize, Serialize};

pub use core_types::*;
pub use profile::ProfileWire;

/// A wire value that does not decode into the core type.
#[derive(Debug, thiserror::Error)]
#[error("malformed CA service message: {0}")]
pub struct WireError(pub String);

/// Largest request or response body either side accepts.
pub const MAX_BODY: usize = 1024 * 1024;

/// `GET /v1/issuers` element (operator: Issuer status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerStatus {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    /// Why the Issuer is not ready (its certificate fields are then absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    /// The certificates above this CA up to the root, nearest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_pem: Option<String>,
    /// SHA-256 of the certificate DER, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// During a key rollover: the staged next CA certificate (PEM) that takes over at
    /// promotion, announced early so relying parties can trust it in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_certificate_pem: Option<String>,
}

/// `GET /v1/summary` (operator: status counts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub issuers: Vec<InventoryCounts>,
    pub profiles: Vec<InventoryCounts>,
    pub endpoints: Vec<InventoryCounts>,
    pub profile_protocols: Vec<InventoryCounts>,
    pub endpoint_profiles: Vec<InventoryCounts>,
}

/// Lookups by the keys the CA service uses: `ns/name`; `ns/name|PROTOCOL` for
/// profileProtocols; `endpointNs/endpointName|profileNs/profileName` for endpointProfiles.
impl Summary {
    fn find<'a>(list: &'a [InventoryCounts], key: &str) -> Option<&'a InventoryCounts> {
        list.iter().find(|c| c.key == key)
    }
    pub fn issuer(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.issuers, &format!("{ns}/{name}"))
    }
    pub fn profile(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.profiles, &format!("{ns}/{name}"))
    }
    pub fn endpoint(&self, ns: &str, name: &str) -> Option<&InventoryCounts> {
        Self::find(&self.endpoints, &format!("{ns}/{name}"))
    }
    pub fn endpoint_profile(&self, ns: &str, endpoint: &str, profile: &str) -> Option<&InventoryCounts> {
        Self::find(&self.endpoint_profiles, &format!("{ns}/{endpoint}|{ns}/{profile}"))
    }
    /// The per-protocol counts of a profile, by protocol name.
    pub fn profile_protocols(&self, ns: &str, name: &str) -> Vec<(String, &InventoryCounts)> {
        let prefix = format!("{ns}/{name}|");
        self.profile_protocols.iter().filter_map(|c| c.key.strip_prefix(&prefix).map(|p| (p.to_string(), c))).collect()
    }
}

/// `POST /v1/internal-certificates`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalCertificateRequest {
    /// `serving-tls`, `scep-ra`, `cmp-protection` or `est-signer`.
    pub role: String,
    pub endpoint: ObjectRef,
    pub issuer: Option<ObjectRef>,
    pub csr_pem: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    /// Private extension: a shorter lifetime where the role allows one (CMP protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_seconds: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalCertificateResponse {
    pub certificate_pem: String,
    /// The issuing CA and every certificate above it.
    pub chain_pem: String,
}

/// An error answer: the core's error kind (stable label) and the error itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `bad_request`, `denied`, `not_found`, `unavailable`,
    /// `internal`, or `forbidden` (the caller's identity may not do this).
    pub kind: String,
    pub message: String,
    /// The core error, so the client rebuilds the same `CoreError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CoreErrorWire>,
}

#[cfg(test)]
mod tests {
    use pkiplane_core::error::CoreError;
    use pkiplane_core::keys::{KeyAlgorithm, generate_key};
    use pkiplane_core::policy::Violation;
    use pkiplane_core::service::InternalRole;
    use pkiplane_core::x509::San;
    use pkiplane_core::x509::csr::{CsrOptions, ParsedCsr};
    use pkiplane_core::x509::csr_build::build_csr;
    use pkiplane_core::x509::names::{SubjectAttribute, build_name};

    use super::*;

    fn json_round_trip<T: Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn profiles_round_trip() {
        let ep = ObjectRef::new("pki", "scep");
        let iss = ObjectRef::new("pki", "int");
        for role in InternalRole::ALL {
            let p = role.profile(&ep, &iss, None);
            let back = json_round_trip(&ProfileWire::from_profile(&p)).into_profile().unwrap();
            assert_eq!(format!("{p:?}"), format!("{back:?}"), "{role:?}");
        }
    }

    #[test]
    fn csrs_round_trip() {
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = build_name(&[(SubjectAttribute::CommonName, "a.example.com".into())]).unwrap();
        let sans = [San::Dns("a.example.com".into()), San::Ip("127.0.0.1".parse().unwrap())];
        let csr = ParsedCsr::from_der(&build_csr(&key, &subject, &sans).unwrap(), CsrOptions::default()).unwrap();
        let back = json_round_trip(&CsrWire::from_csr(&csr).unwrap()).into_csr().unwrap();
        assert_eq!(back.der, csr.der);
        assert_eq!(back.subject, csr.subject);
        assert_eq!(back.sans, csr.sans);
        assert_eq!(back.key, csr.key);
        assert_eq!(back.spki_der, csr.spki_der);
        assert_eq!(back.signature_algorithm, csr.signature_algorithm);
    }

    #[test]
    fn core_errors_round_trip_with_their_rules() {
        let denied = CoreError::Denied {
            profile: ObjectRef::new("pki", "tls"),
            violations: vec![
                Violation::new("keys.rsaMinBits", "too small"),
                Violation::new("subjectAltNames.dns.suffixes", "no"),
            ],
        };
        let back: CoreError = json_round_trip(&CoreErrorWire::from(&denied)).into();
        assert_eq!(back.kind(), denied.kind());
        assert_eq!(back.violations(), denied.violations());
        assert_eq!(back.to_string(), denied.to_string());
        let unavailable = CoreError::IssuerUnavailable(ObjectRef::new("pki", "int"), "not loaded".into());
        let back: CoreError = json_round_trip(&CoreErrorWire::from(&unavailable)).into();
        assert_eq!(back.to_string(), unavailable.to_string());
        let csr = CoreError::Csr(pkiplane_core::x509::csr::CsrError::BadSignature);
        let back: CoreError = json_round_trip(&CoreErrorWire::from(&csr)).into();
        assert_eq!(back.to_string(), csr.to_string());
    }

    #[test]
    fn issuer_info_with_a_staged_next_ca_round_trips() {
        use pkiplane_core::issuer::IssuerInfo;
        use pkiplane_core::issuer::{CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig, rollover};
        let cfg = IssuerConfig {
            id: ObjectRef::new("pki", "root"),
            source: IssuerSource::SelfSigned(CaParams {
                subject: "CN=Wire Root".into(),
                key: KeyAlgorithm::EcdsaP256,
                validity: std::time::Duration::from_secs(7200),
                path_len: None,
                name_constraints: NameConstraintsConfig::default(),
                renew_before: None,
            }),
            crl_validity: std::time::Duration::from_secs(3600),
        };
        let now = std::time::SystemTime::now();
        let (mut root, _) = Issuer::create(&cfg, None, now).unwrap();
        let staged = rollover::stage(&cfg, &root, None, now).unwrap();
        rollover::attach(&cfg, &mut root, &staged).unwrap();
        let info = IssuerInfo::from_issuer(&root);
        let wire = json_round_trip(&IssuerInfoWire::from(&info));
        let back = wire.clone().into_info().unwrap();
        let (a, b) = (info.next.unwrap(), back.next.unwrap());
        assert_eq!(a.cert.der, b.cert.der);
        assert_eq!(a.new_with_old.map(|c| c.der), b.new_with_old.map(|c| c.der));
        assert_eq!(a.old_with_new.map(|c| c.der), b.old_with_new.map(|c| c.der));
        assert_eq!(back.parent, None);
        // A peer that predates rollover sends neither `next` nor `parent`.
        let mut old = serde_json::to_value(&wire).unwrap();
        old.as_object_mut().unwrap().remove("next");
        let back: IssuerInfoWire = serde_json::from_value(old).unwrap();
        assert!(back.into_info().unwrap().next.is_none());
    }

    #[test]
    fn internal_certificate_request_matches_the_contract() {
        let v = serde_json::json!({
            "role": "serving-tls",
            "endpoint": {"namespace": "pki", "name": "acme"},
            "issuer": null,
            "csrPem": "x",
            "dnsNames": ["a"],
            "ipAddresses": ["127.0.0.1"],
        });
        let r: InternalCertificateRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }
}
