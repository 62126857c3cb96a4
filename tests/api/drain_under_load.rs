//! Issue 6, "Tested": a drain under load. Two instances behind haproxy
//! (health-checked on `/readyz`), 1,000 WebSocket subscribers, WebSocket
//! publishers and a steady REST load; `SIGTERM` one instance. Every client
//! it held is told to reconnect, lands on the other instance through the
//! load balancer, resubscribes with `since`, and ends with every message of
//! its room exactly once, in order; REST fails only with 503 +
//! `Retry-After`; the drained process exits 0 before its drain deadline.

use crate::support::TestUser;
use crate::support::cluster::{Cluster, redis_url};
use crate::support::ws::{Incoming, OpenError, WsClient, ws_request};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

const CLIENTS: usize = 1_000;
const ROOMS: usize = 5;
/// Subscribers share a few accounts: what is under test is sessions, and
/// registering 1,000 users would spend the time on password hashing.
const USERS: usize = 10;
const PUBLISHERS: usize = 3;
/// Upgrades in progress at once while the subscribers connect.
const CONNECTING: usize = 50;
const DRAIN_TIMEOUT_S: u64 = 15;
/// Bound on each phase the test waits for (connecting, reconnecting,
/// catching up).
const PHASE: Duration = Duration::from_secs(45);
const DRAINED: &str = "node-0";
const SURVIVOR: &str = "node-1";

/// Opens `/ws` through the load balancer and reads `hello`. An upgrade
/// refused with 503 + `Retry-After` (it reached the draining instance before
/// haproxy's check noticed) is retried; any other refusal is an error.
async fn connect(url: &str, token: &str) -> Result<WsClient, String> {
    let deadline = Instant::now() + PHASE;
    loop {
        match WsClient::try_open(ws_request(url, Some(token), None)).await {
            Ok(client) => return Ok(client),
            Err(OpenError::Refused(response))
                if response.status() == 503
                    && response.headers().contains_key("retry-after")
                    && Instant::now() < deadline =>
            {
                // A short backoff, not Retry-After's whole seconds: the
                // other instance is already there.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(OpenError::Refused(response)) => {
                return Err(format!(
                    "upgrade refused with {} (headers {:?})",
                    response.status(),
                    response.headers()
                ));
            }
            Err(OpenError::Failed(why)) => return Err(why),
        }
    }
}

fn instance(hello: &Value) -> String {
    hello["instance"].as_str().unwrap_or_default().to_owned()
}

/// What a subscriber tells the test body while it runs.
enum Event {
    Subscribed { instance: String },
    Resubscribed,
    Failed(String),
}

/// What a subscriber saw, kept small so 1,000 of them stay cheap.
struct ClientReport {
    room: usize,
    /// `seq` in the first `subscribed`: live messages start after it.
    start: i64,
    /// Every `message` seq received, in arrival order.
    seqs: Vec<i64>,
    /// The instance of each `hello`, in order.
    instances: Vec<String>,
    /// For each drain: the `retry_after_ms` of `reconnect`, the close code.
    reconnects: Vec<(u64, Option<u16>)>,
}

struct Subscriber {
    url: String,
    token: String,
    room_id: String,
    room: usize,
    events: mpsc::UnboundedSender<Event>,
    /// Each room's final head, once the load stopped.
    heads: watch::Receiver<Option<Vec<i64>>>,
    connecting: Rc<Semaphore>,
}

impl Subscriber {
    async fn run(mut self) -> Result<ClientReport, String> {
        let connecting = self.connecting.clone();
        let permit = connecting.acquire().await;
        let mut socket = connect(&self.url, &self.token).await?;
        let hello = socket.hello.clone();
        let mut report = ClientReport {
            room: self.room,
            start: 0,
            seqs: Vec::new(),
            instances: vec![instance(&hello)],
            reconnects: Vec::new(),
        };
        socket
            .try_send(json!({"type": "subscribe", "room": self.room_id, "ref": "sub"}))
            .await?;
        report.start = loop {
            match socket.try_next().await? {
                Incoming::Frame(f) if f["type"] == "subscribed" => {
                    break f["seq"].as_i64().ok_or(format!("subscribed {f}"))?;
                }
                Incoming::Frame(f) if f["type"] == "presence" => continue,
                Incoming::Frame(f) => return Err(format!("expected subscribed, got {f}")),
                Incoming::Closed(code) => return Err(format!("closed ({code:?}) early")),
            }
        };
        drop(permit);
        let _ = self.events.send(Event::Subscribed {
            instance: instance(&hello),
        });
        let mut last = report.start;
        let mut told: Option<u64> = None;
        loop {
            if let Some(heads) = &*self.heads.borrow()
                && last >= heads[self.room]
            {
                return Ok(report);
            }
            let incoming = tokio::select! {
                changed = self.heads.changed() => {
                    changed.map_err(|_| "the test body is gone")?;
                    continue;
                }
                incoming = socket.try_next() => incoming?,
            };
            let frame = match incoming {
                Incoming::Frame(frame) => frame,
                Incoming::Closed(code) => {
                    let Some(wait) = told.take() else {
                        return Err(format!("closed ({code:?}) without reconnect"));
                    };
                    report.reconnects.push((wait, code));
                    // The wait the server asked for, so clients do not
                    // stampede the survivor.
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    socket = connect(&self.url, &self.token).await?;
                    report.instances.push(instance(&socket.hello));
                    socket
                        .try_send(json!({"type": "subscribe", "room": self.room_id, "since": last, "ref": "resub"}))
                        .await?;
                    continue;
                }
            };
            match frame["type"].as_str() {
                Some("message") => {
                    if frame["room"] != self.room_id.as_str() {
                        return Err(format!("a message of another room: {frame}"));
                    }
                    let seq = frame["seq"].as_i64().ok_or(format!("message {frame}"))?;
                    report.seqs.push(seq);
                    last = last.max(seq);
                }
                Some("reconnect") => {
                    told = Some(
                        frame["retry_after_ms"]
                            .as_u64()
                            .ok_or(format!("reconnect without retry_after_ms: {frame}"))?,
                    );
                }
                Some("subscribed") if frame["ref"] == "resub" => {
                    let _ = self.events.send(Event::Resubscribed);
                }
                Some("presence") => {}
                _ => return Err(format!("unexpected frame {frame}")),
            }
        }
    }
}

/// A publish that was acked: (room index, seq, client_id).
type Acked = (usize, i64, String);

/// Publishes to the rooms in turn through the load balancer until `stop`,
/// one at a time. A publish cut off by a drain is sent again, with the same
/// `client_id`, after reconnecting: idempotency makes that safe.
async fn publisher(
    url: String,
    token: String,
    rooms: Rc<Vec<String>>,
    k: usize,
    stop: watch::Receiver<bool>,
    acked: Rc<watch::Sender<usize>>,
) -> Result<(Vec<Acked>, String), String> {
    let mut socket = connect(&url, &token).await?;
    let first_instance = instance(&socket.hello);
    let mut done = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = 0;
    while !*stop.borrow() {
        pace.tick().await;
        let room = (i + k) % ROOMS;
        let client_id = format!("p{k}-{i}");
        let frame = json!({"type": "publish", "room": rooms[room], "body": format!("publisher {k} #{i}"), "client_id": client_id, "ref": client_id});
        let mut attempts = 0;
        let mut told: Option<u64> = None;
        'resend: loop {
            attempts += 1;
            if attempts > 20 {
                return Err(format!("{client_id} was never acked"));
            }
            let sent = socket.try_send(frame.clone()).await;
            loop {
                let incoming = match sent {
                    Ok(()) => socket.try_next().await?,
                    // Written after the server closed: read what it said.
                    Err(_) => socket.try_next().await.unwrap_or(Incoming::Closed(None)),
                };
                match incoming {
                    Incoming::Frame(f) if f["type"] == "ack" && f["ref"] == client_id.as_str() => {
                        let seq = f["seq"].as_i64().ok_or(format!("ack {f}"))?;
                        done.push((room, seq, client_id.clone()));
                        acked.send_modify(|n| *n += 1);
                        break 'resend;
                    }
                    Incoming::Frame(f)
                        if f["type"] == "error"
                            && f["ref"] == client_id.as_str()
                            && f["code"] == "unavailable" =>
                    {
                        let wait = f["retry_after_ms"].as_u64().unwrap_or(100);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        continue 'resend;
                    }
                    Incoming::Frame(f) if f["type"] == "reconnect" => {
                        told = f["retry_after_ms"].as_u64();
                    }
                    Incoming::Frame(f) if f["type"] == "error" => {
                        return Err(format!("publish {client_id} refused: {f}"));
                    }
                    Incoming::Frame(_) => {}
                    Incoming::Closed(code) => {
                        let Some(wait) = told.take() else {
                            return Err(format!("publisher closed ({code:?}) without reconnect"));
                        };
                        if code != Some(1012) {
                            return Err(format!("publisher closed with {code:?} after reconnect"));
                        }
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        socket = connect(&url, &token).await?;
                        continue 'resend;
                    }
                }
            }
        }
        i += 1;
    }
    Ok((done, first_instance))
}

/// REST traffic through the load balancer: what succeeded, what was
/// refused the allowed way, and every other outcome.
#[derive(Default)]
struct RestReport {
    ok: usize,
    refused: usize,
    failures: Vec<String>,
    /// Posts answered 201 or 200: (room index, client_id).
    posted: Vec<(usize, String)>,
}

impl RestReport {
    /// Sorts one response; `true` when it succeeded.
    async fn record(&mut self, what: &str, outcome: reqwest::Result<reqwest::Response>) -> bool {
        match outcome {
            Ok(res) if res.status().is_success() => {
                self.ok += 1;
                true
            }
            Ok(res)
                if res.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && res.headers().contains_key("retry-after") =>
            {
                self.refused += 1;
                false
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                self.failures.push(format!("{what}: {status} {body}"));
                false
            }
            Err(e) => {
                // The causes say whether the connection was refused, reset
                // or closed early.
                self.failures.push(format!("{what}: {e:?}"));
                false
            }
        }
    }
}

/// Reads (`post == false`) or posts to the rooms in turn until `stop`.
async fn rest_load(
    base: String,
    user: TestUser,
    rooms: Rc<Vec<String>>,
    k: usize,
    post: bool,
    stop: watch::Receiver<bool>,
) -> RestReport {
    let client = reqwest::Client::new();
    let mut report = RestReport::default();
    let mut pace = tokio::time::interval(Duration::from_millis(if post { 40 } else { 20 }));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i = 0;
    while !*stop.borrow() {
        pace.tick().await;
        let room = (i + k) % ROOMS;
        let url = format!("{base}/api/v1/rooms/{}/messages", rooms[room]);
        if post {
            let client_id = format!("r{k}-{i}");
            let outcome = client
                .post(&url)
                .bearer_auth(&user.access)
                .json(&json!({"body": format!("rest {k} #{i}"), "client_id": client_id}))
                .send()
                .await;
            if report.record(&format!("POST {url}"), outcome).await {
                report.posted.push((room, client_id));
            }
        } else {
            let outcome = client
                .get(format!("{url}?limit=20"))
                .bearer_auth(&user.access)
                .send()
                .await;
            report.record(&format!("GET {url}"), outcome).await;
        }
        i += 1;
    }
    report
}

/// Receives events until `done` says enough, within [`PHASE`]; a failed
/// subscriber ends the wait at once with its reason.
async fn until(
    events: &mut mpsc::UnboundedReceiver<Event>,
    what: &str,
    mut done: impl FnMut(&Event) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + PHASE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| format!("{what}: not within {PHASE:?}"))?
            .ok_or("the subscribers are gone")?;
        if let Event::Failed(why) = &event {
            return Err(format!("{what}: a subscriber failed: {why}"));
        }
        if done(&event) {
            return Ok(());
        }
    }
}

/// Fails the test with `why` and what the instances logged as warnings or
/// errors, which usually says what went wrong.
fn fail_with_logs(cluster: &Cluster, why: &str) -> ! {
    let mut logs = String::new();
    for node in &cluster.nodes {
        let lines = node.logs.lock().unwrap();
        // A panic's message is on the line after "panicked at".
        let notable: Vec<&String> = lines
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                let l = l.to_ascii_lowercase();
                let after_panic = i
                    .checked_sub(1)
                    .is_some_and(|p| lines[p].contains("panicked at"));
                after_panic || l.contains("warn") || l.contains("error") || l.contains("panic")
            })
            .map(|(_, l)| l)
            .collect();
        let skip = notable.len().saturating_sub(20);
        for line in &notable[skip..] {
            logs.push_str(line);
            logs.push('\n');
        }
    }
    panic!("{why}\ninstances' last warnings and errors:\n{logs}");
}

/// 1,000 clients need more descriptors than a usual soft limit of 1,024
/// (here, and in parley and haproxy, which inherit it): raise it when low.
fn enough_open_files() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok());
    if soft.is_some_and(|n| n < 8_192) {
        let raised = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                "--nofile=16384:16384",
            ])
            .status();
        assert!(
            raised.is_ok_and(|s| s.success()),
            "the open-files limit ({soft:?}) is too low for {CLIENTS} clients and cannot be raised"
        );
    }
}

#[actix_web::test]
async fn sigterm_under_load_moves_every_client_to_the_other_instance_losing_nothing() {
    enough_open_files();
    let drain_timeout = DRAIN_TIMEOUT_S.to_string();
    let mut cluster = Cluster::start(
        2,
        &redis_url(),
        &[
            ("PARLEY_RATE_API_PER_MIN", "1000000"),
            ("PARLEY_DRAIN_TIMEOUT_S", &drain_timeout),
            // Longer than haproxy's check needs (200 ms, one failure) to
            // take the draining instance out of rotation.
            ("PARLEY_DRAIN_GRACE_MS", "1000"),
            // 1,000 subscribers in one test process on 2 cores may read
            // late; a slow-consumer close is not what is tested here.
            ("PARLEY_WS_OUTBOX", "4096"),
        ],
    )
    .await;
    let started = Instant::now();
    let lb = &cluster.lb;
    let base = lb.base.clone();
    let ws_url = lb.ws_url();

    let owner = lb.register("owner").await;
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(lb.create_room(&owner, &format!("load{r}"), "public").await);
    }
    let rooms = Rc::new(rooms);
    let mut users = Vec::new();
    for u in 0..USERS {
        users.push(lb.register(&format!("listener{u}")).await);
    }
    let mut writers = Vec::new();
    for k in 0..PUBLISHERS {
        writers.push(lb.register(&format!("writer{k}")).await);
    }
    let rest_user = lb.register("rester").await;

    // 1,000 subscribers through the load balancer, round-robin over both.
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (heads_tx, heads_rx) = watch::channel(None);
    let connecting = Rc::new(Semaphore::new(CONNECTING));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let subscriber = Subscriber {
            url: ws_url.clone(),
            token: users[c % USERS].access.clone(),
            room_id: rooms[c % ROOMS].clone(),
            room: c % ROOMS,
            events: events_tx.clone(),
            heads: heads_rx.clone(),
            connecting: connecting.clone(),
        };
        let failed = events_tx.clone();
        clients.push(actix_web::rt::spawn(async move {
            let outcome = subscriber.run().await;
            if let Err(why) = &outcome {
                let _ = failed.send(Event::Failed(why.clone()));
            }
            outcome
        }));
    }
    let mut on_drained = 0;
    let mut subscribed = 0;
    until(&mut events, "every subscriber subscribed", |e| {
        if let Event::Subscribed { instance } = e {
            subscribed += 1;
            on_drained += usize::from(instance == DRAINED);
        }
        subscribed == CLIENTS
    })
    .await
    .unwrap_or_else(|why| fail_with_logs(&cluster, &why));
    assert!(
        (CLIENTS / 4..=CLIENTS * 3 / 4).contains(&on_drained),
        "round-robin put {on_drained} of {CLIENTS} on {DRAINED}"
    );
    let connected_after = started.elapsed();

    // The load: WebSocket publishers and REST readers and posters.
    let (stop_tx, stop) = watch::channel(false);
    let acked = Rc::new(watch::channel(0usize).0);
    let acked_count = acked.subscribe();
    let publishers: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(k, w)| {
            actix_web::rt::spawn(publisher(
                ws_url.clone(),
                w.access.clone(),
                rooms.clone(),
                k,
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let rest: Vec<_> = (0..4)
        .map(|k| {
            actix_web::rt::spawn(rest_load(
                base.clone(),
                rest_user.clone(),
                rooms.clone(),
                k,
                k % 2 == 1,
                stop.clone(),
            ))
        })
        .collect();
    let flowing = |n: usize| {
        let mut acked_count = acked_count.clone();
        async move {
            tokio::time::timeout(PHASE, acked_count.wait_for(|a| *a >= n))
                .await
                .unwrap_or_else(|_| panic!("{n} publishes acked within {PHASE:?}"))
                .map(|_| ())
                .unwrap();
        }
    };
    flowing(30).await;

    // SIGTERM one instance while everything runs.
    let drained_at = Instant::now();
    cluster.nodes[0].signal("TERM");
    let mut moved = 0;
    let reconnecting = until(&mut events, "every drained subscriber resubscribed", |e| {
        moved += usize::from(matches!(e, Event::Resubscribed));
        moved == on_drained
    });
    let exiting = cluster.nodes[0].exit_status(Duration::from_secs(DRAIN_TIMEOUT_S + 10));
    let (reconnected, exit) = tokio::join!(reconnecting, exiting);
    let drain_took = drained_at.elapsed();
    reconnected.unwrap_or_else(|why| fail_with_logs(&cluster, &why));
    assert!(exit.success(), "the drained instance exits 0, not {exit}");
    let logs = cluster.nodes[0].log_text();
    assert!(
        logs.contains("drain: finished"),
        "the drain completed before its deadline:\n{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");

    // Some more traffic on the survivor alone, then stop the load.
    let before = *acked.borrow();
    flowing(before + 30).await;
    stop_tx.send(true).unwrap();
    let mut acks = Vec::new();
    let mut publishers_on_drained = 0;
    for p in join_all(publishers).await {
        let (done, first) = p.unwrap().unwrap_or_else(|why| panic!("publisher: {why}"));
        publishers_on_drained += usize::from(first == DRAINED);
        acks.extend(done);
    }
    let mut rest_total = RestReport::default();
    for r in join_all(rest).await {
        let r = r.unwrap();
        rest_total.ok += r.ok;
        rest_total.refused += r.refused;
        rest_total.failures.extend(r.failures);
        rest_total.posted.extend(r.posted);
    }
    if !rest_total.failures.is_empty() {
        let why = format!(
            "REST requests may fail only with 503 + Retry-After: {:?}",
            rest_total.failures
        );
        fail_with_logs(&cluster, &why);
    }
    assert!(rest_total.ok > 0);

    // The truth: each room's history, gap-free, holding every acked
    // publish and every accepted REST post once.
    let mut histories = Vec::new();
    for room in rooms.iter() {
        let h: Vec<(i64, String)> = lb
            .whole_history(&owner, room)
            .await
            .iter()
            .map(|m| {
                let client_id = m["client_id"].as_str().unwrap().to_owned();
                (m["seq"].as_i64().unwrap(), client_id)
            })
            .collect();
        let seqs: Vec<i64> = h.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=h.len() as i64).collect::<Vec<_>>());
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (_, id) in &h {
            *count.entry(id.as_str()).or_default() += 1;
        }
        assert!(count.values().all(|n| *n == 1), "a client_id stored twice");
        histories.push(h);
    }
    for (room, seq, id) in &acks {
        assert_eq!(
            histories[*room].get(*seq as usize - 1).map(|(_, c)| c),
            Some(id),
            "acked publish {id} is in room {room} at seq {seq}"
        );
    }
    for (room, id) in &rest_total.posted {
        assert!(
            histories[*room].iter().any(|(_, c)| c == id),
            "REST post {id} is stored"
        );
    }
    let heads: Vec<i64> = histories.iter().map(|h| h.len() as i64).collect();
    heads_tx.send(Some(heads.clone())).unwrap();

    let reports = tokio::time::timeout(PHASE, join_all(clients))
        .await
        .unwrap_or_else(|_| panic!("subscribers caught up with {heads:?} within {PHASE:?}"));
    let mut drained_seen = 0;
    for (c, report) in reports.into_iter().enumerate() {
        let report = report
            .unwrap()
            .unwrap_or_else(|why| panic!("subscriber {c}: {why}"));
        let expected: Vec<i64> = (report.start + 1..=heads[report.room]).collect();
        assert!(
            report.seqs == expected,
            "subscriber {c} (room {}, instances {:?}) got every message once in order: \
             got {} seqs, expected {}; first difference at {:?}",
            report.room,
            report.instances,
            report.seqs.len(),
            expected.len(),
            report
                .seqs
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .map(|i| (i, report.seqs[i], expected[i])),
        );
        if report.instances[0] == DRAINED {
            drained_seen += 1;
            assert_eq!(report.instances, [DRAINED, SURVIVOR], "subscriber {c}");
            assert_eq!(report.reconnects.len(), 1, "subscriber {c}");
            let (wait, code) = report.reconnects[0];
            assert_eq!(code, Some(1012), "subscriber {c}");
            assert!((500..3000).contains(&wait), "subscriber {c}: {wait}");
        } else {
            assert_eq!(report.instances, [SURVIVOR], "subscriber {c}");
            assert!(report.reconnects.is_empty(), "subscriber {c}");
        }
    }
    assert_eq!(drained_seen, on_drained);
    eprintln!(
        "drain under load: {CLIENTS} subscribers ({on_drained} on the drained instance, \
         {publishers_on_drained} of {PUBLISHERS} publishers) connected in {connected_after:?}; \
         SIGTERM to exit and every drained subscriber resubscribed in {drain_took:?}; \
         {} publishes acked, room heads {heads:?}; REST {} ok, {} refused with 503; \
         whole test body {:?}",
        acks.len(),
        rest_total.ok,
        rest_total.refused,
        started.elapsed()
    );
}
