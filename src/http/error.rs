//! Errors on their way to an HTTP client: [`ApiError`] and its problem+json
//! body. Every failure a client can see is an [`ApiError`] with a
//! [`Code`] (`domain::code`, the one table that fixes status, `type`,
//! `title` and the WebSocket `error.code`). Unexpected failures carry their cause for
//! the log and show the client only `internal` and the request id.

pub use crate::domain::Code;
use crate::http::middleware::request_id;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

/// One invalid field of a request body or query.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An error on its way to a client.
pub struct ApiError {
    pub code: Code,
    /// Tells the client how to fix the request.
    pub detail: String,
    pub fields: Vec<FieldError>,
    /// Seconds, for `Retry-After`.
    pub retry_after_s: Option<u64>,
    /// The cause, logged once, never shown to the client.
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            fields: Vec::new(),
            retry_after_s: None,
            source: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// Maps a store error where `NotFound` means the named resource is
    /// missing (a 404 that says what); every other error as usual:
    /// `.map_err(ApiError::missing("post"))`.
    pub fn missing(what: &'static str) -> impl Fn(StoreError) -> Self {
        move |e| match e {
            StoreError::NotFound => Self::not_found(what),
            other => other.into(),
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(Code::Conflict, detail)
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            Code::RateLimited,
            format!("rate limit exceeded; retry in {retry_after_s} s"),
        );
        e.retry_after_s = Some(retry_after_s);
        e
    }

    pub fn unavailable(detail: impl Into<String>, source: anyhow::Error) -> Self {
        let mut e = Self::new(Code::Unavailable, detail);
        e.retry_after_s = Some(5);
        e.source = Some(source);
        e
    }

    pub fn internal(source: anyhow::Error) -> Self {
        let mut e = Self::new(
            Code::Internal,
            "an unexpected error occurred; quote the request id when reporting it",
        );
        e.source = Some(source);
        e
    }

    /// A request with one or more invalid fields.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let detail = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = Self::bad_request(detail);
        e.fields = fields;
        e
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " ({source:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The problem+json body.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `urn:parley:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The same code a WebSocket `error` frame would carry.
    pub code: &'static str,
    pub request_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if let Some(source) = &self.source {
            // The cause chain goes to the log once, here, with the request id.
            tracing::error!(code = self.code.as_str(), %request_id, error = %format!("{source:#}"), "request failed");
        }
        let problem = Problem {
            kind: self.code.problem_type(),
            title: self.code.title(),
            status: self.code.http_status(),
            detail: self.detail.clone(),
            code: self.code.as_str(),
            request_id,
            errors: self.fields.clone(),
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(secs) = self.retry_after_s {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        let mut response = response.body(serde_json::to_string(&problem).unwrap_or_default());
        // For `parley_errors_total{kind}`, counted by the metrics middleware.
        response.extensions_mut().insert(self.code);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(field) => {
                let mut err = ApiError::conflict(format!("{field} is already taken"));
                err.fields.push(FieldError {
                    field: field.into(),
                    message: "is already taken".into(),
                });
                err
            }
            StoreError::NotFound => ApiError::not_found("resource"),
            full @ StoreError::RoomFull { .. } => ApiError::conflict(full.to_string()),
            StoreError::InvalidData(source) => {
                let mut err = ApiError::bad_request(
                    "the request holds a value that cannot be stored; check its text fields",
                );
                err.source = Some(source);
                err
            }
            StoreError::Rejected(source) => ApiError::internal(source),
            StoreError::Unavailable(source) => {
                let breaker_wait = source
                    .downcast_ref::<crate::infra::breaker::BreakerOpen>()
                    .map(|open| open.retry_after.as_secs_f64().ceil().max(1.0) as u64);
                match breaker_wait {
                    // Failing fast: say when the next attempt can work.
                    Some(secs) => {
                        let mut err = ApiError::unavailable(
                            format!("the database is unavailable; retry in {secs} s"),
                            source,
                        );
                        err.retry_after_s = Some(secs);
                        err
                    }
                    None => {
                        ApiError::unavailable("the database is unavailable; retry shortly", source)
                    }
                }
            }
        }
    }
}

impl From<crate::service::rooms::RoomError> for ApiError {
    fn from(e: crate::service::rooms::RoomError) -> Self {
        use crate::service::rooms::RoomError;
        match e {
            RoomError::NotFound(what) => ApiError::not_found(what),
            RoomError::Forbidden(why) => ApiError::forbidden(why),
            RoomError::Conflict(why) => ApiError::conflict(why),
            RoomError::Store(store) => store.into(),
        }
    }
}

/// A publish that was not stored (see `service::publish::failure`).
impl From<parley_actors::writer::PublishError> for ApiError {
    fn from(e: parley_actors::writer::PublishError) -> Self {
        match crate::service::publish::failure(&e) {
            (Code::Unavailable, detail) => ApiError::unavailable(detail, anyhow::anyhow!(e)),
            (Code::Internal, _) => ApiError::internal(anyhow::anyhow!(e)),
            (code, detail) => ApiError::new(code, detail),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}

/// Collects field errors so one response reports every bad field at once.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Keeps the value, or records why `field` was refused.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, parsed: Result<T, E>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError {
                    field: field.into(),
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// `Ok(values)` when every check passed, else a `bad_request` naming each bad field.
    pub fn finish<T: AllSome>(self, values: T) -> Result<T::Output, ApiError> {
        if !self.0.is_empty() {
            return Err(ApiError::invalid(self.0));
        }
        values
            .all_some()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("validation lost a value")))
    }
}

/// Tuples of `Option`s that are all `Some` once validation passed.
pub trait AllSome {
    type Output;
    fn all_some(self) -> Option<Self::Output>;
}

impl<A> AllSome for Option<A> {
    type Output = A;
    fn all_some(self) -> Option<A> {
        self
    }
}

impl<A, B> AllSome for (Option<A>, Option<B>) {
    type Output = (A, B);
    fn all_some(self) -> Option<(A, B)> {
        Some((self.0?, self.1?))
    }
}

impl<A, B, C> AllSome for (Option<A>, Option<B>, Option<C>) {
    type Output = (A, B, C);
    fn all_some(self) -> Option<(A, B, C)> {
        Some((self.0?, self.1?, self.2?))
    }
}

/// The HTTP status of a [`Code`].
pub fn status(code: Code) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
