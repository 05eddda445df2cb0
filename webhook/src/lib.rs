//! webhook
#![forbid(unsafe_code)]
