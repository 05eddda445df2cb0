//! Integration tests of the SQLite store: a real database file in a temporary directory.

mod common;
mod concurrency;
mod counts;
mod lifecycle;
mod persistence;
mod published;
