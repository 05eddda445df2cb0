//! Who is asking: TLS client certificates ([`tls`]) and HTTP Basic ([`basic`]), each
//! optional per endpoint, mapped to the requester identity and claims that profile rules
//! can use.
//!
//! Rules (RFC 7030 sections 3.2.3, 3.3.2):
//! - a credential that is presented must be valid, whichever else is: a certificate that
//!   does not validate is 403, a wrong Basic password 401 (and counted, see [`basic`]);
//! - with `clientCertificates` and/or `basicAuth` configured, at least one configured
//!   method must succeed: otherwise 401 with `WWW-Authenticate` where Basic applies, 403
//!   where only certificates do; both may be presented and then both are checked and
//!   both contribute claims;
//! - with neither configured, enrollment is open and the requester is `anonymous`;
//! - certificates issued by the CAs behind the endpoint's own profiles always validate
//!   (that is how a device authenticates re-enrollment with its current certificate),
//!   and their inventory record must show them neither revoked nor expired.

pub mod basic;
pub mod tls;

use std::collections::BTreeMap;

use pkiplane_core::inventory::CertificateRecord;
use pkiplane_core::model::{Protocol, Requester};
use pkiplane_core::x509::San;
use pkiplane_core::x509::cert::CertInfo;
use pkiplane_core::x509::names::format_dn;

use crate::error::EstError;
use crate::{EstState, RequestContext};

/// A validated TLS client certificate.
#[derive(Clone, Debug)]
pub struct ClientCert {
    pub info: CertInfo,
    pub sans: Vec<San>,
    /// The inventory record, when pkiplane issued the certificate.
    pub record: Option<CertificateRecord>,
    /// Which trust anchors it chained to, in words.
    pub trusted_by: String,
}

/// The outcome of authentication.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub identity: String,
    pub claims: BTreeMap<String, String>,
    pub client_cert: Option<ClientCert>,
    pub basic_user: Option<String>,
}

impl Authenticated {
    pub fn requester(&self, state: &EstState) -> Requester {
        let mut r = Requester::new(Protocol::Est, self.identity.clone()).at_endpoint(state.config.endpoint.clone());
        r.claims = self.claims.clone();
        r
    }
}

/// Authenticates a request as the module documentation describes.
pub async fn authenticate(state: &EstState, ctx: &RequestContext) -> Result<Authenticated, EstError> {
    let config = &state.config;
    let client_cert = match ctx.peer.as_ref().filter(|p| !p.chain_der.is_empty()) {
        Some(peer) => Some(tls::verify(state, peer).await?),
        None => None,
    };
    let basic_user = match &config.basic {
        Some(b) => basic::check(state, b, ctx).await?,
        None => None,
    };
    let needs_auth = config.basic.is_some() || config.client_certs.is_some();
    let cert_counts = client_cert.as_ref().is_some_and(|c| config.client_certs.is_some() || c.record.is_some());
    if needs_auth && !cert_counts && basic_user.is_none() {
        return Err(match (&config.basic, &config.client_certs) {
            (Some(_), _) => EstError::Unauthorized {
                message: "authentication required: HTTP Basic credentials or a trusted TLS client certificate".into(),
                realm: config.realm.clone(),
            },
            (None, Some(cc)) => EstError::forbidden(format!(
                "authentication required: present a TLS client certificate issued by a CA trusted through {}",
                cc.source
            )),
            (None, None) => EstError::internal("unreachable authentication state"),
        });
    }

    let mut claims = BTreeMap::new();
    let mut identity = Vec::new();
    if let Some(c) = &client_cert {
        identity.push(format_dn(&c.info.subject));
        tls::claims(c, &mut claims);
    }
    if let Some(u) = &basic_user {
        identity.push(format!("basic:{u}"));
        claims.insert("basic.username".into(), u.clone());
    }
    let identity = if identity.is_empty() { "anonymous".to_owned() } else { identity.join(" + ") };
    Ok(Authenticated { identity, claims, client_cert, basic_user })
}
