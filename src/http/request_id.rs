//! `X-Request-Id`: echoed from the request when it is sane, generated
//! otherwise, set on every response and available to error rendering and
//! logs through a task-local.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `"none"` outside of one.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "none".to_owned())
}

/// The request id as a request extension, for handlers and loggers.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// A client-supplied id is kept only if short and printable, so it cannot
/// forge log lines or bloat them.
fn accept(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_owned())
}

/// Middleware: must wrap everything else, so that even errors raised by
/// other middleware carry the id.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(accept)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let http_req = req.request().clone();
    // Errors are rendered inside the scope so their body carries the id too.
    let outcome = REQUEST_ID
        .scope(id.clone(), async move {
            next.call(req).await.map_err(|e| e.error_response())
        })
        .await;
    let mut res = match outcome {
        Ok(res) => res.map_into_left_body(),
        Err(response) => ServiceResponse::new(http_req, response).map_into_right_body(),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}
