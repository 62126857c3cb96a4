//! The room's events as stored and delivered: messages, and the edits,
//! deletes and reactions that refer to them, all numbered by one gapless
//! `seq` per room; and the rules that decide whether an event may apply.

use crate::ids::{ClientId, MessageId, RoomId, Seq, UserId};
use chrono::{DateTime, Utc};
use std::fmt;

/// Whether `c` may be stored in parley's text: no C0 control characters,
/// except tab, newline and carriage return where `multiline`. PostgreSQL
/// refuses NUL in `text` outright, and the other controls only ever arrive
/// from broken or hostile clients; refusing them at parse time keeps a
/// client's bad input the client's own `bad_request`, never a database error.
pub fn is_storable(c: char, multiline: bool) -> bool {
    !c.is_ascii_control() || c == '\u{7f}' || (multiline && matches!(c, '\t' | '\n' | '\r'))
}

/// A message body: 1 to [`MessageBody::MAX_CHARS`] characters, not blank,
/// no control characters but tab, newline and carriage return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

/// Why a message body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters other than tab, newline and carriage return")]
    ControlCharacter,
}

impl MessageBody {
    /// Long enough for any chat message, short enough that a frame with its
    /// JSON envelope stays well under the 64 KiB frame limit.
    pub const MAX_CHARS: usize = 8_000;

    pub fn parse(s: &str) -> Result<Self, BodyError> {
        if s.trim().is_empty() {
            return Err(BodyError::Blank);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(BodyError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if !s.chars().all(|c| is_storable(c, true)) {
            return Err(BodyError::ControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An emoji reaction's key: 1 to [`Emoji::MAX_CHARS`] characters, no
/// whitespace or control characters. parley does not judge what counts as
/// an emoji (new ones arrive every year); it only bounds what it stores.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(String);

/// Why an emoji was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmojiError {
    #[error("must be 1 to {max} characters")]
    Length { max: usize },
    #[error("must not contain whitespace or control characters")]
    Whitespace,
}

impl Emoji {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(s: &str) -> Result<Self, EmojiError> {
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(EmojiError::Length {
                max: Self::MAX_CHARS,
            });
        }
        if s.chars()
            .any(|c| c.is_whitespace() || !is_storable(c, false))
        {
            return Err(EmojiError::Whitespace);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client asks to add to a room's stream: one of the four event
/// kinds, already parsed. Every kind takes the next `seq` of the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new message, optionally replying to an earlier one of the room.
    Message {
        body: MessageBody,
        reply_to: Option<Seq>,
    },
    /// A new body for the author's own message.
    Edit { target: Seq, body: MessageBody },
    /// Erases a message's body; its seq stays as a tombstone.
    Delete { target: Seq },
    /// Sets (`on`) or clears the author's `emoji` on a message.
    React { target: Seq, emoji: Emoji, on: bool },
}

impl Action {
    /// The message this action refers to: what it edits, deletes, reacts
    /// to, or replies to.
    pub fn target(&self) -> Option<Seq> {
        match self {
            Action::Message { reply_to, .. } => *reply_to,
            Action::Edit { target, .. }
            | Action::Delete { target }
            | Action::React { target, .. } => Some(*target),
        }
    }
}

/// An event on its way to the log: who, where, what, and its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub room: RoomId,
    pub author: UserId,
    pub client_id: ClientId,
    pub action: Action,
    /// Whether the author moderates the room (its owner or an admin), which
    /// lets them delete other people's messages. Decided by the caller
    /// from the room's roles; the log applies it under the room's lock.
    pub moderator: bool,
}

impl NewEvent {
    /// A plain message: the most common event, and the one tests build.
    pub fn message(room: RoomId, author: UserId, client_id: ClientId, body: MessageBody) -> Self {
        Self {
            room,
            author,
            client_id,
            action: Action::Message {
                body,
                reply_to: None,
            },
            moderator: false,
        }
    }
}

/// What a committed event says, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    Message {
        body: String,
        reply_to: Option<Seq>,
    },
    Edit {
        target: Seq,
        body: String,
    },
    Delete {
        target: Seq,
    },
    /// `count`: how many users hold `emoji` on the target once this event
    /// applied, so a client that missed earlier reactions (or saw one `on`
    /// twice) still shows the right number.
    Reaction {
        target: Seq,
        emoji: String,
        on: bool,
        count: i64,
    },
}

impl EventData {
    /// The kind's name, as metrics, storage and the wire call it.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::Message { .. } => "message",
            EventData::Edit { .. } => "edit",
            EventData::Delete { .. } => "delete",
            EventData::Reaction { .. } => "reaction",
        }
    }

    /// The message an edit, delete or reaction applies to.
    pub fn target(&self) -> Option<Seq> {
        match self {
            EventData::Message { .. } => None,
            EventData::Edit { target, .. }
            | EventData::Delete { target }
            | EventData::Reaction { target, .. } => Some(*target),
        }
    }

    /// The text the event carries (a message's or an edit's body).
    pub fn body(&self) -> Option<&str> {
        match self {
            EventData::Message { body, .. } | EventData::Edit { body, .. } => Some(body),
            _ => None,
        }
    }

    /// What a new action commits as.
    pub fn from_action(action: &Action) -> Self {
        match action {
            Action::Message { body, reply_to } => EventData::Message {
                body: body.as_str().to_owned(),
                reply_to: *reply_to,
            },
            Action::Edit { target, body } => EventData::Edit {
                target: *target,
                body: body.as_str().to_owned(),
            },
            Action::Delete { target } => EventData::Delete { target: *target },
            // The log sets the count when it applies the reaction.
            Action::React { target, emoji, on } => EventData::Reaction {
                target: *target,
                emoji: emoji.as_str().to_owned(),
                on: *on,
                count: 0,
            },
        }
    }
}

/// A committed room event. `seq` is gapless per room across all kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub room: RoomId,
    pub seq: Seq,
    pub id: MessageId,
    /// Who wrote, edited, deleted or reacted.
    pub author: UserId,
    pub ts: DateTime<Utc>,
    pub client_id: String,
    pub data: EventData,
}

impl StoredEvent {
    /// The event's text, or "" for kinds without one.
    pub fn body(&self) -> &str {
        self.data.body().unwrap_or("")
    }
}

/// What appending one event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Newly committed with a fresh `seq`.
    New(StoredEvent),
    /// The (room, author, client_id) was seen before: the original event.
    Duplicate(StoredEvent),
}

impl Appended {
    /// The event, new or original.
    pub fn event(&self) -> &StoredEvent {
        match self {
            Appended::New(m) | Appended::Duplicate(m) => m,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Appended::New(_))
    }
}

/// Why the log refused an event: the room's state forbids it, so the same
/// event is refused again (nothing was stored, no seq was taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The target seq is not a message of this room.
    #[error("no such message in this room")]
    NoSuchMessage,
    /// The target message was deleted.
    #[error("the message was deleted")]
    Deleted,
    /// Only the author may do this (edit; delete unless a moderator).
    #[error("only the author may do that")]
    NotAuthor,
}

/// What the rules read of a targeted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetState {
    pub author: UserId,
    pub deleted: bool,
}

/// The rules of the stream, in one place for every store: whether `event`
/// may apply to its target, given the target's state under the room's lock
/// (`None`: no message at that seq). Who may write to the room at all is
/// decided before (`src/service/rooms.rs`).
pub fn check(event: &NewEvent, target: Option<TargetState>) -> Result<(), Refusal> {
    if event.action.target().is_none() {
        return Ok(());
    }
    let target = target.ok_or(Refusal::NoSuchMessage)?;
    match &event.action {
        // A reply may quote a message deleted since: the reply stands.
        Action::Message { .. } => Ok(()),
        _ if target.deleted => Err(Refusal::Deleted),
        Action::Edit { .. } if target.author != event.author => Err(Refusal::NotAuthor),
        Action::Delete { .. } if target.author != event.author && !event.moderator => {
            Err(Refusal::NotAuthor)
        }
        _ => Ok(()),
    }
}

/// The state a target takes after `event` applied to it.
pub fn apply(event: &EventData, target: TargetState) -> TargetState {
    match event {
        EventData::Delete { .. } => TargetState {
            deleted: true,
            ..target
        },
        _ => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(author: UserId, action: Action, moderator: bool) -> NewEvent {
        NewEvent {
            room: RoomId::new(),
            author,
            client_id: ClientId::parse("c").unwrap(),
            action,
            moderator,
        }
    }

    #[test]
    fn only_the_author_edits_and_nobody_touches_a_deleted_message() {
        let (ada, bob) = (UserId::new(), UserId::new());
        let body = MessageBody::parse("new").unwrap();
        let edit = |by| {
            event(
                by,
                Action::Edit {
                    target: Seq(1),
                    body: body.clone(),
                },
                true,
            )
        };
        let live = Some(TargetState {
            author: ada,
            deleted: false,
        });
        let gone = Some(TargetState {
            author: ada,
            deleted: true,
        });
        assert_eq!(check(&edit(ada), live), Ok(()));
        // Moderators delete, they do not put words in someone's mouth.
        assert_eq!(check(&edit(bob), live), Err(Refusal::NotAuthor));
        assert_eq!(check(&edit(ada), gone), Err(Refusal::Deleted));
        assert_eq!(check(&edit(ada), None), Err(Refusal::NoSuchMessage));
        let react = event(
            bob,
            Action::React {
                target: Seq(1),
                emoji: Emoji::parse("👍").unwrap(),
                on: true,
            },
            false,
        );
        assert_eq!(check(&react, live), Ok(()));
        assert_eq!(check(&react, gone), Err(Refusal::Deleted));
    }

    #[test]
    fn the_author_or_a_moderator_deletes() {
        let (ada, bob) = (UserId::new(), UserId::new());
        let live = Some(TargetState {
            author: ada,
            deleted: false,
        });
        let delete = |by, moderator| event(by, Action::Delete { target: Seq(1) }, moderator);
        assert_eq!(check(&delete(ada, false), live), Ok(()));
        assert_eq!(check(&delete(bob, true), live), Ok(()));
        assert_eq!(check(&delete(bob, false), live), Err(Refusal::NotAuthor));
    }

    #[test]
    fn a_reply_needs_a_message_but_may_quote_a_deleted_one() {
        let ada = UserId::new();
        let reply = event(
            ada,
            Action::Message {
                body: MessageBody::parse("re").unwrap(),
                reply_to: Some(Seq(1)),
            },
            false,
        );
        assert_eq!(check(&reply, None), Err(Refusal::NoSuchMessage));
        assert_eq!(
            check(
                &reply,
                Some(TargetState {
                    author: ada,
                    deleted: true
                })
            ),
            Ok(())
        );
    }

    #[test]
    fn emoji_are_bounded_and_free_of_whitespace() {
        assert!(Emoji::parse("👍").is_ok());
        assert!(Emoji::parse(":party_parrot:").is_ok());
        assert!(Emoji::parse("").is_err());
        assert!(Emoji::parse("a b").is_err());
        assert!(Emoji::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn bodies_refuse_nul_and_c0_controls_but_keep_line_breaks_and_tabs() {
        assert_eq!(
            MessageBody::parse("a\u{0}b"),
            Err(BodyError::ControlCharacter)
        );
        assert_eq!(
            MessageBody::parse("a\u{1b}[31m"),
            Err(BodyError::ControlCharacter)
        );
        assert!(MessageBody::parse("line one\r\n\tline two").is_ok());
        assert!(MessageBody::parse("emoji \u{1F600} and DEL \u{7f}").is_ok());
    }
}
