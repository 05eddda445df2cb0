//! The ACME server end to end: the real router on 127.0.0.1 over a real SQLite store, a
//! CA built from the core, and real clients: instant-acme for the flows, a hand-made
//! JWS client for the requests a well-behaved client never sends. The tests run the
//! challenge responders (http-01 server, DNS responder, tls-alpn-01 TLS server)
//! themselves; every issued certificate is checked with `openssl verify`.

mod common;

mod accounts;
mod alone;
mod approval;
mod chain;
mod flows;
mod negative;
mod profiles;
mod recovery;
mod replicas;
mod resolver;
mod targets;
