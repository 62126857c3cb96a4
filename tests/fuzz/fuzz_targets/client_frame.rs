//! One WebSocket text frame: `parley::ws::protocol::parse`, then the domain parsers of its fields.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::client_frame(data));
