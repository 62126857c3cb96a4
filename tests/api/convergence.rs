//! Room events converge across instances: a seeded random run of
//! publishes, replies, edits, deletes, reactions and read cursors from four
//! WebSocket sessions of three users on two real parley processes (one
//! PostgreSQL, one Redis, haproxy in front), with disconnects, a kill -9 of
//! one node mid-run and its restart.
//!
//! The test keeps its own model of the room (what every acked event does)
//! and predicts each operation's outcome: an `ack` with the next seq, or the
//! `error` code the rules give (a refused operation takes no seq and
//! changes nothing). Every session folds the event frames it receives into
//! a timeline and checks that seqs arrive 1, 2, 3, ... exactly once, across
//! reconnects with `since`. At the end every session's timeline, the model
//! and `GET /rooms/{id}/messages` (as each user, on each node) agree, and
//! so do the unread counts of `GET /rooms` and `GET /rooms/unread`.
//!
//! The seed is printed; `PARLEY_CONVERGENCE_SEED` replays a run.

use crate::support::cluster::{Cluster, redis_url};
use crate::support::fixtures::reactions_of;
use crate::support::ws::{Incoming, WsClient};
use crate::support::{TestApp, TestUser, parts};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Random operations in a run.
const OPS: usize = 150;
/// The longest any one wait may take.
const WAIT: Duration = Duration::from_secs(10);
/// A small set, so reactions collide and toggle.
const EMOJI: [&str; 3] = ["👍", "🎉", "ok"];

// --- The folded timeline ------------------------------------------------------

/// A message in its current state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Msg {
    author: String,
    body: String,
    deleted: bool,
    reply_to: Option<i64>,
    edited: bool,
    /// (emoji, user) pairs that are on.
    reactions: BTreeSet<(String, String)>,
}

/// A room as folded from its event stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Timeline {
    last_seq: i64,
    messages: BTreeMap<i64, Msg>,
}

impl Timeline {
    /// Folds one event frame; an error if its seq is not the next one or it
    /// refers to no message.
    fn fold(&mut self, f: &Value) -> Result<(), String> {
        let seq = f["seq"].as_i64().ok_or_else(|| format!("no seq: {f}"))?;
        if seq != self.last_seq + 1 {
            return Err(format!(
                "seq gap or duplicate: expected {}, got {f}",
                self.last_seq + 1
            ));
        }
        self.last_seq = seq;
        let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
        if f["type"] == "message" {
            self.messages.insert(
                seq,
                Msg {
                    author: text("author"),
                    body: text("body"),
                    reply_to: f["reply_to"].as_i64(),
                    ..Msg::default()
                },
            );
            return Ok(());
        }
        let target = f["target"].as_i64().unwrap_or_default();
        let m = self
            .messages
            .get_mut(&target)
            .ok_or_else(|| format!("event on no message: {f}"))?;
        match f["type"].as_str() {
            Some("edit") => {
                m.body = text("body");
                m.edited = true;
            }
            Some("delete") => {
                m.deleted = true;
                m.body.clear();
                m.reactions.clear();
            }
            Some("reaction") => {
                let key = (text("emoji"), text("user"));
                if f["on"] == true {
                    m.reactions.insert(key);
                } else {
                    m.reactions.remove(&key);
                }
            }
            _ => return Err(format!("not an event: {f}")),
        }
        Ok(())
    }
}

fn is_event(f: &Value) -> bool {
    matches!(
        f["type"].as_str(),
        Some("message" | "edit" | "delete" | "reaction")
    )
}

// --- A WebSocket session, pumped by a task of its own ----------------------------

enum Inbound {
    Frame(Value),
    Closed(String),
}

/// An open connection: frames out, frames in, read by a task so that no
/// session ever stalls the server while the test talks to another.
struct Conn {
    out: mpsc::UnboundedSender<Value>,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    instance: String,
}

fn pump(mut ws: WsClient) -> Conn {
    let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
    let (incoming, inbox) = mpsc::unbounded_channel();
    let instance = ws.hello["instance"].as_str().unwrap_or_default().to_owned();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                frame = outgoing.recv() => match frame {
                    Some(frame) => {
                        if let Err(e) = ws.try_send(frame).await {
                            let _ = incoming.send(Inbound::Closed(e));
                            return;
                        }
                    }
                    // The test hung up: close like a client going away.
                    None => {
                        ws.close().await;
                        return;
                    }
                },
                next = ws.try_next() => {
                    let inbound = match next {
                        Ok(Incoming::Frame(frame)) => Inbound::Frame(frame),
                        Ok(Incoming::Closed(code)) => Inbound::Closed(format!("closed ({code:?})")),
                        Err(e) => Inbound::Closed(e),
                    };
                    let done = matches!(inbound, Inbound::Closed(_));
                    if incoming.send(inbound).is_err() || done {
                        return;
                    }
                }
            }
        }
    });
    Conn {
        out,
        inbox,
        instance,
    }
}

/// Where a session connects.
#[derive(Clone, Copy, Debug)]
enum Target {
    Node(usize),
    Lb,
}

/// What a wait waits for.
enum Until<'a> {
    /// The `ack` or `error` answering the frame with this `ref`.
    Reply(&'a str),
    /// The `subscribed` answering this `ref`.
    Subscribed(&'a str),
    /// A `read` frame with this cursor.
    Read(i64),
    /// A `read` frame with at least this cursor.
    ReadAtLeast(i64),
    /// The timeline has caught up to this seq.
    Seq(i64),
    /// The connection ended.
    Closed,
}

struct Session {
    name: String,
    user: usize,
    conn: Option<Conn>,
    timeline: Timeline,
    /// Acks and errors that arrived while nobody waited for them.
    unclaimed: Vec<Value>,
}

impl Session {
    fn instance(&self) -> Option<&str> {
        self.conn.as_ref().map(|c| c.instance.as_str())
    }

    fn send(&self, frame: Value) {
        let conn = self.conn.as_ref().expect("connected");
        conn.out.send(frame).expect("the pump is running");
    }

    /// Folds a frame; fails the test on a gap, a duplicate or an event on
    /// no message.
    fn absorb(&mut self, f: &Value, seed: u64) {
        if is_event(f)
            && let Err(e) = self.timeline.fold(f)
        {
            panic!("seed {seed}: session {}: {e}", self.name);
        }
    }

    /// Folds frames until `until` holds; `Err` if the connection ended
    /// first (unless that is what was awaited).
    async fn wait(&mut self, until: Until<'_>, seed: u64) -> Result<Value, String> {
        let deadline = Instant::now() + WAIT;
        if let Until::Seq(seq) = until
            && self.timeline.last_seq >= seq
        {
            return Ok(Value::Null);
        }
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err("not connected".into());
            };
            let next = tokio::time::timeout_at(deadline, conn.inbox.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "seed {seed}: session {} timed out waiting (at seq {})",
                        self.name, self.timeline.last_seq
                    )
                });
            let frame = match next {
                Some(Inbound::Frame(frame)) => frame,
                Some(Inbound::Closed(why)) => {
                    self.conn = None;
                    return match until {
                        Until::Closed => Ok(Value::Null),
                        _ => Err(why),
                    };
                }
                None => {
                    self.conn = None;
                    return Err("the pump ended".into());
                }
            };
            self.absorb(&frame, seed);
            let done = match until {
                Until::Reply(r) => {
                    frame["ref"] == r && matches!(frame["type"].as_str(), Some("ack" | "error"))
                }
                Until::Subscribed(r) => frame["ref"] == r && frame["type"] == "subscribed",
                Until::Read(seq) => frame["type"] == "read" && frame["seq"] == seq,
                Until::ReadAtLeast(seq) => {
                    frame["type"] == "read" && frame["seq"].as_i64().is_some_and(|s| s >= seq)
                }
                Until::Seq(seq) => self.timeline.last_seq >= seq,
                Until::Closed => false,
            };
            if done {
                return Ok(frame);
            }
            if matches!(frame["type"].as_str(), Some("ack" | "error")) {
                self.unclaimed.push(frame);
            }
        }
    }

    /// The unclaimed answer to the frame with `reference`, taken.
    fn claim(&mut self, reference: &str) -> Option<Value> {
        let i = self.unclaimed.iter().position(|f| f["ref"] == reference)?;
        Some(self.unclaimed.remove(i))
    }

    /// Folds whatever has arrived, without waiting.
    fn drain(&mut self, seed: u64) {
        while let Some(conn) = self.conn.as_mut() {
            match conn.inbox.try_recv() {
                Ok(Inbound::Frame(frame)) => {
                    self.absorb(&frame, seed);
                    if matches!(frame["type"].as_str(), Some("ack" | "error")) {
                        self.unclaimed.push(frame);
                    }
                }
                Ok(Inbound::Closed(_)) | Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.conn = None;
                }
                Err(mpsc::error::TryRecvError::Empty) => return,
            }
        }
    }
}

// --- The model ----------------------------------------------------------------

/// What the test knows the room to be, from the acks it got.
struct Model {
    room: String,
    users: Vec<TestUser>,
    /// The room's owner (may delete anyone's message).
    owner: usize,
    timeline: Timeline,
    /// Each user's read cursor.
    cursors: Vec<i64>,
    /// Acked operations: (user, frame, ack), to repeat as duplicates.
    acked: Vec<(usize, Value, Value)>,
}

impl Model {
    /// The `error` code the rules give `user`'s `frame`, or `None` for an ack.
    fn predict(&self, user: usize, frame: &Value) -> Option<&'static str> {
        self.predict_in(&self.timeline, user, frame)
    }

    /// [`Model::predict`] against `timeline`.
    fn predict_in(&self, timeline: &Timeline, user: usize, frame: &Value) -> Option<&'static str> {
        let kind = frame["type"].as_str().unwrap();
        let target = if kind == "publish" {
            frame["reply_to"].as_i64()?
        } else {
            frame["target"].as_i64().unwrap()
        };
        let Some(m) = timeline.messages.get(&target) else {
            return Some("not_found");
        };
        let me = &self.users[user].id;
        match kind {
            "publish" => None,
            _ if m.deleted => Some("conflict"),
            "edit" if &m.author != me => Some("forbidden"),
            "delete" if &m.author != me && user != self.owner => Some("forbidden"),
            _ => None,
        }
    }

    /// Applies `user`'s acked `frame` as the event frame it became.
    fn apply(&mut self, user: usize, frame: &Value, ack: &Value) -> Result<(), String> {
        let me = self.users[user].id.clone();
        let seq = ack["seq"].as_i64().unwrap();
        let mut event = frame.clone();
        event["seq"] = json!(seq);
        event["author"] = json!(me);
        event["user"] = json!(me);
        event["type"] = match frame["type"].as_str() {
            Some("publish") => json!("message"),
            Some("react") => json!("reaction"),
            other => json!(other),
        };
        self.timeline.fold(&event)?;
        if event["type"] == "message" {
            self.cursors[user] = self.cursors[user].max(seq);
        }
        Ok(())
    }

    /// Seqs of messages, optionally only `user`'s and only live ones.
    fn messages(&self, author: Option<usize>, live: bool) -> Vec<i64> {
        let author = author.map(|u| self.users[u].id.as_str());
        self.timeline
            .messages
            .iter()
            .filter(|(_, m)| author.is_none_or(|a| m.author == a) && (!live || !m.deleted))
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// Seqs of events that are not messages.
    fn non_messages(&self) -> Vec<i64> {
        (1..=self.timeline.last_seq)
            .filter(|s| !self.timeline.messages.contains_key(s))
            .collect()
    }

    fn unread(&self, user: usize) -> i64 {
        let me = &self.users[user].id;
        self.timeline
            .messages
            .iter()
            .filter(|(seq, m)| **seq > self.cursors[user] && !m.deleted && &m.author != me)
            .count() as i64
    }
}

// --- The run ------------------------------------------------------------------

struct Run {
    seed: u64,
    rng: StdRng,
    cluster: Cluster,
    model: Model,
    sessions: Vec<Session>,
    /// Nodes currently down.
    down: BTreeSet<usize>,
    /// Frames sent so far (each gets a unique client_id and ref).
    sent: usize,
    /// What happened, by kind, for the summary line.
    stats: BTreeMap<String, usize>,
}

impl Run {
    fn count(&mut self, what: impl Into<String>) {
        *self.stats.entry(what.into()).or_default() += 1;
    }

    fn app(&self, target: Target) -> &TestApp {
        match target {
            Target::Node(i) => &self.cluster.nodes[i].app,
            Target::Lb => &self.cluster.lb,
        }
    }

    /// A live place to connect to, at random.
    fn random_target(&mut self) -> Target {
        let mut targets = vec![Target::Lb];
        targets.extend(
            (0..self.cluster.nodes.len())
                .filter_map(|i| (!self.down.contains(&i)).then_some(Target::Node(i))),
        );
        *targets.choose(&mut self.rng).unwrap()
    }

    /// Connects session `s` to `target` and subscribes with `since` = the
    /// last seq it folded. Through the load balancer a just-killed node may
    /// still be in rotation for a moment: the upgrade is retried.
    async fn connect(&mut self, s: usize, target: Target) {
        self.open(s, target).await;
        let reference = self.send_subscribe(s);
        self.subscribed(s, &reference).await;
    }

    /// Opens a WebSocket for session `s` (retrying the upgrade for a while).
    async fn open(&mut self, s: usize, target: Target) {
        self.sessions[s].conn = None;
        let user = &self.model.users[self.sessions[s].user];
        let deadline = Instant::now() + WAIT;
        let ws = loop {
            let request = self.app(target).ws_request(Some(&user.access), None);
            match WsClient::try_open(request).await {
                Ok(ws) => break ws,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => panic!("seed {}: {target:?} never took a WebSocket", self.seed),
            }
        };
        let conn = pump(ws);
        self.count(format!("connect {}", conn.instance));
        self.sessions[s].conn = Some(conn);
    }

    /// Sends `subscribe` with `since` = the last seq session `s` folded;
    /// returns its `ref`.
    fn send_subscribe(&mut self, s: usize) -> String {
        let reference = format!("sub-{}", self.sent);
        self.sent += 1;
        let since = self.sessions[s].timeline.last_seq;
        self.sessions[s].send(json!({"type": "subscribe", "room": self.model.room,
                                      "since": since, "ref": reference}));
        reference
    }

    /// Waits for the `subscribed` answering `reference`.
    async fn subscribed(&mut self, s: usize, reference: &str) {
        let seed = self.seed;
        let session = &mut self.sessions[s];
        let since = session.timeline.last_seq;
        let subscribed = session
            .wait(Until::Subscribed(reference), seed)
            .await
            .unwrap_or_else(|e| {
                panic!("seed {seed}: {} lost while subscribing: {e}", session.name)
            });
        assert!(
            subscribed["seq"].as_i64().unwrap() >= since,
            "seed {seed}: {subscribed} after seeing {since}"
        );
    }

    fn next_id(&mut self) -> String {
        self.sent += 1;
        format!("op{}", self.sent)
    }

    fn connected(&self) -> Vec<usize> {
        (0..self.sessions.len())
            .filter(|s| self.sessions[*s].conn.is_some())
            .collect()
    }

    /// A random operation of `user`'s, valid or not.
    fn random_frame(&mut self, user: usize, view: i64) -> Value {
        let id = self.next_id();
        let room = self.model.room.clone();
        let all = self.model.messages(None, false);
        let own_live = self.model.messages(Some(user), true);
        let others = self.model.non_messages();
        let roll = self.rng.gen_range(0..100);
        let rng = &mut self.rng;
        // A target: usually a message, sometimes a seq that is not one.
        let pick = |from: &[i64], rng: &mut StdRng| -> i64 {
            if rng.gen_bool(0.06) || from.is_empty() {
                if !others.is_empty() && rng.gen_bool(0.5) {
                    *others.choose(rng).unwrap()
                } else {
                    view + rng.gen_range(1..5)
                }
            } else {
                *from.choose(rng).unwrap()
            }
        };
        match roll {
            0..=29 => json!({"type": "publish", "room": room, "body": format!("m {id}"),
                             "client_id": id, "ref": id}),
            30..=39 => {
                let to = pick(&all, rng);
                json!({"type": "publish", "room": room, "body": format!("re {id}"),
                       "client_id": id, "ref": id, "reply_to": to})
            }
            40..=54 => {
                let target = if rng.gen_bool(0.75) && !own_live.is_empty() {
                    *own_live.choose(rng).unwrap()
                } else {
                    pick(&all, rng)
                };
                json!({"type": "edit", "room": room, "target": target,
                       "body": format!("edit {id}"), "client_id": id, "ref": id})
            }
            55..=64 => {
                let target = if rng.gen_bool(0.6) && !own_live.is_empty() {
                    *own_live.choose(rng).unwrap()
                } else {
                    pick(&all, rng)
                };
                json!({"type": "delete", "room": room, "target": target, "client_id": id, "ref": id})
            }
            65..=84 => {
                let target = pick(&all, rng);
                let emoji = *EMOJI.choose(rng).unwrap();
                let key = (emoji.to_owned(), self.model.users[user].id.clone());
                let on = match self.model.timeline.messages.get(&target) {
                    Some(m) if rng.gen_bool(0.8) => !m.reactions.contains(&key),
                    _ => rng.gen_bool(0.5),
                };
                json!({"type": "react", "room": room, "target": target, "emoji": emoji,
                       "on": on, "client_id": id, "ref": id})
            }
            _ => json!({"type": "read", "room": room, "seq": rng.gen_range(0..=view), "ref": id}),
        }
    }

    /// Sends `frame` on session `s` and checks the answer against the
    /// model's prediction; updates the model. `Err` if the connection
    /// ended before the answer.
    async fn perform(&mut self, s: usize, frame: Value) -> Result<(), String> {
        let seed = self.seed;
        let user = self.sessions[s].user;
        let reference = frame["ref"].as_str().unwrap().to_owned();
        if frame["type"] == "read" {
            let seq = frame["seq"].as_i64().unwrap();
            let cursor = self.model.cursors[user].max(seq);
            self.sessions[s].send(frame);
            self.sessions[s].wait(Until::Read(cursor), seed).await?;
            self.model.cursors[user] = cursor;
            self.count("read");
            return Ok(());
        }
        let predicted = self.model.predict(user, &frame);
        self.sessions[s].send(frame.clone());
        let reply = self.sessions[s]
            .wait(Until::Reply(&reference), seed)
            .await?;
        let context = format!(
            "seed {seed}: {} sent {frame}, got {reply}",
            self.sessions[s].name
        );
        match predicted {
            Some(code) => {
                assert_eq!(reply["type"], "error", "{context}");
                assert_eq!(reply["code"], code, "{context}");
                self.count(format!(
                    "refused {} {code}",
                    frame["type"].as_str().unwrap()
                ));
            }
            None => {
                self.check_ack(&frame, &reply, &context);
                self.model
                    .apply(user, &frame, &reply)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                self.model.acked.push((user, frame, reply));
            }
        }
        Ok(())
    }

    /// The ack of a new event: the next seq, the frame's client id and target.
    fn check_ack(&self, frame: &Value, ack: &Value, context: &str) {
        assert_eq!(ack["type"], "ack", "{context}");
        assert_eq!(ack["seq"], self.model.timeline.last_seq + 1, "{context}");
        assert_eq!(ack["client_id"], frame["client_id"], "{context}");
        assert_eq!(ack["room"], self.model.room.as_str(), "{context}");
        let target = if frame["type"] == "publish" {
            Value::Null
        } else {
            frame["target"].clone()
        };
        assert_eq!(ack["target"], target, "{context}");
    }

    /// Repeats an acked frame on a session of its user: the original ack,
    /// nothing new.
    async fn repeat(&mut self, s: usize) -> Result<(), String> {
        let user = self.sessions[s].user;
        let mine: Vec<usize> = (0..self.model.acked.len())
            .filter(|i| self.model.acked[*i].0 == user)
            .collect();
        let Some(&i) = mine.choose(&mut self.rng) else {
            return Ok(());
        };
        let (_, mut frame, original) = self.model.acked[i].clone();
        let reference = self.next_id();
        frame["ref"] = json!(reference);
        self.sessions[s].send(frame.clone());
        let reply = self.sessions[s]
            .wait(Until::Reply(&reference), self.seed)
            .await?;
        let context = format!("seed {}: repeated {frame}, got {reply}", self.seed);
        assert_eq!(reply["type"], "ack", "{context}");
        for field in ["seq", "id", "client_id", "target"] {
            assert_eq!(reply[field], original[field], "{context}: {field}");
        }
        self.count("repeat");
        Ok(())
    }

    /// One random step on a random connected session.
    async fn step(&mut self) {
        // A disconnected session comes back now and then.
        for s in 0..self.sessions.len() {
            if self.sessions[s].conn.is_none() && self.rng.gen_bool(0.3) {
                let target = self.random_target();
                self.connect(s, target).await;
            }
        }
        let connected = self.connected();
        let s = *connected.choose(&mut self.rng).unwrap();
        let roll = self.rng.gen_range(0..100);
        if roll < 4 && connected.len() > 1 {
            // Hang up; reconnects later with `since`.
            self.sessions[s].conn = None;
            self.count("hang up");
            return;
        }
        let outcome = if roll < 9 {
            self.repeat(s).await
        } else if roll < 30 && connected.len() > 1 {
            self.burst(&connected).await
        } else {
            let user = self.sessions[s].user;
            let view = self.sessions[s].timeline.last_seq;
            let frame = self.random_frame(user, view);
            self.perform(s, frame).await
        };
        if let Err(e) = outcome {
            panic!(
                "seed {}: {} lost its connection with no node down: {e}",
                self.seed, self.sessions[s].name
            );
        }
        for session in &mut self.sessions {
            session.drain(self.seed);
        }
    }

    /// Two to four sessions write at once, mostly on one hot message, on
    /// whatever nodes they are: the outcomes depend on the order the log
    /// chose. The acks must be the next seqs, each valid in the state
    /// before it; each refusal must be what the rules say in one of the
    /// states the burst went through.
    async fn burst(&mut self, connected: &[usize]) -> Result<(), String> {
        let seed = self.seed;
        let n = self.rng.gen_range(2..=connected.len().min(4));
        let writers: Vec<usize> = connected
            .choose_multiple(&mut self.rng, n)
            .copied()
            .collect();
        let hot = self
            .model
            .messages(None, false)
            .choose(&mut self.rng)
            .copied();
        // Sometimes another session resubscribes while the burst is written:
        // the replay hands over to the live stream with no gap or duplicate.
        let others: Vec<usize> = (0..self.sessions.len())
            .filter(|s| !writers.contains(s))
            .collect();
        let mut resubscribing = None;
        if let Some(&r) = others.choose(&mut self.rng)
            && self.rng.gen_bool(0.4)
        {
            let target = self.random_target();
            self.open(r, target).await;
            resubscribing = Some(r);
            self.count("resubscribe during a burst");
        }
        let mut frames = Vec::new();
        for &s in &writers {
            let user = self.sessions[s].user;
            let view = self.sessions[s].timeline.last_seq;
            let mut frame = self.random_frame(user, view);
            let alone = writers
                .iter()
                .filter(|w| self.sessions[**w].user == user)
                .count()
                == 1;
            if frame["type"] == "read" && !alone {
                // Two reads of one user race for the echo's value; a read
                // racing the user's own publish is enough.
                frame["type"] = json!("react");
                frame.as_object_mut().unwrap().remove("seq");
                frame["emoji"] = json!(EMOJI[0]);
                frame["on"] = json!(true);
                frame["client_id"] = frame["ref"].clone();
                frame["target"] = json!(hot.unwrap_or(view + 1));
            }
            if let Some(hot) = hot
                && frame["type"] != "read"
                && self.rng.gen_bool(0.7)
            {
                if frame["type"] == "publish" {
                    frame["reply_to"] = json!(hot);
                } else {
                    frame["target"] = json!(hot);
                }
            }
            frames.push(frame);
        }
        let subscription = resubscribing.map(|r| (r, self.send_subscribe(r)));
        for (&s, frame) in writers.iter().zip(&frames) {
            self.sessions[s].send(frame.clone());
        }
        let mut acks = Vec::new();
        let mut refusals = Vec::new();
        let mut reads = Vec::new();
        for (&s, frame) in writers.iter().zip(frames) {
            let user = self.sessions[s].user;
            if frame["type"] == "read" {
                // The echo is the cursor after the read: at least what was
                // asked, more if the user's own publish got in first.
                let at_least = self.model.cursors[user].max(frame["seq"].as_i64().unwrap());
                self.sessions[s]
                    .wait(Until::ReadAtLeast(at_least), seed)
                    .await?;
                reads.push((user, at_least));
                self.count("burst read");
                continue;
            }
            let reference = frame["ref"].as_str().unwrap().to_owned();
            let reply = self.sessions[s]
                .wait(Until::Reply(&reference), seed)
                .await?;
            if reply["type"] == "ack" {
                acks.push((reply["seq"].as_i64().unwrap(), user, frame, reply));
            } else {
                refusals.push((user, frame, reply));
            }
        }
        acks.sort_by_key(|(seq, ..)| *seq);
        let mut states = vec![self.model.timeline.clone()];
        for (_, user, frame, ack) in acks {
            let context = format!("seed {seed}: burst: {frame} got {ack}");
            assert_eq!(self.model.predict(user, &frame), None, "{context}");
            self.check_ack(&frame, &ack, &context);
            self.model
                .apply(user, &frame, &ack)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            self.model.acked.push((user, frame, ack));
            states.push(self.model.timeline.clone());
        }
        for (user, at_least) in reads {
            self.model.cursors[user] = self.model.cursors[user].max(at_least);
        }
        for (user, frame, reply) in refusals {
            let code = reply["code"].as_str();
            assert!(
                states
                    .iter()
                    .any(|t| self.model.predict_in(t, user, &frame) == code),
                "seed {seed}: burst: {frame} got {reply}, which no state of the burst explains"
            );
            self.count(format!(
                "burst refused {} {}",
                frame["type"].as_str().unwrap(),
                code.unwrap_or("?")
            ));
        }
        if let Some((r, reference)) = subscription {
            self.subscribed(r, &reference).await;
        }
        self.count(format!("burst of {n}"));
        Ok(())
    }

    /// Kills node `k` with frames in flight on its sessions, moves them to
    /// the other node or the load balancer, and retries what was not acked
    /// with the same client_id: each lands exactly once.
    async fn kill(&mut self, k: usize) {
        let seed = self.seed;
        let node = format!("node-{k}");
        let on_node = |run: &Run| -> Vec<usize> {
            (0..run.sessions.len())
                .filter(|s| run.sessions[*s].instance() == Some(node.as_str()))
                .collect()
        };
        if on_node(self).is_empty() {
            let s = self.rng.gen_range(0..self.sessions.len());
            self.connect(s, Target::Node(k)).await;
        }
        let victims = on_node(self);
        // Publishes and edits in flight: valid whatever lands first.
        let mut in_flight = Vec::new();
        for (i, &s) in victims.iter().enumerate() {
            if i > 0 && !self.rng.gen_bool(0.8) {
                continue;
            }
            let user = self.sessions[s].user;
            let own_live = self.model.messages(Some(user), true);
            let id = self.next_id();
            let room = self.model.room.clone();
            let frame = match own_live.choose(&mut self.rng) {
                Some(target) if self.rng.gen_bool(0.4) => {
                    json!({"type": "edit", "room": room, "target": target,
                           "body": format!("edit {id} in flight"), "client_id": id, "ref": id})
                }
                _ => json!({"type": "publish", "room": room, "body": format!("m {id} in flight"),
                            "client_id": id, "ref": id}),
            };
            self.sessions[s].send(frame.clone());
            // Either racing the crash, or committed with its ack lost (as
            // if the client missed it): the retry must then get the
            // original ack, not a second event.
            let lost = if self.rng.gen_bool(0.5) {
                let reference = frame["ref"].as_str().unwrap();
                let ack = self.sessions[s]
                    .wait(Until::Reply(reference), seed)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: lost before the crash: {e}"));
                assert_eq!(ack["type"], "ack", "seed {seed}: {frame} got {ack}");
                Some(ack)
            } else {
                None
            };
            in_flight.push((s, frame, lost));
        }
        self.cluster.kill(k).await;
        self.down.insert(k);
        // Each victim reads to the end of its connection: an ack that made
        // it out before the crash counts as received.
        for &s in &victims {
            let _ = self.sessions[s].wait(Until::Closed, seed).await;
        }
        for &s in &victims {
            let target = if self.rng.gen_bool(0.5) {
                Target::Lb
            } else {
                Target::Node(1 - k)
            };
            self.connect(s, target).await;
        }
        let base = self.model.timeline.last_seq;
        let mut landed = Vec::new();
        for (s, frame, lost) in in_flight {
            let reference = frame["ref"].as_str().unwrap().to_owned();
            let early = self.sessions[s].claim(&reference);
            self.count(match (&early, &lost) {
                (_, Some(_)) => "in flight: committed, ack lost".to_owned(),
                (Some(f), _) if f["type"] == "ack" => {
                    "in flight: acked before the crash".to_owned()
                }
                (Some(f), _) => format!("in flight: {} before the crash", f["code"]),
                (None, None) => "in flight: no answer".to_owned(),
            });
            let ack = match early {
                Some(ack) if ack["type"] == "ack" => ack,
                // No ack (or `unavailable` from the dying node): the same
                // frame, the same client_id, through another node. The
                // original ack if it was committed before the crash, a new
                // event if not.
                _ => {
                    self.sessions[s].send(frame.clone());
                    self.sessions[s]
                        .wait(Until::Reply(&reference), seed)
                        .await
                        .unwrap_or_else(|e| panic!("seed {seed}: retry lost: {e}"))
                }
            };
            assert_eq!(
                ack["type"], "ack",
                "seed {seed}: retried {frame}, got {ack}"
            );
            assert_eq!(ack["client_id"], frame["client_id"], "seed {seed}: {ack}");
            if let Some(lost) = lost {
                for field in ["seq", "id", "target"] {
                    assert_eq!(
                        ack[field], lost[field],
                        "seed {seed}: retried {frame}: {field}"
                    );
                }
            }
            let seq = ack["seq"].as_i64().unwrap();
            landed.push((seq, self.sessions[s].user, frame, ack));
        }
        landed.sort_by_key(|(seq, ..)| *seq);
        let seqs: Vec<i64> = landed.iter().map(|(seq, ..)| *seq).collect();
        let expected: Vec<i64> = (base + 1..=base + landed.len() as i64).collect();
        assert_eq!(
            seqs, expected,
            "seed {seed}: in-flight frames land exactly once each"
        );
        for (_, user, frame, ack) in landed {
            self.model
                .apply(user, &frame, &ack)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            self.model.acked.push((user, frame, ack));
        }
        // With no further traffic, every connected session gets what
        // landed, including an event the dead node committed but never
        // announced (its retry was answered as a duplicate).
        let last = self.model.timeline.last_seq;
        for session in &mut self.sessions {
            if session.conn.is_some() {
                session
                    .wait(Until::Seq(last), seed)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed}: {} lost: {e}", session.name));
            }
        }
    }

    async fn restart(&mut self, k: usize) {
        self.cluster.restart(k).await;
        self.down.remove(&k);
        // Someone goes straight back to the restarted node.
        let s = self.rng.gen_range(0..self.sessions.len());
        self.connect(s, Target::Node(k)).await;
    }
}

/// Fails with the entries that differ, not two whole rooms.
fn assert_same<T: PartialEq + std::fmt::Debug>(
    left: &BTreeMap<i64, T>,
    right: &BTreeMap<i64, T>,
    context: &str,
) {
    let seqs: BTreeSet<i64> = left.keys().chain(right.keys()).copied().collect();
    let differ: Vec<String> = seqs
        .into_iter()
        .filter(|seq| left.get(seq) != right.get(seq))
        .map(|seq| format!("seq {seq}: {:?} != {:?}", left.get(&seq), right.get(&seq)))
        .collect();
    assert!(differ.is_empty(), "{context}:\n{}", differ.join("\n"));
}

/// One page after another of `room`'s history as `user` sees it on `app`.
/// History items as a timeline for `viewer`: seq to (author, body, deleted,
/// reply_to, edited, emoji -> (count, me)).
type Shown = BTreeMap<
    i64,
    (
        String,
        String,
        bool,
        Option<i64>,
        bool,
        BTreeMap<String, (i64, bool)>,
    ),
>;

fn shown_of_history(items: &[Value]) -> Shown {
    items
        .iter()
        .map(|m| {
            let reactions = reactions_of(m);
            (
                m["seq"].as_i64().unwrap(),
                (
                    m["author"].as_str().unwrap().to_owned(),
                    m["body"].as_str().unwrap().to_owned(),
                    m["deleted"].as_bool().unwrap(),
                    m["reply_to"].as_i64(),
                    !m["edited_at"].is_null(),
                    reactions,
                ),
            )
        })
        .collect()
}

fn shown_of_timeline(timeline: &Timeline, viewer: &str) -> Shown {
    timeline
        .messages
        .iter()
        .map(|(seq, m)| {
            let mut reactions: BTreeMap<String, (i64, bool)> = BTreeMap::new();
            for (emoji, user) in &m.reactions {
                let entry = reactions.entry(emoji.clone()).or_default();
                entry.0 += 1;
                entry.1 |= user == viewer;
            }
            (
                *seq,
                (
                    m.author.clone(),
                    m.body.clone(),
                    m.deleted,
                    m.reply_to,
                    m.edited,
                    reactions,
                ),
            )
        })
        .collect()
}

#[actix_web::test]
async fn room_events_converge_across_instances_through_a_crash() {
    let seed = std::env::var("PARLEY_CONVERGENCE_SEED")
        .ok()
        .map(|s| s.parse().expect("PARLEY_CONVERGENCE_SEED is a u64"))
        .unwrap_or_else(|| rand::thread_rng().r#gen());
    println!("convergence seed: {seed} (replay with PARLEY_CONVERGENCE_SEED={seed})");
    let started = Instant::now();

    let cluster = Cluster::start(
        2,
        &redis_url(),
        &[
            ("PARLEY_RATE_API_PER_MIN", "100000"),
            ("PARLEY_WS_MSGS_PER_S", "100000"),
        ],
    )
    .await;
    let app = &cluster.nodes[0].app;
    let owner = app.register("conv_owner").await;
    let bea = app.register("conv_bea").await;
    let cy = app.register("conv_cy").await;
    let room = app.create_room(&owner, "converge", "private").await;
    app.add_member(&owner, &room, &bea.id).await;
    app.add_member(&owner, &room, &cy.id).await;

    let sessions = [(0, "owner"), (1, "bea"), (2, "cy-phone"), (2, "cy-laptop")]
        .into_iter()
        .map(|(user, name)| Session {
            name: name.to_owned(),
            user,
            conn: None,
            timeline: Timeline::default(),
            unclaimed: Vec::new(),
        })
        .collect();
    let mut run = Run {
        seed,
        rng: StdRng::seed_from_u64(seed),
        cluster,
        model: Model {
            room: room.clone(),
            users: vec![owner, bea, cy],
            owner: 0,
            timeline: Timeline::default(),
            cursors: vec![0; 3],
            acked: Vec::new(),
        },
        sessions,
        down: BTreeSet::new(),
        sent: 0,
        stats: BTreeMap::new(),
    };
    for (s, target) in [Target::Node(0), Target::Node(1), Target::Lb, Target::Lb]
        .into_iter()
        .enumerate()
    {
        run.connect(s, target).await;
    }

    let kill_at = run.rng.gen_range(OPS / 3..OPS / 2);
    let restart_at = kill_at + run.rng.gen_range(10..30);
    let victim = run.rng.gen_range(0..2);
    for op in 0..OPS {
        if op == kill_at {
            run.kill(victim).await;
        }
        if op == restart_at {
            run.restart(victim).await;
        }
        run.step().await;
    }

    // Everyone back, caught up to the room's last event.
    for s in 0..run.sessions.len() {
        if run.sessions[s].conn.is_none() {
            let target = run.random_target();
            run.connect(s, target).await;
        }
    }
    let last = run.model.timeline.last_seq;
    for session in &mut run.sessions {
        session
            .wait(Until::Seq(last), seed)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {} lost: {e}", session.name));
    }

    let model = &run.model;
    for session in &run.sessions {
        assert!(
            session.unclaimed.is_empty(),
            "seed {seed}: {} got answers to nothing it waits for: {:?}",
            session.name,
            session.unclaimed
        );
        assert_eq!(
            session.timeline.last_seq, last,
            "seed {seed}: {}",
            session.name
        );
        assert_same(
            &session.timeline.messages,
            &model.timeline.messages,
            &format!(
                "seed {seed}: {} folded (left) a different room than the acks made (right)",
                session.name
            ),
        );
    }
    for node in &run.cluster.nodes {
        for (u, user) in model.users.iter().enumerate() {
            let items = node.app.whole_history_in_pages(user, &room, 17).await;
            let shown = shown_of_history(&items);
            for session in run.sessions.iter().filter(|s| s.user == u) {
                assert_same(
                    &shown_of_timeline(&session.timeline, &user.id),
                    &shown,
                    &format!(
                        "seed {seed}: {} folded (left) against the history on {} (right)",
                        session.name, node.app.base
                    ),
                );
            }

            let unread = model.unread(u);
            let (status, rooms) = parts(node.app.get("/api/v1/rooms", &user.access).await).await;
            assert_eq!(status, StatusCode::OK, "{rooms}");
            let item = rooms["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == room.as_str())
                .unwrap_or_else(|| panic!("seed {seed}: {room} in {rooms}"));
            let context = format!(
                "seed {seed}: {} on {}: {item}",
                user.username, node.app.base
            );
            assert_eq!(item["last_seq"], last, "{context}");
            assert_eq!(item["read_seq"], model.cursors[u], "{context}");
            assert_eq!(item["unread"], unread, "{context}");

            let (status, all) =
                parts(node.app.get("/api/v1/rooms/unread", &user.access).await).await;
            assert_eq!(status, StatusCode::OK, "{all}");
            assert_eq!(all["total"], unread, "{context}: {all}");
            let listed = all["items"].as_array().unwrap();
            assert_eq!(listed.len(), usize::from(unread > 0), "{context}: {all}");
        }
    }
    let kinds: BTreeMap<&str, usize> = model.acked.iter().fold(BTreeMap::new(), |mut k, a| {
        *k.entry(a.1["type"].as_str().unwrap()).or_default() += 1;
        k
    });
    println!(
        "seed {seed}: {last} events ({} messages, acked {kinds:?}), node-{victim} killed at op {kill_at}, \
         restarted at {restart_at}; {:?}; cursors {:?}, unread {:?}; {:.1} s",
        model.timeline.messages.len(),
        run.stats,
        model.cursors,
        (0..3).map(|u| model.unread(u)).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
}
