//! The slice of the WebSocket wire contract (`/work/shared/spec/protocol.md`
//! section 1) that both binaries need: [`ClientFrame`] as the harness sends
//! it, and [`Frame`], one flat, borrowing view of any frame, used to read
//! client frames in the reference server and server frames in the harness.
//!
//! A flat struct of optional fields (rather than a tagged enum) because both
//! sides read frames on their hot path: serde fills it in one pass, borrows
//! every unescaped string and skips the fields it does not name.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the harness sends. `ref` is always a string.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame<'a> {
    Subscribe {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
        #[serde(rename = "ref")]
        reference: &'a str,
    },
    Publish {
        room: &'a str,
        body: &'a str,
        client_id: &'a str,
        #[serde(rename = "ref")]
        reference: &'a str,
    },
    Ping {
        #[serde(rename = "ref")]
        reference: &'a str,
    },
}

impl ClientFrame<'_> {
    pub fn encode(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }
}

/// Any frame, either direction; fields a frame type lacks are `None`.
#[derive(Debug, Default, Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub room: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub since: Option<i64>,
    #[serde(borrow, default)]
    pub body: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub client_id: Option<Cow<'a, str>>,
    #[serde(rename = "ref", default)]
    pub reference: Option<Reference<'a>>,
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
}

/// `ref` as sent: the contract allows a string; parley also echoes numbers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Reference<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Number(i64),
}

impl Reference<'_> {
    /// The reference as text, for echoing it back.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Reference::Text(t) => Cow::Borrowed(t),
            Reference::Number(n) => Cow::Owned(n.to_string()),
        }
    }

    /// The reference as the number the harness put in it, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Reference::Text(t) => t.parse().ok(),
            Reference::Number(n) => u64::try_from(*n).ok(),
        }
    }
}

impl<'a> Frame<'a> {
    pub fn parse(text: &'a str) -> anyhow::Result<Self> {
        Ok(serde_json::from_str(text)?)
    }
}

/// Nanoseconds since the Unix epoch; the harness embeds this in every body.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The body the harness publishes: `{"t":<unix nanos at send>}`.
pub fn timestamp_body(nanos: u64) -> String {
    format!("{{\"t\":{nanos}}}")
}

/// Reads back the send time from a [`timestamp_body`]; `None` for any
/// other body (so foreign traffic is ignored, never misread).
pub fn body_timestamp(body: &str) -> Option<u64> {
    let rest = body.strip_prefix("{\"t\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// RFC 3339 UTC time with milliseconds (`2025-01-31T12:00:00.123Z`), for
/// the reference server's `ts`: the civil-from-days algorithm of
/// <http://howardhinnant.github.io/date_algorithms.html>, so no date crate.
pub fn rfc3339_millis(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_round_trip_through_the_body() {
        let body = timestamp_body(1_700_000_000_123_456_789);
        assert_eq!(body, r#"{"t":1700000000123456789}"#);
        assert_eq!(body_timestamp(&body), Some(1_700_000_000_123_456_789));
        assert_eq!(body_timestamp("hello"), None);
        assert_eq!(body_timestamp(r#"{"t":12"#), None);
    }

    #[test]
    fn frames_borrow_what_they_can_and_keep_escaped_bodies() {
        let text = r#"{"type":"message","room":"r1","seq":7,"body":"{\"t\":5}","client_id":"c","ref":null}"#;
        let f = Frame::parse(text).unwrap();
        assert_eq!(f.kind, "message");
        assert_eq!(f.seq, Some(7));
        assert_eq!(body_timestamp(f.body.as_deref().unwrap()), Some(5));
        assert!(f.reference.is_none());
        let f = Frame::parse(r#"{"type":"ack","ref":"42","seq":1}"#).unwrap();
        assert_eq!(f.reference.unwrap().as_u64(), Some(42));
        let f = Frame::parse(r#"{"type":"pong","ref":9}"#).unwrap();
        assert_eq!(f.reference.unwrap().to_text(), "9");
    }

    #[test]
    fn client_frames_match_the_contract() {
        let f = ClientFrame::Publish {
            room: "r",
            body: "b",
            client_id: "c",
            reference: "1",
        };
        assert_eq!(
            f.encode().unwrap(),
            r#"{"type":"publish","room":"r","body":"b","client_id":"c","ref":"1"}"#
        );
        let s = ClientFrame::Subscribe {
            room: "r",
            since: None,
            reference: "s",
        };
        assert_eq!(
            s.encode().unwrap(),
            r#"{"type":"subscribe","room":"r","ref":"s"}"#
        );
    }

    #[test]
    fn the_harness_sends_only_contract_frame_types() {
        let frames = [
            ClientFrame::Subscribe {
                room: "r",
                since: Some(1),
                reference: "1",
            },
            ClientFrame::Publish {
                room: "r",
                body: "b",
                client_id: "c",
                reference: "2",
            },
            ClientFrame::Ping { reference: "3" },
        ];
        for frame in frames {
            let text = frame.encode().unwrap();
            let kind = Frame::parse(&text).unwrap().kind.into_owned();
            assert!(
                crate::frame_types::CLIENT_FRAME_TYPES.contains(&kind.as_str()),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(
            rfc3339_millis(Duration::from_millis(0)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(Duration::from_millis(951_782_400_007)),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339_millis(Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59.000Z"
        );
    }
}
