//! The tests of what only the PostgreSQL store has to get right:
//! migrations, and gapless seqs under real concurrency. (Fresh databases
//! come from `support::db`.)

use crate::support::db::{fresh_database_url, pg_store, with_database};
use crate::support::store::{AppendAccepted, message, user};
use futures_util::future::join_all;
use parley::config::DatabaseSettings;
use parley::domain::{RoomId, RoomKind, Seq};
use parley::store::postgres::PgStore;
use parley::store::{Store, User};
use parley_actors::model::Appended;
use parley_actors::ports::MessageLog;
use std::sync::Arc;

// --- tests -------------------------------------------------------------------

#[test]
fn the_database_name_in_a_url_is_replaced_and_the_rest_kept() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "t"),
        "postgres://u@h:5432/t"
    );
    assert_eq!(with_database("postgres://u@h", "t"), "postgres://u@h/t");
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "t"),
        "postgresql://u:p@h/t?sslmode=disable"
    );
}

#[tokio::test]
async fn migrations_apply_to_a_fresh_database_and_a_second_connect_changes_nothing() {
    let url = fresh_database_url().await;
    let store = pg_store(&url, 2).await;
    assert!(store.ping().await.is_ok());
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(applied_migrations(&url).await, shipped);

    // Several instances starting together take turns on the migration lock.
    let again = join_all((0..3).map(|_| pg_store(&url, 2))).await;
    assert_eq!(again.len(), 3);
    assert_eq!(applied_migrations(&url).await, shipped);
    assert_eq!(store.pool_status().max_size, 2);
}

#[tokio::test]
async fn connecting_without_a_url_fails_and_says_which_setting() {
    let settings = DatabaseSettings {
        url: None,
        pool_size: 1,
        connect_timeout_s: 1,
        ..Default::default()
    };
    let error = PgStore::connect(&settings).await.err().unwrap();
    assert!(format!("{error:#}").contains("DATABASE_URL"), "{error:#}");
}

#[tokio::test]
async fn an_unreachable_database_fails_within_the_timeout_without_leaking_the_password() {
    let settings = DatabaseSettings {
        // Port 1 on loopback: refused at once, so only the retries take time.
        url: Some("postgres://parley:hunter2@127.0.0.1:1/parley".into()),
        pool_size: 1,
        connect_timeout_s: 1,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let error = PgStore::connect(&settings).await.err().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!format!("{error:#}").contains("hunter2"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_hundred_concurrent_appends_to_one_room_get_seqs_one_to_two_hundred() {
    let store = Arc::new(pg_store(&fresh_database_url().await, 16).await);
    let author = user(&*store, "writer").await;
    let room = room(&*store, &author).await;

    let tasks = (0..200).map(|i| {
        let store = Arc::clone(&store);
        let message = message(room, &author, &format!("c{i}"));
        tokio::spawn(async move { store.append_accepted(&[message]).await })
    });
    let mut seqs: Vec<i64> = Vec::new();
    for result in join_all(tasks).await {
        let appended = result.unwrap().unwrap();
        assert!(appended[0].is_new());
        seqs.push(appended[0].event().seq.0);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(200));

    let stored = store.range(room, Seq(0), None, 500).await.unwrap();
    let stored_seqs: Vec<i64> = stored.iter().map(|m| m.seq.0).collect();
    assert_eq!(stored_seqs, (1..=200).collect::<Vec<i64>>());
    // The database clock stamps messages under the room lock: never backwards.
    assert!(stored.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
}

#[tokio::test]
async fn a_batch_repeating_a_client_id_answers_the_repeat_with_the_original() {
    let store = pg_store(&fresh_database_url().await, 2).await;
    let author = user(&store, "writer").await;
    let room = room(&store, &author).await;

    let batch = vec![
        message(room, &author, "a"),
        message(room, &author, "b"),
        message(room, &author, "a"),
    ];
    let appended = store.append_accepted(&batch).await.unwrap();
    let [
        Appended::New(first),
        Appended::New(second),
        Appended::Duplicate(repeat),
    ] = appended.as_slice()
    else {
        panic!("expected new, new, duplicate: {appended:?}");
    };
    assert_eq!((first.seq, second.seq), (Seq(1), Seq(2)));
    assert_eq!(repeat, first);

    // A later batch finds it in the store; what it returns is what was stored.
    let again = store
        .append_accepted(&[message(room, &author, "a")])
        .await
        .unwrap();
    assert_eq!(again, vec![Appended::Duplicate(first.clone())]);
    assert_eq!(store.last_seq(room).await.unwrap(), Seq(2));
    let stored = store.range(room, Seq(0), None, 10).await.unwrap();
    assert_eq!(stored, vec![first.clone(), second.clone()]);
}

#[tokio::test]
async fn one_batch_spanning_two_rooms_numbers_each_room_from_one_in_input_order() {
    let store = pg_store(&fresh_database_url().await, 2).await;
    let author = user(&store, "writer").await;
    let (one, two) = (room(&store, &author).await, room(&store, &author).await);

    let batch = vec![
        message(two, &author, "x"),
        message(one, &author, "x"),
        message(two, &author, "y"),
    ];
    let appended = store.append_accepted(&batch).await.unwrap();
    let placed: Vec<(RoomId, i64)> = appended
        .iter()
        .map(|a| (a.event().room, a.event().seq.0))
        .collect();
    assert_eq!(placed, vec![(two, 1), (one, 1), (two, 2)]);
    assert_eq!(store.last_seq(one).await.unwrap(), Seq(1));
    assert_eq!(store.last_seq(two).await.unwrap(), Seq(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn batches_naming_two_rooms_in_opposite_orders_do_not_deadlock() {
    let store = Arc::new(pg_store(&fresh_database_url().await, 8).await);
    let author = user(&*store, "writer").await;
    let (one, two) = (room(&*store, &author).await, room(&*store, &author).await);

    let tasks = (0..40).map(|i| {
        let store = Arc::clone(&store);
        let (first, second) = if i % 2 == 0 { (one, two) } else { (two, one) };
        let batch = vec![
            message(first, &author, &format!("c{i}")),
            message(second, &author, &format!("c{i}")),
        ];
        tokio::spawn(async move { store.append_accepted(&batch).await })
    });
    let finished = tokio::time::timeout(std::time::Duration::from_secs(30), join_all(tasks))
        .await
        .expect("appends did not finish");
    assert!(finished.into_iter().all(|r| r.unwrap().is_ok()));
    assert_eq!(store.last_seq(one).await.unwrap(), Seq(40));
    assert_eq!(store.last_seq(two).await.unwrap(), Seq(40));
}

// --- helpers -----------------------------------------------------------------

async fn applied_migrations(url: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap();
    row.get(0)
}

/// A public room of `creator`'s.
async fn room(store: &dyn Store, creator: &User) -> RoomId {
    crate::support::store::room(store, creator, RoomKind::Public)
        .await
        .id
}
