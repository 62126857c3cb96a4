//! The frames the reference server sends, each serialised once into a
//! [`Utf8Bytes`] that every recipient shares (cloning it bumps a count).

use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use uuid::Uuid;

/// What the reference server sends; field names and order follow parley's.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        session: Uuid,
        instance: &'a str,
        user: Uuid,
        heartbeat_ms: u64,
    },
    Subscribed {
        room: &'a str,
        seq: i64,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
    Unsubscribed {
        room: &'a str,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
    },
    Message {
        room: &'a str,
        seq: i64,
        id: Uuid,
        author: Uuid,
        body: &'a str,
        ts: &'a str,
        client_id: &'a str,
    },
    Ack {
        room: &'a str,
        seq: i64,
        id: Uuid,
        client_id: &'a str,
        #[serde(rename = "ref")]
        reference: Option<&'a str>,
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
    },
}

impl ServerFrame<'_> {
    /// Serialises once. These frames hold only strings, integers and UUIDs,
    /// so serialising cannot fail; an empty frame would show up as a client
    /// parse error rather than a crash.
    pub fn encode(&self) -> Utf8Bytes {
        Utf8Bytes::from(serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_server_sends_only_contract_frame_types() {
        let id = Uuid::nil();
        let frames = [
            ServerFrame::Hello {
                session: id,
                instance: "i",
                user: id,
                heartbeat_ms: 1,
            },
            ServerFrame::Subscribed {
                room: "r",
                seq: 1,
                reference: None,
            },
            ServerFrame::Unsubscribed {
                room: "r",
                reference: None,
            },
            ServerFrame::Message {
                room: "r",
                seq: 1,
                id,
                author: id,
                body: "b",
                ts: "t",
                client_id: "c",
            },
            ServerFrame::Ack {
                room: "r",
                seq: 1,
                id,
                client_id: "c",
                reference: None,
            },
            ServerFrame::Pong { reference: None },
            ServerFrame::Error {
                code: "c",
                message: "m",
                reference: None,
            },
        ];
        for frame in frames {
            let text = frame.encode();
            let kind = crate::wire::Frame::parse(text.as_str()).unwrap().kind;
            assert!(
                crate::frame_types::SERVER_FRAME_TYPES.contains(&&*kind),
                "{}",
                text.as_str()
            );
        }
    }

    #[test]
    fn frames_carry_a_type_and_a_null_ref_when_none_was_sent() {
        let f = ServerFrame::Subscribed {
            room: "r",
            seq: 3,
            reference: None,
        };
        assert_eq!(
            f.encode().as_str(),
            r#"{"type":"subscribed","room":"r","seq":3,"ref":null}"#
        );
    }
}
