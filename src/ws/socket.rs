//! The WebSocket protocol on a connection of its own: after the 101 the
//! upgrade hands the TCP socket over (see [`super::handoff`]), and this
//! module reads ([`Frames`], the session's input) and writes
//! ([`FrameWriter`], the socket writer's) RFC 6455 frames on it with
//! actix-http's frame codec, and closes it ([`shut_down`]).
//!
//! Why not actix-ws: it keeps the connection inside actix-http's HTTP/1
//! dispatcher, whose two 8 KiB buffers and task live as long as the
//! WebSocket does, and adds a channel and a body stream between the
//! session and the socket. Here an idle connection holds no buffer at all:
//! [`Frames`] keeps bytes only while a frame is incomplete, and
//! [`FrameWriter`] gives its buffer back when the outbox is empty.

use actix_codec::Decoder;
use actix_http::ws::{CloseReason, Codec, Frame, Item, OpCode, Parser, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What one read of the socket asks for: a frame of the usual size in one
/// read, and a bound on the stack.
const READ_CHUNK: usize = 4096;

/// A whole message from the client: continuation frames are joined.
#[derive(Debug)]
pub enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// Client frames to whole messages, from bytes as they arrive however the
/// network split them. A message over `max` bytes, whole or fragmented, is
/// [`ProtocolError::Overflow`] as soon as its frame header says so; the
/// caller stops after any error.
pub struct MessageDecoder {
    /// Bytes received and not yet decoded; no allocation between frames.
    buf: BytesMut,
    codec: Codec,
    /// A fragmented message being joined: its kind (text?) and its parts.
    joining: Option<(bool, BytesMut)>,
    max: usize,
}

impl MessageDecoder {
    pub fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max),
            joining: None,
            max,
        }
    }

    /// Bytes received.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet part of a decoded frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, if the bytes received hold one.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, ProtocolError> {
        while let Some(frame) = self.codec.decode(&mut self.buf)? {
            if let Some(message) = self.join(frame)? {
                return Ok(Some(message));
            }
        }
        // actix-http's codec checks the size only once the whole frame is
        // buffered: a header announcing a huge frame would make it wait for
        // (and this buffer hold) all of it. It has checked the rest of the
        // header by now.
        if declared_len(&self.buf).is_some_and(|len| len > self.max as u64) {
            return Err(ProtocolError::Overflow);
        }
        if self.buf.is_empty() {
            // Give the allocation back while the connection is idle.
            self.buf = BytesMut::new();
        }
        Ok(None)
    }

    /// A whole message, or `None` while a fragmented one is still arriving.
    fn join(&mut self, frame: Frame) -> Result<Option<Incoming>, ProtocolError> {
        let part = match frame {
            Frame::Text(bytes) => return text(bytes).map(Some),
            Frame::Binary(bytes) => return Ok(Some(Incoming::Binary(bytes))),
            Frame::Ping(bytes) => return Ok(Some(Incoming::Ping(bytes))),
            Frame::Pong(bytes) => return Ok(Some(Incoming::Pong(bytes))),
            Frame::Close(reason) => return Ok(Some(Incoming::Close(reason))),
            Frame::Continuation(part) => part,
        };
        let (is_text, bytes, last) = match part {
            Item::FirstText(bytes) => (Some(true), bytes, false),
            Item::FirstBinary(bytes) => (Some(false), bytes, false),
            Item::Continue(bytes) => (None, bytes, false),
            Item::Last(bytes) => (None, bytes, true),
        };
        if let Some(is_text) = is_text {
            self.joining = Some((is_text, BytesMut::new()));
        }
        // The codec refuses a continuation without a first frame and a
        // first frame inside another message, so `joining` is set here.
        let Some((is_text, parts)) = self.joining.as_mut() else {
            return Err(ProtocolError::ContinuationNotStarted);
        };
        if parts.len() + bytes.len() > self.max {
            return Err(ProtocolError::Overflow);
        }
        parts.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        let is_text = *is_text;
        let whole = std::mem::take(parts).freeze();
        self.joining = None;
        if is_text {
            text(whole).map(Some)
        } else {
            Ok(Some(Incoming::Binary(whole)))
        }
    }
}

/// The payload length a frame header at the start of `buf` announces, once
/// the header's length bytes have arrived (RFC 6455, section 5.2).
fn declared_len(buf: &[u8]) -> Option<u64> {
    let short = u64::from(*buf.get(1)? & 0x7f);
    match short {
        126 => Some(u64::from(u16::from_be_bytes(
            buf.get(2..4)?.try_into().ok()?,
        ))),
        127 => Some(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        _ => Some(short),
    }
}

/// A text message that is not UTF-8 (RFC 6455 closes it with 1007). It
/// travels inside `ProtocolError::Io` because actix-http's error type has
/// no variant for it; [`is_not_utf8`] tells it apart from actix-http's own
/// `InvalidData` errors (reserved bits set, say), which are 1002s.
#[derive(Debug, thiserror::Error)]
#[error("a text message is not UTF-8")]
pub struct NotUtf8;

/// Whether `e` is a [`NotUtf8`].
pub fn is_not_utf8(e: &ProtocolError) -> bool {
    matches!(e, ProtocolError::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<NotUtf8>()))
}

fn text(bytes: Bytes) -> Result<Incoming, ProtocolError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, NotUtf8)))
}

/// The client's messages, decoded from the socket in the order they were
/// sent; any protocol error ends the stream after it. The socket is shared
/// with the [`FrameWriter`]: reads and writes go through readiness, so
/// neither needs the other's half.
pub struct Frames {
    socket: Arc<TcpStream>,
    decoder: MessageDecoder,
    done: bool,
}

impl Frames {
    /// `early` is what the client sent after its upgrade request, read
    /// already by the HTTP layer.
    pub fn new(socket: Arc<TcpStream>, early: &[u8], max: usize) -> Self {
        let mut decoder = MessageDecoder::new(max);
        decoder.extend(early);
        Self {
            socket,
            decoder,
            done: false,
        }
    }
}

impl Stream for Frames {
    type Item = Result<Incoming, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // Each turn decodes what is buffered or reads more; the codec's
        // size limit bounds what a turn can add to the buffer, and a read
        // that returns nothing ready ends the poll.
        loop {
            match this.decoder.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if let Err(e) = ready!(this.socket.poll_read_ready(cx)) {
                this.done = true;
                return Poll::Ready(Some(Err(ProtocolError::Io(e))));
            }
            let mut chunk = [0u8; READ_CHUNK];
            match this.socket.try_read(&mut chunk) {
                Ok(0) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Ok(n) => this.decoder.extend(&chunk[..n]),
                // Readiness was stale; the next turn waits for it again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(e))));
                }
            }
        }
    }
}

/// The frames going to the client, encoded into a buffer and written to
/// the socket.
pub struct FrameWriter {
    socket: Arc<TcpStream>,
    /// Encoded and not yet written; [`FrameWriter::flush`] advances it, so
    /// a flush cut short never leaves half a frame to be followed by another.
    buf: BytesMut,
}

impl FrameWriter {
    pub fn new(socket: Arc<TcpStream>) -> Self {
        Self {
            socket,
            buf: BytesMut::new(),
        }
    }

    pub fn text(&mut self, text: &str) {
        Parser::write_message(&mut self.buf, text, OpCode::Text, true, false);
    }

    pub fn ping(&mut self) {
        Parser::write_message(&mut self.buf, b"", OpCode::Ping, true, false);
    }

    pub fn pong(&mut self, payload: &[u8]) {
        Parser::write_message(&mut self.buf, payload, OpCode::Pong, true, false);
    }

    pub fn close(&mut self, reason: Option<CloseReason>) {
        Parser::write_close(&mut self.buf, reason, false);
    }

    /// Bytes encoded and not yet written.
    pub fn pending(&self) -> usize {
        self.buf.remaining()
    }

    /// Writes what is encoded, waiting for room in the socket. Cancelling
    /// it keeps what was not written yet, from a frame boundary or inside
    /// one, for the next flush.
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.buf.has_remaining() {
            self.socket.writable().await?;
            match self.socket.try_write(self.buf.chunk()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.buf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The close frame is written: see [`shut_down`].
    pub async fn shut_down(self, deadline: Instant) {
        shut_down(&self.socket, deadline).await;
    }

    /// Gives the buffer's memory back: the connection has nothing to send.
    pub fn release(&mut self) {
        if !self.buf.has_remaining() {
            self.buf = BytesMut::new();
        }
    }
}

/// Ends a connection whose last bytes (a close frame, a refusal) are
/// written: sends FIN, then reads and discards what the client still sends
/// until it closes its side, or until `deadline`.
///
/// Closing the socket with the client's bytes unread would make the kernel
/// answer with a reset, and a reset makes the client's kernel discard what
/// the client had not read yet: the close frame, or the last frames before
/// it for a reader that is behind. A client that read the close answers it
/// and closes; one that never does costs a socket until the deadline.
pub async fn shut_down(socket: &TcpStream, deadline: Instant) {
    let _ = socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write);
    let discard = async {
        // On the heap, and only now: an array here would be part of every
        // socket writer's task for the connection's whole life (the task
        // is as large as its largest await point), 4 KiB per connection.
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, discard).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt as _;
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: the server's socket and the client's.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (server, client) = tokio::join!(listener.accept(), client);
        (server.unwrap().0, client.unwrap())
    }

    /// A client frame: masked, as RFC 6455 requires of clients.
    fn client_frame(payload: &[u8], op: OpCode, fin: bool) -> Vec<u8> {
        let mut buf = BytesMut::new();
        Parser::write_message(&mut buf, payload, op, fin, true);
        buf.to_vec()
    }

    async fn frames(bytes: Vec<u8>, early: &[u8], max: usize) -> Frames {
        let (server, mut client) = pair().await;
        client.write_all(&bytes).await.unwrap();
        // The bytes are in the server's kernel buffer; EOF follows them.
        client.shutdown().await.unwrap();
        Frames::new(Arc::new(server), early, max)
    }

    #[tokio::test]
    async fn bytes_read_with_the_upgrade_request_come_first_then_the_socket() {
        let early = client_frame(b"first", OpCode::Text, true);
        let later = client_frame(b"second", OpCode::Text, true);
        let mut frames = frames(later, &early, 1024).await;
        let mut texts = Vec::new();
        while let Some(Ok(Incoming::Text(text))) = frames.next().await {
            texts.push(text.to_string());
        }
        assert_eq!(texts, ["first", "second"]);
    }

    #[tokio::test]
    async fn a_fragmented_message_arrives_whole() {
        let mut bytes = client_frame(b"hel", OpCode::Text, false);
        bytes.extend(client_frame(b"lo ", OpCode::Continue, false));
        bytes.extend(client_frame(b"there", OpCode::Continue, true));
        let mut frames = frames(bytes, b"", 1024).await;
        let Some(Ok(Incoming::Text(text))) = frames.next().await else {
            panic!("expected one text message");
        };
        assert_eq!(&*text, "hello there");
        assert!(frames.next().await.is_none());
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_an_overflow_however_it_was_framed() {
        let whole = client_frame(&[b'a'; 20], OpCode::Text, true);
        let mut fragmented = client_frame(&[b'a'; 10], OpCode::Text, false);
        fragmented.extend(client_frame(&[b'a'; 10], OpCode::Continue, true));
        for bytes in [whole, fragmented] {
            let mut frames = frames(bytes, b"", 16).await;
            assert!(matches!(
                frames.next().await,
                Some(Err(ProtocolError::Overflow))
            ));
            assert!(
                frames.next().await.is_none(),
                "the stream ends after an error"
            );
        }
    }

    #[tokio::test]
    async fn frames_before_a_bad_one_are_handed_out_first() {
        let mut bytes = client_frame(b"kept", OpCode::Text, true);
        bytes.extend(client_frame(&[b'a'; 64], OpCode::Text, true));
        let mut frames = frames(bytes, b"", 32).await;
        assert!(matches!(frames.next().await, Some(Ok(Incoming::Text(t))) if &*t == "kept"));
        assert!(matches!(
            frames.next().await,
            Some(Err(ProtocolError::Overflow))
        ));
    }

    #[test]
    fn a_header_announcing_too_much_is_refused_before_the_payload_arrives() {
        let mut decoder = MessageDecoder::new(1024);
        // FIN + text, masked, 64-bit length: 1 GiB; then the mask and a
        // little payload. The codec alone would wait for the whole GiB.
        let mut header = vec![0x81, 0xff];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4, b'a', b'b']);
        decoder.extend(&header);
        assert!(matches!(
            decoder.next_message(),
            Err(ProtocolError::Overflow)
        ));
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_an_error() {
        let mut frames = frames(client_frame(&[0xff, 0xfe], OpCode::Text, true), b"", 64).await;
        assert!(matches!(
            frames.next().await,
            Some(Err(ProtocolError::Io(_)))
        ));
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let bytes = client_frame(b"hello", OpCode::Text, true);
        let mut frames = frames(bytes, b"", 1024).await;
        assert!(frames.next().await.is_some());
        assert!(frames.next().await.is_none());
        assert_eq!(frames.decoder.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn the_writer_sends_frames_in_order_and_gives_its_buffer_back() {
        let (server, mut client) = pair().await;
        let mut writer = FrameWriter::new(Arc::new(server));
        writer.text("one");
        writer.ping();
        writer.close(Some(CloseReason::from(actix_http::ws::CloseCode::Again)));
        writer.flush().await.unwrap();
        assert_eq!(writer.pending(), 0);
        writer.release();
        assert_eq!(writer.buf.capacity(), 0);
        // The client reads to the end: the writer sent FIN, and waits
        // for the client's own end no longer than the deadline.
        let soon = Instant::now() + std::time::Duration::from_millis(100);
        writer.shut_down(soon).await;
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        let mut received = BytesMut::from(&received[..]);
        let mut codec = Codec::new().client_mode();
        let mut decoded = Vec::new();
        while let Some(frame) = codec.decode(&mut received).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(
            decoded,
            [
                Frame::Text(Bytes::from_static(b"one")),
                Frame::Ping(Bytes::new()),
                Frame::Close(Some(CloseReason::from(actix_http::ws::CloseCode::Again))),
            ]
        );
    }
}
