//! A REST JSON body (first byte: which route): serde_json, then the handler's parse into domain types.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::rest_body(data));
