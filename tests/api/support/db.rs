//! Fresh PostgreSQL databases for tests.
//!
//! Every test gets a database of its own, `parley_test_<uuid>`, created on
//! the server at `PARLEY_TEST_DATABASE_URL` (default: the local server with
//! trust authentication). Tests run in parallel processes, so nothing is
//! shared and nothing needs cleaning up between them; the databases are left
//! behind for inspection and are cheap to drop in bulk.

use parley::config::DatabaseSettings;
use parley::store::SharedStore;
use parley::store::postgres::PgStore;
use std::sync::Arc;

const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Creates an empty database and returns its URL.
pub async fn fresh_database_url() -> String {
    let server =
        std::env::var("PARLEY_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned());
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at PARLEY_TEST_DATABASE_URL (or the local default) is not reachable");
    let connection = tokio::spawn(connection);
    let name = format!("parley_test_{}", uuid::Uuid::new_v4().simple());
    // A generated identifier: it cannot be a bind parameter, and needs no quoting.
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    drop(client);
    let _ = connection.await;
    with_database(&server, &name)
}

/// A migrated [`PgStore`] on a fresh database, with a small pool.
pub async fn fresh_pg_store() -> SharedStore {
    Arc::new(pg_store(&fresh_database_url().await, 4).await)
}

/// A migrated [`PgStore`] on `url` with a pool of `pool_size`.
pub async fn pg_store(url: &str, pool_size: usize) -> PgStore {
    let settings = DatabaseSettings {
        url: Some(url.to_owned()),
        pool_size,
        connect_timeout_s: 10,
        ..Default::default()
    };
    PgStore::connect(&settings)
        .await
        .expect("connecting PgStore")
}

/// `server` with its database name replaced by `database`, query kept.
pub fn with_database(server: &str, database: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{root}/{database}{query}")
}
