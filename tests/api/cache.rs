//! Cache-aside across instances: hot reads come from the cache, and a write
//! on one instance is never followed by a stale read on another.

use crate::support::cluster::{Cluster, PrivateRedis, redis_url};
use crate::support::{TestApp, metric};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `parley_cache_requests_total{cache, result}` as the instance reports it.
async fn cache_count(app: &TestApp, cache: &str, result: &str) -> u64 {
    let (cache, result) = (format!("cache=\"{cache}\""), format!("result=\"{result}\""));
    metric(
        &app.metrics_text().await,
        "parley_cache_requests_total",
        &[&cache, &result],
    )
    .unwrap_or_default() as u64
}

#[actix_web::test]
async fn a_post_deleted_on_one_instance_is_gone_on_the_others_at_once() {
    let cluster = Cluster::start(3, &redis_url(), &[]).await;
    let (a, b, c) = (
        &cluster.nodes[0].app,
        &cluster.nodes[1].app,
        &cluster.nodes[2].app,
    );
    let author = a.register("author").await;
    let post = a.new_post(&author, "soon gone").await;
    let path = format!("/api/v1/posts/{post}");
    // Read twice on b and c: the second read is a cache hit.
    for app in [b, c] {
        for _ in 0..2 {
            assert_eq!(
                app.get(&path, &author.access).await.status(),
                StatusCode::OK
            );
        }
        assert!(cache_count(app, "post", "hit").await >= 1);
    }
    assert_eq!(
        a.delete(&path, &author.access).await.status(),
        StatusCode::NO_CONTENT
    );
    for app in [b, c] {
        assert_eq!(
            app.get(&path, &author.access).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[actix_web::test]
async fn profile_and_feed_changes_show_on_other_instances_at_once() {
    let cluster = Cluster::start(2, &redis_url(), &[]).await;
    let (a, b) = (&cluster.nodes[0].app, &cluster.nodes[1].app);
    let author = a.register("writer").await;
    let reader = b.register("reader").await;
    let profile = format!("/api/v1/users/{}", author.id);
    assert_eq!(
        b.get(&profile, &reader.access).await.status(),
        StatusCode::OK
    );
    let patch = a
        .call(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            Some(&author.access),
            Some(json!({"display_name": "Renamed"})),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::OK);
    let seen: Value = b.get(&profile, &reader.access).await.json().await.unwrap();
    assert_eq!(seen["display_name"], "Renamed");

    b.follow(&reader, &author).await;
    let empty: Value = b
        .get("/api/v1/feed", &reader.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);
    let post = a.new_post(&author, "hello followers").await;
    let feed: Value = b
        .get("/api/v1/feed", &reader.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(feed["items"][0]["id"], post.as_str(), "{feed}");
}

#[actix_web::test]
async fn a_cold_key_is_loaded_once_under_concurrent_reads() {
    let cluster = Cluster::start(1, &redis_url(), &[]).await;
    let app = &cluster.nodes[0].app;
    let author = app.register("popular").await;
    let post = app.new_post(&author, "everyone reads this").await;
    let path = format!("/api/v1/posts/{post}");
    let misses = cache_count(app, "post", "miss").await;
    let reads = (0..20).map(|_| app.get(&path, &author.access));
    for res in join_all(reads).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(
        cache_count(app, "post", "miss").await - misses,
        1,
        "one load for twenty readers"
    );
}

#[actix_web::test]
async fn reads_are_served_from_the_database_while_redis_is_down() {
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start(1, &redis.url(), &[]).await;
    let app = &cluster.nodes[0].app;
    let author = app.register("steady").await;
    let post = app.new_post(&author, "still here").await;
    redis.stop().await;
    let profile = format!("/api/v1/users/{}", author.id);
    assert_eq!(
        app.get(&profile, &author.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/posts/{post}"), &author.access)
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        cache_count(app, "user", "error").await >= 1,
        "the failure is counted"
    );

    // Repeated failures open the Redis breaker: reads stop waiting on Redis.
    for _ in 0..5 {
        let res = app.get(&profile, &author.access).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let redis_breaker = app.breaker("redis").await;
    assert_eq!(redis_breaker["state"], "open", "{redis_breaker}");
}
