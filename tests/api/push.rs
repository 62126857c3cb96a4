//! Web Push (contract 1.1, section 6.3): a notification is seen in the app
//! or pushed once to each of its user's subscriptions, never once read.
//! The push service is the tests' own (`support::push_service`): it
//! decrypts every payload with the subscription's private key and checks
//! every VAPID token against the server's public key.

use crate::both_backends;
use crate::support::cluster::{Cluster, PrivateRedis, redis_url};
use crate::support::metrics::labelled;
use crate::support::push_service::{Answer, PushService, TestSubscription};
use crate::support::{Backend, TestApp, TestUser, assert_problem, eventually, metric, parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    an_offline_user_gets_each_notification_once_per_subscription,
    a_notification_read_before_the_delay_is_never_pushed,
    a_push_refused_with_500_is_retried_and_delivered_once,
    a_subscription_the_push_service_calls_gone_is_removed,
    subscriptions_are_validated_idempotent_and_private_to_their_user,
);

/// Short timings: a push is due 300 ms after its notification.
async fn spawn(backend: Backend, push: &PushService) -> TestApp {
    let allow = push.allow_host();
    let app = TestApp::spawn_with(backend, |s| {
        s.push.delay_ms = 300;
        s.push.allow_hosts = vec![allow];
        s.push.poll_ms = 50;
        s.push.retry_base_ms = 100;
        s.push.lease_ms = 3_000;
    })
    .await;
    push.trust(&vapid_key(&app).await);
    app
}

async fn vapid_key(app: &TestApp) -> String {
    let body = app.get_json("/api/v1/push/vapid-public-key").await;
    body["key"].as_str().unwrap().to_owned()
}

/// Subscribes `user` with `subscription`; returns its id.
async fn subscribe(app: &TestApp, user: &TestUser, subscription: &TestSubscription) -> String {
    let res = app
        .post(
            "/api/v1/push/subscriptions",
            &user.access,
            subscription.body.clone(),
        )
        .await;
    let (status, body) = parts(res).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `author` mentions `user` in `room`: one `mention` notification.
async fn mention(app: &TestApp, author: &TestUser, room: &str, user: &TestUser, n: u32) {
    let text = format!("@{} look at this ({n})", user.username);
    let (status, body) = app
        .post_message(author, room, &text, &format!("m{n}"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// `user`'s notifications as REST shows them, by id.
async fn notifications_by_id(app: &TestApp, user: &TestUser) -> Vec<(String, Value)> {
    let items = app.notifications(user, "").await;
    items
        .into_iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n))
        .collect()
}

/// A push's outcome counted on `app`'s metrics.
async fn sends(app: &TestApp, outcome: &str) -> f64 {
    let text = app.metrics_text().await;
    metric(
        &text,
        "parley_push_sends_total",
        &[&format!("outcome=\"{outcome}\"")],
    )
    .unwrap_or(0.0)
}

async fn await_sends(app: &TestApp, outcome: &str, n: f64) {
    eventually(outcome, Duration::from_secs(20), || async {
        (sends(app, outcome).await >= n).then_some(())
    })
    .await;
}

async fn an_offline_user_gets_each_notification_once_per_subscription(backend: Backend) {
    let push = PushService::start().await;
    let app = spawn(backend, &push).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let (phone, laptop) = (push.subscription(), push.subscription());
    subscribe(&app, &bob, &phone).await;
    subscribe(&app, &bob, &laptop).await;
    let room = app.create_room(&ada, "general", "public").await;

    mention(&app, &ada, &room, &bob, 1).await;
    mention(&app, &ada, &room, &bob, 2).await;
    // Ada has no subscription: her notifications cost nothing and go nowhere.
    mention(&app, &bob, &room, &ada, 3).await;

    let stored = notifications_by_id(&app, &bob).await;
    assert_eq!(stored.len(), 2);
    for device in [&phone, &laptop] {
        let delivered = push.await_delivered(device, 2).await;
        let mut ids: Vec<&str> = delivered
            .iter()
            .map(|d| d.message["id"].as_str().unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            2,
            "each notification once per device: {delivered:?}"
        );
        for d in &delivered {
            let (_, rest) = stored
                .iter()
                .find(|(id, _)| d.message["id"] == id.as_str())
                .expect("a stored notification");
            // The payload as the contract fixes it, and as REST shows it.
            assert_eq!(d.message["kind"], "mention");
            assert_eq!(d.message["kind"], rest["kind"]);
            assert_eq!(d.message["payload"], rest["payload"]);
            assert_eq!(d.message["ts"], rest["ts"]);
            assert!(
                d.message["unread"].as_i64().unwrap() >= 1,
                "{:?}",
                d.message
            );
            assert_eq!(d.urgency, "high");
            assert_eq!(d.ttl, "86400");
        }
    }
    // A later notification's pushes come after any duplicate of the earlier
    // ones would have: still once each.
    mention(&app, &ada, &room, &bob, 4).await;
    push.await_delivered(&phone, 3).await;
    push.await_delivered(&laptop, 3).await;
    assert_eq!(push.all_requests(), 6);
    await_sends(&app, "delivered", 6.0).await;
}

async fn a_notification_read_before_the_delay_is_never_pushed(backend: Backend) {
    let push = PushService::start().await;
    let allow = push.allow_host();
    // Long enough to read it first, whatever the machine's load.
    let app = TestApp::spawn_with(backend, |s| {
        s.push.delay_ms = 1_500;
        s.push.allow_hosts = vec![allow];
        s.push.poll_ms = 50;
    })
    .await;
    push.trust(&vapid_key(&app).await);
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let phone = push.subscription();
    subscribe(&app, &bob, &phone).await;
    let room = app.create_room(&ada, "general", "public").await;

    mention(&app, &ada, &room, &bob, 1).await;
    let (id, _) = eventually("the notification", Duration::from_secs(5), || async {
        notifications_by_id(&app, &bob).await.into_iter().next()
    })
    .await;
    let res = app
        .post(
            &format!("/api/v1/notifications/{id}/read"),
            &bob.access,
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    await_sends(&app, "skipped_read", 1.0).await;
    assert_eq!(push.all_requests(), 0);
    // Unread ones still go out.
    mention(&app, &ada, &room, &bob, 2).await;
    let delivered = push.await_delivered(&phone, 1).await;
    assert_ne!(delivered[0].message["id"], id.as_str());
    assert_eq!(delivered[0].message["unread"], 1);
}

async fn a_push_refused_with_500_is_retried_and_delivered_once(backend: Backend) {
    let push = PushService::start().await;
    let app = spawn(backend, &push).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let phone = push.subscription();
    push.script(
        &phone,
        &[Answer::Status(500, None), Answer::Status(429, Some(0))],
    );
    subscribe(&app, &bob, &phone).await;
    let room = app.create_room(&ada, "general", "public").await;

    mention(&app, &ada, &room, &bob, 1).await;
    let delivered = push.await_delivered(&phone, 1).await;
    assert_eq!(delivered[0].message["kind"], "mention");
    assert_eq!(push.requests(&phone), 3);
    assert_eq!(sends(&app, "retried").await, 2.0);
    await_sends(&app, "delivered", 1.0).await;
    // Nothing more is pending: the next notification is the next request.
    mention(&app, &ada, &room, &bob, 2).await;
    push.await_delivered(&phone, 2).await;
    assert_eq!(push.requests(&phone), 4);
}

async fn a_subscription_the_push_service_calls_gone_is_removed(backend: Backend) {
    let push = PushService::start().await;
    let app = spawn(backend, &push).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let (old, new) = (push.subscription(), push.subscription());
    push.script(&old, &[Answer::Status(410, None)]);
    let old_id = subscribe(&app, &bob, &old).await;
    subscribe(&app, &bob, &new).await;
    let room = app.create_room(&ada, "general", "public").await;

    mention(&app, &ada, &room, &bob, 1).await;
    push.await_delivered(&new, 1).await;
    await_sends(&app, "gone", 1.0).await;
    let text = app.metrics_text().await;
    assert_eq!(
        labelled(
            &text,
            "parley_push_subscriptions_removed_total",
            "reason=\"gone\""
        ),
        1.0
    );
    // It is gone for its owner too, and is never sent to again.
    let res = app
        .delete(&format!("/api/v1/push/subscriptions/{old_id}"), &bob.access)
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    mention(&app, &ada, &room, &bob, 2).await;
    push.await_delivered(&new, 2).await;
    assert_eq!(push.requests(&old), 1);
}

async fn subscriptions_are_validated_idempotent_and_private_to_their_user(backend: Backend) {
    let push = PushService::start().await;
    // No allow-list: the push service on 127.0.0.1 is a private address.
    let app = TestApp::spawn(backend).await;
    let [ada, bob] = app.users(["ada", "bob"]).await;
    let key = URL_SAFE_NO_PAD.decode(vapid_key(&app).await).unwrap();
    assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed P-256 point");

    let browser = push.subscription();
    let keys = browser.body["keys"].clone();
    let refused = [
        (browser.endpoint.clone(), "endpoint"),
        (browser.endpoint.replace("http:", "https:"), "endpoint"),
        ("https://localhost/push/1".into(), "endpoint"),
        ("https://[::1]/push/1".into(), "endpoint"),
        (
            "https://169.254.169.254/latest/meta-data".into(),
            "endpoint",
        ),
        ("http://push.example.com/x".into(), "endpoint"),
        ("ftp://push.example.com/x".into(), "endpoint"),
    ];
    for (endpoint, field) in refused {
        let body = json!({"endpoint": endpoint, "keys": keys});
        let res = app
            .post("/api/v1/push/subscriptions", &bob.access, body)
            .await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{endpoint}: {problem}"
        );
    }
    let bad_keys = json!({"endpoint": "https://push.example.com/x",
        "keys": {"p256dh": "AAAA", "auth": "c2hvcnQ"}});
    let res = app
        .post("/api/v1/push/subscriptions", &bob.access, bad_keys)
        .await;
    let problem = assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(problem["errors"][0]["field"], "keys.p256dh", "{problem}");
    let no_token = app
        .call(
            reqwest::Method::POST,
            "/api/v1/push/subscriptions",
            None,
            Some(browser.body.clone()),
        )
        .await;
    assert_problem(no_token, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A public endpoint is admitted once its address is (an IP literal
    // needs no lookup); the same endpoint again is the same subscription.
    let public = json!({"endpoint": "https://8.8.8.8/push/abc", "keys": keys});
    let first = app
        .post("/api/v1/push/subscriptions", &bob.access, public.clone())
        .await;
    let (status, first) = parts(first).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = parts(
        app.post("/api/v1/push/subscriptions", &bob.access, public)
            .await,
    )
    .await;
    assert_eq!((status, &again["id"]), (StatusCode::CREATED, &first["id"]));

    let path = format!(
        "/api/v1/push/subscriptions/{}",
        first["id"].as_str().unwrap()
    );
    assert_problem(
        app.delete(&path, &ada.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.delete(&path, &bob.access).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.delete(&path, &bob.access).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .delete("/api/v1/push/subscriptions/not-an-id", &bob.access)
        .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
}

/// Two instances on `redis` sharing a VAPID key, with short push timings.
async fn cluster_on(push: &PushService, redis: &str) -> Cluster {
    let allow = push.allow_host();
    let key = URL_SAFE_NO_PAD.encode(p256::SecretKey::random(&mut rand::rngs::OsRng).to_bytes());
    let env = [
        ("PARLEY_PUSH_ALLOW_HOSTS", allow.as_str()),
        ("PARLEY_PUSH_VAPID_PRIVATE_KEY", key.as_str()),
        ("PARLEY_PUSH_DELAY_MS", "500"),
        ("PARLEY_PUSH_POLL_MS", "50"),
        ("PARLEY_PUSH_LEASE_MS", "4000"),
        ("PARLEY_PUSH_RETRY_BASE_MS", "100"),
    ];
    let cluster = Cluster::start(2, redis, &env).await;
    push.trust(&vapid_key(&cluster.nodes[0].app).await);
    assert_eq!(
        vapid_key(&cluster.nodes[1].app).await,
        vapid_key(&cluster.nodes[0].app).await
    );
    cluster
}

async fn cluster(push: &PushService) -> Cluster {
    cluster_on(push, &redis_url()).await
}

/// `outcome` summed over every node still running.
async fn cluster_sends(nodes: &[&TestApp], outcome: &str) -> f64 {
    let mut total = 0.0;
    for node in nodes {
        total += sends(node, outcome).await;
    }
    total
}

#[actix_web::test]
async fn a_user_online_on_another_instance_gets_no_push() {
    let push = PushService::start().await;
    let cluster = cluster(&push).await;
    let (one, two) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let [ada, bob] = one.users(["ada", "bob"]).await;
    let phone = push.subscription();
    subscribe(one, &bob, &phone).await;
    let room = one.create_room(&ada, "general", "public").await;

    // Bob's app is open on the other instance: he sees it there.
    let socket = two.ws(&bob).await;
    mention(one, &ada, &room, &bob, 1).await;
    eventually("skipped_online", Duration::from_secs(20), || async {
        (cluster_sends(&[one, two], "skipped_online").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(push.all_requests(), 0);

    // Once he closes it, the next one is pushed.
    socket.close().await;
    mention(one, &ada, &room, &bob, 2).await;
    let delivered = push.await_delivered(&phone, 1).await;
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0].message["payload"]["excerpt"]
            .as_str()
            .unwrap()
            .contains("(2)")
    );
}

#[actix_web::test]
async fn pushes_claimed_by_a_killed_instance_are_sent_once_by_the_other_after_the_lease() {
    let push = PushService::start().await;
    let mut cluster = cluster(&push).await;
    let lb = &cluster.lb;
    let [ada, bob] = lb.users(["ada", "bob"]).await;
    let (phone, laptop) = (push.subscription(), push.subscription());
    // The first request to each device is never answered: the instance
    // that sent it dies with it unacknowledged.
    push.script(&phone, &[Answer::Hang]);
    push.script(&laptop, &[Answer::Hang]);
    subscribe(lb, &bob, &phone).await;
    subscribe(lb, &bob, &laptop).await;
    let room = lb.create_room(&ada, "general", "public").await;

    mention(lb, &ada, &room, &bob, 1).await;
    push.await_requests(&phone, 1).await;
    push.await_requests(&laptop, 1).await;
    // Kill (SIGKILL) an instance holding a claimed push in flight.
    let holder = eventually("a push in flight", Duration::from_secs(10), || async {
        for (i, node) in cluster.nodes.iter().enumerate() {
            let text = node.app.metrics_text().await;
            if metric(&text, "parley_push_sends_in_flight", &[]).unwrap_or(0.0) >= 1.0 {
                return Some(i);
            }
        }
        None
    })
    .await;
    cluster.kill(holder).await;

    // The survivor sends each once its lease (or its own timeout) ends.
    let survivor = &cluster.nodes[1 - holder].app;
    for device in [&phone, &laptop] {
        let delivered = push.await_delivered(device, 1).await;
        assert_eq!(delivered[0].message["kind"], "mention");
    }
    // Nothing is pending any more; a new notification is the next request
    // and only one more push per device is ever accepted.
    mention(survivor, &ada, &room, &bob, 2).await;
    for device in [&phone, &laptop] {
        let delivered = push.await_delivered(device, 2).await;
        assert_eq!(delivered.len(), 2, "{delivered:?}");
        assert_ne!(delivered[0].message["id"], delivered[1].message["id"]);
    }
}

#[actix_web::test]
async fn pending_pushes_survive_a_redis_restart_and_go_out_once() {
    let mut redis = PrivateRedis::start().await;
    let push = PushService::start().await;
    let cluster = cluster_on(&push, &redis.url()).await;
    let one = &cluster.nodes[0].app;
    let [ada, bob] = one.users(["ada", "bob"]).await;
    let phone = push.subscription();
    subscribe(one, &bob, &phone).await;
    let room = one.create_room(&ada, "general", "public").await;

    // Pending in the outbox when Redis goes away: nothing of it is in Redis.
    mention(one, &ada, &room, &bob, 1).await;
    redis.stop().await;
    push.await_delivered(&phone, 1).await;
    // While Redis is down, "online" is each instance's own sessions.
    mention(one, &ada, &room, &bob, 2).await;
    push.await_delivered(&phone, 2).await;
    redis.restart().await;
    mention(one, &ada, &room, &bob, 3).await;
    let delivered = push.await_delivered(&phone, 3).await;
    let excerpts: Vec<&str> = delivered
        .iter()
        .map(|d| d.message["payload"]["excerpt"].as_str().unwrap())
        .collect();
    for (i, n) in ["(1)", "(2)", "(3)"].iter().enumerate() {
        assert!(excerpts[i].contains(n), "{excerpts:?}");
    }
    assert_eq!(push.requests(&phone), 3);
}
