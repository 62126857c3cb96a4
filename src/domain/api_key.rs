//! The server API's values (contract 6.3): what a key may do ([`Scope`]),
//! its name, and what a backend may send as a notification.

use super::{Invalid, check_storable};

/// What an API key may do. A key holds one or more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `POST /api/v1/server/rooms/{id}/messages`, as any existing user.
    RoomsWrite,
    /// `POST /api/v1/server/notifications`.
    NotificationsWrite,
}

impl Scope {
    pub const NAMES: &'static [&'static str] = &["rooms:write", "notifications:write"];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RoomsWrite => "rooms:write",
            Scope::NotificationsWrite => "notifications:write",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "rooms:write" => Ok(Scope::RoomsWrite),
            "notifications:write" => Ok(Scope::NotificationsWrite),
            _ => Err(Invalid::NotOneOf(Self::NAMES)),
        }
    }

    /// At least one scope; repeats are dropped; sorted.
    pub fn parse_all(names: &[String]) -> Result<Vec<Self>, Invalid> {
        if names.is_empty() {
            return Err(Invalid::NotOneOf(Self::NAMES));
        }
        let mut scopes = names
            .iter()
            .map(|n| Self::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort_unstable();
        scopes.dedup();
        Ok(scopes)
    }
}

/// An API key's name, for operators: 1 to 100 characters, one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS || check_storable(s, false).is_err() {
            return Err(Invalid::LengthOrControl {
                min: 1,
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A notification's kind as a backend names it: 1 to 64 characters of
/// `[a-z0-9_.-]` (clients switch on it, so it stays an identifier).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationKind(String);

impl NotificationKind {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let valid = (1..=Self::MAX_CHARS).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if !valid {
            return Err(Invalid::NotificationKind);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A notification's payload from a backend: a JSON object of at most
/// [`NotificationPayload::MAX_BYTES`] serialised, with no NUL in any string
/// (PostgreSQL's `jsonb` refuses `\u0000`).
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationPayload(serde_json::Value);

impl NotificationPayload {
    pub const MAX_BYTES: usize = 4_096;

    pub fn parse(value: &serde_json::Value) -> Result<Self, Invalid> {
        let text = value.to_string();
        if !value.is_object() || text.len() > Self::MAX_BYTES || text.contains("\\u0000") {
            return Err(Invalid::Payload {
                max_bytes: Self::MAX_BYTES,
            });
        }
        Ok(Self(value.clone()))
    }

    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_parse_by_their_names() {
        let all = Scope::parse_all(&["notifications:write".into(), "rooms:write".into()]);
        assert_eq!(all, Ok(vec![Scope::RoomsWrite, Scope::NotificationsWrite]));
        assert!(Scope::parse_all(&[]).is_err());
        assert!(Scope::parse("admin").is_err());
    }

    #[test]
    fn a_kind_is_an_identifier() {
        assert!(NotificationKind::parse("billing.invoice_paid").is_ok());
        for bad in ["", "Big", "a b", &"x".repeat(65)] {
            assert!(NotificationKind::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_payload_is_a_small_object() {
        assert!(NotificationPayload::parse(&json!({"a": 1})).is_ok());
        assert!(NotificationPayload::parse(&json!([1])).is_err());
        assert!(NotificationPayload::parse(&json!({"a": "\u{0}"})).is_err());
        assert!(NotificationPayload::parse(&json!({"a": "x".repeat(5000)})).is_err());
    }
}
