//! The result of one run: a serialisable [`Report`], printed as a text
//! table or JSON, and [`compare`] for two saved JSON reports side by side.

use super::cli::{Scenario, Target};
use super::stats::LatencySummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    pub target: Target,
    pub scenario: Scenario,
    pub shape: Shape,
    pub connections: Connections,
    pub publishes: Publishes,
    pub deliveries: Deliveries,
    /// Publish (send time in the body) → `message` at a subscriber.
    pub end_to_end: LatencySummary,
    /// Publish sent → its `ack` received.
    pub ack: LatencySummary,
    pub correctness: Correctness,
    pub rss: Rss,
    /// Absent from reports saved before it was measured.
    #[serde(default)]
    pub cpu: Cpu,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shape {
    pub subscribers: usize,
    pub publishers: usize,
    pub rooms: usize,
    pub users: usize,
    pub rate_target: f64,
    pub duration_s: u64,
    pub warmup_s: u64,
    /// Length of the measurement window (duration minus warm-up).
    pub measured_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Connections {
    pub requested: usize,
    pub established: usize,
    pub failed: usize,
    /// Established, then closed by the server or the network before the end.
    pub ended_early: usize,
    /// A few distinct reasons, for failures and early ends.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Publishes {
    pub sent: u64,
    pub acked: u64,
    /// Acks per second for publishes sent in the window.
    pub acked_per_s: f64,
    pub skipped: u64,
    pub unanswered: u64,
    /// `error` frames received by any connection, by code.
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deliveries {
    pub total: u64,
    /// Messages received per second over all subscribers, in the window.
    pub per_s: f64,
    /// Sum over subscribers of the seqs each expected.
    pub expected: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Correctness {
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

impl Correctness {
    pub fn clean(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rss {
    /// Before any WebSocket connected (after REST set-up).
    pub idle_kib: Option<u64>,
    /// After publishing and draining, connections still open.
    pub end_kib: Option<u64>,
    /// (end − idle) / connections established.
    pub per_connection_kib: Option<f64>,
}

/// The server's CPU over the measurement window (`/proc/PID/stat`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cpu {
    /// CPU seconds per second: 1.0 is one core busy.
    pub cores: Option<f64>,
    /// CPU time per message delivered to a subscriber (everything the
    /// server did in the window, divided by the deliveries).
    pub us_per_delivery: Option<f64>,
}

impl Cpu {
    pub fn new(seconds: Option<f64>, measured_s: f64, deliveries: f64) -> Self {
        Self {
            cores: seconds.map(|s| s / measured_s),
            us_per_delivery: seconds
                .filter(|_| deliveries > 0.0)
                .map(|s| s * 1e6 / deliveries),
        }
    }
}

fn latency_line(l: &LatencySummary) -> String {
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (n={})",
        l.p50_ms, l.p99_ms, l.max_ms, l.count
    )
}

fn kib(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v} KiB"))
}

impl Report {
    pub fn table(&self) -> String {
        let (s, c, p, d) = (
            &self.shape,
            &self.connections,
            &self.publishes,
            &self.deliveries,
        );
        let mut out = String::new();
        let mut line = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<16}{value}");
        };
        line(
            "run",
            format!(
                "{} ({:?}, scenario {:?})",
                self.label, self.target, self.scenario
            ),
        );
        line(
            "shape",
            format!(
                "{} subscribers in {} rooms, {} publishers, {} users, {} msg/s target, {} s ({} s warm-up)",
                s.subscribers,
                s.rooms,
                s.publishers,
                s.users,
                s.rate_target,
                s.duration_s,
                s.warmup_s
            ),
        );
        line(
            "connections",
            format!(
                "{}/{} established, {} failed, {} ended early",
                c.established, c.requested, c.failed, c.ended_early
            ),
        );
        for reason in &c.reasons {
            line("", format!("- {reason}"));
        }
        if self.scenario == Scenario::Ack {
            line("PUBLISH→ACK", latency_line(&self.ack));
        }
        line(
            "publishes",
            format!(
                "{} sent, {} acked ({:.1}/s), {} skipped, {} unanswered",
                p.sent, p.acked, p.acked_per_s, p.skipped, p.unanswered
            ),
        );
        line(
            "deliveries",
            format!(
                "{} ({:.1}/s in window; {} expected)",
                d.total, d.per_s, d.expected
            ),
        );
        line("end-to-end", latency_line(&self.end_to_end));
        if self.scenario != Scenario::Ack {
            line("publish→ack", latency_line(&self.ack));
        }
        let k = &self.correctness;
        line(
            "correctness",
            format!(
                "lost {}  duplicated {}  out-of-order {}",
                k.lost, k.duplicated, k.out_of_order
            ),
        );
        let per = self
            .rss
            .per_connection_kib
            .map_or("-".into(), |v| format!("{v:.1} KiB"));
        line(
            "server RSS",
            format!(
                "idle {}, end {}, per connection {per}",
                kib(self.rss.idle_kib),
                kib(self.rss.end_kib)
            ),
        );
        if let Some(cores) = self.cpu.cores {
            let per = self
                .cpu
                .us_per_delivery
                .map_or("-".into(), |us| format!("{us:.2} µs"));
            line(
                "server CPU",
                format!("{:.0} % of a core, per delivery {per}", cores * 100.0),
            );
        }
        if !p.errors.is_empty() {
            line("error frames", format!("{:?}", p.errors));
        }
        out
    }
}

/// Two reports side by side, with the ratio A / B.
pub fn compare(a: &Report, b: &Report) -> String {
    // Latencies without samples show as "-", not as 0 ms.
    let lat = |l: &LatencySummary, v: f64| if l.count == 0 { f64::NAN } else { v };
    let rows: Vec<(&str, f64, f64)> = vec![
        (
            "connections established",
            a.connections.established as f64,
            b.connections.established as f64,
        ),
        (
            "connections failed",
            a.connections.failed as f64,
            b.connections.failed as f64,
        ),
        (
            "connections ended early",
            a.connections.ended_early as f64,
            b.connections.ended_early as f64,
        ),
        (
            "publishes acked/s",
            a.publishes.acked_per_s,
            b.publishes.acked_per_s,
        ),
        ("deliveries/s", a.deliveries.per_s, b.deliveries.per_s),
        (
            "end-to-end p50 ms",
            lat(&a.end_to_end, a.end_to_end.p50_ms),
            lat(&b.end_to_end, b.end_to_end.p50_ms),
        ),
        (
            "end-to-end p99 ms",
            lat(&a.end_to_end, a.end_to_end.p99_ms),
            lat(&b.end_to_end, b.end_to_end.p99_ms),
        ),
        (
            "end-to-end max ms",
            lat(&a.end_to_end, a.end_to_end.max_ms),
            lat(&b.end_to_end, b.end_to_end.max_ms),
        ),
        (
            "publish→ack p50 ms",
            lat(&a.ack, a.ack.p50_ms),
            lat(&b.ack, b.ack.p50_ms),
        ),
        (
            "publish→ack p99 ms",
            lat(&a.ack, a.ack.p99_ms),
            lat(&b.ack, b.ack.p99_ms),
        ),
        (
            "publish→ack max ms",
            lat(&a.ack, a.ack.max_ms),
            lat(&b.ack, b.ack.max_ms),
        ),
        ("lost", a.correctness.lost as f64, b.correctness.lost as f64),
        (
            "duplicated",
            a.correctness.duplicated as f64,
            b.correctness.duplicated as f64,
        ),
        (
            "out-of-order",
            a.correctness.out_of_order as f64,
            b.correctness.out_of_order as f64,
        ),
        ("RSS idle KiB", opt(a.rss.idle_kib), opt(b.rss.idle_kib)),
        ("RSS end KiB", opt(a.rss.end_kib), opt(b.rss.end_kib)),
        (
            "RSS per connection KiB",
            a.rss.per_connection_kib.unwrap_or(f64::NAN),
            b.rss.per_connection_kib.unwrap_or(f64::NAN),
        ),
        (
            "server CPU % of a core",
            a.cpu.cores.map_or(f64::NAN, |c| c * 100.0),
            b.cpu.cores.map_or(f64::NAN, |c| c * 100.0),
        ),
        (
            "CPU µs per delivery",
            a.cpu.us_per_delivery.unwrap_or(f64::NAN),
            b.cpu.us_per_delivery.unwrap_or(f64::NAN),
        ),
    ];
    let mut out = format!(
        "{:<26}{:>16}{:>16}{:>10}\n",
        "metric", a.label, b.label, "A/B"
    );
    for (name, x, y) in rows {
        let ratio = if y != 0.0 && x.is_finite() && y.is_finite() {
            format!("{:.2}", x / y)
        } else {
            "-".into()
        };
        let _ = writeln!(out, "{name:<26}{:>16}{:>16}{ratio:>10}", num(x), num(y));
    }
    out
}

fn opt(v: Option<u64>) -> f64 {
    v.map_or(f64::NAN, |v| v as f64)
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(label: &str, per_s: f64) -> Report {
        Report {
            label: label.into(),
            target: Target::Reference,
            scenario: Scenario::Ack,
            shape: Shape {
                subscribers: 10,
                publishers: 1,
                rooms: 1,
                users: 1,
                rate_target: 10.0,
                duration_s: 10,
                warmup_s: 2,
                measured_s: 8.0,
            },
            connections: Connections::default(),
            publishes: Publishes::default(),
            deliveries: Deliveries {
                per_s,
                ..Deliveries::default()
            },
            end_to_end: LatencySummary::default(),
            ack: LatencySummary::default(),
            correctness: Correctness::default(),
            rss: Rss::default(),
            cpu: Cpu::default(),
        }
    }

    #[test]
    fn the_table_leads_with_ack_latency_in_the_ack_scenario() {
        let t = report("x", 1.0).table();
        let ack = t.find("PUBLISH→ACK").unwrap();
        assert!(ack < t.find("end-to-end").unwrap(), "{t}");
    }

    #[test]
    fn comparisons_show_ratios_and_survive_json() {
        let a: Report =
            serde_json::from_str(&serde_json::to_string(&report("parley", 50.0)).unwrap()).unwrap();
        let c = compare(&a, &report("reference", 100.0));
        let row = c.lines().find(|l| l.starts_with("deliveries/s")).unwrap();
        assert!(row.trim_end().ends_with("0.50"), "{row}");
    }
}
