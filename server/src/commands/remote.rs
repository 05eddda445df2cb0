//! The CLI's side of the admin API: `--server` and the credentials to present.
//!
//! Credentials, first found wins: `--token`, `--token-file`, then the user of a
//! kubeconfig context (`--context`, `--kubeconfig`, or `KUBECONFIG` / ~/.kube/config
//! when either is given): a token, a token file, an exec plugin or an OIDC id-token
//! all end up as a bearer token, which the server reviews; a client certificate is
//! presented in the TLS handshake, and the CA service accepts it when it chains to the
//! cluster's client CA (docs/operations/admin-api.md). The HTTP client is kube's: it
//! reads kubeconfig users exactly as kubectl does (username/password excepted).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use axum::http::{Method, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::admin::view::ErrorBody;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// The admin API of a running `pkiplane serve` or `pkiplane ca`
    /// (https://HOST:PORT). Without it the command works offline on --data-dir, which
    /// only works while no server owns that directory.
    #[arg(long, env = "PKIPLANE_SERVER")]
    pub server: Option<String>,
    /// PEM certificates to trust the server with (serve: DATA_DIR/admin-tls/ca.crt; in a
    /// cluster: ca.crt of the Secret pkiplane-ca-tls). Default: the system's roots.
    #[arg(long, env = "PKIPLANE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The name to check the server's certificate for, when --server's host is not one
    /// of its names (e.g. through a port-forward: pkiplane-ca.pkiplane-system.svc).
    #[arg(long)]
    pub tls_server_name: Option<String>,
    /// A bearer token (standalone: DATA_DIR/admin.token's; in a cluster: a Kubernetes
    /// token, e.g. from `kubectl create token`).
    #[arg(long, env = "PKIPLANE_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long, env = "PKIPLANE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Present the credentials of this kubeconfig (default: KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Present the credentials of this kubeconfig context's user.
    #[arg(long)]
    pub context: Option<String>,
}

/// How long one request may take, all told.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A connection to a server's admin API.
pub struct AdminClient {
    client: kube::Client,
    bearer: Option<Zeroizing<String>>,
}

impl RemoteArgs {
    /// The client, when `--server` is given.
    pub async fn client(&self) -> Result<Option<AdminClient>> {
        let Some(server) = &self.server else {
            if self.context.is_some() || self.kubeconfig.is_some() || self.token.is_some() || self.token_file.is_some()
            {
                bail!(
                    "--server is needed with --token, --token-file, --context or --kubeconfig: the admin API's URL \
                     (e.g. https://127.0.0.1:8443, or a port-forward to the pkiplane-ca Service's admin port), not the \
                     Kubernetes API server's"
                );
            }
            return Ok(None);
        };
        let url: Uri = server.trim_end_matches('/').parse().with_context(|| format!("--server `{server}`"))?;
        if url.scheme_str() != Some("https") {
            bail!("--server must be an https:// URL (the admin API serves TLS only)");
        }
        let bearer = match (&self.token, &self.token_file) {
            (Some(t), _) => Some(Zeroizing::new(t.trim().to_owned())),
            (None, Some(path)) => {
                let text = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading --token-file {}", path.display()))?,
                );
                Some(Zeroizing::new(text.trim().to_owned()))
            }
            (None, None) => None,
        };
        let mut config = if bearer.is_none() && (self.context.is_some() || self.kubeconfig.is_some()) {
            let options = KubeConfigOptions { context: self.context.clone(), ..Default::default() };
            let mut from_file = match &self.kubeconfig {
                Some(path) => {
                    let kc = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
                    Config::from_custom_kubeconfig(kc, &options).await
                }
                None => Config::from_kubeconfig(&options).await,
            }
            .context("reading the kubeconfig")?;
            // The kubeconfig's cluster is the Kubernetes API server: only its user's
            // credentials are taken.
            from_file.cluster_url = url.clone();
            from_file.root_cert = None;
            from_file.root_cert_file = None;
            from_file.tls_server_name = None;
            from_file.proxy_url = None;
            from_file.accept_invalid_certs = false;
            from_file
        } else {
            Config::new(url.clone())
        };
        let a = &config.auth_info;
        let has_any = a.token.is_some()
            || a.token_file.is_some()
            || a.exec.is_some()
            || a.auth_provider.is_some()
            || a.client_certificate.is_some()
            || a.client_certificate_data.is_some();
        if bearer.is_none() && !has_any {
            bail!(
                "no credentials: pass --token or --token-file, or --context/--kubeconfig with a kubeconfig user holding \
                 a token, an exec plugin or a client certificate"
            );
        }
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).with_context(|| format!("reading --ca-file {}", path.display()))?;
            let ders = pkiplane_core::x509::pem::decode_chain(&pem, "CERTIFICATE")
                .map_err(|e| anyhow!("--ca-file {}: {e}", path.display()))?;
            if ders.is_empty() {
                bail!("--ca-file {}: no CERTIFICATE in it", path.display());
            }
            config.root_cert = Some(ders);
        }
        config.tls_server_name = self.tls_server_name.clone();
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(REQUEST_TIMEOUT);
        let client = kube::Client::try_from(config).context("setting up the HTTPS client")?;
        Ok(Some(AdminClient { client, bearer }))
    }
}

impl AdminClient {
    /// GETs `path` (with its query) and reads the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let body = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&body).with_context(|| format!("reading the answer of GET {path}"))
    }

    /// GETs `path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let body = self.call(Method::GET, path, None).await?;
        String::from_utf8(body).map_err(|_| anyhow!("the answer of GET {path} is not text"))
    }

    /// POSTs `body` as JSON to `path` and reads the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let answer = self.call(Method::POST, path, Some(serde_json::to_vec(body)?)).await?;
        serde_json::from_slice(&answer).with_context(|| format!("reading the answer of POST {path}"))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Vec<u8>> {
        let mut request =
            Request::builder().method(method.clone()).uri(path).header(header::ACCEPT, "application/json");
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", token.as_str()));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(kube::client::Body::from(body.unwrap_or_default()))?;
        let exchange = async {
            let response = self.client.send(request).await.map_err(|e| anyhow!("{method} {path}: {e}"))?;
            let status = response.status();
            let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow!("{method} {path}: reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}"))??;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(anyhow!(RemoteError::from_answer(status, &bytes)))
    }
}

/// An error answer of the admin API (its JSON message, or the HTTP status).
#[derive(Debug, thiserror::Error)]
#[error("the server answered {status}: {message}")]
pub struct RemoteError {
    pub status: StatusCode,
    pub message: String,
}

impl RemoteError {
    fn from_answer(status: StatusCode, body: &[u8]) -> Self {
        let message = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => e.message,
            Err(_) => String::from_utf8_lossy(&body[..body.len().min(500)]).trim().to_owned(),
        };
        Self { status, message }
    }
}

/// The offline commands' refusal when a server owns `data_dir`: `instead` names the
/// flags of that server's admin API when it published them.
pub fn use_server_instead(data_dir: &std::path::Path) -> String {
    match crate::admin::Discovery::read(data_dir) {
        Some(d) => format!("ask the server through its admin API instead: {}", d.flags()),
        None => "ask the server through its admin API instead (--server, see `pkiplane serve --admin-listen`)".into(),
    }
}

/// `?a=b&c=d` of the pairs with a value, percent-encoded.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v)))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment, percent-encoded.
pub fn segment(s: &str) -> String {
    percent_encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            query(&[("profile", Some("pki/web".into())), ("status", None), ("limit", Some("5".into()))]),
            "?profile=pki%2Fweb&limit=5"
        );
        assert_eq!(query(&[("a", None)]), "");
    }

    #[tokio::test]
    async fn without_server_the_command_is_offline_and_credentials_alone_are_refused() {
        assert!(RemoteArgs::default().client().await.unwrap().is_none());
        let args = RemoteArgs { token: Some("t".into()), ..Default::default() };
        assert!(args.client().await.err().unwrap().to_string().contains("--server is needed"));
        let args =
            RemoteArgs { server: Some("http://127.0.0.1:1".into()), token: Some("t".into()), ..Default::default() };
        assert!(args.client().await.err().unwrap().to_string().contains("https://"));
    }
}
