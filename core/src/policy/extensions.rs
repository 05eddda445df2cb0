//! `csrExtensions`: what happens to extensions requested in the CSR.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_CRL_DISTRIBUTION_POINTS, ID_CE_EXT_KEY_USAGE,
    ID_CE_KEY_USAGE, ID_CE_NAME_CONSTRAINTS, ID_CE_SUBJECT_KEY_IDENTIFIER, ID_PE_AUTHORITY_INFO_ACCESS,
};
use der::Decode;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::BasicConstraints;

use super::{PolicyInput, Violation};
use crate::x509::extensions::extension_name;

/// Extensions the CA writes itself from the profile; a CSR cannot have them copied.
pub const CA_DECIDED: [ObjectIdentifier; 8] = [
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_EXT_KEY_USAGE,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_CRL_DISTRIBUTION_POINTS,
    ID_PE_AUTHORITY_INFO_ACCESS,
    ID_CE_NAME_CONSTRAINTS,
];

pub(super) fn decide(input: &PolicyInput<'_>, out: &mut Vec<Violation>, notes: &mut Vec<String>) -> Vec<Extension> {
    let policy = &input.profile.csr_extensions;
    let mut copied = Vec::new();
    for ext in &input.csr.extensions {
        let name = extension_name(&ext.extn_id);
        if policy.refuse.contains(&ext.extn_id) {
            out.push(Violation::new(
                "csrExtensions.refuse",
                format!("the CSR requests extension {name}, which the profile refuses"),
            ));
        } else if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
            let asks_ca = BasicConstraints::from_der(ext.extn_value.as_bytes()).map(|b| b.ca).unwrap_or(true);
            if asks_ca {
                out.push(Violation::new(
                    "basicConstraints",
                    "the CSR asks for a CA certificate; profiles issue end-entity certificates only (CA:FALSE)",
                ));
            }
        } else if CA_DECIDED.contains(&ext.extn_id) {
            notes.push(format!("requested {name} ignored: the profile decides it"));
        } else if policy.copy.contains(&ext.extn_id) {
            copied.push(ext.clone());
        } else if ext.critical {
            out.push(Violation::new(
                "csrExtensions",
                format!(
                    "the CSR requests critical extension {name}, which the profile does not copy; a critical extension cannot be silently dropped"
                ),
            ));
        } else {
            notes.push(format!("requested extension {name} not copied (not in csrExtensions.copy)"));
        }
    }
    copied
}
