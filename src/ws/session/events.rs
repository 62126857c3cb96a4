//! The four event frames (`publish`, `edit`, `delete`, `react`) as the
//! engine's [`Action`]: every field checked here, so a bad one is the
//! client's `bad_request` and never reaches a writer.

use super::super::protocol::ClientFrame;
use parley_actors::ids::{ClientId, Seq};
use parley_actors::model::{Action, Emoji, MessageBody};

/// The room (unparsed: access is checked next), idempotency key and action
/// of an event frame; `Err` says which field is wrong. Only called with the
/// event frames; any other answers an error.
pub fn parse(frame: ClientFrame) -> Result<(String, ClientId, Action), String> {
    let (room, client_id, action) = match frame {
        ClientFrame::Publish {
            room,
            body,
            client_id,
            reply_to,
        } => {
            let reply_to = reply_to.map(|s| seq("reply_to", s)).transpose()?;
            let body = body_of(&body)?;
            (room, client_id, Action::Message { body, reply_to })
        }
        ClientFrame::Edit {
            room,
            target,
            body,
            client_id,
        } => {
            let (target, body) = (seq("target", target)?, body_of(&body)?);
            (room, client_id, Action::Edit { target, body })
        }
        ClientFrame::Delete {
            room,
            target,
            client_id,
        } => (
            room,
            client_id,
            Action::Delete {
                target: seq("target", target)?,
            },
        ),
        ClientFrame::React {
            room,
            target,
            emoji,
            on,
            client_id,
        } => {
            let target = seq("target", target)?;
            let emoji = Emoji::parse(&emoji).map_err(|e| format!("emoji {e}"))?;
            (room, client_id, Action::React { target, emoji, on })
        }
        other => return Err(format!("`{}` is not an event frame", other.kind())),
    };
    let client_id = ClientId::parse(&client_id).map_err(|e| format!("client_id {e}"))?;
    Ok((room, client_id, action))
}

/// A message's seq: positive (seq 0 is "before the first event").
fn seq(field: &str, value: i64) -> Result<Seq, String> {
    if value < 1 {
        return Err(format!("{field} must be the seq of a message (1 or more)"));
    }
    Ok(Seq(value))
}

fn body_of(body: &str) -> Result<MessageBody, String> {
    MessageBody::parse(body).map_err(|e| format!("body {e}"))
}
