//! `AdmissionReview` handling: the validating and the mutating webhook share the
//! decoding of the object, and differ in what they answer.
//!
//! - CREATE and UPDATE of our kinds are validated (or defaulted); DELETE and CONNECT are
//!   allowed without looking (deletions need no validation).
//! - Denials become one status message, `field: reason; field: reason`, with HTTP code
//!   403; warnings go to the response's `warnings`, which kubectl prints.
//! - Dry runs are answered exactly like real requests: the webhook has no side effects.
//! - Kinds it does not know are allowed, with a warning saying they were not checked.

use kube::core::DynamicObject;
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use pkiplane_api::v1alpha1::{CertificateProfile, EnrollmentEndpoint, GROUP, Issuer};
use serde::de::DeserializeOwned;

use crate::defaults::Defaulting;
use crate::{ClusterView, Validate};

/// Which webhook is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmissionMode {
    /// The ValidatingWebhookConfiguration: allow or deny, with warnings.
    Validate,
    /// The MutatingWebhookConfiguration: defaulting patches; never denies a valid object.
    Mutate,
}

/// Answers one admission request against `view`.
pub fn review(request: &AdmissionRequest<DynamicObject>, view: &ClusterView, mode: AdmissionMode) -> AdmissionResponse {
    if request.kind.group != GROUP {
        return unknown_kind(request);
    }
    match request.kind.kind.as_str() {
        "Issuer" => review_kind::<Issuer>(request, view, mode),
        "CertificateProfile" => review_kind::<CertificateProfile>(request, view, mode),
        "EnrollmentEndpoint" => review_kind::<EnrollmentEndpoint>(request, view, mode),
        _ => unknown_kind(request),
    }
}

fn unknown_kind(request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let kind = &request.kind;
    let message =
        format!("pkiplane's webhook does not check {}/{} {}; allowed unchecked", kind.group, kind.version, kind.kind);
    let mut response = AdmissionResponse::from(request);
    response.result = Status::success();
    response.result.message = message.clone();
    response.warnings = Some(vec![message]);
    response
}

fn review_kind<K>(
    request: &AdmissionRequest<DynamicObject>,
    view: &ClusterView,
    mode: AdmissionMode,
) -> AdmissionResponse
where
    K: Validate + Defaulting + DeserializeOwned,
{
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let new = match decode::<K>(request.object.as_ref(), request) {
        Ok(Some(obj)) => obj,
        Ok(None) => return refuse(response, &format!("the {} request carries no object", K::KIND)),
        Err(e) => return refuse(response, &format!("cannot read the {}: {e}", K::KIND)),
    };
    match mode {
        AdmissionMode::Mutate => {
            let patches = new.defaults();
            if patches.is_empty() {
                return response;
            }
            match response.clone().with_patch(json_patch::Patch(patches)) {
                Ok(patched) => patched,
                Err(e) => refuse(response, &format!("cannot encode the defaults: {e}")),
            }
        }
        AdmissionMode::Validate => {
            let old = match request.operation {
                Operation::Update => decode::<K>(request.old_object.as_ref(), request).ok().flatten(),
                _ => None,
            };
            let verdict = new.validate(old.as_ref(), view);
            let mut response = response;
            if !verdict.warnings.is_empty() {
                response.warnings = Some(verdict.warnings.clone());
            }
            if verdict.is_allowed() { response } else { refuse(response, &verdict.denial_message()) }
        }
    }
}

fn refuse(mut response: AdmissionResponse, message: &str) -> AdmissionResponse {
    response.allowed = false;
    response.result = Status::failure(message, "Forbidden").with_code(403);
    response
}

/// The typed object, with the namespace and name of the request filled in when the
/// object leaves them out (a CREATE with generateName has no name yet).
fn decode<K: DeserializeOwned>(
    object: Option<&DynamicObject>,
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Option<K>, serde_json::Error> {
    let Some(object) = object else { return Ok(None) };
    let mut object = object.clone();
    if object.metadata.namespace.is_none() {
        object.metadata.namespace = request.namespace.clone();
    }
    if object.metadata.name.as_deref().is_none_or(str::is_empty) {
        object.metadata.name = Some(if request.name.is_empty() {
            format!("{}generated", object.metadata.generate_name.clone().unwrap_or_default())
        } else {
            request.name.clone()
        });
    }
    serde_json::to_value(&object).and_then(serde_json::from_value).map(Some)
}
