//! `requesters`: who may use the profile.

use super::{Violation, glob_match};
use crate::model::Requester;
use crate::profile::Profile;

pub(super) fn check(profile: &Profile, requester: &Requester, out: &mut Vec<Violation>) {
    let rules = &profile.requesters;
    if !rules.protocols.is_empty() && !rules.protocols.contains(&requester.protocol) {
        let allowed: Vec<_> = rules.protocols.iter().map(|p| p.as_str()).collect();
        out.push(Violation::new(
            "requesters.protocols",
            format!(
                "profile {} may not be requested over {} (allowed: {})",
                profile.id,
                requester.protocol,
                allowed.join(", ")
            ),
        ));
    }
    if !rules.endpoints.is_empty() {
        let ok = requester.endpoint.as_ref().is_some_and(|e| rules.endpoints.contains(e));
        if !ok {
            let via = requester.endpoint.as_ref().map(|e| e.to_string()).unwrap_or_else(|| "no endpoint".into());
            out.push(Violation::new(
                "requesters.endpoints",
                format!("profile {} is not exposed to requests arriving through {via}", profile.id),
            ));
        }
    }
    if !rules.identities.is_empty() && !rules.identities.iter().any(|p| glob_match(p, &requester.identity, None)) {
        out.push(Violation::new(
            "requesters.identities",
            format!("requester `{}` matches none of the identities allowed to use {}", requester.identity, profile.id),
        ));
    }
    for (claim, expected) in &rules.required_claims {
        match requester.claims.get(claim) {
            None => out.push(Violation::new(
                "requesters.requiredClaims",
                format!("the requester's authentication did not prove claim `{claim}`"),
            )),
            Some(v) if expected != "*" && v != expected => out.push(Violation::new(
                "requesters.requiredClaims",
                format!("claim `{claim}` is `{v}`, the profile requires `{expected}`"),
            )),
            Some(_) => {}
        }
    }
}
