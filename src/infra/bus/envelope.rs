//! The bus wire format: the JSON every instance publishes on Redis.
//!
//! It is defined here, in its own serde types, and nowhere in the engine:
//! [`BusEvent`] and [`StoredMessage`] are converted to and from these types,
//! so renaming an engine field changes nothing on the wire.
//!
//! ```json
//! {"v":1,"o":"<instance>","e":{"t":"committed","room":"…","messages":[{"room":"…","seq":7,"id":"…","author":"…","body":"…","ts":"…","client_id":"…"}]}}
//! ```
//!
//! `v` is the format's version. Instances of different versions share the
//! bus during a rolling deploy, so a change must stay readable both ways:
//!
//! - an envelope without `v` is what instances before versioning publish:
//!   the same shape as version 1, read as version 1;
//! - version 1 only adds `v` to that shape, and older instances ignore
//!   fields they do not know, so they read it too;
//! - an envelope of a version this instance does not know, or an event
//!   `t` it does not know, is refused with an [`EnvelopeError`]: the
//!   receiver logs and drops it (rooms fill any message gap from the log).
//!
//! Fields may be added to an event within a version (older readers skip
//! them); renaming or removing one, or changing its meaning, needs a new
//! version that the previous release already reads.

use chrono::{DateTime, Utc};
use parley_actors::ids::{MessageId, RoomId, Seq, UserId};
use parley_actors::model::StoredMessage;
use parley_actors::ports::BusEvent;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use uuid::Uuid;

/// The version this instance publishes.
pub const VERSION: u32 = 1;

/// Why a payload from the bus was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON, not an envelope, or an event `t` this version does not know.
    #[error("unreadable bus envelope: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// Published by a newer instance in a format this one cannot read.
    #[error("bus envelope version {0} is not supported (this instance reads up to {VERSION})")]
    UnsupportedVersion(u32),
}

/// An event received from another instance.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// The publishing instance.
    pub origin: String,
    pub event: BusEvent,
}

/// Serialises `event`, published by `origin`, in the current version.
pub fn encode(origin: &str, event: &BusEvent) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Envelope {
        v: Some(VERSION),
        o: Cow::Borrowed(origin),
        e: Event::from(event),
    })
}

/// Reads an envelope of the current version or of the unversioned format
/// before it.
pub fn decode(payload: &str) -> Result<Received, EnvelopeError> {
    let envelope: Envelope<'_> = serde_json::from_str(payload)?;
    match envelope.v {
        // No `v`: published before the format had versions; the same shape.
        None | Some(VERSION) => Ok(Received {
            origin: envelope.o.into_owned(),
            event: envelope.e.into(),
        }),
        Some(other) => Err(EnvelopeError::UnsupportedVersion(other)),
    }
}

/// One payload: the format version, the publishing instance and the event.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<u32>,
    o: Cow<'a, str>,
    e: Event<'a>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Event<'a> {
    Committed {
        room: Uuid,
        messages: Vec<Message<'a>>,
    },
    Typing {
        room: Uuid,
        user: Uuid,
    },
    Presence {
        room: Uuid,
        user: Uuid,
        online: bool,
    },
    Notification {
        user: Uuid,
        frame: Cow<'a, str>,
    },
    Revoke {
        room: Uuid,
        user: Uuid,
    },
    Invalidate {
        key: Cow<'a, str>,
    },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Message<'a> {
    room: Uuid,
    seq: i64,
    id: Uuid,
    author: Uuid,
    body: Cow<'a, str>,
    ts: DateTime<Utc>,
    client_id: Cow<'a, str>,
}

impl<'a> From<&'a BusEvent> for Event<'a> {
    fn from(event: &'a BusEvent) -> Self {
        match event {
            BusEvent::Committed { room, messages } => Event::Committed {
                room: room.0,
                messages: messages.iter().map(Message::from).collect(),
            },
            BusEvent::Typing { room, user } => Event::Typing {
                room: room.0,
                user: user.0,
            },
            BusEvent::Presence { room, user, online } => Event::Presence {
                room: room.0,
                user: user.0,
                online: *online,
            },
            BusEvent::Notification { user, frame } => Event::Notification {
                user: user.0,
                frame: Cow::Borrowed(frame),
            },
            BusEvent::Revoke { room, user } => Event::Revoke {
                room: room.0,
                user: user.0,
            },
            BusEvent::Invalidate { key } => Event::Invalidate {
                key: Cow::Borrowed(key),
            },
        }
    }
}

impl From<Event<'_>> for BusEvent {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Committed { room, messages } => BusEvent::Committed {
                room: RoomId(room),
                messages: messages.into_iter().map(StoredMessage::from).collect(),
            },
            Event::Typing { room, user } => BusEvent::Typing {
                room: RoomId(room),
                user: UserId(user),
            },
            Event::Presence { room, user, online } => BusEvent::Presence {
                room: RoomId(room),
                user: UserId(user),
                online,
            },
            Event::Notification { user, frame } => BusEvent::Notification {
                user: UserId(user),
                frame: frame.into_owned(),
            },
            Event::Revoke { room, user } => BusEvent::Revoke {
                room: RoomId(room),
                user: UserId(user),
            },
            Event::Invalidate { key } => BusEvent::Invalidate {
                key: key.into_owned(),
            },
        }
    }
}

impl<'a> From<&'a StoredMessage> for Message<'a> {
    fn from(m: &'a StoredMessage) -> Self {
        Message {
            room: m.room.0,
            seq: m.seq.0,
            id: m.id.0,
            author: m.author.0,
            body: Cow::Borrowed(&m.body),
            ts: m.ts,
            client_id: Cow::Borrowed(&m.client_id),
        }
    }
}

impl From<Message<'_>> for StoredMessage {
    fn from(m: Message<'_>) -> Self {
        StoredMessage {
            room: RoomId(m.room),
            seq: Seq(m.seq),
            id: MessageId(m.id),
            author: UserId(m.author),
            body: m.body.into_owned(),
            ts: m.ts,
            client_id: m.client_id.into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11";
    const USER: &str = "0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12";
    const MESSAGE: &str = "0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e13";

    fn uuid(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    /// One event of every variant, with the values of [`PREVIOUS`].
    fn every_event() -> Vec<BusEvent> {
        let (room, user) = (RoomId(uuid(ROOM)), UserId(uuid(USER)));
        let ts = DateTime::parse_from_rfc3339("2024-07-01T12:34:56.789012Z")
            .unwrap()
            .with_timezone(&Utc);
        let message = StoredMessage {
            room,
            seq: Seq(7),
            id: MessageId(uuid(MESSAGE)),
            author: user,
            body: "hi \"there\"".into(),
            ts,
            client_id: "c-1".into(),
        };
        let events = vec![
            BusEvent::Committed {
                room,
                messages: vec![message].into(),
            },
            BusEvent::Typing { room, user },
            BusEvent::Presence {
                room,
                user,
                online: true,
            },
            BusEvent::Notification {
                user,
                frame: r#"{"type":"notification"}"#.into(),
            },
            BusEvent::Revoke { room, user },
            BusEvent::Invalidate {
                key: "room:abc".into(),
            },
        ];
        // A new variant fails to compile here until it has a sample above
        // (and a line in `PREVIOUS` once a release has published it).
        for event in &events {
            match event {
                BusEvent::Committed { .. }
                | BusEvent::Typing { .. }
                | BusEvent::Presence { .. }
                | BusEvent::Notification { .. }
                | BusEvent::Revoke { .. }
                | BusEvent::Invalidate { .. } => {}
            }
        }
        events
    }

    /// What instances published before the format had a version (captured
    /// from that code, `{"o", "e"}` with the engine's own serde derives),
    /// for the events of [`every_event`], in the same order.
    const PREVIOUS: [&str; 6] = [
        r#"{"o":"inst-a","e":{"t":"committed","room":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","messages":[{"room":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","seq":7,"id":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e13","author":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12","body":"hi \"there\"","ts":"2024-07-01T12:34:56.789012Z","client_id":"c-1"}]}}"#,
        r#"{"o":"inst-a","e":{"t":"typing","room":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","user":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12"}}"#,
        r#"{"o":"inst-a","e":{"t":"presence","room":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","user":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12","online":true}}"#,
        r#"{"o":"inst-a","e":{"t":"notification","user":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12","frame":"{\"type\":\"notification\"}"}}"#,
        r#"{"o":"inst-a","e":{"t":"revoke","room":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","user":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e12"}}"#,
        r#"{"o":"inst-a","e":{"t":"invalidate","key":"room:abc"}}"#,
    ];

    #[test]
    fn every_event_survives_a_round_trip() {
        for event in every_event() {
            let payload = encode("inst-a", &event).unwrap();
            let received = decode(&payload).unwrap();
            assert_eq!(received.origin, "inst-a");
            assert_eq!(received.event, event, "{payload}");
        }
    }

    #[test]
    fn payloads_carry_the_version() {
        for event in every_event() {
            let payload: serde_json::Value =
                serde_json::from_str(&encode("inst-a", &event).unwrap()).unwrap();
            assert_eq!(payload["v"], VERSION, "{payload}");
        }
    }

    #[test]
    fn the_unversioned_format_of_earlier_instances_is_still_read() {
        for (previous, event) in PREVIOUS.iter().zip(every_event()) {
            let received = decode(previous).unwrap();
            assert_eq!(received.origin, "inst-a");
            assert_eq!(received.event, event, "{previous}");
        }
    }

    /// Earlier instances ignore fields they do not know, so they read the
    /// current format as long as it is theirs plus `v`.
    #[test]
    fn the_current_format_is_the_earlier_one_plus_a_version() {
        for (previous, event) in PREVIOUS.iter().zip(every_event()) {
            let mut current: serde_json::Value =
                serde_json::from_str(&encode("inst-a", &event).unwrap()).unwrap();
            current.as_object_mut().unwrap().remove("v");
            let previous: serde_json::Value = serde_json::from_str(previous).unwrap();
            assert_eq!(current, previous);
        }
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let payload = r#"{"v":2,"o":"inst-b","e":{"t":"invalidate","key":"k"}}"#;
        assert!(matches!(
            decode(payload),
            Err(EnvelopeError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn an_unknown_event_is_refused() {
        for payload in [
            r#"{"v":1,"o":"inst-b","e":{"t":"teleport","room":"x"}}"#,
            r#"{"o":"inst-b","e":{"t":"teleport"}}"#,
            r#"{"v":1,"o":"inst-b","e":{"t":"typing","room":"not a uuid","user":"x"}}"#,
            r#"{"v":1,"o":"inst-b"}"#,
            r#"{"v":"1","o":"inst-b","e":{"t":"invalidate","key":"k"}}"#,
            "[1,2]",
            "not json",
            "",
        ] {
            assert!(
                matches!(decode(payload), Err(EnvelopeError::Unreadable(_))),
                "{payload}"
            );
        }
    }

    #[test]
    fn fields_added_within_a_version_are_skipped() {
        let payload = r#"{"v":1,"o":"inst-b","x":1,"e":{"t":"invalidate","key":"k","extra":true}}"#;
        assert_eq!(
            decode(payload).unwrap().event,
            BusEvent::Invalidate { key: "k".into() }
        );
    }
}
