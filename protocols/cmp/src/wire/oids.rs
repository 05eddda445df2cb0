//! Object identifiers CMP uses (RFC 9810, RFC 9481, RFC 9483, RFC 4211), in the der 0.7
//! `ObjectIdentifier` type the wire types use.

use der::asn1::ObjectIdentifier as Oid;

const fn oid(s: &str) -> Oid {
    Oid::new_unwrap(s)
}

// Protection algorithms (RFC 9481 section 6).
/// `id-PasswordBasedMac` (RFC 4211 section 4.4).
pub const PASSWORD_BASED_MAC: Oid = oid("1.2.840.113533.7.66.13");
/// `id-PBMAC1` (RFC 8018 appendix A.5, RFC 9481 section 6.1.2).
pub const PBMAC1: Oid = oid("1.2.840.113549.1.5.14");
/// `id-PBKDF2` (RFC 8018 appendix A.2).
pub const PBKDF2: Oid = oid("1.2.840.113549.1.5.12");

// One-way functions (RFC 9481 section 2).
pub const SHA1: Oid = oid("1.3.14.3.2.26");
pub const SHA256: Oid = oid("2.16.840.1.101.3.4.2.1");
pub const SHA384: Oid = oid("2.16.840.1.101.3.4.2.2");
pub const SHA512: Oid = oid("2.16.840.1.101.3.4.2.3");

// MAC algorithms (RFC 9481 section 6.2).
/// `hMAC-SHA1` (RFC 8018 / IPsec registry), OpenSSL's default PBM MAC.
pub const HMAC_SHA1: Oid = oid("1.3.6.1.5.5.8.1.2");
pub const HMAC_WITH_SHA1: Oid = oid("1.2.840.113549.2.7");
pub const HMAC_WITH_SHA256: Oid = oid("1.2.840.113549.2.9");
pub const HMAC_WITH_SHA384: Oid = oid("1.2.840.113549.2.10");
pub const HMAC_WITH_SHA512: Oid = oid("1.2.840.113549.2.11");

// Signature algorithms (RFC 9481 section 3).
pub const ECDSA_WITH_SHA256: Oid = oid("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = oid("1.2.840.10045.4.3.3");
pub const ECDSA_WITH_SHA512: Oid = oid("1.2.840.10045.4.3.4");
pub const SHA256_WITH_RSA: Oid = oid("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = oid("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = oid("1.2.840.113549.1.1.13");
pub const RSASSA_PSS: Oid = oid("1.2.840.113549.1.1.10");
pub const ED25519: Oid = oid("1.3.101.112");
pub const EC_PUBLIC_KEY: Oid = oid("1.2.840.10045.2.1");
pub const RSA_ENCRYPTION: Oid = oid("1.2.840.113549.1.1.1");

// InfoTypeAndValue types (RFC 9810 section 5.3.19, appendix F).
/// `id-it-signKeyPairTypes`.
pub const IT_SIGN_KEY_PAIR_TYPES: Oid = oid("1.3.6.1.5.5.7.4.2");
/// `id-it-currentCRL`.
pub const IT_CURRENT_CRL: Oid = oid("1.3.6.1.5.5.7.4.6");
/// `id-it-unsupportedOIDs`.
pub const IT_UNSUPPORTED_OIDS: Oid = oid("1.3.6.1.5.5.7.4.7");
/// `id-it-implicitConfirm`.
pub const IT_IMPLICIT_CONFIRM: Oid = oid("1.3.6.1.5.5.7.4.13");
/// `id-it-confirmWaitTime`.
pub const IT_CONFIRM_WAIT_TIME: Oid = oid("1.3.6.1.5.5.7.4.14");
/// `id-it-caCerts` (RFC 9810 section 5.3.19.15).
pub const IT_CA_CERTS: Oid = oid("1.3.6.1.5.5.7.4.17");
/// `id-it-rootCaKeyUpdate` (RFC 9810 section 5.3.19.16).
pub const IT_ROOT_CA_KEY_UPDATE: Oid = oid("1.3.6.1.5.5.7.4.18");
/// `id-it-certReqTemplate` (RFC 9810 section 5.3.19.17).
pub const IT_CERT_REQ_TEMPLATE: Oid = oid("1.3.6.1.5.5.7.4.19");
/// `id-it-rootCaCert` (RFC 9810 section 5.3.19.16).
pub const IT_ROOT_CA_CERT: Oid = oid("1.3.6.1.5.5.7.4.20");
/// `id-it-crlStatusList` (RFC 9810 section 5.3.19.18).
pub const IT_CRL_STATUS_LIST: Oid = oid("1.3.6.1.5.5.7.4.22");
/// `id-it-crls` (RFC 9810 section 5.3.19.19).
pub const IT_CRLS: Oid = oid("1.3.6.1.5.5.7.4.23");

// Registration controls (RFC 4211 section 6, RFC 9810 section 5.3.19.17).
/// `id-regCtrl-oldCertID` (RFC 4211 section 6.5).
pub const REG_CTRL_OLD_CERT_ID: Oid = oid("1.3.6.1.5.5.7.5.1.5");
/// `id-regCtrl-algId` (RFC 9810 section 5.3.19.17).
pub const REG_CTRL_ALG_ID: Oid = oid("1.3.6.1.5.5.7.5.1.11");
/// `id-regCtrl-rsaKeyLen` (RFC 9810 section 5.3.19.17).
pub const REG_CTRL_RSA_KEY_LEN: Oid = oid("1.3.6.1.5.5.7.5.1.12");

// Certificate extensions read from templates.
pub const SUBJECT_ALT_NAME: Oid = oid("2.5.29.17");
pub const KEY_USAGE: Oid = oid("2.5.29.15");
pub const EXT_KEY_USAGE: Oid = oid("2.5.29.37");
/// `id-kp-cmcRA` (RFC 6402): marks a certificate as a registration authority's, the
/// only signers whose requests may claim `raVerified` proof of possession.
pub const KP_CMC_RA: Oid = oid("1.3.6.1.5.5.7.3.28");
/// `id-kp-clientAuth`.
pub const KP_CLIENT_AUTH: Oid = oid("1.3.6.1.5.5.7.3.2");
