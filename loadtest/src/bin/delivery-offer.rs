//! The sending end of `loadtest/delivery.sh`: parley's server API called
//! at a fixed rate (`parley_loadtest::delivery::offer`); prints the report
//! as JSON.

use clap::Parser;
use parley_loadtest::delivery::offer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = offer::Args::parse();
    let out = args.out.clone();
    let report = offer::run(args).await?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = out {
        std::fs::write(&path, &json)?;
    }
    println!("{json}");
    Ok(())
}
