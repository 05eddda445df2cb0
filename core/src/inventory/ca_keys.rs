//! CA key material kept beside the current CA: retired CA keys (after a rollover, until
//! the last certificate they signed has expired) and delegated OCSP responder keys.

use std::time::SystemTime;

use zeroize::Zeroizing;

/// A CA key that was current once and was replaced (CA key rollover, or an intermediate
/// re-issued under a new parent key). Its certificates may still be in use: it keeps
/// signing their CRL and OCSP answers until the last of them has expired.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRetiredCa {
    /// The key identifier of the retired key (what its certificates' authorityKeyIdentifier
    /// holds).
    pub key_id: Vec<u8>,
    pub certificate_der: Vec<u8>,
    /// PKCS#8 DER of the retired private key.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// When it stopped signing certificates.
    pub retired_at: SystemTime,
}

impl std::fmt::Debug for StoredRetiredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRetiredCa")
            .field("key_id", &hex::encode(&self.key_id))
            .field("certificate_der", &format_args!("{} bytes", self.certificate_der.len()))
            .field("private_key_pkcs8", &format_args!("<redacted>"))
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// A delegated OCSP responder (RFC 6960 section 4.2.2.2) of one CA key: a certificate
/// with id-kp-OCSPSigning signed by that CA key, and its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredOcspResponder {
    /// The key identifier of the CA key that certified the responder.
    pub ca_key_id: Vec<u8>,
    pub certificate_der: Vec<u8>,
    /// PKCS#8 DER of the responder's private key.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StoredOcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredOcspResponder")
            .field("ca_key_id", &hex::encode(&self.ca_key_id))
            .field("certificate_der", &format_args!("{} bytes", self.certificate_der.len()))
            .field("private_key_pkcs8", &format_args!("<redacted>"))
            .finish()
    }
}
