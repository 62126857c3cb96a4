//! The harness against an in-process reference server: a short run of
//! each publishing shape must deliver everything, once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use parley_loadtest::load::{Args, Plan, run};
use parley_loadtest::server::{self, Server};
use std::time::Duration;

async fn start_reference() -> (String, tokio::sync::oneshot::Sender<()>) {
    let args = server::Args::try_parse_from(["reference-server", "--addr", "127.0.0.1:0"]).unwrap();
    let server = Server::bind(&args).await.unwrap();
    let url = format!("ws://{}/ws", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn load(url: &str, extra: &[&str]) -> parley_loadtest::load::Report {
    let mut argv = vec![
        "parley-load",
        "--target",
        "reference",
        "--ws",
        url,
        "--duration-s",
        "2",
        "--warmup-s",
        "1",
        "--drain-s",
        "5",
        "--server-pid",
    ];
    let pid = std::process::id().to_string();
    argv.push(&pid);
    argv.extend_from_slice(extra);
    let args = Args::try_parse_from(argv).unwrap();
    let plan = Plan::from_args(&args).unwrap();
    tokio::time::timeout(Duration::from_secs(60), run(&args, &plan))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_every_subscriber_once_and_in_order() {
    let (url, _stop) = start_reference().await;
    let shapes: [&[&str]; 2] = [
        &[
            "--scenario",
            "rooms",
            "--connections",
            "40",
            "--rooms",
            "4",
            "--publishers",
            "3",
            "--rate",
            "200",
        ],
        &[
            "--scenario",
            "fanout",
            "--connections",
            "30",
            "--rate",
            "100",
        ],
    ];
    for shape in shapes {
        let r = load(&url, shape).await;
        assert_eq!(
            r.connections.established, r.connections.requested,
            "{shape:?}"
        );
        assert_eq!(r.connections.ended_early, 0, "{shape:?}");
        assert!(r.correctness.clean(), "{shape:?}: {:?}", r.correctness);
        assert!(
            r.publishes.acked > 0 && r.publishes.acked == r.publishes.sent,
            "{shape:?}"
        );
        assert!(r.deliveries.expected > 0, "{shape:?}");
        assert_eq!(r.deliveries.total, r.deliveries.expected, "{shape:?}");
        assert!(r.end_to_end.count > 0 && r.ack.count > 0, "{shape:?}");
        assert!(r.rss.end_kib.is_some(), "{shape:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_stay_open_and_report_memory() {
    let (url, _stop) = start_reference().await;
    let r = load(&url, &["--scenario", "idle", "--connections", "50"]).await;
    assert_eq!(r.connections.established, 50);
    assert_eq!(r.connections.ended_early, 0);
    assert_eq!(r.publishes.sent, 0);
    assert!(r.rss.per_connection_kib.is_some());
}
