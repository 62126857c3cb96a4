//! Reports of messages and users (contract 1.1, 6.2), stored for
//! operators, who list them on the admin listener. A user reports only
//! what they can see: a message of a room they may read, or a user who
//! exists.

use super::Services;
use super::moderation::count;
use super::rooms::{self, RoomError};
use crate::domain::{Reason, ReportKind, RoomId, Seq, UserId};
use crate::store::{NewReport, Report};
use parley_actors::model::EventData;

/// What is reported.
pub enum Reported {
    Message { room: RoomId, seq: Seq },
    User(UserId),
}

pub async fn file(
    services: &Services,
    reporter: UserId,
    reported: Reported,
    reason: Reason,
) -> Result<Report, RoomError> {
    let new = match reported {
        Reported::Message { room, seq } => {
            rooms::readable(services, room, reporter).await?;
            if !is_message(services, room, seq).await? {
                return Err(RoomError::NotFound("message"));
            }
            NewReport {
                reporter,
                kind: ReportKind::Message,
                message: Some((room, seq)),
                user: None,
                reason,
            }
        }
        Reported::User(user) => NewReport {
            reporter,
            kind: ReportKind::User,
            message: None,
            user: Some(user),
            reason,
        },
    };
    let kind = new.kind;
    let report = services
        .store
        .create_report(new)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => RoomError::NotFound(match kind {
                ReportKind::Message => "room",
                ReportKind::User => "user",
            }),
            other => other.into(),
        })?;
    count(services, "report");
    tracing::info!(report = %report.id, kind = kind.as_str(), "report filed");
    Ok(report)
}

/// Whether event `seq` of `room` is a message (not an edit, delete or
/// reaction, and not purged).
async fn is_message(services: &Services, room: RoomId, seq: Seq) -> Result<bool, RoomError> {
    if seq.0 < 1 {
        return Ok(false);
    }
    let found = services
        .store
        .range(room, Seq(seq.0 - 1), Some(seq.next()), 1)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(found
        .first()
        .is_some_and(|e| e.seq == seq && matches!(e.data, EventData::Message { .. })))
}
