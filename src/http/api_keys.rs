//! Server API keys on the admin listener (contract 6.3): create (the key
//! is shown then, and only then), list without the key, revoke.
//! `http::server_api` is where a key is used.

use crate::auth::api_key;
use crate::domain::api_key::{ApiKeyName, Scope};
use crate::http::error::{ApiError, Fields, Problem};
use crate::service::Services;
use crate::store::integration::{ApiKey, NewApiKey};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/api-keys", web::post().to(create))
        .route("/admin/api-keys", web::get().to(list))
        .route("/admin/api-keys/{id}", web::delete().to(revoke));
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyRequest {
    /// 1 to 100 characters, for operators.
    pub name: String,
    /// At least one of `rooms:write`, `notifications:write`.
    pub scopes: Vec<String>,
}

impl NewApiKeyRequest {
    pub fn parse(&self) -> Result<(ApiKeyName, Vec<Scope>), ApiError> {
        let mut fields = Fields::default();
        let name = fields.check("name", ApiKeyName::parse(&self.name));
        let scopes = fields.check("scopes", Scope::parse_all(&self.scopes));
        fields.finish((name, scopes))
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub scopes: Vec<&'static str>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyResponse {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// The answer to a create: the key itself, this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: uuid::Uuid,
    /// `psk_...`: send as `Authorization: Bearer <key>`. Only its hash is
    /// stored: it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKeyResponse,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyResponse>,
}

#[utoipa::path(post, path = "/admin/api-keys", tag = "admin", request_body = NewApiKeyRequest,
    responses((status = 201, description = "created; `key` is shown this once. Served on the admin listener only.", body = CreatedApiKey),
              (status = 400, description = "a bad name or an unknown scope", body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    state: web::Data<Services>,
    body: web::Json<NewApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let (name, scopes) = body.parse()?;
    let minted = api_key::mint();
    let stored = state
        .store
        .create_api_key(NewApiKey {
            name: name.as_str().to_owned(),
            prefix: minted.prefix,
            hash: minted.hash,
            scopes,
        })
        .await?;
    tracing::info!(api_key = %stored.id, prefix = %stored.prefix, "API key created");
    Ok(HttpResponse::Created().json(CreatedApiKey {
        id: stored.id,
        key: minted.key,
        api_key: ApiKeyResponse::from(&stored),
    }))
}

#[utoipa::path(get, path = "/admin/api-keys", tag = "admin",
    responses((status = 200, description = "every key, revoked ones included, oldest first; never the key itself. Served on the admin listener only.", body = ApiKeyList),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn list(state: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let keys = state.store.api_keys().await?;
    let items = keys.iter().map(ApiKeyResponse::from).collect();
    Ok(HttpResponse::Ok().json(ApiKeyList { items }))
}

#[utoipa::path(delete, path = "/admin/api-keys/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "revoked: the key is refused from now on (revoking twice is fine). Served on the admin listener only."),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    state: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut fields = Fields::default();
    let id = fields.check(
        "id",
        uuid::Uuid::parse_str(&path).map_err(|_| "must be a UUID"),
    );
    let id = fields.finish(id)?;
    state
        .store
        .revoke_api_key(id)
        .await
        .map_err(ApiError::missing("API key"))?;
    tracing::info!(api_key = %id, "API key revoked");
    Ok(HttpResponse::NoContent().finish())
}
