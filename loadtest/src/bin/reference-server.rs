//! The `reference-server` binary: see [`parley_loadtest::server`].

use clap::Parser;
use parley_loadtest::server::{Args, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Args::parse()).await
}
