//! The bus wire format: the JSON every instance publishes on Redis.
//!
//! It is defined here, in its own serde types, and nowhere in the engine:
//! [`BusEvent`] and [`StoredEvent`] are converted to and from these types,
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
use parley_actors::hub::messages::Ended;
use parley_actors::ids::{MessageId, RoomId, Seq, UserId};
use parley_actors::model::{EventData, StoredEvent};
use parley_actors::ports::BusEvent;
use parley_actors::room::messages::Eviction;
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
    Receipt {
        room: Uuid,
        user: Uuid,
        seq: i64,
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
        /// Added with bans; absent (an older instance): removed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        banned: bool,
    },
    Recheck {
        user: Uuid,
        room: Option<Uuid>,
    },
    Invalidate {
        key: Cow<'a, str>,
    },
    /// Every login of `user` begun before `before_ms` (Unix ms) was revoked.
    SignedOut {
        user: Uuid,
        before_ms: i64,
    },
    /// The login family `family` of `user` was revoked.
    FamilyRevoked {
        user: Uuid,
        family: Uuid,
    },
}

/// A committed room event. `k` (its kind) and the fields after it were
/// added in contract 1.1; an event without `k` is a message, as every
/// event was before. (An instance older than 1.1 reads an edit, delete or
/// reaction as a message: roll 1.1 out before its clients use them.)
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Message<'a> {
    room: Uuid,
    seq: i64,
    id: Uuid,
    author: Uuid,
    #[serde(default)]
    body: Cow<'a, str>,
    ts: DateTime<Utc>,
    client_id: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Kind::is_message")]
    k: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emoji: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    #[default]
    Message,
    Edit,
    Delete,
    Reaction,
}

impl Kind {
    fn is_message(&self) -> bool {
        *self == Kind::Message
    }
}

impl<'a> From<&'a BusEvent> for Event<'a> {
    fn from(event: &'a BusEvent) -> Self {
        match event {
            BusEvent::Committed { room, messages } => Event::Committed {
                room: room.0,
                messages: messages.iter().map(Message::from).collect(),
            },
            BusEvent::Receipt { room, user, seq } => Event::Receipt {
                room: room.0,
                user: user.0,
                seq: seq.0,
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
            BusEvent::Revoke { room, user, reason } => Event::Revoke {
                room: room.0,
                user: user.0,
                banned: *reason == Eviction::Banned,
            },
            BusEvent::Recheck { user, room } => Event::Recheck {
                user: user.0,
                room: room.map(|r| r.0),
            },
            BusEvent::Invalidate { key } => Event::Invalidate {
                key: Cow::Borrowed(key),
            },
            BusEvent::EndSessions { user, ended } => match *ended {
                Ended::BeganBefore(before_ms) => Event::SignedOut {
                    user: user.0,
                    before_ms,
                },
                Ended::Family(family) => Event::FamilyRevoked {
                    user: user.0,
                    family,
                },
            },
        }
    }
}

impl From<Event<'_>> for BusEvent {
    fn from(event: Event<'_>) -> Self {
        match event {
            Event::Committed { room, messages } => BusEvent::Committed {
                room: RoomId(room),
                messages: messages.into_iter().map(StoredEvent::from).collect(),
            },
            Event::Receipt { room, user, seq } => BusEvent::Receipt {
                room: RoomId(room),
                user: UserId(user),
                seq: Seq(seq),
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
            Event::Revoke { room, user, banned } => BusEvent::Revoke {
                room: RoomId(room),
                user: UserId(user),
                reason: if banned {
                    Eviction::Banned
                } else {
                    Eviction::Removed
                },
            },
            Event::Recheck { user, room } => BusEvent::Recheck {
                user: UserId(user),
                room: room.map(RoomId),
            },
            Event::Invalidate { key } => BusEvent::Invalidate {
                key: key.into_owned(),
            },
            Event::SignedOut { user, before_ms } => BusEvent::EndSessions {
                user: UserId(user),
                ended: Ended::BeganBefore(before_ms),
            },
            Event::FamilyRevoked { user, family } => BusEvent::EndSessions {
                user: UserId(user),
                ended: Ended::Family(family),
            },
        }
    }
}

impl<'a> From<&'a StoredEvent> for Message<'a> {
    fn from(m: &'a StoredEvent) -> Self {
        let mut message = Message {
            room: m.room.0,
            seq: m.seq.0,
            id: m.id.0,
            author: m.author.0,
            body: Cow::Borrowed(m.body()),
            ts: m.ts,
            client_id: Cow::Borrowed(&m.client_id),
            k: Kind::Message,
            target: m.data.target().map(|s| s.0),
            reply_to: None,
            emoji: None,
            on: None,
            count: None,
        };
        match &m.data {
            EventData::Message { reply_to, .. } => message.reply_to = reply_to.map(|s| s.0),
            EventData::Edit { .. } => message.k = Kind::Edit,
            EventData::Delete { .. } => message.k = Kind::Delete,
            EventData::Reaction {
                emoji, on, count, ..
            } => {
                message.k = Kind::Reaction;
                message.emoji = Some(Cow::Borrowed(emoji));
                message.on = Some(*on);
                message.count = Some(*count);
            }
        }
        message
    }
}

impl From<Message<'_>> for StoredEvent {
    fn from(m: Message<'_>) -> Self {
        // A malformed event (a kind without its target) reads as target 0,
        // which no message has: clients ignore it, rooms keep their order.
        let target = Seq(m.target.unwrap_or_default());
        let data = match m.k {
            Kind::Message => EventData::Message {
                body: m.body.into_owned(),
                reply_to: m.reply_to.map(Seq),
            },
            Kind::Edit => EventData::Edit {
                target,
                body: m.body.into_owned(),
            },
            Kind::Delete => EventData::Delete { target },
            Kind::Reaction => EventData::Reaction {
                target,
                emoji: m.emoji.map(Cow::into_owned).unwrap_or_default(),
                on: m.on.unwrap_or_default(),
                count: m.count.unwrap_or_default(),
            },
        };
        StoredEvent {
            room: RoomId(m.room),
            seq: Seq(m.seq),
            id: MessageId(m.id),
            author: UserId(m.author),
            ts: m.ts,
            client_id: m.client_id.into_owned(),
            data,
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
        let message = StoredEvent {
            room,
            seq: Seq(7),
            id: MessageId(uuid(MESSAGE)),
            author: user,
            ts,
            client_id: "c-1".into(),
            data: EventData::Message {
                body: "hi \"there\"".into(),
                reply_to: None,
            },
        };
        let events = vec![
            BusEvent::Committed {
                room,
                messages: vec![message.clone()].into(),
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
            BusEvent::Revoke {
                room,
                user,
                reason: Eviction::Removed,
            },
            BusEvent::Invalidate {
                key: "room:abc".into(),
            },
            // Contract 1.1: after every event of `PREVIOUS`.
            BusEvent::Receipt {
                room,
                user,
                seq: Seq(9),
            },
            BusEvent::Committed {
                room,
                messages: [
                    EventData::Message {
                        body: "re".into(),
                        reply_to: Some(Seq(7)),
                    },
                    EventData::Edit {
                        target: Seq(7),
                        body: "hi".into(),
                    },
                    EventData::Delete { target: Seq(7) },
                    EventData::Reaction {
                        target: Seq(7),
                        emoji: "👍".into(),
                        on: false,
                        count: 2,
                    },
                ]
                .into_iter()
                .enumerate()
                .map(|(i, data)| StoredEvent {
                    seq: Seq(8 + i as i64),
                    data,
                    ..message.clone()
                })
                .collect(),
            },
            // Bans and mutes (contract 1.1, 6.2).
            BusEvent::Revoke {
                room,
                user,
                reason: Eviction::Banned,
            },
            BusEvent::Recheck {
                user,
                room: Some(room),
            },
            BusEvent::Recheck { user, room: None },
            BusEvent::EndSessions {
                user,
                ended: Ended::BeganBefore(1_719_837_296_789),
            },
            BusEvent::EndSessions {
                user,
                ended: Ended::Family(uuid(MESSAGE)),
            },
        ];
        // A new variant fails to compile here until it has a sample above
        // (and a line in `PREVIOUS` once a release has published it).
        for event in &events {
            match event {
                BusEvent::Committed { .. }
                | BusEvent::Receipt { .. }
                | BusEvent::Typing { .. }
                | BusEvent::Presence { .. }
                | BusEvent::Notification { .. }
                | BusEvent::Revoke { .. }
                | BusEvent::Recheck { .. }
                | BusEvent::Invalidate { .. }
                | BusEvent::EndSessions { .. } => {}
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
