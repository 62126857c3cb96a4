//! The WebSocket's refusals and limits: who may upgrade (token; `Origin`
//! is in `ws_origin`), bad frames answered without dropping the connection, frame size, frame
//! rate, heartbeat, and the slow consumer that is closed rather than
//! buffered for and then recovers with `since`.

use crate::both_backends;
use crate::support::{
    Backend, FRAME_TIMEOUT, TestApp, TestKey, TestUser, UPGRADE_HEADERS, WsClient,
};
use serde_json::{Value, json};
use std::cell::Cell;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

both_backends!(a_slow_consumer_is_closed_with_1013_while_others_get_every_message);

/// The numeric code of a close frame the server must have sent.
fn close_code(frame: Option<CloseFrame>) -> u16 {
    u16::from(frame.expect("the server sent a close frame").code)
}

/// Sends a `ping` and requires its `pong` as the very next frame.
async fn assert_alive(ws: &mut WsClient, reference: &str) {
    ws.send(json!({"type": "ping", "ref": reference})).await;
    assert_eq!(ws.next().await, json!({"type": "pong", "ref": reference}));
}

// --- the upgrade -------------------------------------------------------------

#[actix_web::test]
async fn an_upgrade_without_a_valid_token_is_refused_with_401_before_upgrading() {
    let key = TestKey::new();
    let dir = key.dir.clone();
    let app = TestApp::spawn_with(Backend::Memory, |s| s.auth.keys_dir = Some(dir)).await;
    let ada = app.register("ada").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": ada.id, "name": "ada", "iss": "parley", "aud": "parley", "iat": now - 1000, "nbf": now - 1000, "exp": exp});

    assert_eq!(app.ws_refused(app.ws_request(None, None)).await, 401);
    let garbage = app.ws_request(Some("not-a-jwt"), None);
    assert_eq!(app.ws_refused(garbage).await, 401);
    let expired = key.sign(&app, &claims(now - 60)).await;
    let expired = app.ws_request(Some(&expired), None);
    assert_eq!(app.ws_refused(expired).await, 401);
    let garbage_query = format!("{}?access_token=not-a-jwt", app.ws_url());
    let garbage_query = garbage_query.into_client_request().unwrap();
    assert_eq!(app.ws_refused(garbage_query).await, 401);

    // The same key with a live expiry is accepted: the refusal was the expiry.
    let fresh = key.sign(&app, &claims(now + 600)).await;
    let ws = WsClient::open(app.ws_request(Some(&fresh), None))
        .await
        .unwrap();
    assert_eq!(ws.hello["user"], ada.id.as_str());
}

#[actix_web::test]
async fn a_browser_may_send_its_token_as_the_access_token_query_parameter() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let url = format!("{}?access_token={}", app.ws_url(), ada.access);
    let mut ws = WsClient::open(url.into_client_request().unwrap())
        .await
        .unwrap();
    assert_eq!(ws.hello["user"], ada.id.as_str());
    assert_alive(&mut ws, "q").await;
}

#[actix_web::test]
async fn an_upgrade_request_to_any_other_route_gets_that_routes_answer_then_the_connection_closes()
{
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let answer = app
        .raw_exchange(format!(
            "GET /api/v1/users/me HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             x-request-id: upgrade-elsewhere\r\n{UPGRADE_HEADERS}\r\n",
            ada.access
        ))
        .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("x-request-id: upgrade-elsewhere"), "{head}");
    let me: Value = serde_json::from_str(body).unwrap();
    assert_eq!(me["id"], ada.id.as_str());

    // A refused WebSocket upgrade gets its problem document whole, too.
    let answer = app
        .raw_exchange(format!(
            "GET /ws HTTP/1.1\r\nhost: x\r\n{UPGRADE_HEADERS}\r\n"
        ))
        .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["status"], 401);
}

#[actix_web::test]
async fn a_get_of_ws_that_is_not_an_upgrade_is_a_400() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let res = app
        .client
        .get(format!("{}/ws", app.base))
        .bearer_auth(&ada.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not a WebSocket upgrade"),
        "{problem}"
    );
}

// --- bad input ---------------------------------------------------------------

#[actix_web::test]
async fn every_bad_frame_gets_a_bad_request_error_and_the_connection_stays_open() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let room = app.create_room(&ada, "general", "public").await;
    let mut ws = app.ws(&ada).await;
    let long_id = "c".repeat(65);
    let cases: Vec<(&str, Message, Value)> = vec![
        ("invalid JSON", Message::text("{not json"), Value::Null),
        (
            "unknown type",
            text(json!({"type": "dance", "ref": "r1"})),
            json!("r1"),
        ),
        (
            "publish without client_id",
            text(json!({"type": "publish", "room": room, "body": "hi", "ref": "r2"})),
            json!("r2"),
        ),
        (
            "client_id of 65 characters",
            text(
                json!({"type": "publish", "room": room, "body": "hi", "client_id": long_id, "ref": "r3"}),
            ),
            json!("r3"),
        ),
        (
            "negative since",
            text(json!({"type": "subscribe", "room": room, "since": -1, "ref": "r4"})),
            json!("r4"),
        ),
        (
            "room that is not a UUID",
            text(json!({"type": "subscribe", "room": "general", "ref": "r5"})),
            json!("r5"),
        ),
        (
            "binary frame",
            Message::binary(b"{\"type\":\"ping\"}".to_vec()),
            Value::Null,
        ),
    ];
    for (i, (why, message, reference)) in cases.into_iter().enumerate() {
        ws.send_raw(message).await;
        let error = ws.next().await;
        assert_eq!(
            (&error["type"], &error["code"], &error["ref"]),
            (&json!("error"), &json!("bad_request"), &reference),
            "{why}: {error}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_alive(&mut ws, &format!("after-{i}")).await;
    }
    // Nothing was stored by the refused publishes.
    let (ack, _) = ws.publish(&room, "first", "ok").await;
    assert_eq!(ack["seq"], 1, "{ack}");
}

#[actix_web::test]
async fn subscribing_to_an_unknown_room_is_not_found_and_the_connection_stays_open() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    ws.send(json!({"type": "subscribe", "room": unknown, "ref": "s"}))
        .await;
    let error = ws.next().await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("not_found"), &json!("s"))
    );
    assert_alive(&mut ws, "still").await;
}

fn text(frame: Value) -> Message {
    Message::text(frame.to_string())
}

// --- frame size, rate, heartbeat ---------------------------------------------

#[actix_web::test]
async fn a_frame_larger_than_the_limit_closes_the_connection_with_1009() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    // Just under the limit is fine (the echoed ref is cut to 128 chars).
    let reference = "r".repeat(4000);
    ws.send(json!({"type": "ping", "ref": reference})).await;
    assert_eq!(ws.next().await["ref"], "r".repeat(128));

    let padding = "x".repeat(5000);
    ws.send(json!({"type": "ping", "ref": padding})).await;
    assert_eq!(close_code(ws.closed().await), 1009);
}

#[actix_web::test]
async fn a_header_announcing_a_frame_over_the_limit_closes_with_1009_before_its_payload() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    // A masked text frame that says it is 1 GiB long, and 100 bytes of it:
    // the server must not wait for (and buffer) the rest.
    let mut frame = vec![0x81, 0xff];
    frame.extend_from_slice(&(1u64 << 30).to_be_bytes());
    frame.extend_from_slice(&[7, 7, 7, 7]);
    frame.extend_from_slice(&[b'x'; 100]);
    ws.send_bytes(&frame).await;
    assert_eq!(close_code(ws.closed().await), 1009);
}

#[actix_web::test]
async fn a_client_still_sending_a_message_far_over_the_limit_gets_its_1009() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    // The server decides on the header and closes while most of the 1 MiB
    // is still on its way: it must read and discard the rest, or its
    // socket's close would reset the connection and lose the close frame.
    ws.send_raw(Message::text("x".repeat(1 << 20))).await;
    assert_eq!(close_code(ws.closed().await), 1009);
}

/// Sends `bytes` on a fresh WebSocket of `user`'s and reads until the
/// server ends its side; returns the code of the close frame it sent (the
/// `hello` and any other frames come before it) and the socket.
async fn raw_close_code(
    app: &TestApp,
    user: &TestUser,
    bytes: &[u8],
) -> (u16, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = app.raw_upgrade(&user.access).await;
    socket.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(FRAME_TIMEOUT, socket.read_to_end(&mut received))
        .await
        .expect("the server ends its side")
        .expect("the close frame and the end of the server's side");
    // The last frame: an unmasked close (0x88) with a short payload.
    let close = received
        .windows(4)
        .rposition(|w| w[0] == 0x88 && w[1] >= 2 && w[1] < 126)
        .unwrap_or_else(|| panic!("no close frame in {received:?}"));
    let code = u16::from_be_bytes([received[close + 2], received[close + 3]]);
    (code, socket)
}

#[actix_web::test]
async fn a_client_still_sending_after_its_1009_gets_a_clean_end_not_a_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    // A masked text frame announcing 1 MiB: refused from its header.
    let mut header = vec![0x81, 0xff];
    header.extend_from_slice(&(1u64 << 20).to_be_bytes());
    header.extend_from_slice(&[7, 7, 7, 7]);
    let (code, mut socket) = raw_close_code(&app, &ada, &header).await;
    assert_eq!(code, 1009);
    // The client had more of its message on the way, as a client does
    // that reads and writes apart. The server takes and discards it until
    // the client closes too. Closing with those bytes unread would reset
    // the connection, and a reset can discard the close frame of a client
    // that has not read it yet (and fails this client's next call).
    socket.write_all(&[b'x'; 64 * 1024]).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut rest = [0u8; 16];
    let end = tokio::time::timeout(FRAME_TIMEOUT, socket.read(&mut rest))
        .await
        .expect("the connection ends");
    assert!(matches!(end, Ok(0)), "not a clean end: {end:?}");
}

#[actix_web::test]
async fn a_frame_breaking_the_protocol_closes_with_1002_and_text_that_is_not_utf8_with_1007() {
    let app = TestApp::spawn(Backend::Memory).await;
    let ada = app.register("ada").await;
    // RFC 6455, 5.1: a client's frames are masked. This one is not.
    let unmasked = [0x81, 0x02, b'h', b'i'];
    assert_eq!(raw_close_code(&app, &ada, &unmasked).await.0, 1002);
    // A continuation frame with no message to continue.
    let orphan = [0x80, 0x80, 0, 0, 0, 0];
    assert_eq!(raw_close_code(&app, &ada, &orphan).await.0, 1002);
    // A frame with a reserved bit set (RSV1: compression, not negotiated).
    let reserved = [0xc1, 0x80, 0, 0, 0, 0];
    assert_eq!(raw_close_code(&app, &ada, &reserved).await.0, 1002);
    // A text frame (mask key 0) whose two bytes are not UTF-8.
    let not_utf8 = [0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe];
    assert_eq!(raw_close_code(&app, &ada, &not_utf8).await.0, 1007);
    // The server counts them by code.
    let text = app.metrics_text().await;
    for code in ["1002", "1007"] {
        let label = format!("code=\"{code}\"");
        assert!(
            crate::support::metrics::metric(&text, "parley_ws_closes_total", &[&label]).is_some(),
            "no {label} in parley_ws_closes_total"
        );
    }
}

#[actix_web::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.max_frame_bytes = 4096).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    let fragment = |opcode, fin| Message::Frame(Frame::message(vec![b' '; 2000], opcode, fin));
    // Fragments joining to under the limit are one message, answered as one.
    let ping = br#"{"type":"ping","ref":"small"}"#.to_vec();
    ws.send_raw(Message::Frame(Frame::message(
        ping,
        OpCode::Data(Data::Text),
        false,
    )))
    .await;
    ws.send_raw(fragment(OpCode::Data(Data::Continue), true))
        .await;
    assert_eq!(ws.next().await["ref"], "small");

    // Each fragment is small; together they pass the limit.
    ws.send_raw(fragment(OpCode::Data(Data::Text), false)).await;
    for _ in 0..3 {
        ws.send_raw(fragment(OpCode::Data(Data::Continue), false))
            .await;
    }
    ws.send_raw(fragment(OpCode::Data(Data::Continue), true))
        .await;
    assert_eq!(close_code(ws.closed().await), 1009);
}

#[actix_web::test]
async fn frames_over_the_rate_are_refused_and_sustained_abuse_closes_with_1008() {
    let app = TestApp::spawn_with(Backend::Memory, |s| {
        s.rate.ws_msgs_per_s = NonZeroU32::new(5).unwrap();
    })
    .await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    for i in 0..8 {
        ws.send(json!({"type": "ping", "ref": format!("p{i}")}))
            .await;
    }
    // The burst allowance is the per-second rate; each refused frame is
    // answered by an error instead of its pong.
    for i in 0..5 {
        assert_eq!(
            ws.next().await,
            json!({"type": "pong", "ref": format!("p{i}")})
        );
    }
    for i in 5..8 {
        let error = ws.next().await;
        assert_eq!(
            (&error["code"], &error["ref"]),
            (&json!("rate_limited"), &json!(format!("p{i}")))
        );
        assert!(error["retry_after_ms"].as_u64().unwrap() > 0, "{error}");
    }
    // Keep exceeding the rate, one frame per answer, until the server gives up.
    let mut sent = 8;
    let close = loop {
        assert!(sent < 100, "still open after {sent} frames over the rate");
        ws.send(json!({"type": "ping"})).await;
        sent += 1;
        match ws.next_or_closed().await {
            Ok(frame) => assert!(
                frame["code"] == "rate_limited" || frame["type"] == "pong",
                "{frame}"
            ),
            Err(close) => break close,
        }
    };
    assert_eq!(close_code(close), 1008);
}

#[actix_web::test]
async fn a_client_that_never_answers_pings_is_closed_after_three_intervals() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.heartbeat_ms = 200).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    assert_eq!(ws.hello["heartbeat_ms"], 200);
    // The library answers pings only while it reads: not reading is silence.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Reading now finds the close (or the connection already gone).
    if let Some(close) = ws.closed().await {
        assert_eq!(u16::from(close.code), 1000);
        assert!(close.reason.contains("heartbeat"), "{close:?}");
    }
    assert!(ws.recv().await.is_none(), "the connection ended");
}

#[actix_web::test]
async fn a_client_that_answers_pings_stays_connected_across_many_intervals() {
    let app = TestApp::spawn_with(Backend::Memory, |s| s.ws.heartbeat_ms = 200).await;
    let ada = app.register("ada").await;
    let mut ws = app.ws(&ada).await;
    let pings = ws.read_for(Duration::from_millis(1200)).await;
    assert!(
        pings >= 3,
        "the server pinged {pings} times in six intervals"
    );
    assert_alive(&mut ws, "after-a-while").await;
}

// --- slow consumers ----------------------------------------------------------

/// Publishes of 7,000 characters fill any socket buffer long before this.
const MAX_PUBLISHES: i64 = 10_000;
/// Published after the slow consumer was dropped, to show delivery goes on.
const AFTER_DROP: i64 = 20;

fn big_body(i: i64) -> String {
    format!("{i:05}{}", "x".repeat(6995))
}

/// What the normal subscriber saw; shared with the publishing test body.
#[derive(Default)]
struct Seen {
    /// Set when the room announced the slow consumer offline (dropped).
    dropped: Cell<bool>,
    /// The last seq that will be published; 0 while still unknown.
    last: Cell<i64>,
}

/// Reads messages in order until `seen.last`, noting when `slow` goes offline.
async fn read_until_last(mut ws: WsClient, seen: Rc<Seen>, slow: String) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&seen.last.get()) {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("message") => {
                let seq = frame["seq"].as_i64().unwrap();
                assert_eq!(frame["body"].as_str().unwrap(), big_body(seq));
                seqs.push(seq);
            }
            Some("presence") if frame["user"] == slow.as_str() => {
                seen.dropped.set(frame["state"] == "offline");
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    seqs
}

async fn a_slow_consumer_is_closed_with_1013_while_others_get_every_message(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.ws.outbox = 8).await;
    let [ada, bob, cyd]: [TestUser; 3] = [
        app.register("ada").await,
        app.register("bob").await,
        app.register("cyd").await,
    ];
    let room = app.create_room(&ada, "firehose", "public").await;
    let mut reader = app.ws(&bob).await;
    reader.subscribe(&room, None).await;
    let mut slow = app.ws(&cyd).await;
    slow.subscribe(&room, None).await;
    let seen = Rc::new(Seen::default());
    let reading = actix_web::rt::spawn(read_until_last(reader, seen.clone(), cyd.id.clone()));

    // The slow consumer never reads: its socket fills, then its outbox.
    let mut publisher = app.ws(&ada).await;
    let mut last = None;
    let mut i = 0;
    while Some(i) != last {
        i += 1;
        assert!(i <= MAX_PUBLISHES, "the slow consumer was never dropped");
        if last.is_none() && seen.dropped.get() {
            // Set before that publish, so the reader cannot pass it unaware.
            last = Some(i + AFTER_DROP);
            seen.last.set(i + AFTER_DROP);
        }
        let (ack, _) = publisher
            .publish(&room, &big_body(i), &format!("c{i}"))
            .await;
        assert_eq!(
            (&ack["type"], &ack["seq"]),
            (&json!("ack"), &json!(i)),
            "{ack}"
        );
    }
    let everything: Vec<i64> = (1..=i).collect();
    assert_eq!(reading.await.unwrap(), everything, "the normal subscriber");
    assert_alive(&mut publisher, "publisher").await;

    // Behind what was already buffered, the slow reader finds the 1013 close,
    // then recovers everything with `since`.
    assert_eq!(close_code(slow.closed().await), 1013);
    let mut again = app.ws(&cyd).await;
    assert_eq!(again.subscribe(&room, Some(0)).await["seq"], i);
    for expected in 1..=i {
        let m = again.next_of("message").await;
        assert_eq!(m["seq"], expected);
        assert_eq!(m["body"].as_str().unwrap(), big_body(expected));
    }
    assert_alive(&mut again, "recovered").await;
}
