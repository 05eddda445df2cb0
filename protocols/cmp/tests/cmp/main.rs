//! The CMP server driven by `openssl cmp` (OpenSSL 3) on 127.0.0.1.

mod common;
mod confirm;
mod crafted;
mod enroll;
mod general;
mod lifecycle;
mod negative;
mod vectors;
