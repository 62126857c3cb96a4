//! parley on a real Redis Cluster (`redis-cluster://`): the bus uses
//! sharded pub/sub, and delivery across instances survives a master's
//! failover and a slot's migration with no acked message lost or repeated;
//! presence and the shared rate limit still hold afterwards. With
//! `PARLEY_REDIS_CLUSTER_PUBSUB=classic` the bus uses classic channels on
//! the cluster, and messages still cross instances.

use crate::support::cluster::Cluster;
use crate::support::redis_cluster::RedisCluster;
use crate::support::{TestUser, WsClient, eventually, metric};
use futures_util::future::join_all;
use reqwest::StatusCode;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::time::Duration;

/// Messages each publisher still sends once both faults are over: they
/// reach the other instances only through the slots' new owners.
const AFTER_FAULTS: usize = 10;
/// How long the test waits for traffic between its steps.
const TRAFFIC: Duration = Duration::from_secs(20);

/// A room and the hash slot of its bus channel.
struct Room {
    id: String,
    slot: u16,
}

#[actix_web::test]
async fn every_subscriber_gets_every_acked_message_once_in_order_through_a_failover_and_a_slot_migration()
 {
    let mut redis = RedisCluster::start().await;
    let cluster = Cluster::start(
        3,
        &redis.url(),
        &[
            ("PARLEY_RATE_API_PER_MIN", "10"),
            ("PARLEY_BREAKER_RECOVERY_S", "1"),
        ],
    )
    .await;
    let owner = cluster.lb.register("owner").await;
    // One room loses its master, the other's slot migrates: on different
    // masters, so each fault hits one of them.
    let (busy, moving) = rooms_on_two_masters(&cluster, &redis, &owner).await;
    let rooms = [&busy, &moving];

    // On every instance, a subscriber and a publisher in each room (public
    // rooms: a late visitor subscribes without a membership below).
    let mut subscribers = Vec::new();
    let mut publishers = Vec::new();
    for room in rooms {
        for node in &cluster.nodes {
            let mut ws = node.app.ws(&owner).await;
            ws.subscribe(&room.id, None).await;
            subscribers.push((room.id.clone(), ws));
            publishers.push((room.id.clone(), node.app.ws(&owner).await));
        }
    }

    // Each room's channel is a shard channel on its slot's master, one
    // subscription per instance, and nobody subscribes to it classically.
    for room in rooms {
        let channel = format!("{}room:{}", cluster.prefix, room.id);
        assert_eq!(redis.subscribers(&channel).await, (3, 0));
    }

    let faults_over = Cell::new(false);
    let acked: RefCell<Vec<(String, String)>> = RefCell::new(Vec::new());
    let publishing = async {
        let each = publishers
            .iter_mut()
            .enumerate()
            .map(|(p, (room, ws))| publish_until_over(ws, room, p, &faults_over, &acked));
        join_all(each).await;
        // The last message of each room: subscribers read up to it.
        for first_of_room in [0, cluster.nodes.len()] {
            let (room, ws) = &mut publishers[first_of_room];
            let (ack, _) = ws.publish(room, "end", &format!("end-{room}")).await;
            assert_eq!(ack["type"], "ack", "{ack}");
            acked
                .borrow_mut()
                .push((room.clone(), format!("end-{room}")));
        }
    };
    let faults = async {
        wait_for_acks(&acked, 30).await;
        let promoted = redis.kill_master_of(busy.slot).await;
        let so_far = acked.borrow().len();
        wait_for_acks(&acked, so_far + 30).await;
        let new_owner = redis.migrate_slot(moving.slot).await;
        faults_over.set(true);
        (promoted, new_owner)
    };
    let reading = join_all(
        subscribers
            .iter_mut()
            .map(|(room, ws)| read_until_end(ws, room)),
    );
    let (_, (promoted, new_owner), received) = tokio::join!(publishing, faults, reading);
    assert_eq!(redis.master_of(busy.slot).await, promoted);
    assert_eq!(redis.master_of(moving.slot).await, new_owner);
    // Every instance subscribed again on the new owners.
    for room in rooms {
        let channel = format!("{}room:{}", cluster.prefix, room.id);
        assert_eq!(redis.subscribers(&channel).await, (3, 0));
    }

    let acked = acked.into_inner();
    for ((room, _), got) in subscribers.iter().zip(received) {
        let expected: BTreeSet<&str> = acked
            .iter()
            .filter(|(r, _)| r == room)
            .map(|(_, id)| id.as_str())
            .collect();
        let seqs: Vec<i64> = got.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=expected.len() as i64).collect::<Vec<_>>(),
            "every message once, in seq order"
        );
        let ids: BTreeSet<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids, expected, "every acked message, nothing else");
    }

    // Presence crosses instances through the new owners too: a user
    // joining on one instance is seen online on another.
    let late = cluster.lb.register("late").await;
    let mut late_ws = cluster.nodes[1].app.ws(&late).await;
    late_ws.subscribe(&busy.id, None).await;
    let (_, on_node0) = &mut subscribers[0];
    let online = on_node0.next_of("presence").await;
    assert_eq!(
        (online["user"].as_str(), online["state"].as_str()),
        (Some(late.id.as_str()), Some("online"))
    );

    // Every instance saw the slot owners change and says so.
    for node in &cluster.nodes {
        let metrics = node.app.metrics_text().await;
        let moved = metric(
            &metrics,
            "parley_bus_resubscribes_total",
            &[r#"reason="slots_moved""#],
        );
        assert!(moved >= Some(1.0), "{metrics}");
        let stats = node.app.admin_json("/health/redis-stats").await;
        assert_eq!(stats["status"], "ok", "{stats}");
        assert_eq!(stats["cluster"]["state"], "ok", "{stats}");
        assert_eq!(stats["cluster"]["masters"], 3, "{stats}");
        assert!(
            stats["cluster"]["shard_channels"].as_u64() >= Some(2),
            "{stats}"
        );
    }

    // The shared rate limit counts in total across the instances again once
    // the Redis breaker, opened by the failover, lets calls through.
    for node in &cluster.nodes {
        eventually("the Redis breaker recovers", TRAFFIC, || async {
            let breaker = node.app.breaker("redis").await;
            (breaker["state"] != "open" || breaker["retry_after_ms"] == 0).then_some(())
        })
        .await;
    }
    let counted = cluster.lb.register("counted").await;
    let mut allowed = 0;
    for _ in 0..15 {
        let res = cluster.lb.get("/api/v1/users/me", &counted.access).await;
        allowed += usize::from(res.status() == StatusCode::OK);
    }
    // 10 per minute in total; one more may have refilled on a slow machine.
    assert!((10..=11).contains(&allowed), "{allowed} allowed");
}

/// `classic` mode, kept for measurement and for clusters without sharded
/// pub/sub: the room's channel is a classic channel (no shard
/// subscriber), and a message published on one instance reaches a
/// subscriber on the other.
#[actix_web::test]
async fn classic_pubsub_on_a_cluster_still_delivers_across_instances() {
    let redis = RedisCluster::start().await;
    let cluster = Cluster::start(
        2,
        &redis.url(),
        &[("PARLEY_REDIS_CLUSTER_PUBSUB", "classic")],
    )
    .await;
    let owner = cluster.lb.register("owner").await;
    let room = cluster.lb.create_room(&owner, "classic", "public").await;
    let mut subscriber = cluster.nodes[0].app.ws(&owner).await;
    subscriber.subscribe(&room, None).await;
    let mut publisher = cluster.nodes[1].app.ws(&owner).await;
    publisher.subscribe(&room, None).await;

    let channel = format!("{}room:{room}", cluster.prefix);
    assert_eq!(redis.subscribers(&channel).await, (0, 2));

    let (ack, _) = publisher.publish(&room, "across", "classic-1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let message = subscriber.next_of("message").await;
    assert_eq!(message["client_id"], "classic-1", "{message}");
    let stats = cluster.nodes[0].app.admin_json("/health/redis-stats").await;
    assert_eq!(stats["cluster"]["shard_channels"], 0, "{stats}");
}

/// Creates rooms until two have their channels on different masters.
async fn rooms_on_two_masters(
    cluster: &Cluster,
    redis: &RedisCluster,
    owner: &TestUser,
) -> (Room, Room) {
    let mut first: Option<(Room, u16)> = None;
    for attempt in 0..8 {
        let id = cluster
            .lb
            .create_room(owner, &format!("room{attempt}"), "public")
            .await;
        let slot = redis.slot_of(&format!("{}room:{id}", cluster.prefix)).await;
        let master = redis.master_of(slot).await;
        match first.take() {
            None => first = Some((Room { id, slot }, master)),
            Some((room, m)) if m != master => return (room, Room { id, slot }),
            Some(kept) => first = Some(kept),
        }
    }
    panic!("eight rooms on one master of three");
}

/// Publishes one message every few milliseconds until the faults are over,
/// then [`AFTER_FAULTS`] more; every publish must be acked.
async fn publish_until_over(
    ws: &mut WsClient,
    room: &str,
    publisher: usize,
    faults_over: &Cell<bool>,
    acked: &RefCell<Vec<(String, String)>>,
) {
    // Paced: a steady stream through the faults, not a flood that buries
    // two shared cores.
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    let mut after = 0;
    for i in 0.. {
        if faults_over.get() {
            after += 1;
            if after > AFTER_FAULTS {
                return;
            }
        }
        pace.tick().await;
        let client_id = format!("p{publisher}-{i}");
        let (ack, _) = ws.publish(room, "m", &client_id).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.borrow_mut().push((room.to_owned(), client_id));
    }
}

async fn wait_for_acks(acked: &RefCell<Vec<(String, String)>>, count: usize) {
    eventually("publishes are acked", TRAFFIC, || async {
        (acked.borrow().len() >= count).then_some(())
    })
    .await;
}

/// Reads `message` frames up to the room's `end` message; returns their
/// seqs and client ids in arrival order.
async fn read_until_end(ws: &mut WsClient, room: &str) -> Vec<(i64, String)> {
    let end = format!("end-{room}");
    let mut got = Vec::new();
    loop {
        let frame = ws.next().await;
        if frame["type"] != "message" {
            continue;
        }
        let id = frame["client_id"].as_str().unwrap().to_owned();
        let last = id == end;
        got.push((frame["seq"].as_i64().unwrap(), id));
        if last {
            return got;
        }
    }
}
