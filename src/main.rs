//! The `parley` binary: load settings, start telemetry, build, run.

use parley::app::startup::Application;
use parley::config::Settings;
use parley::observability::telemetry;
use std::process::ExitCode;

/// jemalloc instead of glibc malloc: glibc keeps a heap arena per thread
/// and rarely returns what a burst freed, so after a load test the process
/// held far more memory than it used (docs/benchmarks.md has the figures); jemalloc's
/// decay returns it, and its thread caches make the hot path's many small
/// frame allocations cheaper.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("parley: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "parley could not start");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "parley stopped with an error");
            ExitCode::FAILURE
        }
    }
}
