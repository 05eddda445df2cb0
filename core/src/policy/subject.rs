//! `subject`: the certificate's distinguished name.

use x509_cert::name::RdnSequence;

use super::{PolicyInput, Violation};
use crate::profile::{Presence, SubjectRule, UnlistedAttributes, ValueSource};
use crate::x509::San;
use crate::x509::names::{SubjectAttribute, build_name};

/// Attributes that may legitimately appear more than once in a subject.
const MULTI_VALUED: [SubjectAttribute; 2] = [SubjectAttribute::OrganizationalUnit, SubjectAttribute::DomainComponent];

pub(super) fn decide(
    input: &PolicyInput<'_>,
    sans: &[San],
    out: &mut Vec<Violation>,
    notes: &mut Vec<String>,
) -> Option<RdnSequence> {
    let default_rules;
    let rules: &[SubjectRule] = if input.profile.subject.rules.is_empty() {
        // A profile without subject rules keeps the CSR's CN and nothing else.
        default_rules = [SubjectRule {
            attribute: SubjectAttribute::CommonName,
            presence: Presence::Optional,
            value: None,
            source: ValueSource::Csr,
            must_match_san: false,
            pattern: None,
        }];
        &default_rules
    } else {
        &input.profile.subject.rules
    };
    let csr_attrs = &input.csr.subject_attributes;
    let before = out.len();
    let mut result: Vec<(SubjectAttribute, String)> = Vec::new();

    for rule in rules {
        let field = format!("subject.attributes[{}]", rule.attribute);
        let from_csr: Vec<&str> =
            csr_attrs.iter().filter(|a| a.attribute == Some(rule.attribute)).map(|a| a.value.as_str()).collect();
        if rule.presence == Presence::Forbidden {
            if !from_csr.is_empty() {
                out.push(Violation::new(
                    format!("{field}.presence"),
                    format!("the CSR's subject carries {}, which the profile forbids", rule.attribute),
                ));
            }
            continue;
        }
        if from_csr.len() > 1 && !MULTI_VALUED.contains(&rule.attribute) && rule.value.is_none() {
            out.push(Violation::new(
                field.clone(),
                format!("the CSR's subject carries {} {} times", rule.attribute, from_csr.len()),
            ));
            continue;
        }
        let values: Vec<String> = if let Some(fixed) = &rule.value {
            if from_csr.iter().any(|v| v != fixed) {
                notes.push(format!("subject {} set to `{fixed}` by the profile", rule.attribute));
            }
            vec![fixed.clone()]
        } else {
            match &rule.source {
                ValueSource::Csr => from_csr.iter().map(|v| v.to_string()).collect(),
                ValueSource::FirstSan(kind) => {
                    if from_csr.is_empty() {
                        sans.iter().find(|s| s.kind() == *kind).map(|s| vec![s.value()]).unwrap_or_default()
                    } else {
                        from_csr.iter().map(|v| v.to_string()).collect()
                    }
                }
                ValueSource::Claim(claim) => match input.requester.claims.get(claim) {
                    Some(proved) => {
                        if let Some(other) = from_csr.iter().find(|v| *v != proved) {
                            out.push(Violation::new(
                                format!("{field}.claim"),
                                format!(
                                    "the CSR asks for {}=`{other}` but the requester's authentication proved {claim}=`{proved}`",
                                    rule.attribute
                                ),
                            ));
                            continue;
                        }
                        vec![proved.clone()]
                    }
                    None if !from_csr.is_empty() => {
                        out.push(Violation::new(
                            format!("{field}.claim"),
                            format!(
                                "{} must come from the requester's proved claim `{claim}`, which this request lacks",
                                rule.attribute
                            ),
                        ));
                        continue;
                    }
                    None => Vec::new(),
                },
            }
        };
        if values.is_empty() {
            if rule.presence == Presence::Required {
                out.push(Violation::new(
                    format!("{field}.presence"),
                    format!("the profile requires a subject {} and none was given or derived", rule.attribute),
                ));
            }
            continue;
        }
        for v in values {
            if let Some(p) = &rule.pattern
                && !full_match(p, &v)
            {
                out.push(Violation::new(
                    format!("{field}.pattern"),
                    format!("subject {}=`{v}` does not match the pattern `{}`", rule.attribute, p.as_str()),
                ));
                continue;
            }
            if rule.must_match_san && !sans.iter().any(|s| s.value().eq_ignore_ascii_case(&v)) {
                out.push(Violation::new(
                    format!("{field}.mustMatchSAN"),
                    format!("subject {}=`{v}` is not one of the certificate's SANs", rule.attribute),
                ));
                continue;
            }
            result.push((rule.attribute, v));
        }
    }

    let unlisted: Vec<String> = csr_attrs
        .iter()
        .filter(|a| a.attribute.is_none_or(|attr| !rules.iter().any(|r| r.attribute == attr)))
        .map(|a| match a.attribute {
            Some(attr) => format!("{attr}={}", a.value),
            None => format!("{}={}", a.oid, a.value),
        })
        .collect();
    if !unlisted.is_empty() {
        match input.profile.subject.unlisted {
            UnlistedAttributes::Refuse => out.push(Violation::new(
                "subject.otherAttributes",
                format!("the CSR's subject carries attributes the profile does not allow: {}", unlisted.join(", ")),
            )),
            UnlistedAttributes::Drop => {
                notes.push(format!("subject attributes left out by the profile: {}", unlisted.join(", ")))
            }
        }
    }
    if result.is_empty() && sans.is_empty() && out.len() == before {
        out.push(Violation::new(
            "subject",
            "the certificate would name no one: its subject is empty and it has no SANs",
        ));
    }
    if out.len() != before {
        return None;
    }
    // DER lists the least specific attribute first; keep profile order, which reads the
    // same way as the manifest.
    match build_name(&result) {
        Ok(name) => Some(name),
        Err(e) => {
            out.push(Violation::new("subject", e));
            None
        }
    }
}

fn full_match(re: &regex_lite::Regex, v: &str) -> bool {
    re.find(v).is_some_and(|m| m.start() == 0 && m.end() == v.len())
}
