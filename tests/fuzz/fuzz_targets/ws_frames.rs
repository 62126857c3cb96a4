//! Bytes from a WebSocket client, split as the network might: `parley::ws::socket::MessageDecoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parley::fuzz::ws_frames(data));
