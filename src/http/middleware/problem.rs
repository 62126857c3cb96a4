//! Every error response is problem+json, the framework's own too.
//!
//! Handlers and extractors answer with [`ApiError`]s (see
//! [`super::extractor_config`]), and unknown paths, or known paths with
//! another method, reach the default service's `404` problem. This
//! middleware is the net under those: any error response that is not a
//! problem (a `405` from a resource without that default, a plain-text
//! error of a library) becomes the problem of its status, with its headers
//! (`Allow`, `Retry-After`, CORS) kept, so that clients and
//! `/openapi.json` meet one error format.
//!
//! Not covered: an error a middleware returns instead of a response (only
//! CORS refusing an origin does); actix renders it after every middleware
//! has run, and the request it needs is gone by then.

use crate::http::error::{ApiError, Code};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Must wrap the routes and sit inside the request id, so that the
/// problems it writes carry the id.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, Error> {
    let res = next.call(req).await?;
    if !needs_rewrite(res.response()) {
        return Ok(res.map_into_left_body());
    }
    let (request, response) = res.into_parts();
    let problem = problem_for(&request, &response);
    Ok(ServiceResponse::new(request, problem).map_into_right_body())
}

/// An error status whose body is neither a problem nor a JSON document a
/// handler chose on purpose (readiness and start-up answer `503` with
/// their per-component JSON, as the wire contract says): a framework's
/// plain text or empty body.
fn needs_rewrite<B>(res: &HttpResponse<B>) -> bool {
    let status = res.status();
    let designed = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON) || v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !designed
}

/// The problem of `original`'s status, with its headers but not its body.
fn problem_for<B>(request: &HttpRequest, original: &HttpResponse<B>) -> HttpResponse {
    let status = original.status();
    let code = Code::for_status(status.as_u16());
    let detail = match code {
        Code::MethodNotAllowed => format!(
            "{} is not allowed on {}; docs/api.md lists the methods of each path",
            request.method(),
            request.path()
        ),
        Code::NotFound => "route not found".to_owned(),
        _ => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        ),
    };
    let mut problem = ApiError::new(code, detail).error_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    // The framework's status stands even where no code has it exactly.
    *problem.status_mut() = status;
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{App, test, web};

    #[actix_web::test]
    async fn plain_error_responses_become_problems_and_keep_their_headers() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(middleware))
                .route(
                    "/teapot",
                    web::get().to(|| async { HttpResponse::ImATeapot().body("short and stout") }),
                )
                .route(
                    "/only-post",
                    web::get().to(|| async {
                        HttpResponse::MethodNotAllowed()
                            .insert_header((header::ALLOW, "POST"))
                            .finish()
                    }),
                )
                .route(
                    "/fine",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                .route(
                    "/not-ready",
                    web::get().to(|| async {
                        HttpResponse::ServiceUnavailable()
                            .json(serde_json::json!({"status": "unavailable"}))
                    }),
                ),
        )
        .await;
        let call = |path: &'static str| test::TestRequest::get().uri(path).to_request();

        let res = test::call_service(&app, call("/only-post")).await;
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers().get(header::ALLOW).unwrap(), "POST");
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["code"], "method_not_allowed");
        assert!(body["detail"].as_str().unwrap().contains("GET"), "{body}");

        // A status without a code of its own keeps its status.
        let res = test::call_service(&app, call("/teapot")).await;
        assert_eq!(res.status(), 418);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );

        let res = test::call_service(&app, call("/fine")).await;
        assert_eq!(test::read_body(res).await, "ok");

        // A JSON body a handler chose (readiness's 503) is left alone.
        let res = test::call_service(&app, call("/not-ready")).await;
        assert_eq!(res.status(), 503);
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["status"], "unavailable");
    }
}
