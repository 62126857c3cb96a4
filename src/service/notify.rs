//! Which events notify whom. Each notification is stored first (REST reads
//! it, it survives restarts); live delivery to connected sessions builds on
//! the stored row.
//!
//! - a new post notifies every follower of its author (`new_post`);
//! - a follow notifies the followed user (`follow`);
//! - `@username` in a room message notifies that user if they can read the
//!   room (`mention`);
//! - a message in a direct room notifies the other member (`direct_message`);
//! - an edit that adds an `@username` notifies that user (`mention`), once
//!   per message however often it is edited;
//! - a deleted message's notifications are withdrawn (marked read);
//! - nobody is notified of anything by a user they blocked
//!   ([`super::blocks::reachable`]).
//!
//! The triggering write has already committed, so a failure here is logged
//! and does not fail the request.

use super::Services;
use crate::domain::webhook::EventType;
use crate::domain::{RoomId, RoomKind, Seq, UserId};
use crate::store::{NewNotification, Notification, Post, Room};
use parley_actors::model::StoredEvent;
use serde_json::json;
use std::collections::BTreeSet;

/// Followers notified of a post per write: large enough that a post to
/// 100,000 followers is 100 statements, small enough to bound one
/// statement's parameters and one notifier message.
const FANOUT_CHUNK: usize = 1_000;

/// A new post notifies `followers` (its author's, as the caller loaded them).
pub async fn post_created(
    state: &Services,
    author_name: &str,
    post: &Post,
    followers: Vec<UserId>,
) {
    let payload = json!({
        "post_id": post.id, "author": post.author, "author_username": author_name,
        "excerpt": excerpt(&post.body),
    });
    for chunk in followers.chunks(FANOUT_CHUNK) {
        let chunk = super::blocks::reachable(state, post.author, chunk.to_vec()).await;
        if chunk.is_empty() {
            continue;
        }
        match state
            .store
            .create_notifications(&chunk, "new_post", &payload)
            .await
        {
            Ok(stored) => deliver(state, &stored),
            Err(error) => tracing::warn!(
                %error,
                recipients = chunk.len(),
                "could not store new_post notifications"
            ),
        }
    }
}

/// How often one follower may notify one user of a follow: unfollowing and
/// following again must not become a way to ping someone at will.
pub const FOLLOW_NOTIFY_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub async fn followed(state: &Services, follower: UserId, follower_name: &str, followee: UserId) {
    if super::blocks::reachable(state, follower, vec![followee])
        .await
        .is_empty()
    {
        return;
    }
    let payload = json!({ "follower": follower, "follower_username": follower_name });
    let new = NewNotification {
        user: followee,
        kind: "follow".into(),
        payload,
    };
    let same = json!({ "follower": follower });
    match state
        .store
        .create_notification_unless_recent(new, &same, FOLLOW_NOTIFY_EVERY)
        .await
    {
        Ok(Some(stored)) => deliver(state, std::slice::from_ref(&stored)),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, kind = "follow", "could not store a notification"),
    }
}

pub async fn message_posted(
    state: &Services,
    room: &Room,
    author_name: &str,
    message: &StoredEvent,
) {
    let payload = json!({
        "room": room.id, "room_name": room.name, "seq": message.seq, "message_id": message.id,
        "author": message.author, "author_username": author_name, "excerpt": excerpt(message.body()),
    });
    // Who, and why: the direct-room peer first, then mentions, each once.
    let mut notified = BTreeSet::from([message.author]);
    let mut recipients = Vec::new();
    if room.kind == RoomKind::Direct {
        match state.store.members(room.id).await {
            Ok(members) => {
                for member in members.iter().filter(|m| notified.insert(m.user)) {
                    recipients.push((member.user, "direct_message"));
                }
            }
            Err(error) => tracing::warn!(%error, "could not load direct room members"),
        }
    }
    for name in mentions(message.body()) {
        let Ok(Some(user)) = state.store.user_by_username(name).await else {
            continue;
        };
        if notified.insert(user.id)
            && matches!(super::rooms::may_read(state, room, user.id).await, Ok(true))
        {
            recipients.push((user.id, "mention"));
        }
    }
    let users = recipients.iter().map(|(user, _)| *user).collect();
    let reachable = super::blocks::reachable(state, message.author, users).await;
    for (user, kind) in recipients
        .into_iter()
        .filter(|(u, _)| reachable.contains(u))
    {
        send(state, user, kind, payload.clone()).await;
    }
}

/// How long a message's mention is remembered, so that editing it again
/// does not notify again: longer than anyone edits a message.
const MENTION_ONCE_WITHIN: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// An edit of message `target` by its author: users it mentions who may read
/// the room and were not notified of this message before are notified now.
pub async fn message_edited(
    state: &Services,
    room: RoomId,
    target: Seq,
    author_name: &str,
    body: &str,
) {
    let room = match state.store.room(room).await {
        Ok(Some(room)) => room,
        Ok(None) => return,
        Err(error) => return tracing::warn!(%error, "could not load a room to notify"),
    };
    let Ok(Some(author)) = state.store.user_by_username(author_name).await else {
        return;
    };
    let payload = json!({
        "room": room.id, "room_name": room.name, "seq": target, "author": author.id,
        "author_username": author_name, "excerpt": excerpt(body), "edited": true,
    });
    let same = json!({ "room": room.id, "seq": target });
    for name in mentions(body) {
        let Ok(Some(user)) = state.store.user_by_username(name).await else {
            continue;
        };
        if user.id == author.id
            || !matches!(
                super::rooms::may_read(state, &room, user.id).await,
                Ok(true)
            )
            || super::blocks::reachable(state, author.id, vec![user.id])
                .await
                .is_empty()
        {
            continue;
        }
        let new = NewNotification {
            user: user.id,
            kind: "mention".into(),
            payload: payload.clone(),
        };
        match state
            .store
            .create_notification_unless_recent(new, &same, MENTION_ONCE_WITHIN)
            .await
        {
            Ok(Some(stored)) => deliver(state, std::slice::from_ref(&stored)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, kind = "mention", "could not store a notification")
            }
        }
    }
}

/// Message `target` was deleted: what it notified is withdrawn.
pub async fn message_deleted(state: &Services, room: RoomId, target: Seq) {
    if let Err(error) = state.store.withdraw_notifications(room, target).await {
        tracing::warn!(%error, "could not withdraw a deleted message's notifications");
    }
}

/// Whether [`message_posted`] could notify anyone: only a direct room or an
/// `@mention` does. Most chat messages are neither, and at thousands of
/// publishes a second a task spawned per message to find that out is
/// measurable work on the core that also serves the sockets.
pub fn may_notify(room: Option<&Room>, body: &str) -> bool {
    let direct = room.is_none_or(|room| room.kind == RoomKind::Direct);
    direct || !mentions(body).is_empty()
}

/// [`message_posted`] for a publish that only knows its room id (WebSocket).
pub async fn message_posted_in(state: &Services, author_name: &str, message: &StoredEvent) {
    match state.store.room(message.room).await {
        Ok(Some(room)) => message_posted(state, &room, author_name, message).await,
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not load a room to notify"),
    }
}

/// Stores the notification, then pushes it to the user's live sessions.
async fn send(state: &Services, user: UserId, kind: &str, payload: serde_json::Value) {
    let new = NewNotification {
        user,
        kind: kind.to_owned(),
        payload,
    };
    match state.store.create_notification(new).await {
        Ok(stored) => deliver(state, std::slice::from_ref(&stored)),
        Err(error) => tracing::warn!(%error, kind, "could not store a notification"),
    }
}

/// Pushes stored notifications to their users' live sessions, and tells
/// webhook endpoints (`notification.created`; off the caller's path).
pub fn deliver(services: &Services, stored: &[Notification]) {
    if stored.is_empty() {
        return;
    }
    services.live.deliver(stored);
    if services.webhooks.wants(EventType::NotificationCreated) {
        let webhooks = services.webhooks.clone();
        let data = stored
            .iter()
            .map(|n| {
                json!({ "id": n.id, "user": n.user, "kind": n.kind, "payload": n.payload,
                        "created_at": n.created_at })
            })
            .collect();
        actix_web::rt::spawn(async move {
            webhooks
                .emit_many(EventType::NotificationCreated, data)
                .await;
        });
    }
}

/// Live delivery of stored notifications to their users' sessions, on this
/// instance and the others. The WebSocket edge implements it (`ws::live`):
/// the frame is its wire format, and the service layer stays below it.
pub trait LiveDelivery: Send + Sync + 'static {
    fn deliver(&self, stored: &[Notification]);
    /// `user`'s read cursor in `room` is now `seq`: a `read` frame to all
    /// their sessions.
    fn read_cursor(&self, user: UserId, room: RoomId, seq: Seq);
}

/// The `@name` tokens of a text, each once, in order of first appearance.
pub fn mentions(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('@') {
        let preceded_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !preceded_ok {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        // A sentence-ending dot is punctuation, not part of the name.
        let name = rest[..end].trim_end_matches('.');
        if (3..=32).contains(&name.len()) && !found.contains(&name) {
            found.push(name);
        }
        if found.len() >= 20 {
            break; // bound the lookups one message can cause
        }
    }
    found
}

fn excerpt(text: &str) -> String {
    text.chars().take(140).collect()
}

#[cfg(test)]
mod tests {
    use super::{may_notify, mentions};
    use crate::domain::{RoomId, RoomKind, UserId};
    use crate::store::Room;

    fn room(kind: RoomKind) -> Room {
        Room {
            id: RoomId::new(),
            name: "general".into(),
            kind,
            created_by: UserId::new(),
            created_at: chrono::Utc::now(),
            retention_days: None,
        }
    }

    #[test]
    fn only_a_mention_a_direct_room_or_an_unknown_room_can_notify() {
        let public = room(RoomKind::Public);
        assert!(!may_notify(Some(&public), "hello everyone"));
        assert!(!may_notify(Some(&public), "write to ada@example.com"));
        assert!(may_notify(Some(&public), "hello @ada"));
        assert!(may_notify(Some(&room(RoomKind::Direct)), "hello"));
        // Unknown: the room has to be loaded to tell.
        assert!(may_notify(None, "hello"));
    }

    #[test]
    fn finds_each_mention_once() {
        assert_eq!(
            mentions("hi @ada and @bob_1. @ada again"),
            vec!["ada", "bob_1"]
        );
        assert!(mentions("mail ada@example.com").is_empty());
        assert!(mentions("@ab is too short").is_empty());
    }
}
