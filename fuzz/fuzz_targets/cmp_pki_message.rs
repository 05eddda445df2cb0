//! CMP PKIMessage (RFC 9810): the header, every request body a server accepts and
//! every response body a client would read.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;
use pkiplane_cmp::wire::body::{decode_request, decode_response};
use pkiplane_cmp::wire::message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = message::decode(data) {
        let _ = decode_request(msg.body_tag, &msg.body);
        let _ = decode_response(msg.body_tag, &msg.body);
    }
});
