//! Integration tests of the stores: a real SQLite file in a temporary directory and a
//! real PostgreSQL server (Debian's, started by the tests), one behaviour suite for both.

mod acme_state;
mod approvals;
mod cmp_state;
mod common;
mod concurrency;
mod counts;
mod legacy_acme;
mod lifecycle;
mod persistence;
mod postgres;
mod postgres_leases;
mod postgres_tls;
mod published;
mod scep_state;
mod sealing;
