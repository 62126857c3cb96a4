//! An access token: raw strings, or arbitrary header or claims JSON under a real RS256 signature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::jwt(data));
