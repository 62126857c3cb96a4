//! The `parley-load` binary: see [`parley_loadtest::load`].

use clap::Parser;
use parley_loadtest::load::{Args, main_with};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match main_with(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parley-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}
