//! The client SDK (contract 6.4): `static/sdk/parley.js`, one ES module,
//! and `static/sdk/parley.d.ts`, its declarations, embedded in the binary so
//! that a client always gets the SDK of the server it talks to. Served with
//! explicit types (a guessed `.ts` is an MPEG stream) and the same ETag
//! revalidation as the page's files.

use crate::http::static_files::respond;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/sdk/"]
struct Sdk;

const JS: &str = "text/javascript; charset=utf-8";
const DTS: &str = "application/typescript; charset=utf-8";

/// Mounts `GET /sdk/parley.js` and `GET /sdk/parley.d.ts` (HEAD too).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sdk/parley.js")
            .route(web::get().to(module))
            .route(web::head().to(module)),
    )
    .service(
        web::resource("/sdk/parley.d.ts")
            .route(web::get().to(declarations))
            .route(web::head().to(declarations)),
    );
}

/// The SDK as one ES module.
#[utoipa::path(get, path = "/sdk/parley.js", tag = "sdk",
    params(("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the SDK; `Cache-Control: no-cache` and a strong `ETag`", body = String, content_type = "text/javascript; charset=utf-8"),
        (status = 304, description = "the cached copy with this ETag is current")))]
pub async fn module(req: HttpRequest) -> HttpResponse {
    serve(&req, "parley.js", JS)
}

/// The SDK's TypeScript declarations.
#[utoipa::path(get, path = "/sdk/parley.d.ts", tag = "sdk",
    params(("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the declarations; `Cache-Control: no-cache` and a strong `ETag`", body = String, content_type = "application/typescript; charset=utf-8"),
        (status = 304, description = "the cached copy with this ETag is current")))]
pub async fn declarations(req: HttpRequest) -> HttpResponse {
    serve(&req, "parley.d.ts", DTS)
}

fn serve(req: &HttpRequest, name: &str, content_type: &str) -> HttpResponse {
    match Sdk::get(name) {
        Some(file) => respond(req, file, content_type.to_owned()),
        // Both files are in the tree at compile time; this is a broken build.
        None => HttpResponse::NotFound().finish(),
    }
}
