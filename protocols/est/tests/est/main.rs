//! EST against real clients on loopback: the curl + openssl device scripts, the
//! independent Go client `estclient`, and the failure cases, each checked on the wire,
//! with `openssl verify` and in the inventory.

mod approval;
mod bound;
mod common;
mod devices;
mod estclient;
mod negative;
