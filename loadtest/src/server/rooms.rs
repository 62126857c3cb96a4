//! The reference server's only shared state: rooms by name, each with its
//! next `seq` and its subscribers.
//!
//! A publish takes the room's lock, assigns the seq, serialises the
//! `message` frame once and `try_send`s the same bytes to every subscriber
//! before letting go, so every subscriber sees the room's seqs in order. A
//! subscriber whose bounded channel is full is a slow consumer: it is
//! removed from the room and told to close (1013), as parley does. The
//! locks are std mutexes, never held across an `.await`.

use super::frames::ServerFrame;
use crate::wire::rfc3339_millis;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

/// One connection's way in: its bounded outbound channel and the switch
/// that closes it as a slow consumer.
#[derive(Clone)]
pub struct Peer {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub kill: Arc<Notify>,
}

impl Peer {
    /// Queues `frame`; `false` (and the connection told to close) when the
    /// queue is full or gone.
    pub fn offer(&self, frame: Utf8Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Default)]
struct Room {
    seq: i64,
    subscribers: HashMap<u64, Peer>,
}

/// What a publish was given.
pub struct Published {
    pub seq: i64,
    pub id: Uuid,
}

/// Every room, created on first use and kept (with its seq) until exit.
pub struct Rooms {
    rooms: RwLock<HashMap<Box<str>, Arc<Mutex<Room>>>>,
    max_rooms: usize,
    /// Subscribers closed because their channel was full.
    pub slow_consumers: AtomicU64,
}

impl Rooms {
    pub fn new(max_rooms: usize) -> Self {
        Self {
            rooms: RwLock::default(),
            max_rooms,
            slow_consumers: AtomicU64::new(0),
        }
    }

    fn room(&self, name: &str) -> Option<Arc<Mutex<Room>>> {
        let read = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(room) = read.get(name) {
            return Some(room.clone());
        }
        drop(read);
        let mut write = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        if write.len() >= self.max_rooms && !write.contains_key(name) {
            return None;
        }
        Some(write.entry(name.into()).or_default().clone())
    }

    /// Adds `peer` to `room`; the room's latest seq, or `None` when the
    /// room cap is reached.
    pub fn subscribe(&self, room: &str, conn: u64, peer: Peer) -> Option<i64> {
        let room = self.room(room)?;
        let mut room = room.lock().unwrap_or_else(PoisonError::into_inner);
        room.subscribers.insert(conn, peer);
        Some(room.seq)
    }

    pub fn unsubscribe(&self, room: &str, conn: u64) {
        let read = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(room) = read.get(room) {
            let mut room = room.lock().unwrap_or_else(PoisonError::into_inner);
            room.subscribers.remove(&conn);
        }
    }

    /// Assigns the next seq and fans the message out; `None` when the room
    /// cap is reached.
    pub fn publish(&self, room_name: &str, body: &str, client_id: &str) -> Option<Published> {
        let room = self.room(room_name)?;
        let ts = rfc3339_millis(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let id = Uuid::now_v7();
        let mut room = room.lock().unwrap_or_else(PoisonError::into_inner);
        room.seq += 1;
        let seq = room.seq;
        let frame = ServerFrame::Message {
            room: room_name,
            seq,
            id,
            author: Uuid::nil(),
            body,
            ts: &ts,
            client_id,
        }
        .encode();
        let mut gone = Vec::new();
        for (conn, peer) in &room.subscribers {
            if !peer.offer(frame.clone()) {
                gone.push(*conn);
            }
        }
        for conn in gone {
            if room.subscribers.remove(&conn).is_some() {
                self.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some(Published { seq, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(capacity: usize) -> (Peer, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        let kill = Arc::new(Notify::new());
        (Peer { tx, kill }, rx)
    }

    #[tokio::test]
    async fn a_publish_reaches_every_subscriber_with_the_next_seq() {
        let rooms = Rooms::new(10);
        let (a, mut ra) = peer(4);
        let (b, mut rb) = peer(4);
        assert_eq!(rooms.subscribe("r", 1, a), Some(0));
        assert_eq!(rooms.subscribe("r", 2, b), Some(0));
        assert_eq!(rooms.publish("r", "hi", "c1").unwrap().seq, 1);
        assert_eq!(rooms.publish("r", "hi", "c2").unwrap().seq, 2);
        let first = ra.recv().await.unwrap();
        assert!(first.as_str().contains(r#""seq":1"#), "{}", first.as_str());
        assert_eq!(rb.recv().await.unwrap(), first);
        assert_eq!(rooms.subscribe("other", 1, peer(1).0), Some(0));
    }

    #[tokio::test]
    async fn a_full_subscriber_is_dropped_and_told_to_close() {
        let rooms = Rooms::new(10);
        let (slow, _rx) = peer(1);
        let kill = slow.kill.clone();
        rooms.subscribe("r", 1, slow);
        rooms.publish("r", "1", "c1");
        rooms.publish("r", "2", "c2");
        rooms.publish("r", "3", "c3");
        assert_eq!(rooms.slow_consumers.load(Ordering::Relaxed), 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), kill.notified())
            .await
            .unwrap();
    }

    #[test]
    fn the_room_cap_holds() {
        let rooms = Rooms::new(1);
        assert!(rooms.publish("a", "b", "c").is_some());
        assert!(rooms.publish("b", "b", "c").is_none());
    }
}
