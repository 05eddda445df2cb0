//! `validity`: notBefore and notAfter.

use std::time::SystemTime;

use super::{PolicyInput, Violation};
use crate::duration::format_duration;

/// How far in the future a requester may start a certificate's validity.
const MAX_FUTURE_NOT_BEFORE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

pub(super) fn decide(
    input: &PolicyInput<'_>,
    out: &mut Vec<Violation>,
    notes: &mut Vec<String>,
) -> Option<(SystemTime, SystemTime)> {
    let policy = &input.profile.validity;
    let now = input.now;
    let earliest = now - policy.backdate;
    let before_len = out.len();

    let not_before = match input.requested.not_before {
        Some(nb) if nb < earliest => {
            out.push(Violation::new(
                "validity.backdate",
                format!("notBefore may be at most {} in the past", format_duration(policy.backdate)),
            ));
            nb
        }
        Some(nb) if nb > now + MAX_FUTURE_NOT_BEFORE => {
            out.push(Violation::new(
                "validity",
                format!("notBefore may be at most {} in the future", format_duration(MAX_FUTURE_NOT_BEFORE)),
            ));
            nb
        }
        Some(nb) => nb,
        None => earliest,
    };
    let mut not_after = match input.requested.not_after {
        Some(na) => {
            let lifetime = na.duration_since(not_before).ok();
            match lifetime {
                None => out.push(Violation::new("validity", "notAfter must be later than notBefore")),
                Some(l) if l > policy.max => out.push(Violation::new(
                    "validity.max",
                    format!(
                        "requested lifetime of {} exceeds the profile's maximum of {}",
                        format_duration(l),
                        format_duration(policy.max)
                    ),
                )),
                Some(_) => {}
            }
            na
        }
        None => not_before + policy.duration,
    };
    if not_after > input.issuer.not_after {
        if input.requested.not_after.is_some() {
            out.push(Violation::new(
                "validity.issuerNotAfter",
                format!("requested notAfter is later than issuer {}'s own notAfter", input.issuer.id),
            ));
        } else {
            notes.push(format!(
                "validity shortened to end with issuer {}'s certificate; the issuer needs renewal",
                input.issuer.id
            ));
            not_after = input.issuer.not_after;
        }
    }
    if not_after <= now && out.len() == before_len {
        out.push(Violation::new("validity.issuerNotAfter", format!("issuer {} has expired", input.issuer.id)));
    }
    (out.len() == before_len).then_some((not_before, not_after))
}
