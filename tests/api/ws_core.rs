//! The WebSocket protocol end to end: hello, subscribe, publish → ack →
//! message, idempotency, replay with `since`, typing, presence, ping.

use crate::both_backends;
use crate::support::{Backend, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

both_backends!(
    a_publish_is_acked_and_delivered_to_every_subscriber_in_seq_order,
    a_repeated_client_id_gets_the_original_ack_and_no_second_delivery,
    subscribing_with_since_replays_the_backlog_then_continues_live,
    frames_sent_before_hello_are_answered_before_an_oversized_frame_closes,
);

async fn a_publish_is_acked_and_delivered_to_every_subscriber_in_seq_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    let mut b = app.ws(&bob).await;
    assert_eq!(a.hello["user"], ada.id.as_str());
    assert_eq!(a.hello["instance"], "test-instance");
    assert!(a.hello["heartbeat_ms"].as_u64().unwrap() > 0);
    assert_eq!(a.subscribe(&room, None).await["seq"], 0);
    let subscribed = b.subscribe(&room, None).await;
    assert_eq!(subscribed["ref"], "sub");

    for i in 1..=5 {
        let (ack, _) = a
            .publish(&room, &format!("hello {i}"), &format!("c{i}"))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["seq"], i);
        assert_eq!(ack["client_id"], format!("c{i}"));
    }
    for i in 1..=5 {
        let m = b.next_of("message").await;
        assert_eq!(m["seq"], i);
        assert_eq!(m["body"], format!("hello {i}"));
        assert_eq!(m["author"], ada.id.as_str());
        assert_eq!(m["room"], room.as_str());
        assert!(chrono::DateTime::parse_from_rfc3339(m["ts"].as_str().unwrap()).is_ok());
    }
    // REST publishes reach WebSocket subscribers too.
    let (status, ack) = app.post_message(&bob, &room, "from rest", "r1").await;
    assert_eq!(status, 201);
    assert_eq!(ack["seq"], 6);
    assert_eq!(b.next_of("message").await["body"], "from rest");
}

async fn a_repeated_client_id_gets_the_original_ack_and_no_second_delivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    a.subscribe(&room, None).await;
    let (first, before_ack) = a.publish(&room, "once", "same").await;
    // Delivery precedes the ack, so the own message may come first.
    let m = match before_ack.into_iter().find(|f| f["type"] == "message") {
        Some(m) => m,
        None => a.next_of("message").await,
    };
    assert_eq!(m["seq"], first["seq"]);
    let (again, _) = a.publish(&room, "once", "same").await;
    assert_eq!(again["type"], "ack");
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["id"], first["id"]);
    // A later distinct publish is the next frame: nothing was delivered twice.
    let (_, before_ack) = a.publish(&room, "twice?", "other").await;
    let next = match before_ack.into_iter().find(|f| f["type"] == "message") {
        Some(m) => m,
        None => a.next_of("message").await,
    };
    assert_eq!(next["client_id"], "other");
    assert_eq!(next["seq"], 2);
    // And a retry over REST, on another path, answers the same.
    let (status, ack) = app.post_message(&ada, &room, "once", "same").await;
    assert_eq!(status, 200);
    assert_eq!(ack["id"], first["id"]);
}

async fn subscribing_with_since_replays_the_backlog_then_continues_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    for i in 1..=30 {
        app.post_message(&ada, &room, &format!("m{i}"), &format!("c{i}"))
            .await;
    }
    let mut late = app.ws(&ada).await;
    let subscribed = late.subscribe(&room, Some(10)).await;
    assert_eq!(subscribed["seq"], 30);
    for expected in 11..=30 {
        assert_eq!(late.next_of("message").await["seq"], expected);
    }
    app.post_message(&ada, &room, "live", "c31").await;
    let live = late.next_of("message").await;
    assert_eq!(live["seq"], 31);
    assert_eq!(live["body"], "live");
}

#[actix_web::test]
async fn replay_during_live_traffic_has_no_gap_and_no_duplicate() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "busy", "public").await;
    for i in 1..=200 {
        app.post_message(&ada, &room, "backlog", &format!("b{i}"))
            .await;
    }
    // A publisher keeps writing while a late subscriber replays from 0.
    let mut publisher = app.ws(&ada).await;
    let mut reader = app.ws(&ada).await;
    let total = 400;
    let room_for_publisher = room.clone();
    let writing = actix_web::rt::spawn(async move {
        for i in 1..=200 {
            let (ack, _) = publisher
                .publish(&room_for_publisher, "live", &format!("l{i}"))
                .await;
            assert_eq!(ack["type"], "ack");
        }
        publisher
    });
    reader.subscribe(&room, Some(0)).await;
    let mut seqs = Vec::new();
    while seqs.len() < total {
        seqs.push(reader.next_of("message").await["seq"].as_i64().unwrap());
    }
    writing.await.unwrap();
    let expected: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(seqs, expected);
}

#[actix_web::test]
async fn ping_is_answered_with_the_same_ref_and_typing_reaches_others_only() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    a.send(json!({"type": "ping", "ref": "p-1"})).await;
    let pong = a.next().await;
    assert_eq!(pong, json!({"type": "pong", "ref": "p-1"}));

    let mut b = app.ws(&bob).await;
    a.subscribe(&room, None).await;
    b.subscribe(&room, None).await;
    // ada learns bob came online.
    let presence = a.next_of("presence").await;
    assert_eq!(presence["user"], bob.id.as_str());
    assert_eq!(presence["state"], "online");

    b.send(json!({"type": "typing", "room": room})).await;
    let typing = a.next_of("typing").await;
    assert_eq!(typing["user"], bob.id.as_str());
    assert_eq!(typing["room"], room.as_str());
    // bob gets no echo of his own typing: his next frame is the pong.
    b.send(json!({"type": "ping", "ref": "after"})).await;
    assert_eq!(b.next_of("pong").await["ref"], "after");

    // bob's last session leaves: ada sees him offline.
    b.close().await;
    let offline = a.next_of("presence").await;
    assert_eq!(offline["user"], bob.id.as_str());
    assert_eq!(offline["state"], "offline");
}

#[actix_web::test]
async fn unsubscribe_stops_delivery() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    a.subscribe(&room, None).await;
    a.send(json!({"type": "unsubscribe", "room": room, "ref": "u"}))
        .await;
    let unsubscribed = a.next_of("unsubscribed").await;
    assert_eq!(unsubscribed["ref"], "u");
    app.post_message(&ada, &room, "not for you", "x").await;
    a.send(json!({"type": "ping", "ref": "p"})).await;
    assert_eq!(
        a.next().await["type"],
        "pong",
        "no message arrived after unsubscribing"
    );
}

#[actix_web::test]
async fn a_late_subscriber_learns_who_is_already_here() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut a = app.ws(&ada).await;
    a.subscribe(&room, None).await;
    let mut b = app.ws(&bob).await;
    b.send(json!({"type": "subscribe", "room": room})).await;
    assert_eq!(b.next().await["type"], "subscribed");
    let here = b.next().await;
    assert_eq!(here["type"], "presence", "{here}");
    assert_eq!(here["user"], ada.id.as_str());
    assert_eq!(here["state"], "online");
}

#[actix_web::test]
async fn a_since_beyond_the_latest_seq_still_gets_live_messages() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    app.post_message(&ada, &room, "one", "c1").await;
    let mut a = app.ws(&ada).await;
    assert_eq!(a.subscribe(&room, Some(1000)).await["seq"], 1);
    app.post_message(&ada, &room, "two", "c2").await;
    assert_eq!(a.next_of("message").await["seq"], 2);
}

/// A client that writes the moment the upgrade completes, without waiting
/// for `hello`, and ends with a frame over the size limit. Everything it
/// sent before that frame is answered, in order, before the 1009 close, even
/// when all of it reaches the server in one read.
async fn frames_sent_before_hello_are_answered_before_an_oversized_frame_closes(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ada.access).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let early = 5;
    // `feed` buffers and `flush` writes once, so the server reads the
    // pings and the oversized frame together.
    for i in 0..early {
        let ping = json!({"type": "ping", "ref": format!("early-{i}")});
        socket.feed(Message::text(ping.to_string())).await.unwrap();
    }
    let oversized = json!({"type": "ping", "ref": "x".repeat(5000)});
    socket
        .feed(Message::text(oversized.to_string()))
        .await
        .unwrap();
    socket.flush().await.unwrap();

    let mut frames = Vec::new();
    let close = loop {
        let next = tokio::time::timeout(crate::support::FRAME_TIMEOUT, socket.next())
            .await
            .expect("a frame within the timeout");
        match next {
            Some(Ok(Message::Text(text))) => {
                frames.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("the server closes with a close frame, got {other:?} after {frames:?}"),
        }
    };
    assert_eq!(
        frames.len(),
        early + 1,
        "hello and one pong per ping: {frames:?}"
    );
    assert_eq!(frames[0]["type"], "hello", "{frames:?}");
    assert_eq!(
        frames[0]["protocol"], "1.1",
        "the contract version: {frames:?}"
    );
    for (i, pong) in frames[1..].iter().enumerate() {
        assert_eq!(*pong, json!({"type": "pong", "ref": format!("early-{i}")}));
    }
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1009));
}
