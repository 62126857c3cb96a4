//! The drain gate (public listener): once the drain (`app::drain`) stops
//! taking new work, every request but the probes is answered 503 with
//! `Retry-After`, so the load balancer retries it on another instance.

use crate::http::error::ApiError;
use crate::observability::lifecycle::Lifecycle;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

/// Public-listener middleware: once the drain refuses new work, every
/// request but the probes is answered 503 with `Retry-After`.
pub async fn refuse_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let refusing = req
        .app_data::<web::Data<Lifecycle>>()
        .is_some_and(|lifecycle| lifecycle.refusing_new_work());
    let probe = req.path().starts_with("/health") || req.path() == "/readyz";
    if refusing && !probe {
        let error = ApiError::unavailable(
            "this instance is shutting down; retry (the load balancer will pick another instance)",
            anyhow::anyhow!("draining"),
        );
        let response = error.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
