//! Webhooks as values (contract 6.3): the event types, the set of them an
//! endpoint subscribes to, the filter the hot path reads, a target URL, and
//! the body every delivery carries.
//!
//! The body of an event is built once, when it enters the outbox
//! ([`OutboxEvent`]), and sent byte for byte on every attempt: a retry is
//! the same message with the same `webhook-id`.

use super::Invalid;
use chrono::{DateTime, SecondsFormat, Utc};
use parley_actors::model::{EventData, StoredEvent};
use serde_json::json;
use std::sync::atomic::{AtomicU16, Ordering};

/// The event types of the contract, each one bit of an [`EventTypes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    MemberAdded,
    MemberRemoved,
    UserOnline,
    UserOffline,
    NotificationCreated,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::MessageCreated,
        EventType::MessageEdited,
        EventType::MessageDeleted,
        EventType::MemberAdded,
        EventType::MemberRemoved,
        EventType::UserOnline,
        EventType::UserOffline,
        EventType::NotificationCreated,
    ];

    /// The names, as the wire spells them (and in the order of [`Self::ALL`]).
    pub const NAMES: &'static [&'static str] = &[
        "message.created",
        "message.edited",
        "message.deleted",
        "member.added",
        "member.removed",
        "user.online",
        "user.offline",
        "notification.created",
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or(Invalid::NotOneOf(Self::NAMES))
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The type of a room event, if webhooks know it (reactions: none).
    pub fn of_room_event(data: &EventData) -> Option<Self> {
        match data {
            EventData::Message { .. } => Some(EventType::MessageCreated),
            EventData::Edit { .. } => Some(EventType::MessageEdited),
            EventData::Delete { .. } => Some(EventType::MessageDeleted),
            EventData::Reaction { .. } => None,
        }
    }
}

/// A set of event types: what an endpoint subscribes to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventTypes(u16);

impl EventTypes {
    /// At least one type, each known, none twice.
    pub fn parse(names: &[String]) -> Result<Self, Invalid> {
        if names.is_empty() {
            return Err(Invalid::NotOneOf(EventType::NAMES));
        }
        let mut set = Self::default();
        for name in names {
            set.insert(EventType::parse(name)?);
        }
        Ok(set)
    }

    pub fn insert(&mut self, kind: EventType) {
        self.0 |= kind.bit();
    }

    pub fn contains(self, kind: EventType) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The names, in the contract's order (how the store keeps them).
    pub fn names(self) -> Vec<String> {
        self.iter().map(|k| k.as_str().to_owned()).collect()
    }
}

/// The event types some enabled endpoint subscribes to, as this instance
/// last saw them. The append path reads it before building anything for
/// the outbox, so with no endpoint a message costs one atomic load. The
/// store sets it whenever endpoints change through it, and the delivery
/// worker re-reads it periodically (other instances' changes).
#[derive(Debug, Default)]
pub struct EventFilter(AtomicU16);

impl EventFilter {
    pub fn set(&self, types: EventTypes) {
        self.0.store(types.0, Ordering::Relaxed);
    }

    pub fn get(&self) -> EventTypes {
        EventTypes(self.0.load(Ordering::Relaxed))
    }

    pub fn wants(&self, kind: EventType) -> bool {
        self.get().contains(kind)
    }
}

/// An endpoint's URL: `http` or `https` with a host, at most 2,000
/// characters. Operators configure endpoints, so private addresses are
/// allowed (a backend on the same network is the usual case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_CHARS: usize = 2_000;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let url = reqwest::Url::parse(s).map_err(|_| Invalid::WebhookUrl)?;
        let fits = s.chars().count() <= Self::MAX_CHARS;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !fits {
            return Err(Invalid::WebhookUrl);
        }
        Ok(Self(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One event on its way into the outbox: fanned out there to every enabled
/// endpoint that subscribes to its type, under one `webhook-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Stable across retries and endpoints: the `webhook-id` (with `msg_`).
    pub id: uuid::Uuid,
    pub kind: EventType,
    /// `{type, timestamp, data}`, serialised once.
    pub body: String,
}

impl OutboxEvent {
    /// A new event of `kind` with `data`, happening now.
    pub fn new(kind: EventType, data: serde_json::Value) -> Self {
        Self::at(uuid::Uuid::now_v7(), kind, Utc::now(), data)
    }

    fn at(id: uuid::Uuid, kind: EventType, ts: DateTime<Utc>, data: serde_json::Value) -> Self {
        let body = json!({
            "type": kind.as_str(),
            "timestamp": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        });
        Self {
            id,
            kind,
            body: body.to_string(),
        }
    }

    /// A committed room event as a webhook event, if `filter` wants its
    /// type. Its id is the event's own id, so a delivery names the event.
    pub fn of_room_event(event: &StoredEvent, filter: EventTypes) -> Option<Self> {
        let kind = EventType::of_room_event(&event.data)?;
        if !filter.contains(kind) {
            return None;
        }
        let mut data = json!({
            "room": event.room, "seq": event.seq, "id": event.id, "author": event.author,
            "client_id": event.client_id,
        });
        match &event.data {
            EventData::Message { body, reply_to } => {
                data["body"] = json!(body);
                data["reply_to"] = json!(reply_to);
            }
            EventData::Edit { target, body } => {
                data["target"] = json!(target);
                data["body"] = json!(body);
            }
            EventData::Delete { target } => data["target"] = json!(target),
            EventData::Reaction { .. } => return None,
        }
        Some(Self::at(event.id.0, kind, event.ts, data))
    }

    /// The `webhook-id` header.
    pub fn webhook_id(id: uuid::Uuid) -> String {
        format!("msg_{}", id.simple())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_type() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Ok(kind));
        }
        assert!(EventType::parse("message.reacted").is_err());
    }

    #[test]
    fn a_set_keeps_what_was_parsed() {
        let set = EventTypes::parse(&["user.online".into(), "message.created".into()]).unwrap();
        assert_eq!(set.names(), ["message.created", "user.online"]);
        assert!(EventTypes::parse(&[]).is_err());
    }

    #[test]
    fn only_http_urls_with_a_host_are_targets() {
        assert!(WebhookUrl::parse("https://example.com/hook").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/x").is_ok());
        for bad in [
            "ftp://example.com",
            "file:///etc/passwd",
            "example.com",
            "http://",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
