//! Opening one client connection: a TCP socket bound to its source address
//! (so 10,000+ sockets do not exhaust one address's ephemeral ports), the
//! WebSocket handshake with the bearer token, then `hello`, and for
//! subscribers `subscribe` → `subscribed`.

use crate::wire::{ClientFrame, Frame};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer per connection, allocated up front (tungstenite's default,
/// 128 KiB, would cost the harness 1.3 GiB at 10,000 connections).
const READ_BUFFER: usize = 16 * 1024;

/// Frames read while waiting for one reply (`presence` and the like may
/// come first); more means the server is not answering.
const MAX_FRAMES_BEFORE_REPLY: usize = 10_000;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The server's resolved loopback address.
    pub addr: SocketAddr,
    pub url: String,
    /// Source addresses 127.0.0.2 ..; none: the kernel chooses.
    pub source_ips: u8,
}

impl Endpoint {
    /// The source address of connection `i`.
    pub fn source_of(&self, i: usize) -> Option<Ipv4Addr> {
        if self.source_ips == 0 {
            return None;
        }
        let offset = u8::try_from(i % usize::from(self.source_ips)).ok()?;
        Some(Ipv4Addr::new(127, 0, 0, 2 + offset))
    }
}

/// Connects, upgrades and waits for `hello`.
pub async fn open(endpoint: &Endpoint, i: usize, token: Option<&str>) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = endpoint.source_of(i) {
        socket
            .bind(SocketAddr::from((ip, 0)))
            .with_context(|| format!("binding a client socket to {ip}"))?;
    }
    let stream = socket
        .connect(endpoint.addr)
        .await
        .with_context(|| format!("connecting to {}", endpoint.addr))?;
    stream.set_nodelay(true)?;
    let mut request = endpoint.url.as_str().into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) =
        match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
            Ok(pair) => pair,
            Err(WsError::Http(response)) => {
                bail!("upgrade refused with HTTP {}", response.status())
            }
            Err(e) => return Err(e).context("WebSocket handshake"),
        };
    reply(&mut ws, "hello", |_| true).await?;
    Ok(ws)
}

/// Subscribes to `room`; the room's seq at subscribe time.
pub async fn subscribe(ws: &mut Ws, room: &str) -> anyhow::Result<i64> {
    let frame = ClientFrame::Subscribe {
        room,
        since: None,
        reference: "sub",
    };
    ws.send(Message::text(frame.encode()?)).await?;
    let seq = reply(ws, "subscribed", |f| f.room.as_deref() == Some(room)).await?;
    seq.context("`subscribed` without a seq")
}

/// Reads until a frame of `kind` that `matches`; its `seq`. An `error`
/// frame or a close ends the wait with that reason.
async fn reply(
    ws: &mut Ws,
    kind: &str,
    matches: impl Fn(&Frame<'_>) -> bool,
) -> anyhow::Result<Option<i64>> {
    for _ in 0..MAX_FRAMES_BEFORE_REPLY {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                bail!("closed while waiting for `{kind}`: {close:?}")
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context(format!("waiting for `{kind}`")),
            None => bail!("connection ended while waiting for `{kind}`"),
        };
        let frame = Frame::parse(&text)?;
        if frame.kind == kind && matches(&frame) {
            return Ok(frame.seq);
        }
        if frame.kind == "error" {
            bail!(
                "`error` {} while waiting for `{kind}`: {}",
                frame.code.as_deref().unwrap_or("?"),
                frame.message.as_deref().unwrap_or("")
            );
        }
    }
    bail!("no `{kind}` within {MAX_FRAMES_BEFORE_REPLY} frames")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cycle_over_the_configured_addresses() {
        let e = Endpoint {
            addr: "127.0.0.1:1".parse().unwrap(),
            url: "ws://127.0.0.1:1/ws".into(),
            source_ips: 16,
        };
        assert_eq!(e.source_of(0), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(e.source_of(15), Some(Ipv4Addr::new(127, 0, 0, 17)));
        assert_eq!(e.source_of(16), Some(Ipv4Addr::new(127, 0, 0, 2)));
        let none = Endpoint { source_ips: 0, ..e };
        assert_eq!(none.source_of(3), None);
    }
}
