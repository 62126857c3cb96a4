//! Users, follows and refresh tokens of the embedded store.

use super::{RefreshRow, State, UserRow};
use crate::domain::{Limit, SearchPrefix, UserId};
use crate::store::{NewRefreshToken, NewUser, ProfilePatch, RefreshSpend, StoreError, User};
use chrono::{DateTime, Utc};
use std::collections::hash_map::Entry;

impl State {
    pub(super) fn create_user(&mut self, new: NewUser) -> Result<User, StoreError> {
        let username_key = new.username.as_str().to_lowercase();
        if self.usernames.contains_key(&username_key) {
            return Err(StoreError::Conflict("username"));
        }
        let email = new.email.as_str().to_owned();
        if self.emails.contains_key(&email) {
            return Err(StoreError::Conflict("email"));
        }
        if self.users.contains_key(&new.id) {
            return Err(StoreError::Conflict("id"));
        }
        let user = User {
            id: new.id,
            username: new.username.as_str().to_owned(),
            email: email.clone(),
            display_name: String::new(),
            bio: String::new(),
            created_at: Utc::now(),
        };
        self.usernames.insert(username_key, new.id);
        self.emails.insert(email, new.id);
        let row = UserRow {
            user: user.clone(),
            password_hash: new.password_hash,
        };
        self.users.insert(new.id, row);
        Ok(user)
    }

    pub(super) fn user_by_username(&self, username: &str) -> Option<User> {
        let id = self.usernames.get(&username.to_lowercase())?;
        self.users.get(id).map(|row| row.user.clone())
    }

    /// As the PostgreSQL store: lower-cased, compared in byte order.
    pub(super) fn search_users(
        &self,
        prefix: &SearchPrefix,
        after: Option<&str>,
        limit: Limit,
    ) -> Vec<User> {
        let starts = |s: &str| s.to_lowercase().starts_with(prefix.as_str());
        let mut found: Vec<(String, &User)> = self
            .users
            .values()
            .map(|row| &row.user)
            .filter(|u| {
                starts(&u.username) || (!u.display_name.is_empty() && starts(&u.display_name))
            })
            .map(|u| (u.username.to_lowercase(), u))
            .filter(|(key, _)| after.is_none_or(|after| key.as_str() > after))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
            .into_iter()
            .take(limit.get() as usize)
            .map(|(_, u)| u.clone())
            .collect()
    }

    pub(super) fn user_by_email(&self, email: &str) -> Option<User> {
        // Stored addresses are lower-cased; accept the caller's raw input too.
        let id = self.emails.get(&email.trim().to_lowercase())?;
        self.users.get(id).map(|row| row.user.clone())
    }

    pub(super) fn update_profile(
        &mut self,
        id: UserId,
        patch: ProfilePatch,
    ) -> Result<User, StoreError> {
        let user = &mut self.users.get_mut(&id).ok_or(StoreError::NotFound)?.user;
        if let Some(display_name) = patch.display_name {
            user.display_name = display_name.as_str().to_owned();
        }
        if let Some(bio) = patch.bio {
            user.bio = bio;
        }
        Ok(user.clone())
    }

    pub(super) fn follow(
        &mut self,
        follower: UserId,
        followee: UserId,
    ) -> Result<bool, StoreError> {
        if !self.users.contains_key(&follower) || !self.users.contains_key(&followee) {
            return Err(StoreError::NotFound);
        }
        Ok(self.follows.insert((follower, followee)))
    }

    /// A scan of every follow: the set is keyed for the feed's question
    /// ("whom does X follow"), and this one is asked far less often.
    pub(super) fn followers(&self, user: UserId) -> Vec<UserId> {
        self.follows
            .iter()
            .filter(|(_, followee)| *followee == user)
            .map(|(follower, _)| *follower)
            .collect()
    }

    pub(super) fn insert_refresh_token(
        &mut self,
        token: NewRefreshToken,
    ) -> Result<(), StoreError> {
        if !self.users.contains_key(&token.user) {
            return Err(StoreError::NotFound);
        }
        match self.refresh_tokens.entry(token.hash) {
            Entry::Occupied(_) => Err(StoreError::Conflict("refresh_token")),
            Entry::Vacant(slot) => {
                slot.insert(RefreshRow {
                    user: token.user,
                    family: token.family,
                    expires_at: token.expires_at,
                    spent_at: None,
                    revoked: false,
                });
                Ok(())
            }
        }
    }

    /// A token presented after it was spent is a replay, even once expired:
    /// the caller must still revoke its family; unless it was spent less
    /// than `grace` ago and is still valid, when it is spent again. One that
    /// expired unspent is just old, revoked or not.
    pub(super) fn spend_refresh_token(
        &mut self,
        hash: &[u8],
        grace: std::time::Duration,
        now: DateTime<Utc>,
    ) -> RefreshSpend {
        let Some(token) = self.refresh_tokens.get_mut(hash) else {
            return RefreshSpend::Unknown;
        };
        let (user, family) = (token.user, token.family);
        let valid = token.expires_at > now && !token.revoked;
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        match token.spent_at {
            None if valid => {
                token.spent_at = Some(now);
                RefreshSpend::Spent { user, family }
            }
            Some(at) if valid && now - at < grace => RefreshSpend::Spent { user, family },
            None if token.expires_at <= now => RefreshSpend::Expired,
            _ => RefreshSpend::Reused { user, family },
        }
    }

    pub(super) fn revoke_refresh_family(&mut self, family: uuid::Uuid) {
        self.refresh_tokens
            .values_mut()
            .filter(|token| token.family == family)
            .for_each(|token| token.revoked = true);
    }
}
