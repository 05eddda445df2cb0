//! What an operation (enroll, query) hands back to `operation`, which wraps it in a
//! CertRep: its own module, so the operations depend on it and not on `operation`.

/// What an operation produced.
#[derive(Debug)]
pub enum Outcome {
    /// The degenerate SignedData to encrypt to the requester.
    Success(Vec<u8>),
    Pending,
}
