//! `Issuer` -> [`IssuerConfig`].

use std::time::Duration;

use pkiplane_core::issuer::{CaParams, ImportedCa, IssuerConfig, IssuerSource, NameConstraintsConfig};
use pkiplane_core::x509::{names, pem};
use zeroize::Zeroizing;

use super::{Errors, FieldError, cidr, dns_name, local_ref, object_ref, positive_duration};
use crate::manifests::SecretLookup;
use crate::v1alpha1::{Issuer, IssuerSpec, NameConstraints, SecretRef};

const YEAR: u64 = 365 * 86_400;
/// Root lifetime when spec.validity is unset.
pub const DEFAULT_ROOT_VALIDITY: Duration = Duration::from_secs(10 * YEAR);
/// Intermediate lifetime when spec.validity is unset.
pub const DEFAULT_INTERMEDIATE_VALIDITY: Duration = Duration::from_secs(5 * YEAR);
/// CRL lifetime when spec.crl.validity is unset.
pub const DEFAULT_CRL_VALIDITY: Duration = Duration::from_secs(86_400);

/// Converts an Issuer; an imported CA's PEM is read from `secrets`. Every problem found
/// is returned, each with its field path.
pub fn issuer_from_resource<S: SecretLookup + ?Sized>(
    issuer: &Issuer,
    secrets: &S,
) -> Result<IssuerConfig, Vec<FieldError>> {
    let mut errors = Errors::default();
    let converted = convert(issuer, Some(secrets), &mut errors);
    errors.finish(converted)
}

/// Checks an Issuer without reading Secrets (for admission, where the Secret may not
/// exist yet): everything [`issuer_from_resource`] checks except the imported PEM.
pub fn check_issuer(issuer: &Issuer) -> Result<(), Vec<FieldError>> {
    let mut errors = Errors::default();
    convert::<Vec<k8s_openapi::api::core::v1::Secret>>(issuer, None, &mut errors);
    errors.finish(Some(()))
}

fn convert<S: SecretLookup + ?Sized>(issuer: &Issuer, secrets: Option<&S>, e: &mut Errors) -> Option<IssuerConfig> {
    let id = object_ref(&issuer.metadata, e);
    let spec = &issuer.spec;
    let sources = [spec.self_signed.is_some(), spec.parent_ref.is_some(), spec.secret_ref.is_some()];
    if sources.iter().filter(|s| **s).count() != 1 {
        e.push("spec", "set exactly one of selfSigned, parentRef or secretRef");
    }
    let crl_validity = match spec.crl.as_ref().and_then(|c| c.validity.as_deref()) {
        Some(v) => e.check("spec.crl.validity", positive_duration(v)),
        None => Some(DEFAULT_CRL_VALIDITY),
    };

    let source = if let Some(secret_ref) = &spec.secret_ref {
        for (set, field) in [
            (spec.subject.is_some(), "subject"),
            (spec.key_algorithm.is_some(), "keyAlgorithm"),
            (spec.validity.is_some(), "validity"),
            (spec.path_len.is_some(), "pathLen"),
            (spec.name_constraints.is_some(), "nameConstraints"),
            (spec.renew_before.is_some(), "renewBefore"),
        ] {
            if set {
                e.push(
                    format!("spec.{field}"),
                    "not allowed for an imported CA (secretRef): it comes from the imported certificate",
                );
            }
        }
        let ca = imported(&id.namespace, secret_ref, secrets, e);
        ca.map(IssuerSource::Imported)
    } else if let Some(parent) = &spec.parent_ref {
        let parent_id = local_ref(&id.namespace, &parent.name, "spec.parentRef.name", e);
        if parent_id == id {
            e.push("spec.parentRef.name", "an Issuer cannot sign its own certificate; use selfSigned: {} for a root");
        }
        ca_params(spec, DEFAULT_INTERMEDIATE_VALIDITY, e)
            .map(|params| IssuerSource::Intermediate { parent: parent_id, params })
    } else {
        ca_params(spec, DEFAULT_ROOT_VALIDITY, e).map(IssuerSource::SelfSigned)
    };
    Some(IssuerConfig { id, source: source?, crl_validity: crl_validity? })
}

fn ca_params(spec: &IssuerSpec, default_validity: Duration, e: &mut Errors) -> Option<CaParams> {
    let subject = match spec.subject.as_deref().map(str::trim) {
        None | Some("") => {
            e.push("spec.subject", "is required for a CA pkiplane creates, e.g. \"CN=Example Root CA,O=Example\"");
            None
        }
        Some(s) => e.check("spec.subject", names::parse_dn(s).map(|_| s.to_string())),
    };
    let validity = match spec.validity.as_deref() {
        Some(v) => e.check("spec.validity", positive_duration(v)),
        None => Some(default_validity),
    };
    let path_len = match spec.path_len {
        None => Some(None),
        Some(n) => e.check("spec.pathLen", u8::try_from(n).map(Some).map_err(|_| format!("{n} is not within 0..=255"))),
    };
    let renew_before = spec.renew_before.as_deref().and_then(|rb| e.check("spec.renewBefore", positive_duration(rb)));
    if let (Some(rb), Some(v)) = (renew_before, validity)
        && rb >= v
    {
        e.push("spec.renewBefore", "must be shorter than the CA certificate's validity");
    }
    let name_constraints = spec.name_constraints.as_ref().map(|nc| name_constraints(nc, e)).unwrap_or_default();
    Some(CaParams {
        subject: subject?,
        key: spec.key_algorithm.unwrap_or_default(),
        validity: validity?,
        path_len: path_len?,
        name_constraints,
        renew_before,
    })
}

fn name_constraints(nc: &NameConstraints, e: &mut Errors) -> NameConstraintsConfig {
    let base = "spec.nameConstraints";
    let domains = |list: &[String], field: &str, e: &mut Errors| -> Vec<String> {
        list.iter().enumerate().filter_map(|(i, d)| e.check(&format!("{base}.{field}[{i}]"), subtree(d))).collect()
    };
    let ranges = |list: &[String], field: &str, e: &mut Errors| {
        list.iter().enumerate().filter_map(|(i, c)| e.check(&format!("{base}.{field}[{i}]"), cidr(c, false))).collect()
    };
    let emails = |list: &[String], field: &str, e: &mut Errors| -> Vec<String> {
        list.iter()
            .enumerate()
            .filter_map(|(i, m)| e.check(&format!("{base}.{field}[{i}]"), email_constraint(m)))
            .collect()
    };
    NameConstraintsConfig {
        permitted_dns: domains(&nc.permitted_dns_domains, "permittedDNSDomains", e),
        excluded_dns: domains(&nc.excluded_dns_domains, "excludedDNSDomains", e),
        permitted_ip: ranges(&nc.permitted_ip_ranges, "permittedIPRanges", e),
        excluded_ip: ranges(&nc.excluded_ip_ranges, "excludedIPRanges", e),
        permitted_email: emails(&nc.permitted_email_addresses, "permittedEmailAddresses", e),
        excluded_email: emails(&nc.excluded_email_addresses, "excludedEmailAddresses", e),
        permitted_uri: domains(&nc.permitted_uri_domains, "permittedURIDomains", e),
        excluded_uri: domains(&nc.excluded_uri_domains, "excludedURIDomains", e),
    }
}

/// A DNS subtree: `example.com` or `.example.com` (only names below).
fn subtree(s: &str) -> Result<String, String> {
    match s.strip_prefix('.') {
        Some(rest) => dns_name(rest).map(|d| format!(".{d}")),
        None => dns_name(s),
    }
}

/// A full address, a host, or `.domain`.
fn email_constraint(s: &str) -> Result<String, String> {
    match s.rsplit_once('@') {
        Some((local, host)) if !local.is_empty() && !local.contains(char::is_whitespace) => {
            Ok(format!("{local}@{}", dns_name(host)?))
        }
        Some(_) => Err(format!("`{s}` is not an e-mail address")),
        None => subtree(s),
    }
}

fn imported<S: SecretLookup + ?Sized>(
    namespace: &str,
    secret_ref: &SecretRef,
    secrets: Option<&S>,
    e: &mut Errors,
) -> Option<ImportedCa> {
    let path = "spec.secretRef.name";
    let name = secret_ref.name.as_str();
    if let Err(msg) = super::check_object_name(name) {
        e.push(path, msg);
        return None;
    }
    let secrets = secrets?;
    let Some(data) = secrets.secret_data(namespace, name) else {
        e.push(path, format!("Secret {namespace}/{name} not found"));
        return None;
    };
    let secret = format!("Secret {namespace}/{name}");
    let certs = |key: &str, e: &mut Errors| -> Option<Vec<Vec<u8>>> {
        let bytes = data.get(key)?;
        e.check(path, pem::decode_chain(bytes, "CERTIFICATE").map_err(|err| format!("{secret} key {key}: {err}")))
    };
    let mut tls_crt = match certs("tls.crt", e) {
        Some(c) if !c.is_empty() => c,
        Some(_) => {
            e.push(path, format!("{secret} key tls.crt holds no CERTIFICATE"));
            return None;
        }
        None if data.contains_key("tls.crt") => return None,
        None => {
            e.push(path, format!("{secret} has no key `tls.crt` (the CA certificate, PEM)"));
            return None;
        }
    };
    let ca_cert = tls_crt.remove(0);
    // tls.crt may carry the chain after the CA certificate; ca.crt adds the rest.
    let mut chain = tls_crt;
    for der in certs("ca.crt", e).unwrap_or_default() {
        if der != ca_cert && !chain.contains(&der) {
            chain.push(der);
        }
    }
    let key = match data.get("tls.key") {
        None => {
            e.push(path, format!("{secret} has no key `tls.key` (the CA private key, PEM)"));
            return None;
        }
        Some(bytes) => Zeroizing::new(bytes.clone()),
    };
    let key_ok = match pem::decode_all(&key) {
        Ok(blocks) => match blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) {
            Some(b) if b.label == "ENCRYPTED PRIVATE KEY" => {
                Err("is encrypted; store the key unencrypted in the Secret".to_string())
            }
            Some(_) => Ok(()),
            None => Err("holds no PRIVATE KEY block (PKCS#8, SEC1 or PKCS#1 PEM)".to_string()),
        },
        Err(err) => Err(err.to_string()),
    };
    e.check(path, key_ok.map_err(|m| format!("{secret} key tls.key {m}")))?;
    let key_pem = Zeroizing::new(String::from_utf8(key.to_vec()).ok()?);
    Some(ImportedCa {
        certificate_pem: pem::encode("CERTIFICATE", &ca_cert),
        private_key_pem: key_pem,
        chain_pem: chain.iter().map(|der| pem::encode("CERTIFICATE", der)).collect(),
    })
}
