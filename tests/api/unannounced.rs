//! An event committed and never announced: the instance that wrote it died
//! between its commit and its publish on the bus (the crash-convergence
//! run found this under load). Its publisher retries; a live subscriber
//! elsewhere must still get the event, and must not wait for the room's
//! next one to notice the gap.
//!
//! The dead instance is played by a second store on the same database,
//! which commits without telling anyone: exactly what the live instance
//! sees when a peer dies after `COMMIT`.

use crate::support::db::pg_store;
use crate::support::{Backend, TestApp, TestUser, WsClient};
use parley::domain::{ClientId, MessageBody, RoomId, UserId};
use parley::store::postgres::PgStore;
use parley_actors::model::NewEvent;
use parley_actors::ports::MessageLog;
use serde_json::Value;

/// A PostgreSQL instance, and a second store on its database: the peer
/// that commits and dies.
async fn app_and_peer() -> (TestApp, PgStore) {
    let mut url = None;
    let app = TestApp::spawn_with(Backend::Postgres, |s| url = s.database.url.clone()).await;
    let peer = pg_store(&url.expect("a database"), 1).await;
    (app, peer)
}

/// Commits `author`'s message `client_id` through the peer: stored with
/// the next seq, announced to nobody. Returns the seq.
async fn commit_unannounced(peer: &PgStore, room: &str, author: &TestUser, client_id: &str) -> i64 {
    let event = NewEvent::message(
        RoomId::parse(room).unwrap(),
        UserId::parse(&author.id).unwrap(),
        ClientId::parse(client_id).unwrap(),
        MessageBody::parse(&format!("body of {client_id}")).unwrap(),
    );
    let mut appended = peer.append(&[event]).await.expect("the peer commits");
    appended.remove(0).expect("accepted").event().seq.0
}

/// The next `message` frame, skipping presence and typing.
async fn next_message(ws: &mut WsClient) -> Value {
    ws.next_of("message").await
}

#[actix_web::test]
async fn a_retry_answered_as_a_duplicate_brings_the_unannounced_event_to_live_subscribers() {
    let (app, peer) = app_and_peer().await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, None).await;

    let seq = commit_unannounced(&peer, &room, &ada, "lost-ack").await;
    // ada never got her ack (its instance died) and retries here.
    let mut a = app.ws(&ada).await;
    let (ack, _) = a.publish(&room, "body of lost-ack", "lost-ack").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["seq"], seq, "the retry is answered with the original");

    // bob gets it, with no later event to reveal the gap.
    let got = next_message(&mut b).await;
    assert_eq!(
        (&got["seq"], &got["client_id"]),
        (&Value::from(seq), &Value::from("lost-ack"))
    );
    // And only once: the next event follows it directly.
    a.publish(&room, "after", "after").await;
    let next = next_message(&mut b).await;
    assert_eq!(next["seq"], seq + 1, "{next}");
}

#[actix_web::test]
async fn a_subscriber_whose_replay_finds_an_unannounced_event_brings_it_to_the_live_ones() {
    let (app, peer) = app_and_peer().await;
    let [ada, bob, cyd] = app.users(["ada", "bob", "cyd"]).await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut b = app.ws(&bob).await;
    b.subscribe(&room, None).await;

    // ada's instance died after the commit; she never retries.
    let seq = commit_unannounced(&peer, &room, &ada, "orphan").await;
    // cyd subscribes from the start: her replay reads it from the log...
    let mut c = app.ws(&cyd).await;
    c.subscribe(&room, Some(0)).await;
    assert_eq!(next_message(&mut c).await["seq"], seq);
    // ...and so the room learns of it, and bob, live all along, gets it.
    let got = next_message(&mut b).await;
    assert_eq!(got["seq"], seq, "{got}");
}
