//! The command line of `parley-load` and what each `--scenario` preset
//! means, resolved into a [`Plan`]: how many subscribers, rooms and
//! publishers, at what rate, for how long.

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which server is under test; decides authentication and room set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// parley: users registered and rooms created over REST, bearer tokens.
    Parley,
    /// reference-server: no auth; rooms are fresh UUID strings.
    Reference,
}

/// Scenario presets; explicit `--rooms` / `--publishers` override them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// N subscribed connections (N/10 rooms), no publishing: memory per connection.
    Idle,
    /// 1 room, N subscribers, 1 publisher at --rate: fan-out throughput and latency.
    Fanout,
    /// R rooms (default N/10), N/R subscribers each, P publishers (default R/10) at --rate in total.
    Rooms,
    /// As `rooms`, with publish→ack latency as the headline (run it on PostgreSQL).
    Ack,
    /// N users, each one connection in --rooms-per-user rooms (N/10 rooms),
    /// publishing every --publish-every-s and reading history over REST every
    /// --read-every-s: an app's concurrent users (see `users.rs`).
    Users,
}

/// Command line of `parley-load`.
#[derive(Debug, Parser)]
#[command(name = "parley-load", version, about, long_about = None)]
pub struct Args {
    /// Server under test.
    #[arg(long, value_enum, default_value = "parley")]
    pub target: Target,
    /// parley's REST base (registering users, creating rooms); ignored for `reference`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// WebSocket URL of the server under test.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub ws: String,
    /// Scenario preset.
    #[arg(long, value_enum, default_value = "rooms")]
    pub scenario: Scenario,
    /// Subscriber connections (publishers come on top).
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Rooms; default from the scenario.
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Publisher connections; default from the scenario.
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Total publish rate in messages per second, spread evenly over the publishers.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Length of the publishing phase, warm-up included. With set-up,
    /// connecting and draining (each bounded too) it bounds the run.
    #[arg(long, default_value_t = 30)]
    pub duration_s: u64,
    /// Start of the publishing phase excluded from rates and latencies.
    #[arg(long, default_value_t = 5)]
    pub warmup_s: u64,
    /// After publishing stops, how long to wait for outstanding acks and deliveries.
    #[arg(long, default_value_t = 5)]
    pub drain_s: u64,
    /// Spread client sockets over source addresses 127.0.0.2 ..= 127.0.0.(1+N); 0 lets the kernel choose.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(0..=250))]
    pub source_ips: u8,
    /// Server process whose VmRSS is read at idle and at the end.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// parley users to register; their tokens are reused round-robin. Default min(connections, 200).
    #[arg(long)]
    pub users: Option<usize>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Bound on the whole connecting phase.
    #[arg(long, default_value_t = 120)]
    pub connect_timeout_s: u64,
    /// Bound on user registration and room creation.
    #[arg(long, default_value_t = 300)]
    pub setup_timeout_s: u64,
    /// `users`: rooms each user subscribes to.
    #[arg(long, default_value_t = 3)]
    pub rooms_per_user: usize,
    /// `users`: seconds between one user's publishes.
    #[arg(long, default_value_t = 30.0)]
    pub publish_every_s: f64,
    /// `users`: seconds between one user's REST history reads.
    #[arg(long, default_value_t = 15.0)]
    pub read_every_s: f64,
    /// `users`: length of one row of the time series (RSS, p95s).
    #[arg(long, default_value_t = 30)]
    pub interval_s: u64,
    /// Registrations in flight at once during set-up (each costs the
    /// server a password hash; more inflates the idle RSS).
    #[arg(long, default_value_t = 2)]
    pub register_concurrency: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name for this run in the report (default: the target).
    #[arg(long)]
    pub label: Option<String>,
    /// Exit with status 2 when a connection failed or a correctness counter is not zero.
    #[arg(long)]
    pub strict: bool,
    /// Instead of running: print two JSON reports side by side with A/B ratios.
    #[arg(long, num_args = 2, value_names = ["A_JSON", "B_JSON"])]
    pub compare: Option<Vec<PathBuf>>,
}

/// A resolved run: the preset applied and every number checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub subscribers: usize,
    pub rooms: usize,
    pub publishers: usize,
    /// Total publishes per second (0 for `idle`).
    pub rate: f64,
    pub users: usize,
}

/// Upper bounds that keep a typo from exhausting the machine.
const MAX_CONNECTIONS: usize = 200_000;
const MAX_RATE: f64 = 1_000_000.0;

impl Plan {
    pub fn from_args(args: &Args) -> anyhow::Result<Self> {
        let n = args.connections;
        anyhow::ensure!(n >= 1, "--connections must be at least 1");
        let default_rooms = (n / 10).max(1);
        let (rooms, publishers, rate) = match args.scenario {
            Scenario::Idle => (args.rooms.unwrap_or(default_rooms), 0, 0.0),
            Scenario::Fanout => (
                args.rooms.unwrap_or(1),
                args.publishers.unwrap_or(1),
                args.rate,
            ),
            Scenario::Users => (args.rooms.unwrap_or(default_rooms), 0, 0.0),
            Scenario::Rooms | Scenario::Ack => {
                let rooms = args.rooms.unwrap_or(default_rooms);
                (
                    rooms,
                    args.publishers.unwrap_or((rooms / 10).max(1)),
                    args.rate,
                )
            }
        };
        anyhow::ensure!(rooms >= 1, "--rooms must be at least 1");
        anyhow::ensure!(
            n + publishers <= MAX_CONNECTIONS,
            "at most {MAX_CONNECTIONS} connections in all"
        );
        if args.scenario == Scenario::Users {
            anyhow::ensure!(
                args.publish_every_s >= 0.01 && args.read_every_s >= 0.01,
                "--publish-every-s and --read-every-s must be at least 0.01"
            );
        } else if args.scenario != Scenario::Idle {
            anyhow::ensure!(publishers >= 1, "--publishers must be at least 1");
            anyhow::ensure!(
                rate > 0.0 && rate <= MAX_RATE,
                "--rate must be above 0 and at most {MAX_RATE}"
            );
        }
        anyhow::ensure!(args.duration_s >= 1, "--duration-s must be at least 1");
        anyhow::ensure!(
            args.warmup_s < args.duration_s,
            "--warmup-s must be shorter than --duration-s"
        );
        anyhow::ensure!(
            args.connect_concurrency >= 1,
            "--connect-concurrency must be at least 1"
        );
        // `users` is about distinct people: one account per connection.
        let default_users = match args.scenario {
            Scenario::Users => n,
            _ => (n + publishers).min(200),
        };
        let users = args.users.unwrap_or(default_users).max(1);
        Ok(Self {
            subscribers: n,
            rooms,
            publishers,
            rate,
            users,
        })
    }

    /// The room subscriber `i` joins.
    pub fn room_of_subscriber(&self, i: usize) -> usize {
        i % self.rooms
    }

    /// The rooms publisher `p` publishes to, in turn.
    pub fn rooms_of_publisher(&self, p: usize) -> Vec<usize> {
        if self.publishers >= self.rooms {
            return vec![p % self.rooms];
        }
        (p..self.rooms).step_by(self.publishers).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["parley-load"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn presets_fill_in_rooms_and_publishers() {
        let p = Plan::from_args(&args(&["--scenario", "rooms", "--connections", "10000"])).unwrap();
        assert_eq!((p.rooms, p.publishers, p.users), (1000, 100, 200));
        let p = Plan::from_args(&args(&["--scenario", "fanout", "--connections", "2000"])).unwrap();
        assert_eq!((p.rooms, p.publishers), (1, 1));
        let p = Plan::from_args(&args(&["--scenario", "users", "--connections", "10000"])).unwrap();
        assert_eq!((p.rooms, p.publishers, p.users), (1000, 0, 10000));
        let p = Plan::from_args(&args(&["--scenario", "idle", "--connections", "5"])).unwrap();
        assert_eq!((p.rooms, p.publishers, p.rate, p.users), (1, 0, 0.0, 5));
    }

    #[test]
    fn every_room_has_a_publisher_and_every_subscriber_a_room() {
        let p = Plan::from_args(&args(&[
            "--connections",
            "100",
            "--rooms",
            "10",
            "--publishers",
            "3",
        ]))
        .unwrap();
        let mut covered: Vec<usize> = (0..3).flat_map(|i| p.rooms_of_publisher(i)).collect();
        covered.sort_unstable();
        assert_eq!(covered, (0..10).collect::<Vec<_>>());
        assert_eq!(p.room_of_subscriber(23), 3);
        let many = Plan::from_args(&args(&["--rooms", "2", "--publishers", "5"])).unwrap();
        assert_eq!(many.rooms_of_publisher(3), vec![1]);
    }

    #[test]
    fn nonsense_is_refused_with_the_flag_named() {
        let e = Plan::from_args(&args(&["--warmup-s", "40", "--duration-s", "30"])).unwrap_err();
        assert!(e.to_string().contains("--warmup-s"));
        let e = Plan::from_args(&args(&["--rate", "0"])).unwrap_err();
        assert!(e.to_string().contains("--rate"));
    }
}
