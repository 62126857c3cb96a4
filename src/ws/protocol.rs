//! The WebSocket wire contract: [`ClientFrame`] in, [`ServerFrame`] out,
//! one JSON object per text frame with a `type` field. Frames become
//! commands at the edge ([`parse`]) and are never passed on raw.
//!
//! Also the one place the engine's terms become the wire's: an
//! [`ErrorKind`] becomes an error frame's `code`, a [`CloseReason`] a
//! WebSocket close code ([`close_code`]).

use crate::error::Code;
use chrono::{DateTime, Utc};
use parley_actors::ids::{RoomId, Seq, SessionId, UserId};
use parley_actors::model::StoredMessage;
use parley_actors::outbox::CloseReason;
use parley_actors::ports::{ErrorKind, FrameEncoder};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The WebSocket close code of each way the engine and the session close a
/// connection.
pub fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::Normal => 1000,
        // Sustained abuse (rate limit), an expired token.
        CloseReason::Policy => 1008,
        CloseReason::TooBig => 1009,
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
    },
    Typing {
        room: String,
    },
    Ping,
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
    },
    Message {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        author: UserId,
        body: &'a str,
        ts: DateTime<Utc>,
        client_id: &'a str,
    },
    Ack {
        room: RoomId,
        seq: Seq,
        id: uuid::Uuid,
        client_id: &'a str,
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
    /// Serialises once; the text is shared by every recipient.
    pub fn encode(&self) -> Arc<str> {
        // Serialising these types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default().into()
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
    fn message(&self, m: &StoredMessage) -> Arc<str> {
        ServerFrame::Message {
            room: m.room,
            seq: m.seq,
            id: m.id.0,
            author: m.author,
            body: &m.body,
            ts: m.ts,
            client_id: &m.client_id,
        }
        .encode()
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
        ServerFrame::Unsubscribed { room, reference }.encode()
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
