//! The hand-off of an upgraded connection from HTTP to its WebSocket.
//!
//! actix-http sends every request that asks for a WebSocket upgrade to the
//! listener's upgrade service ([`factory`]) together with the connection
//! itself. That service still answers it through the whole application
//! (middleware, routing, `GET /ws`'s checks), with the request marked
//! [`Upgradable`]. When the answer is a 101 carrying a [`Handoff`], the 101
//! is written and the socket goes to the handoff, which starts the session
//! on it (`super::upgrade`); the HTTP dispatcher, its two 8 KiB buffers and
//! its task end there. Any other answer is written, and the connection
//! closes.

use actix_codec::Framed;
use actix_http::body::{BodySize, to_bytes_limited};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, HttpMessage, Request, Response, StatusCode};
use actix_service::{Service, ServiceFactory, fn_service};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use futures_util::SinkExt;
use std::rc::Rc;
use tokio::net::TcpStream;

/// Set on a request that arrived with its connection, so that `GET /ws`
/// may answer it with a [`Handoff`]: no other request can upgrade.
#[derive(Clone, Copy, Debug)]
pub struct Upgradable;

/// What starts the WebSocket on the socket once the 101 is written: the
/// socket, and what the client sent after its request (already read).
type Start = Box<dyn FnOnce(TcpStream, &[u8])>;

/// Put by `GET /ws` on its 101 response.
pub struct Handoff(Start);

impl Handoff {
    pub fn new(start: impl FnOnce(TcpStream, &[u8]) + 'static) -> Self {
        Self(Box::new(start))
    }
}

/// The largest error body written on an upgrade request (a problem
/// document is a few hundred bytes).
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// How long a refused upgrade's connection waits for its client to close,
/// so that the refusal is not lost to a reset (see `socket::shut_down`).
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// The upgrade service of one worker: `app` is that worker's instance of
/// the application, the same one its plain requests reach.
pub fn factory<A, B>(
    app: A,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, Codec>),
    Config = (),
    Response = (),
    Error = actix_web::Error,
    InitError = (),
>
where
    A: ServiceFactory<
            Request,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        > + 'static,
    B: MessageBody + 'static,
    A::InitError: std::fmt::Debug,
    A::Service: 'static,
{
    let app = Rc::new(app);
    actix_service::fn_factory(move || {
        let app = app.clone();
        async move {
            let app = Rc::new(app.new_service(()).await.map_err(|e| {
                tracing::error!(error = ?e, "building the upgrade service");
            })?);
            Ok(fn_service(move |(req, framed)| {
                let app = app.clone();
                async move {
                    // The only failure is writing to a client that left.
                    if let Err(error) = answer(&*app, req, framed).await {
                        tracing::debug!(%error, "the client left during the upgrade");
                    }
                    Ok::<_, actix_web::Error>(())
                }
            }))
        }
    })
}

/// Answers one upgrade request through the application, then hands the
/// socket off or closes it.
async fn answer<A, B>(
    app: &A,
    req: Request,
    mut framed: Framed<TcpStream, Codec>,
) -> std::io::Result<()>
where
    A: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    req.extensions_mut().insert(Upgradable);
    let response: Response<BoxBody> = match app.call(req).await {
        Ok(response) => response.map_into_boxed_body().into(),
        Err(e) => e.error_response().into(),
    };
    let (mut head, body) = response.into_parts();
    let handoff = head.extensions_mut().remove::<Handoff>();
    match handoff {
        Some(Handoff(start)) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed.send(Message::Item((head, BodySize::None))).await?;
            let parts = framed.into_parts();
            // The session copies these bytes; the dispatcher's 8 KiB
            // read buffer is freed here.
            start(parts.io, &parts.read_buf);
        }
        _ => {
            let (mut head, body) = match to_bytes_limited(body, MAX_REFUSAL_BYTES).await {
                Ok(Ok(body)) => (head, body),
                _ => {
                    tracing::warn!(status = %head.status(), "an answer to an upgrade request could not be read whole");
                    (
                        Response::internal_server_error().drop_body(),
                        Default::default(),
                    )
                }
            };
            let size = BodySize::Sized(body.len() as u64);
            // Otherwise the codec answers in the request's terms
            // (`Connection: upgrade`); this connection ends here.
            head.head_mut().set_connection_type(ConnectionType::Close);
            framed.send(Message::Item((head, size))).await?;
            if !body.is_empty() {
                framed.send(Message::Chunk(Some(body))).await?;
            }
            framed.send(Message::Chunk(None)).await?;
            let deadline = tokio::time::Instant::now() + REFUSAL_LINGER;
            super::socket::shut_down(&framed.into_parts().io, deadline).await;
        }
    }
    Ok(())
}
