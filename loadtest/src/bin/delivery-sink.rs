//! The receiving end of `loadtest/delivery.sh`: a push service that
//! decrypts and a webhook receiver, both timing what arrives
//! (`parley_loadtest::delivery::sink`).

use clap::Parser;
use parley_loadtest::delivery::sink;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    sink::run(sink::Args::parse()).await
}
