//! The end-of-run inventory check of the ACME load tool: through pkiplane's admin API
//! (`GET /admin/v1/certificates`), the certificates the inventory holds for the names
//! one run ordered, compared with the certificates its clients received.

use std::collections::BTreeSet;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A page of the admin API's listing (`limit` at most 1,000 there).
const PAGE: usize = 1000;

/// A serial as lowercase hex without leading zero bytes, however it was written.
pub fn normalize_serial(hex: &str) -> String {
    let lower = hex.replace(':', "").to_ascii_lowercase();
    let mut s = lower.as_str();
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    s.to_owned()
}

/// The serial of the first certificate of a PEM chain (the leaf), normalized.
pub fn leaf_serial(pem_chain: &str) -> Result<String, String> {
    use x509_cert::der::DecodePem;
    let end = "-----END CERTIFICATE-----";
    let first = pem_chain.find(end).map(|i| &pem_chain[..i + end.len()]).ok_or("no PEM certificate")?;
    let cert = x509_cert::Certificate::from_pem(first).map_err(|e| format!("the leaf certificate: {e}"))?;
    let bytes = cert.tbs_certificate().serial_number().as_bytes();
    Ok(normalize_serial(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// What the inventory holds for one run's names.
#[derive(Debug, Default)]
pub struct Holding {
    /// Serials of issued (or since revoked) certificates.
    pub issued: BTreeSet<String>,
    /// Records in any other state (pending, abandoned).
    pub other: usize,
}

/// The admin API of one `pkiplane serve`.
pub struct AdminApi {
    base: String,
    token: String,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl AdminApi {
    /// `base` is the admin URL (`https://127.0.0.1:PORT`), `tls` trusts its certificate.
    pub fn new(base: &str, token: &str, tls: rustls::ClientConfig) -> Self {
        let connector = HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let req = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let rsp = self.client.request(req).await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = rsp.status();
        let body = rsp.into_body().collect().await.map_err(|e| format!("GET {url}: {e}"))?.to_bytes();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {}", String::from_utf8_lossy(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
    }

    /// Every certificate record of `endpoint` (`namespace/name`) with a SAN containing
    /// `name_part`, page by page.
    pub async fn holding(&self, endpoint: &str, name_part: &str) -> Result<Holding, String> {
        let mut out = Holding::default();
        let mut next: Option<String> = None;
        loop {
            let mut url = format!("{}/admin/v1/certificates?endpoint={endpoint}&limit={PAGE}", self.base);
            if let Some(c) = &next {
                url.push_str(&format!("&continue={c}"));
            }
            let page = self.get_json(&url).await?;
            let items = page["items"].as_array().ok_or_else(|| format!("GET {url}: no `items`"))?;
            for r in items {
                let named = r["sans"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|n| n.as_str().is_some_and(|n| n.contains(name_part))));
                if !named {
                    continue;
                }
                match r["status"].as_str() {
                    Some("issued" | "revoked") => {
                        out.issued.insert(normalize_serial(r["serial"].as_str().unwrap_or_default()));
                    }
                    _ => out.other += 1,
                }
            }
            match page["continue"].as_str() {
                Some(c) => next = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_however_written() {
        assert_eq!(normalize_serial("00:AB:01"), "ab01");
        assert_eq!(normalize_serial("7f00"), "7f00");
        assert_eq!(normalize_serial("00"), "00");
    }
}
