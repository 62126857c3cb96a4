//! `parley-loadtest`: the load-test harness (`parley-load`) and the bare
//! reference server (`reference-server`) it measures parley against.
//!
//! # Layout
//!
//! - [`wire`]: the frames of the WebSocket contract both binaries speak;
//!   [`frame_types`]: every frame `type` of that contract.
//! - [`server`]: the reference server: rooms, fan-out, one task pair per
//!   connection. Shares nothing with parley but the protocol.
//! - [`load`]: the harness: command line and scenario presets (`cli`),
//!   parley REST set-up (`setup`), connecting (`connect`), the subscriber
//!   and publisher tasks, shared counters and histograms (`stats`), the
//!   per-subscriber seq check (`seq`), server memory (`rss`) and the
//!   report (`report`). `load::run` drives one run through its phases.
//!
//! - [`delivery`]: `delivery-sink` and `delivery-offer`, the two ends of
//!   the Web Push and webhook benchmark (`loadtest/delivery.sh`).
//!
//! `loadtest/run.sh` runs a scenario against both servers and prints the
//! two reports side by side; `loadtest/README.md` explains the numbers.

pub mod delivery;
pub mod frame_types;
pub mod load;
pub mod server;
pub mod wire;
