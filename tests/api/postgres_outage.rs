//! PostgreSQL lost mid-traffic, and back: readiness, REST, WebSocket and the
//! circuit breaker, on the real binary.
//!
//! The shared PostgreSQL server cannot be stopped (other tests use it), so
//! the link is cut instead: parley reaches its database through a TCP proxy
//! inside the test, which can drop every connection, refuse new ones, and
//! let them through again.

use crate::support::{ServerProcess, TestApp, eventually, metric};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP proxy to one address that can be cut and restored.
pub struct LinkProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl LinkProxy {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    // Cut: the connection is closed before a byte is read.
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    /// A proxy to `database_url`'s server, and the URL that goes through it.
    pub async fn in_front_of(database_url: &str) -> (Self, String) {
        // The address only: the proxy's own port is not known yet.
        let (_, target) = through_proxy(database_url, "127.0.0.1:1".parse().unwrap());
        let proxy = Self::start(target).await;
        let (url, _) = through_proxy(database_url, proxy.addr);
        (proxy, url)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `url` with its host and port replaced by `proxy`; also returns the
/// `host:port` it pointed to.
pub fn through_proxy(url: &str, proxy: SocketAddr) -> (String, String) {
    let start = url.find("://").unwrap() + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let mut target = authority[host_start..].to_owned();
    if !target.contains(':') {
        target.push_str(":5432");
    }
    let proxied = format!(
        "{}{}{}{}",
        &url[..start],
        &authority[..host_start],
        proxy,
        &rest[end..]
    );
    (proxied, target)
}

/// Readiness as the admin listener tells it (with the errors).
async fn readiness(app: &TestApp) -> (u16, Value) {
    let url = format!("{}/readyz", app.admin);
    let res = app.client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[actix_web::test]
async fn losing_postgres_fails_fast_and_everything_recovers_without_a_restart() {
    let database = crate::support::db::fresh_database_url().await;
    let (proxy, url) = LinkProxy::in_front_of(&database).await;
    let server = ServerProcess::start(&[
        ("DATABASE_URL", url.as_str()),
        ("PARLEY_DB_POOL_SIZE", "4"),
        ("PARLEY_DB_POOL_TIMEOUT_MS", "500"),
        ("PARLEY_BREAKER_FAILURES", "3"),
        ("PARLEY_BREAKER_WINDOW_S", "10"),
        ("PARLEY_BREAKER_RECOVERY_S", "1"),
    ])
    .await;
    let app = &server.app;
    let owner = app.register("outage").await;
    let room = app.create_room(&owner, "outage", "public").await;
    let mut ws = app.ws(&owner).await;
    let (ack, _) = ws.publish(&room, "before", "c-before").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(readiness(app).await.0, 200);
    assert_eq!(app.breaker("postgres").await["state"], "closed");

    proxy.cut();

    // Readiness: 503 with the database down, and why.
    let body = eventually("readiness 503", Duration::from_secs(10), || async {
        let (status, body) = readiness(app).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(body["database"]["status"], "down", "{body}");
    assert!(body["database"]["error"].as_str().is_some(), "{body}");
    assert!(body["database"]["latency_ms"].as_f64().is_some(), "{body}");

    // REST: 503 problem+json with Retry-After, never a hang or a 500.
    for _ in 0..5 {
        let res = app
            .client
            .get(app.url("/api/v1/users/me"))
            .bearer_auth(&owner.access)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "problem+json"
        );
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "unavailable", "{problem}");
    }

    // The breaker opened: on the admin endpoint and in the metrics.
    let breaker = eventually("the breaker opens", Duration::from_secs(10), || async {
        let breaker = app.breaker("postgres").await;
        (breaker["state"] == "open").then_some(breaker)
    })
    .await;
    assert!(breaker["trips"].as_u64().unwrap() >= 1, "{breaker}");
    let metrics = app.metrics_text().await;
    assert!(
        metric(
            &metrics,
            "parley_circuit_breaker_trips_total",
            &["breaker=\"postgres\""]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "parley_dependency_up",
            &["dependency=\"postgres\""]
        ),
        Some(0.0)
    );
    // While open, a call is refused at once instead of waiting on the pool.
    let started = std::time::Instant::now();
    let res = app
        .client
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(&owner.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(2));

    // WebSocket: a publish is answered `error` `unavailable`, never `ack`.
    let (answer, _) = ws.publish(&room, "during", "c-during").await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "unavailable", "{answer}");
    assert!(answer["retry_after_ms"].as_u64().is_some(), "{answer}");

    proxy.restore();

    // Everything recovers, same process: readiness, REST, publish, breaker.
    eventually("readiness 200", Duration::from_secs(20), || async {
        (readiness(app).await.0 == 200).then_some(())
    })
    .await;
    eventually("REST 200", Duration::from_secs(10), || async {
        let res = app
            .client
            .get(app.url("/api/v1/users/me"))
            .bearer_auth(&owner.access)
            .send()
            .await
            .unwrap();
        (res.status() == 200).then_some(())
    })
    .await;
    let (ack, _) = ws.publish(&room, "during", "c-during").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(app.breaker("postgres").await["state"], "closed");

    let logs = server.log_text();
    assert!(!logs.contains("panicked"), "parley panicked:\n{logs}");
    let mut server = server;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "parley is still running"
    );
}

/// With no request and no probe at all, the database actor notices the
/// outage, says so once, retries with backoff and finds the database back:
/// the gauge an alert watches follows the database by itself, and the
/// circuit breaker its checks tripped closes again with no traffic. At
/// shutdown the actor closes the pool.
#[actix_web::test]
async fn the_database_actor_follows_an_outage_with_no_traffic() {
    let database = crate::support::db::fresh_database_url().await;
    let (proxy, url) = LinkProxy::in_front_of(&database).await;
    let mut server = ServerProcess::start(&[
        ("DATABASE_URL", url.as_str()),
        ("PARLEY_DB_POOL_TIMEOUT_MS", "500"),
        ("PARLEY_HEALTH_CHECK_INTERVAL_MS", "200"),
        ("PARLEY_BREAKER_RECOVERY_S", "1"),
        ("PARLEY_DRAIN_GRACE_MS", "0"),
    ])
    .await;
    let app = &server.app;
    // The admin listener's /metrics reads gauges only: it never touches
    // the database, so everything below is the actor's own doing.
    let up = || async {
        let text = app.metrics_text().await;
        metric(&text, "parley_dependency_up", &["dependency=\"postgres\""])
    };
    eventually("the gauge says up", Duration::from_secs(10), || async {
        (up().await == Some(1.0)).then_some(())
    })
    .await;

    proxy.cut();
    eventually("the gauge says down", Duration::from_secs(10), || async {
        (up().await == Some(0.0)).then_some(())
    })
    .await;
    eventually("the breaker opens", Duration::from_secs(10), || async {
        (app.breaker("postgres").await["state"] == "open").then_some(())
    })
    .await;
    let down_lines = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("dependency down") && l.contains("\"database\""))
            .count()
    };
    assert_eq!(down_lines(&server.log_text()), 1, "{}", server.log_text());

    proxy.restore();
    eventually(
        "the gauge says up again",
        Duration::from_secs(15),
        || async { (up().await == Some(1.0)).then_some(()) },
    )
    .await;
    eventually("the breaker closes", Duration::from_secs(10), || async {
        (app.breaker("postgres").await["state"] == "closed").then_some(())
    })
    .await;
    let logs = server.log_text();
    assert!(logs.contains("dependency back up"), "{logs}");
    // Many failed retries, one line: the log says what changed, not each try.
    assert_eq!(down_lines(&logs), 1, "{logs}");

    server.signal("TERM");
    assert!(server.exit_status(Duration::from_secs(30)).await.success());
    let logs = server.log_text();
    assert!(
        logs.lines()
            .any(|l| l.contains("dependency closed") && l.contains("\"database\"")),
        "{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn a_url_is_pointed_through_the_proxy() {
    let proxy: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    assert_eq!(
        through_proxy("postgres://postgres@127.0.0.1:5432/db?x=1", proxy),
        (
            "postgres://postgres@127.0.0.1:7000/db?x=1".to_owned(),
            "127.0.0.1:5432".to_owned()
        )
    );
    assert_eq!(
        through_proxy("postgresql://localhost/db", proxy).1,
        "localhost:5432"
    );
}

/// PostgreSQL closing every connection of parley's pool (a restart, a
/// failover, an idle timeout on the way) costs no request: reads are
/// retried once on a fresh connection.
#[actix_web::test]
async fn reads_survive_the_server_closing_every_pooled_connection() {
    let mut database_url = String::new();
    let app = TestApp::spawn_with(crate::support::Backend::Postgres, |s| {
        database_url = s.database.url.clone().unwrap();
    })
    .await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "steady", "private").await;
    // Not cached: every call reads the database.
    let path = format!("/api/v1/rooms/{room}");
    // Fill the pool with connections that have served requests.
    for _ in 0..4 {
        assert_eq!(app.get(&path, &ada.access).await.status(), 200);
    }
    let name = database_url.rsplit('/').next().unwrap().to_owned();
    let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(connection);
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap();
    assert!(!killed.is_empty(), "parley had connections to kill");
    for _ in 0..6 {
        let res = app.get(&path, &ada.access).await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
    }
}
