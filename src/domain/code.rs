//! The one error-code table of every client-facing boundary.
//!
//! A [`Code`] fixes everything a client sees of a failure: the HTTP status,
//! the problem+json `type` and `title` (RFC 9457), the WebSocket
//! `error.code` and the `kind` label of `parley_errors_total`. REST
//! (`http::error`) and WebSocket (`ws::protocol`) both render from here, so
//! a code means the same on both.

/// The closed set of error codes, shared by REST and WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// HTTP only: the route exists, the method does not.
    MethodNotAllowed,
    Conflict,
    RateLimited,
    TooLarge,
    /// HTTP only: a body that is not `application/json`.
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl Code {
    /// Every code, in the order of the table.
    pub const ALL: [Code; 11] = [
        Code::BadRequest,
        Code::Unauthorized,
        Code::Forbidden,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::Conflict,
        Code::RateLimited,
        Code::TooLarge,
        Code::UnsupportedMediaType,
        Code::Unavailable,
        Code::Internal,
    ];

    pub fn http_status(self) -> u16 {
        match self {
            Code::BadRequest => 400,
            Code::Unauthorized => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::Conflict => 409,
            Code::RateLimited => 429,
            Code::TooLarge => 413,
            Code::UnsupportedMediaType => 415,
            Code::Unavailable => 503,
            Code::Internal => 500,
        }
    }

    /// The WebSocket `error.code` and the last segment of the problem `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::RateLimited => "rate_limited",
            Code::TooLarge => "too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Code::BadRequest => "The request is invalid",
            Code::Unauthorized => "Authentication is required",
            Code::Forbidden => "Not allowed",
            Code::NotFound => "Not found",
            Code::MethodNotAllowed => "Method not allowed",
            Code::Conflict => "Conflict",
            Code::RateLimited => "Too many requests",
            Code::TooLarge => "Request too large",
            Code::UnsupportedMediaType => "Unsupported media type",
            Code::Unavailable => "Service unavailable",
            Code::Internal => "Internal error",
        }
    }

    /// The code of an error response that did not come from an [`ApiError`]
    /// (the framework's own): the one with that status, else the nearest
    /// class, `bad_request` or `internal`.
    pub fn for_status(status: u16) -> Self {
        match Self::ALL.into_iter().find(|c| c.http_status() == status) {
            Some(code) => code,
            None if (400..500).contains(&status) => Code::BadRequest,
            None => Code::Internal,
        }
    }

    /// The problem `type`: a URN, so it names the error without promising a
    /// web page; `docs/api.md` lists them all.
    pub fn problem_type(self) -> String {
        format!("urn:parley:problem:{}", self.as_str())
    }

    /// The `kind` label of `parley_errors_total`.
    pub fn metric_label(self) -> &'static str {
        self.as_str()
    }
}
