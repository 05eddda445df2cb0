//! EnrollmentEndpoint defaults: the Service port, ACME's challenges, ports and order
//! lifetime, SCEP's one-time challenge lifetime, CMP's confirmation wait.

use pkiplane_api::v1alpha1::{AcmeChallenge, EndpointProtocol, EnrollmentEndpoint, ServiceSettings};

use super::{Defaulting, Patches};

/// ACME: the port http-01 is validated on, and the one tls-alpn-01 is.
pub const ACME_HTTP01_PORT: i32 = 80;
pub const ACME_TLS_ALPN01_PORT: i32 = 443;
/// ACME: how long an order stays open.
pub const ACME_ORDER_LIFETIME: &str = "24h";
/// SCEP: how long a one-time challenge stays usable.
pub const SCEP_CHALLENGE_TTL: &str = "1h";
/// CMP: how long the server waits for certConf.
pub const CMP_CONFIRM_WAIT_TIME: &str = "5m";

impl Defaulting for EnrollmentEndpoint {
    fn defaults(&self) -> Vec<json_patch::PatchOperation> {
        let spec = &self.spec;
        let mut patches = Patches::default();
        // The operator's own default (443 with TLS, 80 without), written into the spec.
        let port = spec.default_service_port();
        match &spec.service {
            None => patches.add(&["spec", "service"], ServiceSettings { port: Some(port), ..Default::default() }),
            Some(s) if s.port.is_none() => patches.add(&["spec", "service", "port"], port),
            Some(_) => {}
        }
        match spec.protocol {
            EndpointProtocol::Acme => acme(self, &mut patches),
            EndpointProtocol::Scep => {
                if let Some(d) = spec.scep.as_ref().and_then(|s| s.dynamic_challenges.as_ref())
                    && d.enabled
                    && d.ttl.is_none()
                {
                    patches.add(&["spec", "scep", "dynamicChallenges", "ttl"], SCEP_CHALLENGE_TTL);
                }
            }
            EndpointProtocol::Cmp => {
                if let Some(c) = &spec.cmp
                    && c.confirm_wait_time.is_none()
                {
                    patches.add(&["spec", "cmp", "confirmWaitTime"], CMP_CONFIRM_WAIT_TIME);
                }
            }
            EndpointProtocol::Est => {}
        }
        patches.finish()
    }
}

fn acme(endpoint: &EnrollmentEndpoint, patches: &mut Patches) {
    let all_challenges = [AcmeChallenge::Http01, AcmeChallenge::Dns01, AcmeChallenge::TlsAlpn01];
    let Some(a) = &endpoint.spec.acme else {
        patches.add(
            &["spec", "acme"],
            serde_json::json!({
                "challenges": all_challenges,
                "http01Port": ACME_HTTP01_PORT,
                "tlsAlpn01Port": ACME_TLS_ALPN01_PORT,
                "orderLifetime": ACME_ORDER_LIFETIME,
            }),
        );
        return;
    };
    if a.challenges.is_empty() {
        patches.add(&["spec", "acme", "challenges"], all_challenges);
    }
    if a.http01_port.is_none() {
        patches.add(&["spec", "acme", "http01Port"], ACME_HTTP01_PORT);
    }
    if a.tls_alpn01_port.is_none() {
        patches.add(&["spec", "acme", "tlsAlpn01Port"], ACME_TLS_ALPN01_PORT);
    }
    if a.order_lifetime.is_none() {
        patches.add(&["spec", "acme", "orderLifetime"], ACME_ORDER_LIFETIME);
    }
}
