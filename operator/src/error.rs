//! The operator's one error type, with a short label for metrics.

/// Everything a reconcile or a background loop can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("CA service: {0}")]
    CaService(#[from] crate::ca_client::CaServiceError),
    /// Building, signing or parsing certificates and keys.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The internal CA is not bootstrapped yet (the leader creates it first).
    #[error("the internal CA is not available yet")]
    InternalCaNotReady,
    #[error("serializing {what}: {message}")]
    Serialization { what: &'static str, message: String },
    #[error("object without {0}")]
    MissingField(&'static str),
    #[error("lost the leader lease")]
    LeadershipLost,
    #[error("metrics listener: {0}")]
    Listener(std::io::Error),
}

impl Error {
    /// A short, bounded label for the `error` dimension of the reconcile metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::CaService(_) => "ca_service",
            Error::Certificate(_) => "certificate",
            Error::InternalCaNotReady => "internal_ca_not_ready",
            Error::Serialization { .. } => "serialization",
            Error::MissingField(_) => "missing_field",
            Error::LeadershipLost => "leadership_lost",
            Error::Listener(_) => "listener",
        }
    }

    pub(crate) fn yaml(what: &'static str, e: serde_yaml::Error) -> Self {
        Error::Serialization { what, message: e.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
