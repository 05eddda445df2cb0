//! Where clients reach an EnrollmentEndpoint: its Service (name, port) and the URL every
//! protocol puts on the wire. One derivation shared by the operator (the Service it
//! creates, status.urls), the endpoint pods (the URLs they announce) and the webhook
//! (the Service port it writes into the spec).

use super::{EndpointProtocol, EnrollmentEndpoint, EnrollmentEndpointSpec};

/// Service port of an endpoint with TLS, and without (the schemes' defaults).
pub const HTTPS_SERVICE_PORT: i32 = 443;
pub const HTTP_SERVICE_PORT: i32 = 80;

impl EnrollmentEndpointSpec {
    /// Whether the endpoint serves TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `https` with TLS, `http` without.
    pub fn scheme(&self) -> &'static str {
        if self.serves_tls() { "https" } else { "http" }
    }

    /// The Service port: spec.service.port, else 443 with TLS and 80 without.
    pub fn service_port(&self) -> i32 {
        self.service.as_ref().and_then(|s| s.port).unwrap_or_else(|| self.default_service_port())
    }

    /// The port clients use when the URL names none.
    pub fn default_service_port(&self) -> i32 {
        if self.serves_tls() { HTTPS_SERVICE_PORT } else { HTTP_SERVICE_PORT }
    }

    /// `spec.externalURL` without a trailing slash.
    pub fn external_base_url(&self) -> Option<&str> {
        self.external_url.as_deref().map(|u| u.trim_end_matches('/')).filter(|u| !u.is_empty())
    }
}

impl EndpointProtocol {
    /// The protocol's entry point below the base URL.
    pub fn well_known_path(self) -> &'static str {
        match self {
            EndpointProtocol::Acme => "/directory",
            EndpointProtocol::Est => "/.well-known/est",
            EndpointProtocol::Scep => "/scep",
            EndpointProtocol::Cmp => "/.well-known/cmp",
        }
    }
}

/// Name of the Service (and Deployment) the operator makes for the endpoint `name`.
pub fn endpoint_service_name(name: &str) -> String {
    format!("{name}-pkiplane")
}

impl EnrollmentEndpoint {
    /// `<name>-pkiplane.<namespace>.svc`: the Service's DNS name inside the cluster.
    pub fn service_host(&self) -> String {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        let namespace = self.metadata.namespace.as_deref().unwrap_or("default");
        format!("{}.{namespace}.svc", endpoint_service_name(name))
    }

    /// `scheme://host[:port]` for `host` behind the Service port (no port when it is the
    /// scheme's default).
    fn service_url_for(&self, host: &str) -> String {
        let spec = &self.spec;
        let port = spec.service_port();
        if port == spec.default_service_port() {
            format!("{}://{host}", spec.scheme())
        } else {
            format!("{}://{host}:{port}", spec.scheme())
        }
    }

    /// The base URL clients reach in a cluster: spec.externalURL, else the Service under
    /// the first TLS DNS name (the name its certificate is for), else under its cluster
    /// DNS name, with the Service port.
    pub fn cluster_base_url(&self) -> String {
        if let Some(url) = self.spec.external_base_url() {
            return url.to_string();
        }
        let host =
            self.spec.tls.as_ref().and_then(|t| t.dns_names.first().cloned()).unwrap_or_else(|| self.service_host());
        self.service_url_for(&host)
    }

    /// Every URL the endpoint is reached at in a cluster, the announced one first: the
    /// protocol's entry point under [`Self::cluster_base_url`], under the Service's
    /// cluster DNS name, and under each further TLS DNS name. No duplicates.
    pub fn cluster_urls(&self) -> Vec<String> {
        let path = self.spec.protocol.well_known_path();
        let mut bases = vec![self.cluster_base_url(), self.service_url_for(&self.service_host())];
        bases.extend(self.spec.tls.iter().flat_map(|t| t.dns_names.iter()).map(|d| self.service_url_for(d)));
        let mut out: Vec<String> = Vec::new();
        for url in bases.into_iter().map(|b| format!("{b}{path}")) {
            if !out.contains(&url) {
                out.push(url);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(spec: &str) -> EnrollmentEndpoint {
        serde_yaml::from_str(&format!(
            "apiVersion: pkiplane.dev/v1alpha1\nkind: EnrollmentEndpoint\nmetadata: {{name: acme, namespace: pki}}\nspec:\n{spec}"
        ))
        .unwrap()
    }

    const ACME_TLS: &str = "  protocol: ACME\n  profiles: [{name: tls}]\n  listen: {port: 14000}\n";

    #[test]
    fn tls_endpoint_behind_port_443_announces_no_port() {
        let e =
            endpoint(&format!("{ACME_TLS}  tls: {{issuerRef: {{name: ca}}, dnsNames: [acme.example.com, acme]}}\n"));
        assert_eq!(e.spec.service_port(), 443, "the default agrees with the CRD text, whatever listen.port is");
        assert_eq!(e.cluster_base_url(), "https://acme.example.com");
        assert_eq!(
            e.cluster_urls(),
            ["https://acme.example.com/directory", "https://acme-pkiplane.pki.svc/directory", "https://acme/directory"]
        );
    }

    #[test]
    fn without_dns_names_the_service_name_is_the_host() {
        let e = endpoint(&format!("{ACME_TLS}  tls: {{issuerRef: {{name: ca}}, ipAddresses: [10.0.0.5]}}\n"));
        assert_eq!(e.cluster_base_url(), "https://acme-pkiplane.pki.svc");
        assert_eq!(e.cluster_urls(), ["https://acme-pkiplane.pki.svc/directory"]);
    }

    #[test]
    fn a_non_default_service_port_is_named() {
        let e = endpoint(&format!("{ACME_TLS}  tls: {{secretRef: {{name: t}}}}\n  service: {{port: 8443}}\n"));
        assert_eq!(e.cluster_base_url(), "https://acme-pkiplane.pki.svc:8443");
        let plain = endpoint("  protocol: SCEP\n  profiles: [{name: d}]\n");
        assert_eq!(plain.spec.service_port(), 80);
        assert_eq!(plain.cluster_urls(), ["http://acme-pkiplane.pki.svc/scep"]);
        let plain_443 = endpoint("  protocol: CMP\n  profiles: [{name: d}]\n  service: {port: 443}\n");
        assert_eq!(plain_443.cluster_base_url(), "http://acme-pkiplane.pki.svc:443", "443 is not http's default");
    }

    #[test]
    fn external_url_wins_everywhere() {
        let e = endpoint(&format!(
            "{ACME_TLS}  tls: {{issuerRef: {{name: ca}}, dnsNames: [acme.internal]}}\n  externalURL: https://pki.example.com:8443/\n"
        ));
        assert_eq!(e.cluster_base_url(), "https://pki.example.com:8443");
        assert_eq!(
            e.cluster_urls(),
            [
                "https://pki.example.com:8443/directory",
                "https://acme-pkiplane.pki.svc/directory",
                "https://acme.internal/directory"
            ]
        );
        let est = endpoint("  protocol: EST\n  profiles: [{name: d}]\n  externalURL: http://est.example.com\n");
        assert_eq!(est.cluster_urls()[0], "http://est.example.com/.well-known/est");
    }

    #[test]
    fn external_url_pattern() {
        let re = regex_lite::Regex::new(super::super::EXTERNAL_URL_PATTERN).unwrap();
        for ok in ["https://acme.example.com", "http://10.0.0.1:8080", "https://[::1]:443/", "https://a"] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in
            ["acme.example.com", "https://acme.example.com/acme", "ftp://x", "https://x?y", "https://-x", "https://"]
        {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
