//! The server API's keys on PostgreSQL (`migrations/V2026120603__api_keys.sql`).

use super::{PgStore, sql};
use crate::domain::api_key::Scope;
use crate::store::StoreError;
use crate::store::integration::{ApiKey, ApiKeyStore, NewApiKey};
use anyhow::Context;
use async_trait::async_trait;
use tokio_postgres::Row;

const COLUMNS: &str = "id, name, prefix, scopes, created_at, revoked_at";

fn api_key(row: &Row) -> anyhow::Result<ApiKey> {
    let scopes: Vec<String> = sql::get(row, "scopes")?;
    Ok(ApiKey {
        id: sql::get(row, "id")?,
        name: sql::get(row, "name")?,
        prefix: sql::get(row, "prefix")?,
        // Stored by this server, so every name parses; a stray one grants nothing.
        scopes: scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
        created_at: sql::get(row, "created_at")?,
        revoked_at: sql::get(row, "revoked_at")?,
    })
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let insert = format!(
            "INSERT INTO api_keys (id, name, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {COLUMNS}"
        );
        let id = uuid::Uuid::now_v7();
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        self.run("create_api_key", async {
            let params: sql::Params = &[&id, &key.name, &key.prefix, &key.hash, &scopes];
            let row = sql::query_opt(&self.pool, &insert, params)
                .await
                .context("creating an API key")?
                .context("the insert returned no row")?;
            Ok::<_, StoreError>(api_key(&row)?)
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let select = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        self.run_read("api_keys", || async {
            let rows = sql::query(&self.pool, &select, &[])
                .await
                .context("listing API keys")?;
            Ok::<_, StoreError>(rows.iter().map(api_key).collect::<anyhow::Result<_>>()?)
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<ApiKey>, StoreError> {
        let select =
            format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL");
        self.run_read("api_key_by_hash", || async {
            let row = sql::query_opt(&self.pool, &select, &[&hash])
                .await
                .context("looking up an API key")?;
            Ok::<_, StoreError>(row.as_ref().map(api_key).transpose()?)
        })
        .await
    }

    async fn revoke_api_key(&self, id: uuid::Uuid) -> Result<(), StoreError> {
        const REVOKE: &str =
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1";
        let updated = self
            .run("revoke_api_key", async {
                Ok::<_, StoreError>(sql::execute(&self.pool, REVOKE, &[&id]).await?)
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
