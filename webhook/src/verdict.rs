//! The outcome of validating one object: denials naming a field, and warnings.

use std::fmt;

use pkiplane_api::FieldError;

/// One reason an object is refused: the field it is about and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Path of the field, e.g. `spec.validity.max`.
    pub field: String,
    /// Why, in a sentence a platform engineer understands.
    pub reason: String,
}

impl Denial {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl From<FieldError> for Denial {
    fn from(e: FieldError) -> Self {
        Self { field: e.path, reason: e.message }
    }
}

/// Everything found about one object: it is admitted when `denials` is empty, and the
/// warnings are shown either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub denials: Vec<Denial>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        self.denials.is_empty()
    }

    pub fn deny(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        let denial = Denial::new(field, reason);
        if !self.denials.contains(&denial) {
            self.denials.push(denial);
        }
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Adds field errors from the conversions in `pkiplane_api::convert`.
    pub fn deny_all(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        for e in errors {
            self.deny(e.path, e.message);
        }
    }

    /// Every denial as `field: reason`, separated by `; ` (the admission status message).
    pub fn denial_message(&self) -> String {
        self.denials.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}
