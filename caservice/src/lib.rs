//! The CA service's internal API: the CA side (`server`), the endpoint side (`client`,
//! `stores`), the JSON both speak (`wire`), who is calling (`identity`) and the mutual
//! TLS material (`tls`).
//!
//! This is the trust boundary of a cluster deployment: CA keys, the policy engine and the
//! inventory stay behind it; endpoint pods reach them only through these routes, with a
//! client certificate whose URI SAN names the endpoint they are.
#![forbid(unsafe_code)]

pub mod client;
pub mod identity;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod snapshot;
pub mod stores;
pub mod tls;
pub mod wire;

pub use client::{RemoteAuthority, Transport};
pub use identity::Identity;
pub use stores::RemoteStores;

/// RFC 3339 (UTC, seconds) of a time, as Issuer status carries it (`IssuerStatus`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = pkiplane_core::inventory::unix_seconds::to_secs(t);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(super::rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_199)), "2024-02-29T23:59:59Z");
    }
}
