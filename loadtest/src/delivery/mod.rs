//! The delivery benchmark (`loadtest/delivery.sh`): what parley's Web Push
//! sender and webhook worker deliver when notifications and messages
//! arrive at a fixed rate.
//!
//! - [`sink`]: the receiving end (`delivery-sink`): a push service that
//!   decrypts every push with its subscription's private key, as a browser
//!   would, and a webhook receiver; it records the id and arrival time of
//!   each and reports counts, duplicates, rate and lag.
//! - [`offer`]: the sending end (`delivery-offer`): the server API's
//!   notification or message route called at a fixed rate, open loop,
//!   reporting the answers and their latency.
//! - [`Lags`]: percentiles of a set of millisecond figures, for both.

pub mod offer;
pub mod sink;

use serde::Serialize;

/// p50 / p95 / p99 / max of some millisecond figures (0 when there are none).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Lags {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Lags {
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lags;

    #[test]
    fn percentiles_pick_ranked_values() {
        let lags = Lags::of((1..=100).map(f64::from).rev().collect());
        assert_eq!((lags.p50, lags.p99, lags.max), (51.0, 99.0, 100.0));
        assert_eq!(Lags::of(Vec::new()).max, 0.0);
    }
}
