//! People and safety: room bans and mutes, blocks between users, reports.
//!
//! Bans and mutes are rows of `room_restrictions` that hold until deleted
//! or until their `until` passes; every read filters on `now()`, so expiry
//! takes effect without a job or a restart. Access checks read them
//! together with the room (`rooms::access`).

use super::sql;
use crate::domain::{Limit, ReportId, ReportKind, RestrictionKind, RoomId, Seq, UserId};
use crate::store::{Block, Imposed, NewReport, NewRestriction, Report, Restriction, StoreError};
use anyhow::{Context, anyhow};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// The stored columns of a restriction, as `rooms::access` reads them
/// (one `to_jsonb` object per kind, so one statement reads both).
#[derive(serde::Deserialize)]
struct StoredRestriction {
    reason: String,
    until: Option<chrono::DateTime<chrono::Utc>>,
    created_by: uuid::Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
}

pub(super) fn restriction_from_json(
    room: RoomId,
    user: UserId,
    kind: RestrictionKind,
    value: serde_json::Value,
) -> anyhow::Result<Restriction> {
    let stored: StoredRestriction =
        serde_json::from_value(value).context("reading a stored restriction")?;
    Ok(Restriction {
        room,
        user,
        kind,
        reason: stored.reason,
        until: stored.until,
        created_by: UserId(stored.created_by),
        created_at: stored.created_at,
    })
}

/// A ban ends the membership in the same statement, so a banned user is
/// never still a member, whichever instance looks.
#[tracing::instrument(skip_all, fields(room = %new.room, user = %new.user, kind = new.kind.as_str()))]
pub(super) async fn restrict(pool: &Pool, new: NewRestriction) -> Result<Imposed, StoreError> {
    const RESTRICT: &str = "\
        WITH stored AS ( \
            INSERT INTO room_restrictions (room_id, user_id, kind, reason, until, created_by) \
            VALUES ($1, $2, $3, $4, $5, $6) \
            ON CONFLICT (room_id, user_id, kind) DO UPDATE SET reason = excluded.reason, \
              until = excluded.until, created_by = excluded.created_by, created_at = now() \
            RETURNING room_id, user_id, reason, until, created_by, created_at), \
        removed AS ( \
            DELETE FROM room_members WHERE $3 = 'ban' AND room_id = $1 AND user_id = $2 \
            RETURNING 1) \
        SELECT room_id, user_id, reason, until, created_by, created_at, \
          EXISTS (SELECT 1 FROM removed) AS ended_membership FROM stored";
    let until = new.until.map(|u| u.get());
    let params: sql::Params = &[
        &new.room.0,
        &new.user.0,
        &new.kind.as_str(),
        &new.reason.as_str(),
        &until,
        &new.by.0,
    ];
    match sql::query_opt(pool, RESTRICT, params).await {
        Ok(Some(row)) => Ok(Imposed {
            restriction: restriction_from_row(&row, new.kind)?,
            ended_membership: sql::get(&row, "ended_membership")?,
        }),
        Ok(None) => Err(anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("storing a ban or mute"))),
    }
}

#[tracing::instrument(skip_all, fields(%room, %user, kind = kind.as_str()))]
pub(super) async fn lift(
    pool: &Pool,
    room: RoomId,
    user: UserId,
    kind: RestrictionKind,
) -> Result<(), StoreError> {
    // An expired row is deleted too, but it was not in force: not found.
    const LIFT: &str = "WITH gone AS (DELETE FROM room_restrictions \
                          WHERE room_id = $1 AND user_id = $2 AND kind = $3 \
                          RETURNING until) \
                        SELECT count(*) FILTER (WHERE until IS NULL OR until > now()) AS lifted \
                        FROM gone";
    let row = sql::query_opt(pool, LIFT, &[&room.0, &user.0, &kind.as_str()])
        .await
        .context("lifting a ban or mute")?;
    let lifted: i64 = match row {
        Some(row) => sql::get(&row, "lifted")?,
        None => 0,
    };
    if lifted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A range of `room_restrictions_list_idx`.
#[tracing::instrument(skip_all, fields(%room, kind = kind.as_str()))]
pub(super) async fn list(
    pool: &Pool,
    room: RoomId,
    kind: RestrictionKind,
    after: Option<UserId>,
    limit: Limit,
) -> Result<Vec<Restriction>, StoreError> {
    const LIST: &str = "SELECT room_id, user_id, reason, until, created_by, created_at \
                        FROM room_restrictions WHERE room_id = $1 AND kind = $2 AND user_id > $3 \
                        AND (until IS NULL OR until > now()) ORDER BY user_id LIMIT $4";
    let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, LIST, &[&room.0, &kind.as_str(), &after, &limit])
        .await
        .context("listing bans or mutes")?;
    let list = rows
        .iter()
        .map(|row| restriction_from_row(row, kind))
        .collect::<anyhow::Result<_>>()?;
    Ok(list)
}

fn restriction_from_row(row: &Row, kind: RestrictionKind) -> anyhow::Result<Restriction> {
    Ok(Restriction {
        room: RoomId(sql::get(row, "room_id")?),
        user: UserId(sql::get(row, "user_id")?),
        kind,
        reason: sql::get(row, "reason")?,
        until: sql::get(row, "until")?,
        created_by: UserId(sql::get(row, "created_by")?),
        created_at: sql::get(row, "created_at")?,
    })
}

/// The block and the end of both follows, one statement.
#[tracing::instrument(skip_all, fields(%blocker, %blocked))]
pub(super) async fn block(
    pool: &Pool,
    blocker: UserId,
    blocked: UserId,
) -> Result<bool, StoreError> {
    const BLOCK: &str = "\
        WITH added AS ( \
            INSERT INTO user_blocks (blocker, blocked) VALUES ($1, $2) \
            ON CONFLICT DO NOTHING RETURNING 1), \
        unfollowed AS ( \
            DELETE FROM follows WHERE (follower = $1 AND followee = $2) \
               OR (follower = $2 AND followee = $1)) \
        SELECT count(*) AS added FROM added";
    match sql::query_opt(pool, BLOCK, &[&blocker.0, &blocked.0]).await {
        Ok(Some(row)) => Ok(sql::get::<i64>(&row, "added")? == 1),
        Ok(None) => Err(anyhow!("SELECT count(*) returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("blocking a user"))),
    }
}

#[tracing::instrument(skip_all, fields(%blocker, %blocked))]
pub(super) async fn unblock(
    pool: &Pool,
    blocker: UserId,
    blocked: UserId,
) -> Result<(), StoreError> {
    const UNBLOCK: &str = "DELETE FROM user_blocks WHERE blocker = $1 AND blocked = $2";
    sql::execute(pool, UNBLOCK, &[&blocker.0, &blocked.0])
        .await
        .context("unblocking a user")?;
    Ok(())
}

/// A range of the primary key, joined to each blocked user's row.
#[tracing::instrument(skip_all, fields(%blocker))]
pub(super) async fn blocks(
    pool: &Pool,
    blocker: UserId,
    after: Option<UserId>,
    limit: Limit,
) -> Result<Vec<Block>, StoreError> {
    const BLOCKS: &str = "\
        SELECT u.id, u.username, u.email, u.display_name, u.bio, u.created_at, \
               b.created_at AS since \
        FROM user_blocks b JOIN users u ON u.id = b.blocked \
        WHERE b.blocker = $1 AND b.blocked > $2 ORDER BY b.blocked LIMIT $3";
    let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, BLOCKS, &[&blocker.0, &after, &limit])
        .await
        .context("listing blocks")?;
    let blocks = rows
        .iter()
        .map(|row| {
            Ok(Block {
                user: super::users::user_from_row(row)?,
                since: sql::get(row, "since")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(blocks)
}

/// Index-only on `user_blocks_blocked_idx`.
#[tracing::instrument(skip_all, fields(%actor, users = users.len()))]
pub(super) async fn blockers_among(
    pool: &Pool,
    actor: UserId,
    users: &[UserId],
) -> Result<Vec<UserId>, StoreError> {
    const AMONG: &str = "SELECT blocker FROM user_blocks WHERE blocked = $1 AND blocker = ANY($2)";
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.0).collect();
    let rows = sql::query(pool, AMONG, &[&actor.0, &ids])
        .await
        .context("finding who blocked a user")?;
    let blockers = rows
        .iter()
        .map(|row| sql::get(row, "blocker").map(UserId))
        .collect::<anyhow::Result<_>>()?;
    Ok(blockers)
}

#[tracing::instrument(skip_all, fields(kind = report.kind.as_str()))]
pub(super) async fn create_report(pool: &Pool, report: NewReport) -> Result<Report, StoreError> {
    const CREATE: &str = "\
        INSERT INTO reports (id, reporter, kind, room_id, seq, user_id, reason) \
        VALUES ($1, $2, $3, $4, $5, $6, $7) \
        RETURNING id, reporter, kind, room_id, seq, user_id, reason, created_at";
    let id = ReportId::new();
    let room = report.message.map(|(room, _)| room.0);
    let seq = report.message.map(|(_, seq)| seq.0);
    let user = report.user.map(|u| u.0);
    let params: sql::Params = &[
        &id.0,
        &report.reporter.0,
        &report.kind.as_str(),
        &room,
        &seq,
        &user,
        &report.reason.as_str(),
    ];
    match sql::query_opt(pool, CREATE, params).await {
        Ok(Some(row)) => Ok(report_from_row(&row)?),
        Ok(None) => Err(anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("storing a report"))),
    }
}

/// Newest first, off the primary key (UUIDv7 ids sort by time).
#[tracing::instrument(skip_all)]
pub(super) async fn reports(
    pool: &Pool,
    before: Option<ReportId>,
    limit: Limit,
) -> Result<Vec<Report>, StoreError> {
    const LIST: &str = "SELECT id, reporter, kind, room_id, seq, user_id, reason, created_at \
                        FROM reports WHERE id < $1 ORDER BY id DESC LIMIT $2";
    let before = before.map_or(uuid::Uuid::max(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, LIST, &[&before, &limit])
        .await
        .context("listing reports")?;
    let reports = rows
        .iter()
        .map(report_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok(reports)
}

fn report_from_row(row: &Row) -> anyhow::Result<Report> {
    let kind: String = sql::get(row, "kind")?;
    let room: Option<uuid::Uuid> = sql::get(row, "room_id")?;
    let seq: Option<i64> = sql::get(row, "seq")?;
    let user: Option<uuid::Uuid> = sql::get(row, "user_id")?;
    Ok(Report {
        id: ReportId(sql::get(row, "id")?),
        reporter: UserId(sql::get(row, "reporter")?),
        kind: ReportKind::parse(&kind).map_err(|e| anyhow!("stored report kind {kind:?} {e}"))?,
        message: room.zip(seq).map(|(room, seq)| (RoomId(room), Seq(seq))),
        user: user.map(UserId),
        reason: sql::get(row, "reason")?,
        created_at: sql::get(row, "created_at")?,
    })
}
