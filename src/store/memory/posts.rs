//! Posts, the feed and notifications of the embedded store.

use super::State;
use crate::domain::{Limit, NotificationId, PostId, UserId};
use crate::store::{NewNotification, NewPost, Notification, Post, StoreError};
use chrono::Utc;
use std::collections::HashSet;
use std::ops::Bound;

/// How `State::notifications` is keyed.
type NotificationKey = (UserId, NotificationId);

/// Every key of one user's notifications, older than `before` when given.
fn user_keys(
    user: UserId,
    before: Option<NotificationId>,
) -> (Bound<NotificationKey>, Bound<NotificationKey>) {
    let upper = match before {
        Some(id) => Bound::Excluded((user, id)),
        None => Bound::Included((user, NotificationId(uuid::Uuid::max()))),
    };
    (
        Bound::Included((user, NotificationId(uuid::Uuid::nil()))),
        upper,
    )
}

impl State {
    pub(super) fn create_post(&mut self, new: NewPost) -> Result<Post, StoreError> {
        if !self.users.contains_key(&new.author) {
            return Err(StoreError::NotFound);
        }
        if self.posts.contains_key(&new.id) {
            return Err(StoreError::Conflict("id"));
        }
        let post = Post {
            id: new.id,
            author: new.author,
            body: new.body.as_str().to_owned(),
            created_at: Utc::now(),
        };
        self.posts.insert(post.id, post.clone());
        Ok(post)
    }

    /// Walks all posts backwards from `before`: fine for a store that only
    /// ever holds one developer's data.
    pub(super) fn feed(&self, user: UserId, before: Option<PostId>, limit: Limit) -> Vec<Post> {
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        let followees: HashSet<UserId> = self
            .follows
            .range((user, UserId(uuid::Uuid::nil()))..=(user, UserId(uuid::Uuid::max())))
            .map(|(_, followee)| *followee)
            .collect();
        self.posts
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, post)| post)
            .filter(|post| post.author == user || followees.contains(&post.author))
            .take(limit.get() as usize)
            .cloned()
            .collect()
    }

    pub(super) fn create_notification(
        &mut self,
        new: NewNotification,
    ) -> Result<Notification, StoreError> {
        if !self.users.contains_key(&new.user) {
            return Err(StoreError::NotFound);
        }
        let notification = Notification {
            id: NotificationId::new(),
            user: new.user,
            kind: new.kind,
            payload: new.payload,
            read: false,
            created_at: Utc::now(),
        };
        let key = (notification.user, notification.id);
        self.notifications.insert(key, notification.clone());
        self.enqueue_pushes(&notification);
        Ok(notification)
    }

    pub(super) fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<NotificationId>,
        limit: Limit,
    ) -> Vec<Notification> {
        self.notifications
            .range(user_keys(user, before))
            .rev()
            .map(|(_, n)| n)
            .filter(|n| !unread_only || !n.read)
            .take(limit.get() as usize)
            .cloned()
            .collect()
    }

    pub(super) fn unread_of(&self, user: UserId) -> impl Iterator<Item = &Notification> {
        self.notifications
            .range(user_keys(user, None))
            .map(|(_, n)| n)
            .filter(|n| !n.read)
    }

    pub(super) fn mark_all_read(&mut self, user: UserId) -> i64 {
        let mut marked = 0;
        for (_, n) in self.notifications.range_mut(user_keys(user, None)) {
            if !n.read {
                n.read = true;
                marked += 1;
            }
        }
        marked
    }
}
