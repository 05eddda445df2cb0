//! The endpoint's credentials Secret (`<name>-pkiplane-credentials`): the TLS serving
//! certificate (when spec.tls.issuerRef asks pkiplane for one) and the SCEP RA
//! certificate. Keys are generated here with pkiplane-core; certificates come from the
//! CA service (roles `serving-tls`, `scep-ra`) and are renewed at 2/3 of their lifetime
//! or when their names change.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use kube::ResourceExt;
use pkiplane_api::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};
use pkiplane_core::keys::{KeyAlgorithm, generate_key};
use pkiplane_core::x509::csr_build::build_csr;
use pkiplane_core::x509::names::parse_dn;
use pkiplane_core::x509::{San, pem};

use pkiplane_core::ObjectRef;
use pkiplane_core::service::InternalRole;

use crate::ca_client::{CaServiceApi, CaServiceError, InternalCertificateRequest};
use crate::endpoint::children::workload_name;
use crate::error::{Error, Result};
use crate::internal_ca::{renewal_due, service_dns_names};

/// One credential the operator keeps in the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialPlan {
    pub role: InternalRole,
    /// `serving` or `scep-ra`: the Secret keys are `<prefix>.crt` and `<prefix>.key`.
    pub prefix: &'static str,
    pub issuer: Option<ObjectRef>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    /// Names to retry with when the CA refuses the full set (an Issuer's name
    /// constraints may not permit the in-cluster Service names): the spec's own.
    pub fallback: Option<(Vec<String>, Vec<String>)>,
}

impl CredentialPlan {
    /// SCEP RA keys are RSA (clients encrypt to the RA); the rest P-256.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        match self.role {
            InternalRole::ScepRa => KeyAlgorithm::Rsa2048,
            _ => KeyAlgorithm::EcdsaP256,
        }
    }

    pub fn cert_key(&self) -> String {
        format!("{}.crt", self.prefix)
    }
    pub fn key_key(&self) -> String {
        format!("{}.key", self.prefix)
    }
    pub fn names_annotation(&self) -> String {
        format!("pkiplane.dev/{}-names", self.prefix)
    }
    /// A stable text of what the certificate is for.
    pub fn fingerprint(&self) -> String {
        let issuer = self.issuer.as_ref().map(|i| format!("{}/{}", i.namespace, i.name)).unwrap_or_default();
        format!("{issuer};{};{}", self.dns_names.join(","), self.ip_addresses.join(","))
    }
}

/// The credentials an endpoint needs. `cluster_ip`: its Service's, which goes into the
/// serving certificate with the Service DNS names and the spec's names. `scep_ra_issuer`:
/// the Issuer of the SCEP endpoint's default profile, which signs the RA certificate
/// (unknown yet: no RA plan this pass; the pod requests one itself if it starts first).
pub fn credential_plans(
    endpoint: &EnrollmentEndpoint,
    cluster_ip: Option<IpAddr>,
    scep_ra_issuer: Option<&str>,
) -> Vec<CredentialPlan> {
    let ns = endpoint.namespace().unwrap_or_default();
    let name = endpoint.name_any();
    let mut plans = Vec::new();
    if let Some(tls) = &endpoint.spec.tls
        && let Some(issuer) = &tls.issuer_ref
    {
        let mut dns_names = tls.dns_names.clone();
        for d in service_dns_names(&workload_name(&name), &ns) {
            if !dns_names.contains(&d) {
                dns_names.push(d);
            }
        }
        let mut ip_addresses = tls.ip_addresses.clone();
        if let Some(ip) = cluster_ip.map(|i| i.to_string())
            && !ip_addresses.contains(&ip)
        {
            ip_addresses.push(ip);
        }
        let spec_names = (tls.dns_names.clone(), tls.ip_addresses.clone());
        let fallback = (spec_names != (dns_names.clone(), ip_addresses.clone())).then_some(spec_names);
        plans.push(CredentialPlan {
            role: InternalRole::ServingTls,
            prefix: "serving",
            issuer: Some(ObjectRef { namespace: ns.clone(), name: issuer.name.clone() }),
            dns_names,
            ip_addresses,
            fallback,
        });
    }
    if endpoint.spec.protocol == EndpointProtocol::Scep
        && let Some(issuer) = scep_ra_issuer
    {
        plans.push(CredentialPlan {
            role: InternalRole::ScepRa,
            prefix: "scep-ra",
            issuer: Some(ObjectRef { namespace: ns.clone(), name: issuer.to_string() }),
            dns_names: vec![],
            ip_addresses: vec![],
            fallback: None,
        });
    }
    plans
}

/// Whether `plan`'s certificate must be (re)requested.
pub fn credential_due(
    entries: &BTreeMap<String, Vec<u8>>,
    annotations: &BTreeMap<String, String>,
    plan: &CredentialPlan,
    now: SystemTime,
) -> bool {
    let (Some(crt), Some(_)) = (entries.get(&plan.cert_key()), entries.get(&plan.key_key())) else { return true };
    annotations.get(&plan.names_annotation()) != Some(&plan.fingerprint())
        || renewal_due(&String::from_utf8_lossy(crt), now)
}

/// The credentials after this pass: kept, renewed, or (when the CA service fails) the
/// previous ones with the error reported.
pub struct Credentials {
    pub entries: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
    /// Credentials that could not be obtained this pass, with why.
    pub errors: Vec<String>,
}

fn csr_for(
    plan: &CredentialPlan,
    dns_names: &[String],
    ip_addresses: &[String],
    endpoint_name: &str,
    key: &pkiplane_core::keys::SecretKey,
) -> Result<String> {
    let subject = match plan.role {
        // The CA's scep-ra role requires O and CN (RFC 8894 clients show the RA's name).
        InternalRole::ScepRa => format!("CN={} SCEP RA,O=pkiplane", endpoint_name.replace(',', "\\,")),
        _ => format!("CN={}", dns_names.first().map(String::as_str).unwrap_or(endpoint_name).replace(',', "\\,")),
    };
    let subject = parse_dn(&subject).map_err(Error::Certificate)?;
    let mut sans: Vec<San> = dns_names.iter().cloned().map(San::Dns).collect();
    for ip in ip_addresses {
        if let Ok(ip) = ip.parse() {
            sans.push(San::Ip(ip));
        }
    }
    let der = build_csr(key, &subject, &sans).map_err(|e| Error::Certificate(e.to_string()))?;
    Ok(pem::encode("CERTIFICATE REQUEST", &der))
}

/// Brings every planned credential up to date; entries of no plan are dropped.
pub async fn ensure_credentials(
    ca: &dyn CaServiceApi,
    endpoint: &EnrollmentEndpoint,
    current_entries: &BTreeMap<String, Vec<u8>>,
    current_annotations: &BTreeMap<String, String>,
    plans: &[CredentialPlan],
    now: SystemTime,
) -> Result<Credentials> {
    let mut out = Credentials { entries: BTreeMap::new(), annotations: BTreeMap::new(), errors: Vec::new() };
    let ns = endpoint.namespace().unwrap_or_default();
    let name = endpoint.name_any();
    for plan in plans {
        let keep = |out: &mut Credentials| {
            for k in [plan.cert_key(), plan.key_key()] {
                if let Some(v) = current_entries.get(&k) {
                    out.entries.insert(k, v.clone());
                }
            }
            if let Some(a) = current_annotations.get(&plan.names_annotation()) {
                out.annotations.insert(plan.names_annotation(), a.clone());
            }
        };
        if !credential_due(current_entries, current_annotations, plan, now) {
            keep(&mut out);
            continue;
        }
        let key = generate_key(plan.key_algorithm()).map_err(|e| Error::Certificate(e.to_string()))?;
        let request_for = |dns: &[String], ips: &[String]| -> Result<InternalCertificateRequest> {
            Ok(InternalCertificateRequest {
                role: plan.role.as_str().into(),
                endpoint: ObjectRef { namespace: ns.clone(), name: name.clone() },
                issuer: plan.issuer.clone(),
                csr_pem: csr_for(plan, dns, ips, &name, &key)?,
                dns_names: dns.to_vec(),
                ip_addresses: ips.to_vec(),
                lifetime_seconds: None,
            })
        };
        let mut outcome = ca.internal_certificate(&request_for(&plan.dns_names, &plan.ip_addresses)?).await;
        if let (Err(CaServiceError::Status { status: 400..=499, body, .. }), Some((dns, ips))) =
            (&outcome, &plan.fallback)
        {
            tracing::info!(namespace = %ns, endpoint = %name, credential = plan.prefix, refusal = %body,
                "the CA refused the in-cluster names; retrying with the spec's names only");
            outcome = ca.internal_certificate(&request_for(dns, ips)?).await;
        }
        match outcome {
            Ok(cert) => {
                tracing::info!(namespace = %ns, endpoint = %name, credential = plan.prefix, "obtained endpoint credential");
                let mut chain = cert.certificate_pem.trim_end().to_string();
                chain.push('\n');
                if !cert.chain_pem.trim().is_empty() {
                    chain.push_str(cert.chain_pem.trim_end());
                    chain.push('\n');
                }
                out.entries.insert(plan.cert_key(), chain.into_bytes());
                out.entries.insert(plan.key_key(), key.to_pem().as_bytes().to_vec());
                out.annotations.insert(plan.names_annotation(), plan.fingerprint());
            }
            Err(e) => {
                out.errors.push(format!("{}: {e}", plan.prefix));
                keep(&mut out);
            }
        }
    }
    Ok(out)
}
