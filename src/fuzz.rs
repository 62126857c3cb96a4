//! The parsers that untrusted bytes reach, as fuzzing entry points: the
//! cargo-fuzz targets in `tests/fuzz/` call these functions, and so do the
//! property tests below (CI, stable toolchain), so both exercise the very
//! code the handlers run. Compiled only for tests and under cargo-fuzz
//! (`cfg(fuzzing)`), never into the server. `docs/fuzzing.md` has the runs.
//!
//! Each function takes raw bytes, never panics on any input (that is what
//! the fuzzers check), and asserts what must hold of whatever it accepts.

use crate::auth::JwtKeys;
use crate::config::{AuthSettings, Settings};
use crate::domain::{MessageBody, RoomId, Seq};
use crate::http::page::PageQuery;
use crate::http::{
    api_keys, auth, moderation, notifications, posts, push, reports, room_events, room_retention,
    rooms, server_api, users, webhooks,
};
use crate::ws::protocol::{self, ClientFrame};
use actix_web::web::Query;
use parley_actors::model::EventData;
use serde::de::DeserializeOwned;
use std::sync::OnceLock;

/// One client WebSocket text frame, then the domain parsers the session
/// applies to its fields. `ws::socket` hands the session UTF-8 text only.
pub fn client_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let envelope = match protocol::parse(text) {
        Ok(envelope) => envelope,
        Err(e) => {
            assert!(e.reference.is_none_or(|r| r.chars().count() <= 128));
            return;
        }
    };
    assert!(envelope.reference.is_none_or(|r| r.chars().count() <= 128));
    match envelope.frame {
        ClientFrame::Subscribe { room, since } => {
            let _ = RoomId::parse(&room);
            let _ = since.map(Seq::parse);
        }
        ClientFrame::Unsubscribe { room } | ClientFrame::Typing { room } => {
            let _ = RoomId::parse(&room);
        }
        ClientFrame::Read { room, seq } => {
            let _ = RoomId::parse(&room);
            let _ = Seq::parse(seq);
        }
        ClientFrame::Ping => {}
        event => {
            if let Ok((room, client_id, action)) = crate::ws::session::events::parse(event) {
                let _ = RoomId::parse(&room);
                assert!(!client_id.as_str().chars().any(char::is_control));
                if let Some(body) = EventData::from_action(&action).body() {
                    assert!(body.chars().count() <= MessageBody::MAX_CHARS);
                }
                assert!(action.target().is_none_or(|seq| seq.0 >= 1));
            }
        }
    }
}

/// Bytes from a WebSocket client, as `ws::socket::MessageDecoder` receives
/// them: the first byte picks the message limit, the second how the network
/// split the rest. The same messages (and the same error) come out however
/// the bytes were split, none over the limit, and the decoder never holds
/// more than one frame's header and payload.
pub fn ws_frames(data: &[u8]) {
    let [limit, split, rest @ ..] = data else {
        return;
    };
    let max = 1 + usize::from(*limit) * 4;
    let chunk = 1 + usize::from(*split);
    let whole = decode_frames(rest, max, rest.len().max(1));
    assert_eq!(decode_frames(rest, max, chunk), whole);
}

/// The messages decoded (as debug text), and the error that ended them.
fn decode_frames(bytes: &[u8], max: usize, chunk: usize) -> (Vec<String>, Option<String>) {
    use crate::ws::socket::{Incoming, MessageDecoder};
    /// A frame header: 2 bytes, 8 of extended length, 4 of mask.
    const MAX_HEADER: usize = 14;
    let mut decoder = MessageDecoder::new(max);
    let mut messages = Vec::new();
    for piece in bytes.chunks(chunk) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    let len = match &message {
                        Incoming::Text(text) => text.len(),
                        Incoming::Binary(bytes) => bytes.len(),
                        _ => 0,
                    };
                    assert!(
                        len <= max,
                        "a message of {len} bytes passed a limit of {max}"
                    );
                    messages.push(format!("{message:?}"));
                }
                Ok(None) => break,
                Err(e) => return (messages, Some(e.to_string())),
            }
        }
        assert!(decoder.buffered() <= max + MAX_HEADER);
    }
    (messages, None)
}

/// The JSON body of a REST request: the first byte picks the route, the
/// rest is the body. Deserialized as `web::Json` does (`serde_json`), then
/// parsed into domain types by the function the handler calls.
pub fn rest_body(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 17 {
        0 => json(body, |r: auth::RegisterRequest| r.parse().map(drop)),
        1 => json(body, |r: auth::LoginRequest| r.name().map(drop)),
        2 => json(body, |_: auth::RefreshRequest| Ok(())),
        3 => json(body, |r: users::ProfileUpdate| r.parse().map(drop)),
        4 => json(body, |r: posts::CreatePost| r.parse().map(drop)),
        5 => json(body, |r: rooms::CreateRoom| r.parse().map(drop)),
        6 => json(body, |r: rooms::AddMember| r.parse().map(drop)),
        7 => json(body, |r: room_events::PostMessage| r.parse().map(drop)),
        // 8 (and any other byte) stays "any JSON", as the corpus has it.
        9 => json(body, |r: moderation::RestrictRequest| r.parse().map(drop)),
        10 => json(body, |r: reports::NewReportRequest| r.parse().map(drop)),
        11 => json(body, |r: room_retention::RoomPatch| r.parse().map(drop)),
        12 => json(body, |r: webhooks::NewWebhook| r.parse().map(drop)),
        13 => json(body, |r: api_keys::NewApiKeyRequest| r.parse().map(drop)),
        14 => json(body, |r: server_api::ServerMessage| r.parse().map(drop)),
        15 => json(body, |r: server_api::ServerNotification| {
            r.parse().map(drop)
        }),
        16 => json(body, |r: push::SubscriptionRequest| {
            r.parse(&crate::domain::push::AllowHosts::default())
                .map(drop)
        }),
        _ => {
            // Any body at all must come out as a problem, never a panic.
            let _ = serde_json::from_slice::<serde_json::Value>(body);
        }
    }
}

fn json<T: DeserializeOwned>(
    body: &[u8],
    parse: impl FnOnce(T) -> Result<(), crate::http::error::ApiError>,
) {
    if let Ok(request) = serde_json::from_slice::<T>(body)
        && let Err(e) = parse(request)
    {
        assert_eq!(e.code, crate::domain::Code::BadRequest, "{e:?}");
    }
}

/// A query string or a path parameter: the first byte picks which, the
/// rest is the raw text. Query strings go through `web::Query` as the
/// extractor does; path segments reach the id parsers as decoded text.
pub fn query_or_path(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let bad = |e: crate::http::error::ApiError| assert_eq!(e.code, crate::domain::Code::BadRequest);
    match which % 10 {
        0 => query(text, |q: PageQuery| q.parse(RoomId::parse).map(drop)),
        1 => query(text, |q: room_events::HistoryQuery| q.parse().map(drop)),
        2 => query(text, |q: PageQuery| {
            q.parse(crate::domain::PostId::parse).map(drop)
        }),
        3 => query(text, |q: PageQuery| {
            q.parse(crate::domain::NotificationId::parse).map(drop)
        }),
        4 => {
            let _ = rooms::parse_room_id(text).map_err(bad);
        }
        5 => {
            let _ = users::parse_user_id(text).map_err(bad);
        }
        6 => {
            let _ = posts::parse_post_id(text).map_err(bad);
        }
        // Bans, mutes and blocks page by user id; reports by report id.
        8 => query(text, |q: PageQuery| {
            q.parse(crate::domain::UserId::parse).map(drop)
        }),
        9 => query(text, |q: PageQuery| {
            q.parse(crate::domain::ReportId::parse).map(drop)
        }),
        _ => {
            let _ = notifications::parse_notification_id(text).map_err(bad);
        }
    }
}

fn query<T: DeserializeOwned>(
    text: &str,
    parse: impl FnOnce(T) -> Result<(), crate::http::error::ApiError>,
) {
    if let Ok(q) = Query::<T>::from_query(text)
        && let Err(e) = parse(q.into_inner())
    {
        assert_eq!(e.code, crate::domain::Code::BadRequest, "{e:?}");
    }
}

/// The configuration: the input is the text of a `parley.toml`, then a
/// line holding only `%%`, then `NAME=value` lines as the environment.
/// Either [`Settings`] that pass validation or a [`crate::config::ConfigError`].
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once("\n%%\n").unwrap_or((text, ""));
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    match Settings::from_toml_and_env(toml, &vars) {
        Ok(settings) => {
            assert!(settings.http.max_body_bytes >= 1024);
            assert!(settings.auth.access_ttl_s < settings.auth.refresh_ttl_s);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The key pair the JWT entry point verifies with, made once per process.
/// 1024 bits, not production's 2048: the parsing is the same, and signing
/// (two in three inputs at 2048 bits, under the fuzzer's instrumentation)
/// held a first run to 20 executions a second.
fn keys() -> Option<&'static (JwtKeys, jsonwebtoken::EncodingKey, String)> {
    static KEYS: OnceLock<Option<(JwtKeys, jsonwebtoken::EncodingKey, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).ok()?;
        let pem = key.to_pkcs8_pem(LineEnding::LF).ok()?;
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
        let keys = JwtKeys::from_keys(vec![key], &AuthSettings::default()).ok()?;
        let kid = keys.jwks()["keys"][0]["kid"].as_str()?.to_owned();
        Some((keys, signing, kid))
    })
    .as_ref()
}

/// An access token. The first byte picks the mode: a raw token string
/// (`decode_header`, then the full verification; half the inputs);
/// arbitrary claims JSON under a good header and a real signature; or an
/// arbitrary header JSON over good claims, signed. Signed modes reach the claims parsing that a
/// forged signature never gets to.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((keys, _, kid)) = keys() else {
        panic!("could not make the fuzzing key");
    };
    let token = match mode % 4 {
        0 | 1 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = jsonwebtoken::decode_header(token);
            Some(token.to_owned())
        }
        2 => {
            let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#);
            signed(header.as_bytes(), rest)
        }
        _ => signed(rest, good_claims().as_bytes()),
    };
    let Some(token) = token else {
        return;
    };
    let before = chrono::Utc::now().timestamp();
    if let Ok(claims) = keys.verify(&token) {
        assert_eq!(claims.iss, "parley");
        // Five seconds of leeway, counted from a clock read before verifying.
        assert!(claims.exp >= before - 5, "an expired token was accepted");
    }
}

/// Claims that parley accepts, valid for a minute.
fn good_claims() -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        r#"{{"sub":"0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11","name":"ada","iss":"parley","aud":"parley","iat":{now},"nbf":{now},"exp":{}}}"#,
        now + 60
    )
}

/// `header.claims.signature` with the fuzzing key's RS256 signature.
fn signed(header: &[u8], claims: &[u8]) -> Option<String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (_, signing, _) = keys()?;
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), signing, jsonwebtoken::Algorithm::RS256)
            .ok()?;
    Some(format!("{message}.{signature}"))
}

#[cfg(test)]
mod tests {
    //! The same entry points on stable, bounded so CI runs them in seconds;
    //! every input a fuzzer ever crashed on is pinned here too.
    use super::*;
    use actix_http::ws::{OpCode, Parser};
    use proptest::prelude::*;

    fn cases(n: u32) -> ProptestConfig {
        ProptestConfig {
            cases: n,
            ..ProptestConfig::default()
        }
    }

    /// JSON-ish text: mostly structure, so the parsers get past the first byte.
    fn jsonish() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            ".{0,40}".prop_map(|s| serde_json::Value::String(s).to_string()),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("type".to_owned()),
                            Just("room".to_owned()),
                            Just("body".to_owned()),
                            Just("client_id".to_owned()),
                            Just("ref".to_owned()),
                            Just("since".to_owned()),
                            Just("username".to_owned()),
                            Just("email".to_owned()),
                            Just("password".to_owned()),
                            Just("name".to_owned()),
                            Just("kind".to_owned()),
                            Just("user_id".to_owned()),
                            Just("role".to_owned()),
                            Just("display_name".to_owned()),
                            Just("bio".to_owned()),
                            Just("refresh_token".to_owned()),
                            "[a-z_]{1,10}",
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|kv| {
                    let fields: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k)))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn with_selector(selector: u8, rest: &[u8]) -> Vec<u8> {
        let mut data = vec![selector];
        data.extend_from_slice(rest);
        data
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn client_frames_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            client_frame(&bytes);
        }

        #[test]
        fn ws_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            ws_frames(&bytes);
        }

        #[test]
        fn ws_frames_decode_the_same_however_split(
            limit in any::<u8>(),
            split in any::<u8>(),
            frames in prop::collection::vec((any::<bool>(), 0usize..3, prop::collection::vec(any::<u8>(), 0..300)), 0..6),
        ) {
            // Well-formed masked client frames (text, binary or a ping),
            // some fragmented, so the fuzzer's checks meet real messages.
            let mut bytes = vec![limit, split];
            for (fin, kind, payload) in frames {
                let op = [OpCode::Text, OpCode::Binary, OpCode::Ping][kind];
                let payload = if op == OpCode::Ping { &payload[..payload.len().min(125)] } else { &payload[..] };
                let mut frame = bytes::BytesMut::new();
                Parser::write_message(&mut frame, payload, op, fin || op == OpCode::Ping, true);
                bytes.extend_from_slice(&frame);
            }
            ws_frames(&bytes);
        }

        #[test]
        fn json_shaped_client_frames_never_panic(text in jsonish(), kind in prop_oneof![
            Just("subscribe"), Just("unsubscribe"), Just("publish"), Just("typing"), Just("ping"),
        ]) {
            client_frame(text.as_bytes());
            // Give the object a known `type` so the frame parsers run.
            if let Some(fields) = text.strip_prefix('{') {
                let sep = if fields == "}" { "" } else { "," };
                client_frame(format!(r#"{{"type":"{kind}"{sep}{fields}"#).as_bytes());
            }
        }

        #[test]
        fn rest_bodies_never_panic(route in any::<u8>(), body in jsonish()) {
            rest_body(&with_selector(route, body.as_bytes()));
        }

        #[test]
        fn rest_bodies_of_raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            rest_body(&bytes);
        }

        #[test]
        fn queries_and_path_ids_never_panic(
            which in any::<u8>(),
            text in prop_oneof![
                ".{0,60}",
                "(cursor|limit|after_seq|before_seq|unread)=[-0-9a-z%+&=]{0,40}",
                "[0-9a-fA-F-]{30,40}",
            ],
        ) {
            query_or_path(&with_selector(which, text.as_bytes()));
        }

        #[test]
        fn configurations_never_panic(
            toml in prop_oneof![
                ".{0,80}",
                r#"\[(http|rate|ws|auth|log|database|redis|drain|breaker|health)\]\n[a-z_]{1,16} = ("[^"\n]{0,20}"|[0-9-]{1,12}|true)"#,
            ],
            env in prop::collection::vec(
                (prop::sample::select(crate::config::ENV_VARS.iter().map(|(v, _)| *v).collect::<Vec<_>>()), ".{0,30}"),
                0..4,
            ),
        ) {
            let env: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            config(format!("{toml}\n%%\n{env}").as_bytes());
        }
    }

    proptest! {
        // Each signed case costs an RSA signature.
        #![proptest_config(cases(64))]

        #[test]
        fn tokens_never_panic(mode in any::<u8>(), text in prop_oneof![jsonish(), ".{0,120}"]) {
            jwt(&with_selector(mode, text.as_bytes()));
        }
    }

    /// Found by the `config` target (a libFuzzer timeout: over 10 s): a field
    /// value regex in `PARLEY_LOG` compiled to an exploding DFA. Field
    /// values are plain text now (`config::log_filter`).
    #[test]
    fn a_log_filter_with_a_pathological_field_regex_parses_at_once() {
        use base64::Engine;
        let input = base64::engine::general_purpose::STANDARD
            .decode("CiUlClBBUkxFWV9MT0c9cGFybGV5W3tuYW1lPX4iYQAuLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLj4uLi4uLi4uLi4uLgAAAAAAAGoAAAAAAAAAAAAAAAAAAAAuKmVhAHIAaiJ9XT1kZWJ1Z10=")
            .unwrap();
        let started = std::time::Instant::now();
        config(&input);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
        // A regex-looking value is text, and still a valid filter.
        assert!(crate::config::log_filter(r#"parley[{name=~"a.*"}]=debug"#).is_ok());
    }

    /// Found by `configurations_never_panic` (proptest): figment's string
    /// unescaping slices by character index, so a quoted value with a
    /// backslash after a non-ASCII character panicked inside figment.
    /// Non-ASCII values are plain text now (`config::env_value`).
    #[test]
    fn a_quoted_non_ascii_env_value_with_a_backslash_is_an_error_not_a_panic() {
        config("\n%%\nPARLEY_HTTP_ADDR=\"¡\\¡\"\n".as_bytes());
        let vars = [("PARLEY_WS_OUTBOX".to_owned(), "\"é\\n\"".to_owned())];
        assert!(Settings::from_toml_and_env("", &vars).is_err());
    }

    /// The entry points reach the parsers' success paths too: good input
    /// of each kind is accepted by the very functions they call.
    #[test]
    fn good_inputs_are_accepted_by_every_entry_point() {
        let room = "0190b7a8-2c5e-7c3a-9b1e-4d2f6a8c0e11";
        let frame = format!(
            r#"{{"type":"publish","room":"{room}","body":"hi","client_id":"c1","ref":"1"}}"#
        );
        assert!(protocol::parse(&frame).is_ok());
        client_frame(frame.as_bytes());

        let body = br#"{"name":"general","kind":"public"}"#;
        let create: rooms::CreateRoom = serde_json::from_slice(body).unwrap();
        assert!(create.parse().is_ok());
        rest_body(&with_selector(5, body));

        let history =
            Query::<room_events::HistoryQuery>::from_query("after_seq=3&limit=20").unwrap();
        let (history, limit) = history.into_inner().parse().unwrap();
        assert_eq!(
            (history.after, history.before, limit.get()),
            (Some(Seq(3)), None, 20)
        );
        query_or_path(b"\x01after_seq=3&limit=20");

        let vars = [("PARLEY_WS_OUTBOX".to_owned(), "9".to_owned())];
        let settings = Settings::from_toml_and_env("[rate]\napi_per_min = 7\n", &vars).unwrap();
        assert_eq!(
            (settings.rate.api_per_min.get(), settings.ws.outbox),
            (7, 9)
        );
        config(b"[rate]\napi_per_min = 7\n%%\nPARLEY_WS_OUTBOX=9\n");

        let (keys, _, kid) = keys().unwrap();
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#);
        let token = signed(header.as_bytes(), good_claims().as_bytes()).unwrap();
        assert_eq!(keys.verify(&token).unwrap().name, "ada");
        jwt(&with_selector(3, header.as_bytes()));
    }
}
