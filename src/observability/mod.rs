//! What operators see: every Prometheus metric ([`metrics`]), logs and
//! traces ([`telemetry`]), the build's identity ([`version`]) and the
//! instance's [`lifecycle`] flags the probes report.

pub mod lifecycle;
pub mod metrics;
pub mod telemetry;
pub mod version;
