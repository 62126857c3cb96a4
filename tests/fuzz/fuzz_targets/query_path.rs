//! A query string (`web::Query`) or a path id (first byte: which).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::query_or_path(data));
