//! What many tests set up over the API: users, members, posts, history.

use super::app::{TestApp, TestUser, parts};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl TestApp {
    /// Registers each of `names`, in order.
    pub async fn users<const N: usize>(&self, names: [&str; N]) -> [TestUser; N] {
        let mut registered = Vec::with_capacity(N);
        for name in names {
            registered.push(self.register(name).await);
        }
        registered.try_into().unwrap()
    }

    /// `POST /rooms/{room}/members` by `caller`, adding `user_id`.
    pub async fn post_member(&self, caller: &TestUser, room: &str, user_id: &str) -> Response {
        self.post(
            &format!("/api/v1/rooms/{room}/members"),
            &caller.access,
            json!({ "user_id": user_id }),
        )
        .await
    }

    /// Adds a member, which must succeed.
    pub async fn add_member(&self, caller: &TestUser, room: &str, user_id: &str) {
        let (status, body) = parts(self.post_member(caller, room, user_id).await).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    /// `follower` follows `followee`, which must succeed.
    pub async fn follow(&self, follower: &TestUser, followee: &TestUser) {
        let res = self
            .post(
                &format!("/api/v1/users/{}/follow", followee.id),
                &follower.access,
                json!({}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }

    /// The items of one page of `user`'s notifications, newest first
    /// (`query` is empty or starts with `?`).
    pub async fn notifications(&self, user: &TestUser, query: &str) -> Vec<Value> {
        let path = format!("/api/v1/notifications{query}");
        let (status, page) = parts(self.get(&path, &user.access).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// `POST /posts` by `author`: the status and body.
    pub async fn create_post(&self, author: &TestUser, body: &str) -> (StatusCode, Value) {
        parts(
            self.post("/api/v1/posts", &author.access, json!({ "body": body }))
                .await,
        )
        .await
    }

    /// Creates a post, which must succeed; returns its id.
    pub async fn new_post(&self, author: &TestUser, body: &str) -> String {
        let (status, post) = self.create_post(author, body).await;
        assert_eq!(status, StatusCode::CREATED, "{post}");
        post["id"].as_str().unwrap().to_owned()
    }

    /// One page of `room`'s history as `user` reads it (`query` is empty or
    /// starts with `?`): its items and `next_cursor`.
    pub async fn history(&self, user: &TestUser, room: &str, query: &str) -> (Vec<Value>, Value) {
        let path = format!("/api/v1/rooms/{room}/messages{query}");
        let (status, page) = parts(self.get(&path, &user.access).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        (
            page["items"].as_array().unwrap().clone(),
            page["next_cursor"].clone(),
        )
    }

    /// [`TestApp::history`] as the seqs of the page and `next_cursor`.
    pub async fn history_seqs(
        &self,
        user: &TestUser,
        room: &str,
        query: &str,
    ) -> (Vec<i64>, Value) {
        let (items, next) = self.history(user, room, query).await;
        (
            items.iter().map(|m| m["seq"].as_i64().unwrap()).collect(),
            next,
        )
    }

    /// `room`'s whole history, read forward 200 messages a page.
    pub async fn whole_history(&self, user: &TestUser, room: &str) -> Vec<Value> {
        self.whole_history_in_pages(user, room, 200).await
    }

    /// `room`'s whole history, read forward `page` messages a page (small
    /// pages exercise the cursors).
    pub async fn whole_history_in_pages(
        &self,
        user: &TestUser,
        room: &str,
        page: u32,
    ) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let query = format!("?after_seq={after}&limit={page}");
            let (items, next) = self.history(user, room, &query).await;
            all.extend(items);
            match next.as_str() {
                Some(cursor) => after = cursor.parse().unwrap(),
                None => return all,
            }
        }
    }
}

/// A history item's reactions as `{emoji: (count, me)}`.
pub fn reactions_of(message: &Value) -> BTreeMap<String, (i64, bool)> {
    message["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_owned(),
                (r["count"].as_i64().unwrap(), r["me"].as_bool().unwrap()),
            )
        })
        .collect()
}
