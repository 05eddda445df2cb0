//! What every protocol server reads the same way from an EnrollmentEndpoint.

use pkiplane_core::model::ObjectRef;
use pkiplane_core::settings::ExposedProfile;

use super::{FieldError, check_endpoint};
use crate::v1alpha1::{EndpointProtocol, EnrollmentEndpoint};

/// An endpoint's identity and the profiles it exposes, checked once for all protocols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointHead {
    pub id: ObjectRef,
    /// The exposed profiles, in spec order.
    pub profiles: Vec<ExposedProfile>,
    /// The label of the profile used when a request names none.
    pub default_label: Option<String>,
}

impl EndpointHead {
    /// Checks every single-object rule of `endpoint` (an invalid endpoint returns its
    /// errors at once), then pushes onto `errors` what a `protocol` server with clients at
    /// `base_url` also needs: the right protocol and an http(s) base URL, so the caller can
    /// go on collecting errors of its own settings.
    pub fn read(
        endpoint: &EnrollmentEndpoint,
        protocol: EndpointProtocol,
        base_url: &str,
        errors: &mut Vec<FieldError>,
    ) -> Result<Self, Vec<FieldError>> {
        check_endpoint(endpoint)?;
        let namespace = endpoint.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
        let name = endpoint.metadata.name.clone().unwrap_or_default();
        let spec = &endpoint.spec;
        if spec.protocol != protocol {
            let p = protocol.core();
            errors.push(FieldError::new("spec.protocol", format!("a {p} server needs protocol {p}")));
        }
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            errors.push(FieldError::new("baseUrl", format!("`{base_url}` is not an http(s) URL")));
        }
        let profiles = spec
            .profiles
            .iter()
            .map(|p| ExposedProfile { label: p.label().to_owned(), profile: ObjectRef::new(&namespace, &p.name) })
            .collect();
        Ok(Self {
            id: ObjectRef::new(namespace, name),
            profiles,
            default_label: spec.default_profile().map(|p| p.label().to_owned()),
        })
    }
}
