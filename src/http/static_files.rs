//! The browser chat client: the files under `static/`, embedded in the
//! binary at compile time (`rust-embed` with `debug-embed`, so debug and
//! release builds behave alike and the one binary is enough). `/` serves
//! `index.html`; `/<file>` serves that file. Cargo rebuilds when an
//! embedded file changes, but not when one is added: touch this file then.
//!
//! [`configure`] must be mounted last: its resource only matches paths that
//! name an embedded file (a guard checks), so `/api`, `/ws`, the probes and
//! unknown paths keep their own handlers and problem+json 404s.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use rust_embed::{Embed, EmbeddedFile};
use std::fmt::Write;

#[derive(Embed)]
#[folder = "static/"]
struct Assets;

/// Mounts the client: GET and HEAD of `/` and of every embedded file.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{path:.*}")
            .guard(guard::Any(guard::Get()).or(guard::Head()))
            .guard(guard::fn_guard(|ctx| {
                lookup(ctx.head().uri.path()).is_some()
            }))
            .to(serve),
    );
}

/// The embedded file a request path names, if any.
fn lookup(path: &str) -> Option<EmbeddedFile> {
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        name => name,
    };
    Assets::get(name)
}

async fn serve(req: HttpRequest) -> HttpResponse {
    let Some(file) = lookup(req.path()) else {
        // The guard already matched; a miss here means no such file after all.
        return HttpResponse::NotFound().finish();
    };
    let content_type = content_type(&file);
    respond(&req, file, content_type)
}

/// An embedded file as `content_type`, revalidated by its strong ETag
/// (`If-None-Match` answers 304). Also used by [`super::sdk`].
pub fn respond(req: &HttpRequest, file: EmbeddedFile, content_type: String) -> HttpResponse {
    let etag = etag(&file);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    // The file names carry no content hash, so a cached copy must be
    // revalidated on every use; the ETag makes that a cheap 304.
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((header::ETAG, etag));
    if fresh {
        return res.finish();
    }
    res.content_type(content_type).body(file.data.into_owned())
}

/// A strong ETag from the SHA-256 the crate computed at compile time.
fn etag(file: &EmbeddedFile) -> String {
    let hash = file.metadata.sha256_hash();
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &hash[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// The guessed MIME type; text types say UTF-8 so that browsers never sniff
/// (`X-Content-Type-Options: nosniff` is set on every response).
fn content_type(file: &EmbeddedFile) -> String {
    let mime = file.metadata.mimetype();
    if mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}
