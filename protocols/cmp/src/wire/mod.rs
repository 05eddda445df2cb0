//! The CMP wire format: the PKIMessage envelope, bodies, PKIStatusInfo, and OIDs.
//!
//! Everything here is der 0.7 / x509-cert 0.2 / spki 0.7, the versions the `cmpv2` and
//! `crmf` crates are built on; [`crate::convert`] carries values across to the
//! workspace's der 0.8 types as DER bytes.

pub mod body;
pub mod message;
pub mod oids;
pub mod status;
pub mod template;

pub use body::{RequestBody, ResponseBody};
pub use message::{Header, Incoming, OutHeader, tag};
pub use status::{FailBit, FailInfo, StatusInfo};
