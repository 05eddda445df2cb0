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

/// The one rule for the profile a request that names none gets, when settings are
/// built without an explicit default: the only exposed profile, else none.
pub fn default_label(profiles: &[ExposedProfile]) -> Option<String> {
    match profiles {
        [only] => Some(only.label.clone()),
        _ => None,
    }
}
