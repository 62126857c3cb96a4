//! Rooms and their members.
//!
//! Kinds and roles are stored as the text of their wire names and checked
//! by `CHECK` constraints, so the database refuses what [`RoomKind::parse`]
//! and [`RoomRole::parse`] would refuse on the way back.

use super::sql;
use crate::domain::{
    Limit, RestrictionKind, RetentionDays, RoomId, RoomKind, RoomName, RoomRole, UserId,
};
use crate::store::{Member, Restriction, Room, RoomAccess, StoreError};
use anyhow::{Context, anyhow};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// The room and its owner in one statement, hence one transaction: there is
/// never a room without an owner, and one round trip instead of four.
const CREATE: &str = "\
    WITH room AS ( \
        INSERT INTO rooms (id, name, kind, created_by) VALUES ($1, $2, $3, $4) \
        RETURNING id, name, kind, created_by, created_at, retention_days), \
    owner AS ( \
        INSERT INTO room_members (room_id, user_id, role, joined_at) \
        SELECT id, created_by, 'owner', created_at FROM room) \
    SELECT id, name, kind, created_by, created_at, retention_days FROM room";

/// Public rooms and the user's rooms, each half a bounded range of its own
/// index (`rooms_public_idx`, `room_members_user_idx`), merged and cut to
/// one page. A single `kind = 'public' OR EXISTS (...)` filter would walk
/// every room in id order, however few of them the user can see.
const VISIBLE_TO: &str = "\
    SELECT id, name, kind, created_by, created_at, retention_days FROM rooms \
    WHERE id IN ( \
        (SELECT id FROM rooms WHERE kind = 'public' AND id > $2 ORDER BY id LIMIT $3) \
        UNION \
        (SELECT room_id FROM room_members WHERE user_id = $1 AND room_id > $2 \
         ORDER BY room_id LIMIT $3)) \
    ORDER BY id LIMIT $3";

#[tracing::instrument(skip_all, fields(%creator, kind = %kind))]
pub(super) async fn create(
    pool: &Pool,
    creator: UserId,
    name: RoomName,
    kind: RoomKind,
) -> Result<Room, StoreError> {
    let id = RoomId::new();
    let params: sql::Params = &[&id.0, &name.as_str(), &kind.as_str(), &creator.0];
    match sql::query_opt(pool, CREATE, params).await {
        Ok(Some(row)) => Ok(room_from_row(&row)?),
        Ok(None) => Err(anyhow!("INSERT ... RETURNING returned no row").into()),
        Err(error) if sql::foreign_key_violation(&error) => Err(StoreError::NotFound),
        Err(error) => Err(StoreError::from(error.context("creating a room"))),
    }
}

#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn by_id(pool: &Pool, room: RoomId) -> Result<Option<Room>, StoreError> {
    const BY_ID: &str =
        "SELECT id, name, kind, created_by, created_at, retention_days FROM rooms WHERE id = $1";
    let row = sql::query_opt(pool, BY_ID, &[&room.0])
        .await
        .context("loading a room")?;
    Ok(row.as_ref().map(room_from_row).transpose()?)
}

/// The room, the user's role and what holds them back there, one statement
/// for an access check: each part is a primary-key look-up (the peer's
/// block only for a direct room, whose two members are one index range).
#[tracing::instrument(skip_all, fields(%room, %user))]
pub(super) async fn access(
    pool: &Pool,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomAccess>, StoreError> {
    const ACCESS: &str = "\
        SELECT r.id, r.name, r.kind, r.created_by, r.created_at, r.retention_days, m.role, \
          (SELECT to_jsonb(x) FROM (SELECT reason, until, created_by, created_at \
             FROM room_restrictions WHERE room_id = r.id AND user_id = $2 AND kind = 'ban' \
             AND (until IS NULL OR until > now())) x) AS ban, \
          (SELECT to_jsonb(x) FROM (SELECT reason, until, created_by, created_at \
             FROM room_restrictions WHERE room_id = r.id AND user_id = $2 AND kind = 'mute' \
             AND (until IS NULL OR until > now())) x) AS mute, \
          (r.kind = 'direct' AND EXISTS (SELECT 1 FROM room_members p \
             JOIN user_blocks b ON b.blocker = p.user_id AND b.blocked = $2 \
             WHERE p.room_id = r.id AND p.user_id <> $2)) AS blocked_by_peer \
        FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
        WHERE r.id = $1";
    let row = sql::query_opt(pool, ACCESS, &[&room.0, &user.0])
        .await
        .context("loading a room and a user's access to it")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let role: Option<String> = sql::get(&row, "role")?;
    let role = role
        .map(|role| RoomRole::parse(&role).map_err(|e| anyhow!("stored room role {role:?} {e}")))
        .transpose()?;
    let restriction = |column: &str, kind| -> anyhow::Result<Option<Restriction>> {
        let value: Option<serde_json::Value> = sql::get(&row, column)?;
        value
            .map(|v| super::safety::restriction_from_json(room, user, kind, v))
            .transpose()
    };
    Ok(Some(RoomAccess {
        room: room_from_row(&row)?,
        role,
        banned: restriction("ban", RestrictionKind::Ban)?,
        muted: restriction("mute", RestrictionKind::Mute)?,
        blocked_by_peer: sql::get(&row, "blocked_by_peer")?,
    }))
}

#[tracing::instrument(skip_all, fields(%user, limit = limit.get()))]
pub(super) async fn visible_to(
    pool: &Pool,
    user: UserId,
    after: Option<RoomId>,
    limit: Limit,
) -> Result<Vec<Room>, StoreError> {
    // No cursor means "after the nil UUID", which no v7 id equals.
    let after = after.map_or(uuid::Uuid::nil(), |id| id.0);
    let limit = i64::from(limit.get());
    let rows = sql::query(pool, VISIBLE_TO, &[&user.0, &after, &limit])
        .await
        .context("listing visible rooms")?;
    let rooms = rows
        .iter()
        .map(room_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok(rooms)
}

#[tracing::instrument(skip_all, fields(%room, %user))]
pub(super) async fn role(
    pool: &Pool,
    room: RoomId,
    user: UserId,
) -> Result<Option<RoomRole>, StoreError> {
    const ROLE: &str = "SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2";
    let row = sql::query_opt(pool, ROLE, &[&room.0, &user.0])
        .await
        .context("loading a member's role")?;
    Ok(row.map(|row| parse_role(&row)).transpose()?)
}

/// In user id order, straight off the primary key.
#[tracing::instrument(skip_all, fields(%room))]
pub(super) async fn members(pool: &Pool, room: RoomId) -> Result<Vec<Member>, StoreError> {
    const MEMBERS: &str = "SELECT user_id, role, joined_at FROM room_members \
                           WHERE room_id = $1 ORDER BY user_id";
    let rows = sql::query(pool, MEMBERS, &[&room.0])
        .await
        .context("listing room members")?;
    let members = rows
        .iter()
        .map(|row| {
            Ok(Member {
                user: UserId(sql::get(row, "user_id")?),
                role: parse_role(row)?,
                joined_at: sql::get(row, "joined_at")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(members)
}

/// An existing member keeps their role: adding is not a way to demote or
/// promote. A room whose kind caps its members (direct rooms hold two) is
/// counted and added to under its row lock, so concurrent adds cannot
/// overfill it.
#[tracing::instrument(skip_all, fields(%room, %user))]
pub(super) async fn add_member(
    pool: &Pool,
    room: RoomId,
    user: UserId,
    role: RoomRole,
) -> Result<(), StoreError> {
    const LOCK: &str = "SELECT kind FROM rooms WHERE id = $1 FOR UPDATE";
    const COUNT: &str = "SELECT count(*) AS members, \
                         coalesce(bool_or(user_id = $2), false) AS present \
                         FROM room_members WHERE room_id = $1";
    const ADD: &str = "INSERT INTO room_members (room_id, user_id, role) VALUES ($1, $2, $3) \
                       ON CONFLICT DO NOTHING";
    let mut client = pool.get().await.context("taking a pooled connection")?;
    let tx = client
        .transaction()
        .await
        .context("starting a transaction")?;
    let Some(locked) = tx
        .query_opt(LOCK, &[&room.0])
        .await
        .context("locking the room")?
    else {
        return Err(StoreError::NotFound);
    };
    let kind: String = sql::get(&locked, "kind")?;
    let kind = RoomKind::parse(&kind).map_err(|e| anyhow!("stored room kind {kind:?} {e}"))?;
    if let Some(max) = kind.max_members() {
        let row = tx
            .query_one(COUNT, &[&room.0, &user.0])
            .await
            .context("counting room members")?;
        let members: i64 = sql::get(&row, "members")?;
        let present: bool = sql::get(&row, "present")?;
        if !present && members >= max as i64 {
            return Err(StoreError::RoomFull { kind, max });
        }
    }
    match tx.execute(ADD, &[&room.0, &user.0, &role.as_str()]).await {
        Ok(_) => {}
        Err(error) => {
            let error = anyhow::Error::new(error);
            if sql::foreign_key_violation(&error) {
                return Err(StoreError::NotFound);
            }
            return Err(StoreError::from(error.context("adding a room member")));
        }
    }
    tx.commit().await.context("committing a new member")?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(%room, %user))]
pub(super) async fn remove_member(
    pool: &Pool,
    room: RoomId,
    user: UserId,
) -> Result<(), StoreError> {
    const REMOVE: &str = "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2";
    let removed = sql::execute(pool, REMOVE, &[&room.0, &user.0])
        .await
        .context("removing a room member")?;
    if removed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) fn room_from_row(row: &Row) -> anyhow::Result<Room> {
    let kind: String = sql::get(row, "kind")?;
    Ok(Room {
        id: RoomId(sql::get(row, "id")?),
        name: sql::get(row, "name")?,
        kind: RoomKind::parse(&kind).map_err(|e| anyhow!("stored room kind {kind:?} {e}"))?,
        created_by: UserId(sql::get(row, "created_by")?),
        created_at: sql::get(row, "created_at")?,
        retention_days: retention_from_row(row)?,
    })
}

fn retention_from_row(row: &Row) -> anyhow::Result<Option<RetentionDays>> {
    sql::get::<Option<i32>>(row, "retention_days")?
        .map(|days| {
            RetentionDays::parse(i64::from(days))
                .map_err(|e| anyhow!("stored retention {days} {e}"))
        })
        .transpose()
}

fn parse_role(row: &Row) -> anyhow::Result<RoomRole> {
    let role: String = sql::get(row, "role")?;
    RoomRole::parse(&role).map_err(|e| anyhow!("stored room role {role:?} {e}"))
}
