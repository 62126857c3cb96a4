//! Caps on WebSockets per user and per client IP (`429` before the upgrade)
//! and the per-user publish quota shared by all of a user's connections,
//! on one instance and across two instances sharing Redis.

use crate::support::cluster::{redis_prefix, redis_url};
use crate::support::{Backend, TestApp, TestUser, WsClient, assert_problem, test_settings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::num::NonZeroU32;

/// Two in-process instances on one database and one Redis prefix: a
/// scaled-out deployment without the load balancer.
async fn two_instances(tweak: impl Fn(&mut parley::config::Settings)) -> (TestApp, TestApp) {
    let key = crate::support::TestKey::new();
    let mut settings = test_settings(Backend::Postgres).await;
    settings.redis.url = Some(redis_url());
    settings.redis.prefix = redis_prefix();
    settings.auth.keys_dir = Some(key.dir.clone());
    tweak(&mut settings);
    let mut second = settings.clone();
    settings.instance_id = Some("one".into());
    second.instance_id = Some("two".into());
    (TestApp::start(settings).await, TestApp::start(second).await)
}

/// A refused upgrade: `429`, `Retry-After`, and (asked without the upgrade
/// headers, so the body can be read) a `rate_limited` problem.
async fn assert_refused_upgrade(app: &TestApp, user: &TestUser, forwarded_for: Option<&str>) {
    let mut request = app.ws_request(Some(&user.access), None);
    if let Some(ip) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
    }
    let (status, retry_after, _) = app.ws_refusal(request).await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    let mut plain = app.client.get(app.ws_url().replacen("ws", "http", 1));
    plain = plain.bearer_auth(&user.access);
    if let Some(ip) = forwarded_for {
        plain = plain.header("x-forwarded-for", ip);
    }
    let body = assert_problem(
        plain.send().await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("open WebSockets"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_user_over_the_connection_cap_is_refused_with_429_until_one_closes() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.ws.conns_per_user = NonZeroU32::new(3).unwrap();
    })
    .await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws(&ada).await);
    }
    assert_refused_upgrade(&app, &ada, None).await;
    // Another user has connections of their own.
    let _bob = app.ws(&bob).await;
    // Closing one gives its slot back.
    open.pop().unwrap().close().await;
    crate::support::eventually("the slot is given back", FRAME_WAIT, || async {
        WsClient::open(app.ws_request(Some(&ada.access), None))
            .await
            .ok()
    })
    .await;
}

const FRAME_WAIT: std::time::Duration = crate::support::FRAME_TIMEOUT;

#[actix_web::test]
async fn a_client_ip_over_the_connection_cap_is_refused_and_forwarded_ips_count_apart() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.ws.conns_per_ip = NonZeroU32::new(2).unwrap();
        s.http.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let from = |ip: &str| {
        let mut request = app.ws_request(Some(&bob.access), None);
        request
            .headers_mut()
            .insert("x-forwarded-for", ip.parse().unwrap());
        request
    };
    let _a = WsClient::open(from("203.0.113.7")).await.unwrap();
    let _b = WsClient::open(from("203.0.113.7")).await.unwrap();
    // A third connection from that address is refused, whoever the user.
    assert_refused_upgrade(&app, &ada, Some("203.0.113.7")).await;
    // Behind the trusted proxy range, another client address has its own cap.
    let _c = WsClient::open(from("198.51.100.1")).await.unwrap();
}

/// Publishes `n` messages on each connection at once, then returns how
/// many were acked and the `rate_limited` errors.
async fn flood(sockets: &mut [WsClient], room: &str, n: usize) -> (usize, Vec<Value>) {
    for (c, ws) in sockets.iter_mut().enumerate() {
        for i in 0..n {
            let id = format!("c{c}-{i}");
            ws.send(
                json!({"type": "publish", "room": room, "body": "hi", "client_id": id, "ref": id}),
            )
            .await;
        }
    }
    let (mut acked, mut refused) = (0, Vec::new());
    for ws in sockets.iter_mut() {
        for _ in 0..n {
            let frame = loop {
                let frame = ws.next().await;
                if frame["ref"].is_string() {
                    break frame;
                }
            };
            match frame["type"].as_str() {
                Some("ack") => acked += 1,
                Some("error") => refused.push(frame),
                _ => panic!("unexpected {frame}"),
            }
        }
    }
    (acked, refused)
}

fn assert_rate_limited(refused: &[Value]) {
    for frame in refused {
        assert_eq!(frame["code"], "rate_limited", "{frame}");
        assert!(frame["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1));
    }
}

#[actix_web::test]
async fn a_users_publishes_over_all_their_connections_share_one_quota() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.rate.ws_user_msgs_per_s = NonZeroU32::new(10).unwrap();
    })
    .await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "lobby", "public").await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(app.ws(&ada).await);
    }
    let started = std::time::Instant::now();
    let (acked, refused) = flood(&mut sockets, &room, 10).await;
    // A burst of one second's quota, plus what refilled while it ran.
    let allowed = 10 + (10.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        acked >= 10 && acked <= allowed,
        "{acked} acked, at most {allowed}"
    );
    assert_eq!(acked + refused.len(), 50);
    assert_rate_limited(&refused);
    // Another user is not affected.
    let bob = app.register("bob").await;
    let mut other = app.ws(&bob).await;
    let (ack, _) = other.publish(&room, "hello", "b1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

#[actix_web::test]
async fn the_publish_quota_and_connection_cap_hold_across_instances_with_redis() {
    let (one, two) = two_instances(|s| {
        s.rate.ws_user_msgs_per_s = NonZeroU32::new(20).unwrap();
        s.ws.conns_per_user = NonZeroU32::new(4).unwrap();
    })
    .await;
    let ada = one.register("ada").await;
    let room = one.create_room(&ada, "lobby", "public").await;
    let mut sockets = vec![one.ws(&ada).await, one.ws(&ada).await];
    sockets.push(two.ws(&ada).await);
    sockets.push(two.ws(&ada).await);
    // Four connections over two instances: the fifth is refused on either.
    assert_refused_upgrade(&one, &ada, None).await;
    assert_refused_upgrade(&two, &ada, None).await;

    let started = std::time::Instant::now();
    let (acked, refused) = flood(&mut sockets, &room, 20).await;
    let allowed = 20 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        acked >= 10 && acked <= allowed,
        "{acked} acked, at most {allowed}"
    );
    assert!(!refused.is_empty());
    assert_rate_limited(&refused);
}
