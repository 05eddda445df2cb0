//! caservice
#![forbid(unsafe_code)]
