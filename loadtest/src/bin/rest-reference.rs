//! The REST reference for `loadtest/rest.sh`: one bare actix-web handler
//! answering `GET /api/v1/users/me` with a JSON body shaped like parley's,
//! with no authentication, no store and no middleware, so parley's
//! authenticated REST can be put beside what the framework alone does on
//! the same core.
//!
//! usage: rest-reference [ADDR]   (default 127.0.0.1:19200; loopback only)

use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Serialize;
use std::net::SocketAddr;

/// The fields of parley's `GET /api/v1/users/me` answer.
#[derive(Serialize)]
struct Me {
    id: uuid::Uuid,
    username: &'static str,
    email: &'static str,
    display_name: Option<&'static str>,
    bio: Option<&'static str>,
    created_at: &'static str,
}

async fn me() -> HttpResponse {
    HttpResponse::Ok().json(Me {
        id: uuid::Uuid::nil(),
        username: "reference",
        email: "reference@example.com",
        display_name: None,
        bio: None,
        created_at: "2026-12-04T00:00:00Z",
    })
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19200".into())
        .parse()?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "serve on 127.0.0.0/8 only, not {addr}"
    );
    HttpServer::new(|| App::new().route("/api/v1/users/me", web::get().to(me)))
        .bind(addr)?
        .run()
        .await?;
    Ok(())
}
