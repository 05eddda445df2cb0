//! `keys`: which public keys a CSR may carry, and key usage that fits the key.

use super::Violation;
use crate::keys::{KeyFamily, PublicKeyInfo};
use crate::profile::KeyPolicy;
use crate::x509::KeyUsageBit;

pub(super) fn check(policy: &KeyPolicy, key: &PublicKeyInfo, out: &mut Vec<Violation>) {
    let Some(family) = key.family() else {
        out.push(Violation::new("keys.algorithms", format!("the CSR carries an {key} key")));
        return;
    };
    if !policy.families.contains(&family) {
        let allowed: Vec<String> = policy.families.iter().map(|f| f.to_string()).collect();
        out.push(Violation::new(
            "keys.algorithms",
            format!("{family} keys are not allowed (allowed: {})", allowed.join(", ")),
        ));
        return;
    }
    match key {
        PublicKeyInfo::Ecdsa(curve) if !policy.ecdsa_curves.contains(curve) => {
            let allowed: Vec<String> = policy.ecdsa_curves.iter().map(|c| c.to_string()).collect();
            out.push(Violation::new(
                "keys.ecdsaCurves",
                format!("curve {curve} is not allowed (allowed: {})", allowed.join(", ")),
            ));
        }
        PublicKeyInfo::Rsa { bits } if *bits < policy.rsa_min_bits => out.push(Violation::new(
            "keys.rsaMinBits",
            format!("RSA key of {bits} bits is below the minimum of {}", policy.rsa_min_bits),
        )),
        PublicKeyInfo::Rsa { bits } if *bits > policy.rsa_max_bits => out.push(Violation::new(
            "keys.rsaMaxBits",
            format!("RSA key of {bits} bits is above the maximum of {}", policy.rsa_max_bits),
        )),
        _ => {}
    }
}

/// The profile's key usage, minus bits the key type cannot perform: ECDSA and Ed25519
/// keys cannot encipher keys or data (RFC 8813 section 3, RFC 8410 section 5).
pub(super) fn key_usage_for(bits: &[KeyUsageBit], key: &PublicKeyInfo, notes: &mut Vec<String>) -> Vec<KeyUsageBit> {
    let is_rsa = key.family() == Some(KeyFamily::Rsa);
    let mut out = Vec::with_capacity(bits.len());
    for b in bits {
        let encipher = matches!(b, KeyUsageBit::KeyEncipherment | KeyUsageBit::DataEncipherment);
        if encipher && !is_rsa {
            notes.push(format!("keyUsage {b} left out: {key} keys cannot encipher"));
        } else {
            out.push(*b);
        }
    }
    out
}
