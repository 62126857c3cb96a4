//! Several instances behind a round-robin load balancer, bridged by Redis:
//! clients cannot tell which instance they are on.

use crate::support::cluster::{Cluster, PrivateRedis, PrivateSentinel, redis_url};
use crate::support::{WsClient, eventually};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Reads `message` frames until `count` arrived; returns their seqs and
/// client ids in arrival order (other frame types are skipped).
async fn collect_messages(ws: &mut WsClient, count: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let frame = ws.next().await;
        if frame["type"] == "message" {
            got.push((
                frame["seq"].as_i64().unwrap(),
                frame["client_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    got
}

#[actix_web::test]
async fn every_message_reaches_every_subscriber_once_in_order_across_three_instances() {
    let cluster = Cluster::start(3, &redis_url(), &[]).await;
    let lb = &cluster.lb;
    let owner = lb.register("owner").await;
    let room = lb.create_room(&owner, "everyone", "private").await;
    let mut publishers_users = Vec::new();
    for i in 0..3 {
        let user = lb.register(&format!("writer{i}")).await;
        lb.add_member(&owner, &room, &user.id).await;
        publishers_users.push(user);
    }

    // Six subscribers through the load balancer: round-robin puts two on
    // each instance.
    let mut subscribers = Vec::new();
    for _ in 0..6 {
        let mut ws = lb.ws(&owner).await;
        ws.subscribe(&room, None).await;
        subscribers.push(ws);
    }
    let instances: BTreeSet<String> = subscribers
        .iter()
        .map(|ws| ws.hello["instance"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(instances.len(), 3, "subscribers spread over every instance");

    // Three publishers, one per instance, publishing at the same time.
    const EACH: usize = 30;
    let mut publishers = Vec::new();
    for user in &publishers_users {
        publishers.push(lb.ws(user).await);
    }
    let publishing = publishers.iter_mut().enumerate().map(|(p, ws)| {
        let room = room.clone();
        async move {
            for i in 0..EACH {
                let (ack, _) = ws
                    .publish(&room, &format!("p{p} m{i}"), &format!("p{p}-{i}"))
                    .await;
                assert_eq!(ack["type"], "ack", "{ack}");
            }
        }
    });
    join_all(publishing).await;

    let total = EACH * 3;
    let expected_ids: BTreeSet<String> = (0..3)
        .flat_map(|p| (0..EACH).map(move |i| format!("p{p}-{i}")))
        .collect();
    for ws in &mut subscribers {
        let got = collect_messages(ws, total).await;
        let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (1..=total as i64).collect::<Vec<_>>(),
            "in order, no gap, no duplicate"
        );
        let ids: BTreeSet<String> = got.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, expected_ids);
    }
    // No late duplicate: the next frame each subscriber sees is the next seq.
    let (ack, _) = publishers[0].publish(&room, "last", "last").await;
    assert_eq!(ack["seq"], total as i64 + 1);
    for ws in &mut subscribers {
        let got = collect_messages(ws, 1).await;
        assert_eq!(got[0].0, total as i64 + 1);
    }
}

#[actix_web::test]
async fn presence_typing_and_notifications_cross_instances() {
    let cluster = Cluster::start(2, &redis_url(), &[]).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let ada = a.register("ada").await;
    let bob = b.register("bob").await;
    let room = a.create_room(&ada, "pair", "private").await;
    a.add_member(&ada, &room, &bob.id).await;

    let mut ada_ws = a.ws(&ada).await;
    let mut bob_ws = b.ws(&bob).await;
    assert_ne!(ada_ws.hello["instance"], bob_ws.hello["instance"]);
    ada_ws.subscribe(&room, None).await;
    bob_ws.subscribe(&room, None).await;

    let online = next_type(&mut ada_ws, "presence").await;
    assert_eq!(
        (online["user"].as_str(), online["state"].as_str()),
        (Some(bob.id.as_str()), Some("online"))
    );

    bob_ws.send(json!({"type": "typing", "room": room})).await;
    let typing = next_type(&mut ada_ws, "typing").await;
    assert_eq!(typing["user"], bob.id.as_str());

    // A follow on instance b notifies ada, whose session is on instance a.
    b.follow(&bob, &ada).await;
    let notification = next_type(&mut ada_ws, "notification").await;
    assert_eq!(notification["kind"], "follow");

    bob_ws.close().await;
    let offline = next_type(&mut ada_ws, "presence").await;
    assert_eq!(
        (offline["user"].as_str(), offline["state"].as_str()),
        (Some(bob.id.as_str()), Some("offline"))
    );
}

/// The next frame of `kind`, skipping the others.
async fn next_type(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[actix_web::test]
async fn a_rate_limit_holds_in_total_across_instances() {
    let cluster = Cluster::start(3, &redis_url(), &[("PARLEY_RATE_API_PER_MIN", "10")]).await;
    let lb = &cluster.lb;
    let user = lb.register("counted").await;
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(lb.get("/api/v1/users/me", &user.access).await.status());
    }
    let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // 10 per minute in total; one more may have refilled if the machine is slow.
    assert!((10..=11).contains(&allowed), "{statuses:?}");
    assert_eq!(allowed + refused, 15, "{statuses:?}");
    assert_eq!(statuses[..10], [StatusCode::OK; 10]);
}

#[actix_web::test]
async fn delivery_survives_a_redis_restart_with_no_gap() {
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start(2, &redis.url(), &[]).await;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.app.register("owner").await;
    let room = a.app.create_room(&owner, "outage", "private").await;

    let mut local = a.app.ws(&owner).await; // same instance as the publisher
    let mut remote = b.app.ws(&owner).await;
    local.subscribe(&room, None).await;
    remote.subscribe(&room, None).await;
    let mut publisher = a.app.ws(&owner).await;

    publish_n(&mut publisher, &room, 0..10).await;
    assert_eq!(collect_messages(&mut remote, 10).await.len(), 10);

    redis.stop().await;
    // Local delivery and acks go on while Redis is gone; readiness says
    // degraded but stays 200.
    publish_n(&mut publisher, &room, 10..20).await;
    let local_seqs: Vec<i64> = collect_messages(&mut local, 20)
        .await
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(local_seqs, (1..=20).collect::<Vec<_>>());
    // Readiness reuses a check up to 1 s old: it turns degraded within
    // that, and is 200 all along.
    eventually(
        "readiness says degraded",
        Duration::from_secs(10),
        || async {
            let ready = a.app.client.get(a.app.url("/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), StatusCode::OK);
            let body: Value = ready.json().await.unwrap();
            (body["redis"]["status"] == "degraded").then_some(())
        },
    )
    .await;

    redis.restart().await;
    publish_n(&mut publisher, &room, 20..30).await;
    // The remote subscriber gets everything, the outage's messages filled
    // from the database, in order and once.
    let remote_seqs: Vec<i64> = collect_messages(&mut remote, 20)
        .await
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(remote_seqs, (11..=30).collect::<Vec<_>>());
}

async fn publish_n(publisher: &mut WsClient, room: &str, ids: std::ops::Range<usize>) {
    for i in ids {
        let (ack, _) = publisher.publish(room, "m", &format!("c{i}")).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
}

#[actix_web::test]
async fn a_sentinel_failover_mid_traffic_loses_no_acked_message() {
    let mut sentinel = PrivateSentinel::start().await;
    let cluster = Cluster::start(2, &sentinel.url(), &[]).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let owner = a.register("owner").await;
    let room = a.create_room(&owner, "failover", "private").await;
    let mut remote = b.ws(&owner).await;
    remote.subscribe(&room, None).await;
    let mut publisher = a.ws(&owner).await;

    publish_n(&mut publisher, &room, 0..10).await;
    assert_eq!(collect_messages(&mut remote, 10).await.len(), 10);
    // Publishing goes on while the master dies and the replica takes over:
    // every publish is acked (the database has it) ...
    let failing_over = async {
        sentinel.fail_over().await;
    };
    let publishing = publish_n(&mut publisher, &room, 10..20);
    tokio::join!(failing_over, publishing);
    publish_n(&mut publisher, &room, 20..30).await;
    // ... and reaches the other instance's subscriber, once and in order.
    let seqs: Vec<i64> = collect_messages(&mut remote, 20)
        .await
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(seqs, (11..=30).collect::<Vec<_>>());
}

/// A commit whose bus message never arrives (its instance died between
/// commit and publish, or Redis dropped it) still reaches subscribers on
/// other instances: each room asks the log for its head every
/// `PARLEY_BUS_RESYNC_S` and fills the gap, even if the room stays quiet.
#[actix_web::test]
async fn a_commit_whose_bus_message_was_lost_still_reaches_other_instances() {
    let cluster = Cluster::start(1, &redis_url(), &[("PARLEY_BUS_RESYNC_S", "1")]).await;
    let node = &cluster.nodes[0].app;
    // Its bus messages go to a prefix nobody listens to: all of them lost.
    let prefix = crate::support::cluster::redis_prefix();
    let outsider = cluster
        .start_outsider(&[("PARLEY_REDIS_PREFIX", prefix.as_str())])
        .await;
    let ada = node.register("ada").await;
    let bob = node.register("bob").await;
    let room = node.create_room(&ada, "quiet", "public").await;
    let mut bob_ws = node.ws(&bob).await;
    bob_ws.subscribe(&room, Some(0)).await;

    let (status, ack) = outsider
        .app
        .post_message(&ada, &room, "lost on the bus", "m1")
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{ack}");
    let message = next_type(&mut bob_ws, "message").await;
    assert_eq!(
        (message["seq"].as_i64(), message["body"].as_str()),
        (Some(1), Some("lost on the bus"))
    );
}
