//! State that enrollment protocols keep between requests, and the store traits that keep
//! it shared between replicas (design principle 4: endpoints scale horizontally, so no
//! protocol state lives in one pod's memory).
//!
//! Each protocol has its own module of models and one trait; `pkiplane-store` implements
//! the traits (SQLite), and each module has an in-memory implementation for unit tests.

pub mod acme;
pub mod cmp;
pub mod est;
pub mod scep;
