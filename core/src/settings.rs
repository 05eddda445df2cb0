//! What every component's settings share: a problem with one field of a resource
//! ([`FieldError`]) and the profiles an endpoint exposes ([`ExposedProfile`]). Protocol crates check
//! their settings with these (a pure `check()`), `pkiplane-api` converts resources into
//! settings with them, and the webhook, the operator and `pkiplane serve` report them the
//! same way.

use std::fmt;

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.subject.attributes[0].pattern`.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    /// All errors, one per line.
    pub fn join(errors: &[FieldError]) -> String {
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

/// One profile an enrollment endpoint exposes: the label clients name it by (ACME
/// profile name, EST label, SCEP and CMP path segment) and the CertificateProfile behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedProfile {
    pub label: String,
    pub profile: crate::ObjectRef,
}

/// The one rule for the profile a request that names none gets: the one marked default,
/// else the only one, else none. Generic so that the CRD (`ProfileBinding`) and the
/// settings (`ExposedProfile`) follow the same rule.
pub fn default_of<T>(profiles: &[T], marked_default: impl Fn(&T) -> bool) -> Option<&T> {
    profiles.iter().find(|p| marked_default(p)).or(match profiles {
        [only] => Some(only),
        _ => None,
    })
}

/// The default label of settings built without an explicit default (none is marked).
pub fn default_label(profiles: &[ExposedProfile]) -> Option<String> {
    default_of(profiles, |_| false).map(|p| p.label.clone())
}

#[cfg(test)]
mod tests {
    use super::default_of;

    #[test]
    fn the_marked_profile_else_the_only_one_else_none() {
        let marked = |p: &&str| p.ends_with('*');
        assert_eq!(default_of(&["a", "b*", "c"], marked), Some(&"b*"));
        assert_eq!(default_of(&["a"], marked), Some(&"a"), "the only one");
        assert_eq!(default_of(&["a", "b"], marked), None, "two, none marked");
        assert_eq!(default_of::<&str>(&[], marked), None);
    }
}
