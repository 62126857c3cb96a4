//! Who may use a room over the WebSocket, enforced live: private rooms
//! refuse non-members, let them in once added and shut them out the moment
//! they are removed; and notifications reach open sessions as they happen.

use crate::both_backends;
use crate::support::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    a_non_member_is_refused_a_private_room_until_the_owner_adds_them,
    a_removed_member_is_unsubscribed_at_once_and_refused_from_the_next_frame,
    a_followers_session_is_notified_live_of_a_new_post,
    a_mention_in_a_websocket_publish_notifies_the_mentioned_users_session,
);

/// `(author, body)` of each message of a history page.
fn said(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|m| {
            let field = |name: &str| m[name].as_str().unwrap().to_owned();
            (field("author"), field("body"))
        })
        .collect()
}

async fn a_non_member_is_refused_a_private_room_until_the_owner_adds_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "secret", "private").await;
    let mut b = app.ws(&bob).await;

    b.send(json!({"type": "subscribe", "room": room, "ref": "s"}))
        .await;
    let refused = b.next().await;
    assert_eq!(
        (&refused["code"], &refused["ref"]),
        (&json!("forbidden"), &json!("s"))
    );
    let (refused, _) = b.publish(&room, "let me in", "p1").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert!(
        said(&app.history(&ada, &room, "").await.0).is_empty(),
        "nothing stored"
    );

    app.add_member(&ada, &room, &bob.id).await;
    // The same session, refused a moment ago, is let in at once.
    assert_eq!(b.subscribe(&room, None).await["seq"], 0);
    let (ack, _) = b.publish(&room, "thanks", "p2").await;
    assert_eq!(
        (&ack["type"], &ack["seq"]),
        (&json!("ack"), &json!(1)),
        "{ack}"
    );
    assert_eq!(
        said(&app.history(&ada, &room, "").await.0),
        [(bob.id.clone(), "thanks".to_owned())]
    );
}

async fn a_removed_member_is_unsubscribed_at_once_and_refused_from_the_next_frame(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "secret", "private").await;
    app.add_member(&ada, &room, &bob.id).await;
    let mut a = app.ws(&ada).await;
    a.subscribe(&room, None).await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, None).await;
    app.post_message(&ada, &room, "before", "m1").await;
    assert_eq!(a.next_of("message").await["body"], "before");
    assert_eq!(b.next_of("message").await["body"], "before");

    let path = format!("/api/v1/rooms/{room}/members/{}", bob.id);
    let res = app.delete(&path, &ada.access).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let unsubscribed = b.next_of("unsubscribed").await;
    assert_eq!(unsubscribed["room"], room.as_str());
    // Refused at once, though access was checked (and cached) moments ago.
    let (refused, _) = b.publish(&room, "still here?", "m2").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    b.send(json!({"type": "subscribe", "room": room, "ref": "again"}))
        .await;
    assert_eq!(b.next().await["code"], "forbidden");

    app.post_message(&ada, &room, "after", "m3").await;
    assert_eq!(a.next_of("message").await["body"], "after");
    b.send(json!({"type": "ping", "ref": "p"})).await;
    assert_eq!(
        b.next_of("pong").await["ref"],
        "p",
        "no message reached bob"
    );
    let bodies: Vec<String> = said(&app.history(&ada, &room, "").await.0)
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    assert_eq!(bodies, ["before", "after"]);
}

async fn a_followers_session_is_notified_live_of_a_new_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let follow = format!("/api/v1/users/{}/follow", bob.id);
    let res = app
        .call(Method::POST, &follow, Some(&ada.access), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mut a = app.ws(&ada).await;

    let (status, post) = app.create_post(&bob, "fresh thoughts").await;
    assert_eq!(status, StatusCode::CREATED, "{post}");

    let live = a.next_of("notification").await;
    assert_eq!(live["kind"], "new_post");
    assert_eq!(live["payload"]["post_id"], post["id"]);
    assert_eq!(live["payload"]["author"], bob.id.as_str());
    assert!(chrono::DateTime::parse_from_rfc3339(live["ts"].as_str().unwrap()).is_ok());
    let stored = app.notifications(&ada, "").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (&stored[0]["id"], &stored[0]["kind"]),
        (&live["id"], &live["kind"])
    );
}

async fn a_mention_in_a_websocket_publish_notifies_the_mentioned_users_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "general", "public").await;
    // bob is connected but not subscribed to the room.
    let mut b = app.ws(&bob).await;
    let mut a = app.ws(&ada).await;

    let (ack, _) = a.publish(&room, "hi @bob, look at this", "m1").await;
    assert_eq!(ack["type"], "ack", "{ack}");

    let live = b.next_of("notification").await;
    assert_eq!(live["kind"], "mention");
    let payload = &live["payload"];
    assert_eq!(
        (&payload["room"], &payload["message_id"]),
        (&json!(room), &ack["id"])
    );
    assert_eq!(
        (&payload["seq"], &payload["author"]),
        (&ack["seq"], &json!(ada.id))
    );
    let stored = app.notifications(&bob, "").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        (&stored[0]["id"], &stored[0]["kind"]),
        (&live["id"], &live["kind"])
    );
}
