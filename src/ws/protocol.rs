//! The WebSocket wire contract: [`ClientFrame`] in, [`ServerFrame`] out,
//! one JSON object per text frame with a `type` field. Frames become
//! commands at the edge ([`parse`]) and are never passed on raw.
//!
//! Also the one place the engine's terms become the wire's: an
//! [`ErrorKind`] becomes an error frame's `code`, a [`CloseReason`] a
//! WebSocket close code ([`close_code`]). [`CLIENT_FRAME_TYPES`] and
//! [`SERVER_FRAME_TYPES`] list the frame `type`s for metrics, tests and docs.

use crate::domain::Code;
use chrono::{DateTime, Utc};
use parley_actors::ids::{RoomId, Seq, SessionId, UserId};
use parley_actors::model::{EventData, StoredEvent};
use parley_actors::outbox::CloseReason;
use parley_actors::ports::{ErrorKind, FrameEncoder};
use parley_actors::room::messages::Eviction;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The version of the wire contract (`shared/spec/protocol.md`) this
/// server speaks, sent in `hello` so a client (the SDK) can tell what it
/// may use: `1.1` added room events, read state and people and safety.
pub const PROTOCOL_VERSION: &str = "1.1";

/// The `type` of every [`ClientFrame`], in declaration order.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "publish",
    "edit",
    "delete",
    "react",
    "read",
    "typing",
    "ping",
];

/// The `type` of every [`ServerFrame`], in declaration order.
pub const SERVER_FRAME_TYPES: &[&str] = &[
    "hello",
    "subscribed",
    "unsubscribed",
    "truncated",
    "message",
    "edit",
    "delete",
    "reaction",
    "read",
    "receipt",
    "ack",
    "typing",
    "presence",
    "notification",
    "pong",
    "error",
    "reconnect",
];

/// The WebSocket close code of each way the engine and the session close a
/// connection.
pub fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::Normal => 1000,
        // Sustained abuse (rate limit), an expired token.
        CloseReason::Policy => 1008,
        CloseReason::TooBig => 1009,
        // RFC 6455, 7.4.1: a protocol error, and data inconsistent with
        // the message's type.
        CloseReason::ProtocolViolation => 1002,
        CloseReason::InvalidText => 1007,
        CloseReason::Failure => 1011,
        // Service Restart: reconnect, to another instance.
        CloseReason::Restart => 1012,
        // Try Again Later: reconnect and resubscribe with `since`.
        CloseReason::SlowConsumer => 1013,
    }
}

/// The error frame `code` of what the engine reports.
fn error_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Unavailable => Code::Unavailable,
    }
}

/// What a client may send. Any frame may also carry `ref` (see [`Envelope`]).
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe {
        room: String,
        since: Option<i64>,
    },
    Unsubscribe {
        room: String,
    },
    Publish {
        room: String,
        body: String,
        client_id: String,
        reply_to: Option<i64>,
    },
    Edit {
        room: String,
        target: i64,
        body: String,
        client_id: String,
    },
    Delete {
        room: String,
        target: i64,
        client_id: String,
    },
    React {
        room: String,
        target: i64,
        emoji: String,
        on: bool,
        client_id: String,
    },
    Read {
        room: String,
        seq: i64,
    },
    Typing {
        room: String,
    },
    Ping,
}

impl ClientFrame {
    /// The frame's `type` (one of [`CLIENT_FRAME_TYPES`]).
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Subscribe { .. } => "subscribe",
            ClientFrame::Unsubscribe { .. } => "unsubscribe",
            ClientFrame::Publish { .. } => "publish",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Ping => "ping",
        }
    }
}

/// A parsed client frame with its `ref`.
#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    pub frame: ClientFrame,
    pub reference: Option<String>,
}

/// A frame that could not be understood; `reference` is kept when the
/// frame was at least a JSON object with a string `ref`.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError {
    pub message: String,
    pub reference: Option<String>,
}

/// Parses one text frame. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Envelope, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError {
        message: format!("frames must be JSON objects: {e}"),
        reference: None,
    })?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(FrameError {
            message: "frames must be JSON objects with a string `type`".into(),
            reference: None,
        });
    };
    let reference = match map.remove("ref") {
        Some(serde_json::Value::String(s)) => Some(s.chars().take(128).collect()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let frame =
        serde_json::from_value::<ClientFrame>(serde_json::Value::Object(map)).map_err(|e| {
            FrameError {
                message: format!("invalid frame: {e}"),
                reference: reference.clone(),
            }
        })?;
    Ok(Envelope { frame, reference })
}

/// `presence.state`.
#[derive(Debug, Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Online,
    Offline,
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        session: SessionId,
        instance: &'a str,
        user: UserId,
        heartbeat_ms: u64,
        /// The wire contract this server speaks ([`PROTOCOL_VERSION`]).
        protocol: &'static str,
    },
    Subscribed {
        room: RoomId,
        seq: Seq,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
    Unsubscribed {
        room: RoomId,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
        /// Set when the server ended the subscription: `removed` or
        /// `banned`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// Retention purged the room's events below `first_seq`; the replay
    /// continues from there.
    Truncated {
        room: RoomId,
        first_seq: Seq,
    },
    Message {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        author: UserId,
        body: &'a str,
        ts: DateTime<Utc>,
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<Seq>,
    },
    Edit {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        target: Seq,
        body: &'a str,
        author: UserId,
        ts: DateTime<Utc>,
        client_id: &'a str,
    },
    Delete {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        target: Seq,
        by: UserId,
        ts: DateTime<Utc>,
        client_id: &'a str,
    },
    Reaction {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        target: Seq,
        emoji: &'a str,
        user: UserId,
        on: bool,
        /// How many users hold `emoji` on `target` now.
        count: i64,
        ts: DateTime<Utc>,
        client_id: &'a str,
    },
    /// The user's own read cursor, on all their sessions.
    Read {
        room: RoomId,
        seq: Seq,
    },
    /// Another member's read cursor (private and direct rooms).
    Receipt {
        room: RoomId,
        user: UserId,
        seq: Seq,
    },
    Ack {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        client_id: &'a str,
        /// The message an edit, delete or reaction applied to; null for a
        /// publish.
        target: Option<Seq>,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
    Typing {
        room: RoomId,
        user: UserId,
    },
    Presence {
        room: RoomId,
        user: UserId,
        state: PresenceState,
    },
    Notification {
        id: uuid::Uuid,
        kind: &'a str,
        payload: &'a serde_json::Value,
        ts: DateTime<Utc>,
    },
    Pong {
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Reconnect {
        reason: &'a str,
        retry_after_ms: u64,
    },
}

impl ServerFrame<'_> {
    /// The frame's `type` (one of [`SERVER_FRAME_TYPES`]).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Hello { .. } => "hello",
            ServerFrame::Subscribed { .. } => "subscribed",
            ServerFrame::Unsubscribed { .. } => "unsubscribed",
            ServerFrame::Truncated { .. } => "truncated",
            ServerFrame::Message { .. } => "message",
            ServerFrame::Edit { .. } => "edit",
            ServerFrame::Delete { .. } => "delete",
            ServerFrame::Reaction { .. } => "reaction",
            ServerFrame::Read { .. } => "read",
            ServerFrame::Receipt { .. } => "receipt",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Notification { .. } => "notification",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Reconnect { .. } => "reconnect",
        }
    }

    /// Serialises once; the text is shared by every recipient.
    pub fn encode(&self) -> Arc<str> {
        // Serialising these types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default().into()
    }

    /// The frame of a committed event, by its kind.
    pub fn event(e: &StoredEvent) -> ServerFrame<'_> {
        let (room, seq, id, ts, client_id) = (e.room, e.seq, e.id.0, e.ts, e.client_id.as_str());
        match &e.data {
            EventData::Message { body, reply_to } => ServerFrame::Message {
                room,
                seq,
                id,
                author: e.author,
                body,
                ts,
                client_id,
                reply_to: *reply_to,
            },
            EventData::Edit { target, body } => ServerFrame::Edit {
                room,
                seq,
                id,
                target: *target,
                body,
                author: e.author,
                ts,
                client_id,
            },
            EventData::Delete { target } => ServerFrame::Delete {
                room,
                seq,
                id,
                target: *target,
                by: e.author,
                ts,
                client_id,
            },
            EventData::Reaction {
                target,
                emoji,
                on,
                count,
            } => ServerFrame::Reaction {
                room,
                seq,
                id,
                target: *target,
                emoji,
                user: e.author,
                on: *on,
                count: *count,
                ts,
                client_id,
            },
        }
    }

    /// The `ack` of a stored event (new, or the original of a repeat).
    pub fn ack<'a>(e: &'a StoredEvent, reference: Option<&'a str>) -> ServerFrame<'a> {
        ServerFrame::Ack {
            room: e.room,
            seq: e.seq,
            id: e.id.0,
            client_id: &e.client_id,
            target: e.data.target(),
            reference,
        }
    }

    pub fn error(code: Code, message: &str, reference: Option<&str>) -> Arc<str> {
        ServerFrame::Error {
            code: code.as_str(),
            message,
            reference,
            retry_after_ms: None,
        }
        .encode()
    }
}

/// The engine's encoder: the actors hand it events, it returns JSON.
pub struct JsonEncoder;

impl FrameEncoder for JsonEncoder {
    fn event(&self, e: &StoredEvent) -> Arc<str> {
        ServerFrame::event(e).encode()
    }

    fn receipt(&self, room: RoomId, user: UserId, seq: Seq) -> Arc<str> {
        ServerFrame::Receipt { room, user, seq }.encode()
    }

    fn subscribed(&self, room: RoomId, seq: Seq, reference: Option<&str>) -> Arc<str> {
        ServerFrame::Subscribed {
            room,
            seq,
            reference,
        }
        .encode()
    }

    fn unsubscribed(&self, room: RoomId, reference: Option<&str>) -> Arc<str> {
        ServerFrame::Unsubscribed {
            room,
            reference,
            reason: None,
        }
        .encode()
    }

    fn evicted(&self, room: RoomId, reason: Eviction) -> Arc<str> {
        let reason = match reason {
            Eviction::Removed => "removed",
            Eviction::Banned => "banned",
        };
        ServerFrame::Unsubscribed {
            room,
            reference: None,
            reason: Some(reason),
        }
        .encode()
    }

    fn truncated(&self, room: RoomId, first_seq: Seq) -> Arc<str> {
        ServerFrame::Truncated { room, first_seq }.encode()
    }

    fn typing(&self, room: RoomId, user: UserId) -> Arc<str> {
        ServerFrame::Typing { room, user }.encode()
    }

    fn presence(&self, room: RoomId, user: UserId, online: bool) -> Arc<str> {
        let state = if online {
            PresenceState::Online
        } else {
            PresenceState::Offline
        };
        ServerFrame::Presence { room, user, state }.encode()
    }

    fn error(&self, kind: ErrorKind, message: &str, reference: Option<&str>) -> Arc<str> {
        ServerFrame::Error {
            code: error_code(kind).as_str(),
            message,
            reference,
            retry_after_ms: None,
        }
        .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_client_frame_with_its_ref() {
        let e = parse(r#"{"type":"publish","room":"r","body":"hi","client_id":"c1","ref":"7"}"#)
            .unwrap();
        assert_eq!(e.reference.as_deref(), Some("7"));
        assert!(matches!(e.frame, ClientFrame::Publish { .. }));
        let e = parse(r#"{"type":"subscribe","room":"r","since":4}"#).unwrap();
        assert_eq!(
            e.frame,
            ClientFrame::Subscribe {
                room: "r".into(),
                since: Some(4)
            }
        );
        assert_eq!(
            parse(r#"{"type":"ping"}"#).unwrap().frame,
            ClientFrame::Ping
        );
    }

    #[test]
    fn bad_frames_keep_their_ref() {
        let e = parse(r#"{"type":"publish","room":"r","ref":"9"}"#).unwrap_err();
        assert_eq!(e.reference.as_deref(), Some("9"));
        assert!(e.message.contains("body"), "{}", e.message);
        assert!(
            parse(r#"{"type":"dance","ref":"1"}"#)
                .unwrap_err()
                .message
                .contains("dance")
        );
        assert!(parse("[1,2]").is_err());
        assert!(parse("not json").is_err());
    }

    /// One frame of every variant. A new variant fails to compile in
    /// [`ServerFrame::kind`] until it is named there, then fails
    /// `server_frame_types_are_the_enum` until it has a sample here and its
    /// `type` is in [`SERVER_FRAME_TYPES`].
    fn every_server_frame(payload: &serde_json::Value) -> Vec<ServerFrame<'_>> {
        let (room, user) = (RoomId::new(), UserId::new());
        vec![
            ServerFrame::Hello {
                session: SessionId::new(),
                instance: "i",
                user,
                heartbeat_ms: 1,
                protocol: PROTOCOL_VERSION,
            },
            ServerFrame::Subscribed {
                room,
                seq: Seq(1),
                reference: None,
            },
            ServerFrame::Unsubscribed {
                room,
                reference: None,
                reason: Some("banned"),
            },
            ServerFrame::Truncated {
                room,
                first_seq: Seq(2),
            },
            ServerFrame::Message {
                room,
                seq: Seq(1),
                id: uuid::Uuid::nil(),
                author: user,
                body: "b",
                ts: Utc::now(),
                client_id: "c",
                reply_to: None,
            },
            ServerFrame::Edit {
                room,
                seq: Seq(2),
                id: uuid::Uuid::nil(),
                target: Seq(1),
                body: "b",
                author: user,
                ts: Utc::now(),
                client_id: "c",
            },
            ServerFrame::Delete {
                room,
                seq: Seq(3),
                id: uuid::Uuid::nil(),
                target: Seq(1),
                by: user,
                ts: Utc::now(),
                client_id: "c",
            },
            ServerFrame::Reaction {
                room,
                seq: Seq(4),
                id: uuid::Uuid::nil(),
                target: Seq(1),
                emoji: "x",
                user,
                on: true,
                count: 1,
                ts: Utc::now(),
                client_id: "c",
            },
            ServerFrame::Read { room, seq: Seq(4) },
            ServerFrame::Receipt {
                room,
                user,
                seq: Seq(4),
            },
            ServerFrame::Ack {
                room,
                seq: Seq(1),
                id: uuid::Uuid::nil(),
                client_id: "c",
                target: None,
                reference: Some("1"),
            },
            ServerFrame::Typing { room, user },
            ServerFrame::Presence {
                room,
                user,
                state: PresenceState::Online,
            },
            ServerFrame::Notification {
                id: uuid::Uuid::nil(),
                kind: "k",
                payload,
                ts: Utc::now(),
            },
            ServerFrame::Pong { reference: None },
            ServerFrame::Error {
                code: "c",
                message: "m",
                reference: None,
                retry_after_ms: None,
            },
            ServerFrame::Reconnect {
                reason: "r",
                retry_after_ms: 1,
            },
        ]
    }

    fn type_of(text: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        value["type"].as_str().unwrap().to_owned()
    }

    #[test]
    fn server_frame_types_are_the_enum() {
        let payload = serde_json::json!({});
        let frames = every_server_frame(&payload);
        let mut kinds = Vec::new();
        for frame in &frames {
            let text = frame.encode();
            assert_eq!(type_of(&text), frame.kind(), "{text}");
            // Metrics read the type off the front of the text.
            assert!(
                text.starts_with(&format!(r#"{{"type":"{}""#, frame.kind())),
                "{text}"
            );
            kinds.push(frame.kind());
        }
        assert_eq!(kinds, SERVER_FRAME_TYPES);
    }

    #[test]
    fn client_frame_types_are_the_enum() {
        let mut kinds = Vec::new();
        for kind in CLIENT_FRAME_TYPES {
            let text = serde_json::json!({
                "type": kind, "room": "r", "body": "b", "client_id": "c",
                "target": 1, "seq": 1, "emoji": "x", "on": true,
            })
            .to_string();
            let frame = parse(&text).unwrap().frame;
            assert_eq!(frame.kind(), *kind);
            kinds.push(frame.kind());
        }
        // Every variant is reached: `kind` is exhaustive and returns each
        // type once.
        let samples = [
            ClientFrame::Subscribe {
                room: String::new(),
                since: None,
            },
            ClientFrame::Unsubscribe {
                room: String::new(),
            },
            ClientFrame::Publish {
                room: String::new(),
                body: String::new(),
                client_id: String::new(),
                reply_to: None,
            },
            ClientFrame::Edit {
                room: String::new(),
                target: 1,
                body: String::new(),
                client_id: String::new(),
            },
            ClientFrame::Delete {
                room: String::new(),
                target: 1,
                client_id: String::new(),
            },
            ClientFrame::React {
                room: String::new(),
                target: 1,
                emoji: String::new(),
                on: true,
                client_id: String::new(),
            },
            ClientFrame::Read {
                room: String::new(),
                seq: 1,
            },
            ClientFrame::Typing {
                room: String::new(),
            },
            ClientFrame::Ping,
        ];
        let named: Vec<&str> = samples.iter().map(ClientFrame::kind).collect();
        assert_eq!(named, CLIENT_FRAME_TYPES);
        assert_eq!(kinds, CLIENT_FRAME_TYPES);
    }

    #[test]
    fn engine_terms_map_to_the_wire() {
        let codes: Vec<u16> = [
            CloseReason::Normal,
            CloseReason::Policy,
            CloseReason::TooBig,
            CloseReason::Failure,
            CloseReason::Restart,
            CloseReason::SlowConsumer,
        ]
        .into_iter()
        .map(close_code)
        .collect();
        assert_eq!(codes, [1000, 1008, 1009, 1011, 1012, 1013]);
        let frame = JsonEncoder.error(ErrorKind::Unavailable, "later", None);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], "unavailable");
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn the_parser_never_panics_on_json_shaped_input(
            t in prop_oneof!["subscribe", "publish", "typing", "ping", "unsubscribe", ".{0,8}"],
            room in ".{0,40}", since in any::<i64>(), body in ".{0,40}",
        ) {
            let frame = serde_json::json!({"type": t, "room": room, "since": since, "body": body, "client_id": body, "ref": since});
            let _ = parse(&frame.to_string());
        }
    }
}
