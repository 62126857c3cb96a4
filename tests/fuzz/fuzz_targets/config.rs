//! A `parley.toml` text, `%%`, then NAME=value environment lines: `Settings` or a clean error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::config(data));
