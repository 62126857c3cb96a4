//! `/api/v1/auth/*` and the JWKS document.
//!
//! Login and refresh answer the same token pair. A refresh token is spent on
//! use; presenting a spent one again means it was stolen (or replayed), so
//! its whole family (every token descended from that login) is revoked,
//! with the access tokens and WebSockets of that login. Log out everywhere
//! revokes every login of the caller (see [`crate::service::revocation`]).

use crate::auth::JwtKeys;
use crate::auth::login_backoff::LoginBackoff;
use crate::auth::{password, refresh};
use crate::domain::{Email, Password, UserId, Username};
use crate::http::auth_user::AuthUser;
use crate::http::error::{ApiError, Fields};
use crate::http::users::UserBody;
use crate::service::{Services, revocation};
use crate::store::{NewRefreshToken, NewUser, RefreshSpend, Revocation, User};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh_tokens))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/logout-all", web::post().to(logout_all));
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Either `username` or `email`.
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl RegisterRequest {
    /// The new account's username, address and password.
    pub fn parse(&self) -> Result<(Username, Email, Password), ApiError> {
        let mut fields = Fields::default();
        let username = fields.check("username", Username::parse(&self.username));
        let email = fields.check("email", Email::parse(&self.email));
        let pass = fields.check(
            "password",
            Password::parse_new(&self.password, &[&self.username, &self.email]),
        );
        fields.finish((username, email, pass))
    }
}

/// Whom a login names, parsed like registration's fields, so only text that
/// could name an account reaches the store (a malformed name is the
/// client's 400, and says nothing about which accounts exist).
#[derive(Debug, PartialEq, Eq)]
pub enum LoginName {
    Username(Username),
    Email(Email),
}

impl LoginName {
    /// The login backoff's key: the identifier as sent, case-folded
    /// (usernames are unique ignoring case; e-mails are stored lower-cased).
    pub fn identifier(&self) -> String {
        match self {
            LoginName::Username(name) => format!("u:{}", name.as_str().to_lowercase()),
            LoginName::Email(email) => format!("e:{}", email.as_str()),
        }
    }
}

impl LoginRequest {
    /// The account the login names; `username` wins when both are sent.
    pub fn name(&self) -> Result<LoginName, ApiError> {
        let mut fields = Fields::default();
        match (&self.username, &self.email) {
            (Some(name), _) => {
                let name = fields.check("username", Username::parse(name.trim()));
                Ok(LoginName::Username(fields.finish(name)?))
            }
            (None, Some(email)) => {
                let email = fields.check("email", Email::parse(email));
                Ok(LoginName::Email(fields.finish(email)?))
            }
            (None, None) => Err(ApiError::bad_request(
                "send `username` or `email` with `password`",
            )),
        }
    }
}

/// A token pair, with the user it belongs to.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub user: UserBody,
    /// RS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; single use.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    pub token_type: &'static str,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse), (status = 400, body = crate::http::error::Problem),
              (status = 409, description = "username or email taken", body = crate::http::error::Problem),
              (status = 429, body = crate::http::error::Problem)))]
pub async fn register(
    state: web::Data<Services>,
    keys: web::Data<JwtKeys>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let (username, email, pass) = body.parse()?;
    let password_hash = password::hash(pass).await?;
    let user = state
        .store
        .create_user(NewUser {
            id: UserId::new(),
            username,
            email,
            password_hash,
        })
        .await?;
    let tokens = issue_pair(&state, &keys, &user, uuid::Uuid::now_v7()).await?;
    Ok(no_store(HttpResponse::Created()).json(tokens))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::http::error::Problem),
              (status = 429, body = crate::http::error::Problem)))]
pub async fn login(
    state: web::Data<Services>,
    keys: web::Data<JwtKeys>,
    backoff: web::Data<LoginBackoff>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = body.name()?;
    // Checked before any password: a locked identifier costs no hashing.
    let identifier = account.identifier();
    if let Err(secs) = backoff.check(&identifier).await {
        let mut err = ApiError::rate_limited(secs);
        err.detail = format!("too many failed logins for this account; retry in {secs} s");
        return Err(err);
    }
    let user = match &account {
        LoginName::Username(name) => state.store.user_by_username(name.as_str()).await?,
        LoginName::Email(email) => state.store.user_by_email(email.as_str()).await?,
    };
    let stored = match &user {
        Some(u) => state.store.password_hash(u.id).await?,
        None => None,
    };
    let ok = password::verify(body.password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        backoff.failed(&identifier).await;
        return Err(ApiError::unauthorized("wrong username, e-mail or password"));
    };
    backoff.succeeded(&identifier).await;
    let tokens = issue_pair(&state, &keys, &user, uuid::Uuid::now_v7()).await?;
    Ok(no_store(HttpResponse::Ok()).json(tokens))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "unknown, expired or reused token (reuse revokes the family)", body = crate::http::error::Problem)))]
pub async fn refresh_tokens(
    state: web::Data<Services>,
    keys: web::Data<JwtKeys>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let hash = refresh::hash(&body.refresh_token);
    let grace = std::time::Duration::from_secs(state.settings.auth.refresh_reuse_grace_s);
    match state.store.spend_refresh_token(&hash, grace).await? {
        RefreshSpend::Spent { user, family } => {
            let deadline =
                refresh::family_deadline(family, state.settings.auth.refresh_family_max_age_s);
            if deadline.is_none_or(|d| d <= chrono::Utc::now()) {
                state.store.revoke_refresh_family(family).await?;
                return Err(ApiError::unauthorized(
                    "this login is too old to refresh; log in again",
                ));
            }
            let user = state
                .store
                .user(user)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
            Ok(no_store(HttpResponse::Ok()).json(issue_pair(&state, &keys, &user, family).await?))
        }
        RefreshSpend::Reused { user, family } => {
            tracing::warn!(%user, %family, "refresh token reused: revoking its family");
            // Its access tokens and WebSockets too, on every instance: the
            // thief may hold one.
            revocation::revoke(&state, family_revocation(user, family)).await?;
            Err(ApiError::unauthorized(
                "this refresh token was already used; every session from the same login is now signed out",
            ))
        }
        RefreshSpend::Expired => Err(ApiError::unauthorized(
            "the refresh token has expired; log in again",
        )),
        RefreshSpend::Unknown => Err(ApiError::unauthorized("unknown refresh token")),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = [])),
    responses((status = 204, description = "the refresh token's family is revoked, with its access tokens and WebSockets"),
              (status = 401, body = crate::http::error::Problem)))]
pub async fn logout(
    state: web::Data<Services>,
    caller: AuthUser,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let hash = refresh::hash(&body.refresh_token);
    // Someone else's (or an unknown) token changes nothing and reveals nothing.
    if let Some((owner, family)) = state.store.refresh_token_owner(&hash).await?
        && owner == caller.id
    {
        revocation::revoke(&state, family_revocation(owner, family)).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "every login of the caller is revoked: refresh tokens, access tokens and WebSockets, on every instance"),
              (status = 401, description = "no valid access token", body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 429, body = crate::http::error::Problem, content_type = "application/problem+json"),
              (status = 503, description = "the database is unavailable; nothing was revoked", body = crate::http::error::Problem, content_type = "application/problem+json")))]
pub async fn logout_all(
    state: web::Data<Services>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    // A login begun at this instant or later (the next one) stays valid.
    let revocation = Revocation {
        user: caller.id,
        family: None,
        at: chrono::Utc::now(),
    };
    revocation::revoke(&state, revocation).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One login family of `user`, revoked now.
fn family_revocation(user: UserId, family: uuid::Uuid) -> Revocation {
    Revocation {
        user,
        family: Some(family),
        at: chrono::Utc::now(),
    }
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "the public keys that verify access tokens (JWKS)", body = Object)))]
pub async fn jwks(keys: web::Data<JwtKeys>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(keys.jwks())
}

/// A response that carries credentials: no cache, shared or private, may
/// keep it (RFC 6749 section 5.1).
pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::PRAGMA, "no-cache"));
    builder
}

async fn issue_pair(
    state: &Services,
    keys: &JwtKeys,
    user: &User,
    family: uuid::Uuid,
) -> Result<TokenResponse, ApiError> {
    let (access_token, expires_in) = keys.issue(user.id, &user.username, family)?;
    let (refresh_token, hash) = refresh::generate();
    let auth = &state.settings.auth;
    let ttl = chrono::Duration::seconds(auth.refresh_ttl_s as i64);
    // Rotation slides the token's expiry, never past its family's deadline.
    let expires_at = (chrono::Utc::now() + ttl)
        .min(refresh::family_deadline(family, auth.refresh_family_max_age_s).unwrap_or_default());
    state
        .store
        .insert_refresh_token(NewRefreshToken {
            hash,
            user: user.id,
            family,
            expires_at,
        })
        .await?;
    Ok(TokenResponse {
        user: UserBody::private(user),
        access_token,
        refresh_token,
        expires_in,
        token_type: "Bearer",
    })
}
