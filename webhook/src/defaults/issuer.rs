//! Issuer defaults: the key algorithm and lifetime of a CA pkiplane creates, and CRL
//! settings.

use pkiplane_api::convert::{DEFAULT_CRL_VALIDITY, DEFAULT_INTERMEDIATE_VALIDITY, DEFAULT_ROOT_VALIDITY};
use pkiplane_api::v1alpha1::{CaKeyAlgorithm, CrlSettings, Issuer};
use pkiplane_core::duration::format_duration;

use super::{Defaulting, Patches};

impl Defaulting for Issuer {
    fn defaults(&self) -> Vec<json_patch::PatchOperation> {
        let spec = &self.spec;
        let mut patches = Patches::default();
        // An imported CA takes key and lifetime from its certificate (the schema forbids
        // setting them).
        if spec.secret_ref.is_none() {
            if spec.key_algorithm.is_none() {
                patches.add(&["spec", "keyAlgorithm"], CaKeyAlgorithm::default());
            }
            if spec.validity.is_none() {
                let validity =
                    if spec.parent_ref.is_some() { DEFAULT_INTERMEDIATE_VALIDITY } else { DEFAULT_ROOT_VALIDITY };
                patches.add(&["spec", "validity"], format_duration(validity));
            }
        }
        if spec.crl.is_none() {
            patches.add(&["spec", "crl"], CrlSettings { validity: Some(format_duration(DEFAULT_CRL_VALIDITY)) });
        }
        patches.finish()
    }
}
