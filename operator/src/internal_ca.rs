//! The internal CA: the root of the mTLS identities between pkiplane's own components
//! (CA service, webhook, operator, endpoint pods). All certificate and key work goes
//! through pkiplane-core; this module only decides names, lifetimes and renewals.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use pkiplane_core::issuer::{
    CaParams, Issuer, IssuerConfig, IssuerSource, NameConstraintsConfig, parse_private_key_pem,
};
use pkiplane_core::keys::{CaSigner, KeyAlgorithm, SecretKey, generate_key};
use pkiplane_core::model::ObjectRef;
use pkiplane_core::x509::cert::{CertInfo, CertificateFields, sign_certificate};
use pkiplane_core::x509::extensions::{
    authority_key_identifier, basic_constraints, extended_key_usage, key_identifier, key_usage, subject_alt_name,
    subject_key_identifier,
};
use pkiplane_core::x509::names::parse_dn;
use pkiplane_core::x509::{KeyUsageBit, San, eku_from_name, pem};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Lifetime of the internal root.
pub const ROOT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Lifetime of the internal leaf certificates.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Leaves are backdated this much for clock skew.
const LEAF_BACKDATE: Duration = Duration::from_secs(300);
const ROOT_SUBJECT: &str = "CN=pkiplane internal CA,O=pkiplane";

/// Secret keys of the internal CA and leaf Secrets.
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";

fn cert_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Certificate(format!("{context}: {e}"))
}

/// The internal CA: current certificate and key, and the trust bundle (current root
/// first, then a previous root that is still valid, during rotation).
#[derive(Clone)]
pub struct InternalCa {
    pub certificate_pem: String,
    key: SecretKey,
    pub bundle_pem: String,
    cert: CertInfo,
}

impl std::fmt::Debug for InternalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCa")
            .field("fingerprint", &self.cert.fingerprint_sha256())
            .field("not_after", &self.cert.not_after)
            .field("key", &self.key)
            .finish()
    }
}

/// What was decided about the internal CA Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootDecision {
    /// Missing or unreadable: create a new root.
    Create,
    /// Past 2/3 of its lifetime: a new root, the old one kept in the bundle.
    Rotate,
    Keep,
}

/// True once `now` is past 2/3 of the certificate's lifetime (or it is unreadable).
pub fn renewal_due(certificate_pem: &str, now: SystemTime) -> bool {
    let Ok(der) = pem::decode_one(certificate_pem.as_bytes(), "CERTIFICATE") else { return true };
    let Ok(info) = CertInfo::from_der(&der) else { return true };
    renewal_due_info(&info, now)
}

fn renewal_due_info(info: &CertInfo, now: SystemTime) -> bool {
    now >= renewal_time_info(info)
}

fn renewal_time_info(info: &CertInfo) -> SystemTime {
    let lifetime = info.not_after.duration_since(info.not_before).unwrap_or_default();
    info.not_before + lifetime * 2 / 3
}

/// When the certificate becomes due for renewal (2/3 of its lifetime), if the PEM parses.
pub fn renewal_time(certificate_pem: &str) -> Option<SystemTime> {
    let der = pem::decode_one(certificate_pem.as_bytes(), "CERTIFICATE").ok()?;
    CertInfo::from_der(&der).ok().map(|i| renewal_time_info(&i))
}

/// A leaf's not-after time, if the PEM parses.
pub fn not_after(certificate_pem: &str) -> Option<SystemTime> {
    let der = pem::decode_one(certificate_pem.as_bytes(), "CERTIFICATE").ok()?;
    CertInfo::from_der(&der).ok().map(|i| i.not_after)
}

impl InternalCa {
    /// A fresh P-256 root, valid one year.
    pub fn generate(now: SystemTime) -> Result<Self> {
        let config = IssuerConfig {
            id: ObjectRef::new("pkiplane-system", "pkiplane-internal-ca"),
            source: IssuerSource::SelfSigned(CaParams {
                subject: ROOT_SUBJECT.into(),
                key: KeyAlgorithm::EcdsaP256,
                validity: ROOT_LIFETIME,
                path_len: Some(0),
                name_constraints: NameConstraintsConfig::default(),
                renew_before: None,
            }),
            crl_validity: Duration::from_secs(7 * 24 * 3600),
        };
        let (issuer, material) = Issuer::create(&config, None, now).map_err(|e| cert_err("internal CA", e))?;
        let key = SecretKey::from_pkcs8(KeyAlgorithm::EcdsaP256, material.private_key_pkcs8.to_vec());
        let certificate_pem = issuer.certificate_pem();
        Ok(Self { bundle_pem: certificate_pem.clone(), certificate_pem, key, cert: issuer.cert })
    }

    /// Reads the CA from its Secret's entries (`tls.crt`, `tls.key`, `ca.crt`).
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let text = |k: &str| -> Result<String> {
            let bytes = data.get(k).ok_or_else(|| cert_err("internal CA Secret", format!("no key {k}")))?;
            String::from_utf8(bytes.clone()).map_err(|e| cert_err(k, e))
        };
        let certificate_pem = text(TLS_CRT)?;
        let key_pem = Zeroizing::new(text(TLS_KEY)?);
        let key = parse_private_key_pem(&key_pem).map_err(|e| cert_err("internal CA key", e))?;
        let der = pem::decode_one(certificate_pem.as_bytes(), "CERTIFICATE").map_err(|e| cert_err("internal CA", e))?;
        let cert = CertInfo::from_der(&der).map_err(|e| cert_err("internal CA", e))?;
        let signer = CaSigner::new(&key).map_err(|e| cert_err("internal CA key", e))?;
        if signer.public_key_der() != cert.spki_der {
            return Err(cert_err("internal CA", "tls.key does not match tls.crt"));
        }
        let bundle_pem = text(CA_CRT).unwrap_or_else(|_| certificate_pem.clone());
        Ok(Self { certificate_pem, key, bundle_pem, cert })
    }

    /// The Secret entries of this CA. The key is PKCS#8 PEM.
    pub fn secret_entries(&self) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            (TLS_CRT.to_string(), self.certificate_pem.clone().into_bytes()),
            (TLS_KEY.to_string(), self.key.to_pem().as_bytes().to_vec()),
            (CA_CRT.to_string(), self.bundle_pem.clone().into_bytes()),
        ])
    }

    pub fn not_after(&self) -> SystemTime {
        self.cert.not_after
    }

    /// What to do with the CA read from the Secret (`None`: missing or unreadable).
    pub fn decide(current: Option<&InternalCa>, now: SystemTime) -> RootDecision {
        match current {
            None => RootDecision::Create,
            Some(ca) if renewal_due_info(&ca.cert, now) => RootDecision::Rotate,
            Some(_) => RootDecision::Keep,
        }
    }

    /// A new root whose bundle also holds `self` while it is still valid.
    pub fn rotate(&self, now: SystemTime) -> Result<Self> {
        let mut next = Self::generate(now)?;
        if self.cert.not_after > now {
            next.bundle_pem = format!("{}{}", next.certificate_pem, self.certificate_pem);
        }
        Ok(next)
    }

    /// Issues a leaf for `spec`: a fresh P-256 key, serverAuth + clientAuth, 30 days.
    pub fn issue_leaf(&self, spec: &LeafSpec, now: SystemTime) -> Result<LeafCertificate> {
        let key = generate_key(KeyAlgorithm::EcdsaP256).map_err(|e| cert_err("leaf key", e))?;
        let leaf_public = CaSigner::new(&key).map_err(|e| cert_err("leaf key", e))?;
        let ca_signer = CaSigner::new(&self.key).map_err(|e| cert_err("internal CA key", e))?;
        let subject = parse_dn(&format!("CN={}", spec.common_name)).map_err(|e| cert_err("leaf subject", e))?;
        let ekus: Vec<_> = ["serverAuth", "clientAuth"].iter().filter_map(|n| eku_from_name(n)).collect();
        let extensions = [
            basic_constraints(false, None),
            key_usage(&[KeyUsageBit::DigitalSignature]),
            extended_key_usage(&ekus),
            subject_alt_name(&spec.sans(), false),
            subject_key_identifier(&key_identifier(leaf_public.public_key_bits())),
            authority_key_identifier(&key_identifier(ca_signer.public_key_bits())),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err("leaf extensions", e))?;
        let serial = pkiplane_core::issuance::random_serial();
        let not_after = (now + LEAF_LIFETIME).min(self.cert.not_after);
        let fields = CertificateFields {
            serial: &serial,
            issuer: &self.cert.subject,
            subject: &subject,
            not_before: now - LEAF_BACKDATE,
            not_after,
            spki: leaf_public.public_key_info(),
            extensions,
        };
        let der = sign_certificate(&fields, &ca_signer).map_err(|e| cert_err("leaf", e))?;
        Ok(LeafCertificate { certificate_pem: pem::encode("CERTIFICATE", &der), key_pem: key.to_pem() })
    }
}

/// Names of an internal leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// The identity the CA service authorizes by, e.g. `spiffe://pkiplane.dev/operator`.
    pub uri: String,
}

impl LeafSpec {
    fn sans(&self) -> Vec<San> {
        let mut sans: Vec<San> = self.dns_names.iter().cloned().map(San::Dns).collect();
        sans.extend(self.ip_addresses.iter().copied().map(San::Ip));
        sans.push(San::Uri(self.uri.clone()));
        sans
    }

    /// A stable text of the names, stored as an annotation to notice when they change.
    pub fn fingerprint(&self) -> String {
        let ips: Vec<String> = self.ip_addresses.iter().map(|i| i.to_string()).collect();
        format!("{};{};{};{}", self.common_name, self.dns_names.join(","), ips.join(","), self.uri)
    }

    /// The CA service's serving certificate (contracts: DNS forms of `pkiplane-ca` plus
    /// the Service's ClusterIP).
    pub fn ca_service(namespace: &str, cluster_ip: Option<IpAddr>) -> Self {
        Self {
            common_name: "pkiplane-ca".into(),
            dns_names: service_dns_names("pkiplane-ca", namespace),
            ip_addresses: cluster_ip.into_iter().collect(),
            uri: "spiffe://pkiplane.dev/ca".into(),
        }
    }

    pub fn webhook(namespace: &str, cluster_ip: Option<IpAddr>) -> Self {
        Self {
            common_name: "pkiplane-webhook".into(),
            dns_names: service_dns_names("pkiplane-webhook", namespace),
            ip_addresses: cluster_ip.into_iter().collect(),
            uri: "spiffe://pkiplane.dev/webhook".into(),
        }
    }

    pub fn operator() -> Self {
        Self {
            common_name: "pkiplane-operator".into(),
            dns_names: vec![],
            ip_addresses: vec![],
            uri: "spiffe://pkiplane.dev/operator".into(),
        }
    }

    pub fn endpoint(namespace: &str, name: &str) -> Self {
        Self {
            common_name: format!("{name}.{namespace}.endpoint.pkiplane"),
            dns_names: vec![],
            ip_addresses: vec![],
            uri: format!("spiffe://pkiplane.dev/ns/{namespace}/endpoint/{name}"),
        }
    }
}

/// `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// An issued leaf. The key is wiped when dropped.
pub struct LeafCertificate {
    pub certificate_pem: String,
    pub key_pem: Zeroizing<String>,
}

/// Whether a leaf Secret must be (re)issued: missing, near expiry, other names, or
/// signed under another CA bundle (after a rotation).
pub fn leaf_needs_issuing(
    existing: Option<&BTreeMap<String, Vec<u8>>>,
    names_annotation: Option<&str>,
    spec: &LeafSpec,
    ca: &InternalCa,
    now: SystemTime,
) -> bool {
    let Some(data) = existing else { return true };
    let (Some(crt), Some(_key), Some(bundle)) = (data.get(TLS_CRT), data.get(TLS_KEY), data.get(CA_CRT)) else {
        return true;
    };
    names_annotation != Some(spec.fingerprint().as_str())
        || bundle.as_slice() != ca.bundle_pem.as_bytes()
        || renewal_due(&String::from_utf8_lossy(crt), now)
}

/// The entries of a leaf Secret (type kubernetes.io/tls).
pub fn leaf_secret_entries(leaf: &LeafCertificate, ca: &InternalCa) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (TLS_CRT.to_string(), leaf.certificate_pem.clone().into_bytes()),
        (TLS_KEY.to_string(), leaf.key_pem.as_bytes().to_vec()),
        (CA_CRT.to_string(), ca.bundle_pem.clone().into_bytes()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + days * 86400)
    }

    #[test]
    fn root_is_created_kept_and_rotated_at_two_thirds() {
        assert_eq!(InternalCa::decide(None, t(0)), RootDecision::Create);
        let ca = InternalCa::generate(t(0)).unwrap();
        assert_eq!(InternalCa::decide(Some(&ca), t(200)), RootDecision::Keep);
        assert_eq!(InternalCa::decide(Some(&ca), t(250)), RootDecision::Rotate);
        let next = ca.rotate(t(250)).unwrap();
        assert!(next.bundle_pem.starts_with(&next.certificate_pem));
        assert!(next.bundle_pem.ends_with(&ca.certificate_pem), "old root stays trusted during rotation");
    }

    #[test]
    fn secret_round_trip_and_leaf_renewal() {
        let ca = InternalCa::generate(t(0)).unwrap();
        let back = InternalCa::from_secret(&ca.secret_entries()).unwrap();
        assert_eq!(back.certificate_pem, ca.certificate_pem);
        assert!(!format!("{back:?}").contains("PRIVATE"), "Debug never shows the key");

        let spec = LeafSpec::ca_service("pkiplane-system", Some("127.192.0.10".parse().unwrap()));
        let leaf = ca.issue_leaf(&spec, t(1)).unwrap();
        let entries = leaf_secret_entries(&leaf, &ca);
        let fp = spec.fingerprint();
        assert!(!leaf_needs_issuing(Some(&entries), Some(&fp), &spec, &ca, t(2)));
        assert!(leaf_needs_issuing(Some(&entries), Some(&fp), &spec, &ca, t(22)), "renewed at 2/3 of 30 days");
        let other = LeafSpec::ca_service("pkiplane-system", Some("127.192.0.11".parse().unwrap()));
        assert!(leaf_needs_issuing(Some(&entries), Some(&fp), &other, &ca, t(2)), "new ClusterIP, new cert");
        let rotated = ca.rotate(t(3)).unwrap();
        assert!(leaf_needs_issuing(Some(&entries), Some(&fp), &spec, &rotated, t(3)), "new CA bundle, new cert");
        assert!(leaf_needs_issuing(None, None, &spec, &ca, t(2)));

        let info =
            CertInfo::from_der(&pem::decode_one(leaf.certificate_pem.as_bytes(), "CERTIFICATE").unwrap()).unwrap();
        assert_eq!(info.issuer, ca.cert.subject);
        assert!(!info.is_ca());
    }
}
