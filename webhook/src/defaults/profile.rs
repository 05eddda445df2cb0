//! CertificateProfile defaults: allowed keys, validity.max and the renewal window.

use pkiplane_api::v1alpha1::{CertificateProfile, KeyRules, Renewal};

use super::{Defaulting, Patches};

/// The renewal window pkiplane assumes: renew when a third of the lifetime remains
/// (`pkiplane_api::convert::DEFAULT_RENEWAL_FRACTION`), written as a fraction.
pub const DEFAULT_REMAINING_FRACTION: &str = "1/3";

impl Defaulting for CertificateProfile {
    fn defaults(&self) -> Vec<json_patch::PatchOperation> {
        let spec = &self.spec;
        let mut patches = Patches::default();
        if spec.keys.is_none() {
            patches.add(&["spec", "keys"], KeyRules::default());
        }
        if spec.validity.max.is_none() && !spec.validity.duration.is_empty() {
            patches.add(&["spec", "validity", "max"], &spec.validity.duration);
        }
        if spec.renewal.is_none() {
            patches.add(
                &["spec", "renewal"],
                Renewal { remaining_fraction: Some(DEFAULT_REMAINING_FRACTION.into()), before: None },
            );
        }
        patches.finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_written_fraction_is_the_one_assumed() {
        assert_eq!(pkiplane_api::convert::DEFAULT_RENEWAL_FRACTION, 1.0 / 3.0);
        assert_eq!(super::DEFAULT_REMAINING_FRACTION, "1/3");
    }
}
