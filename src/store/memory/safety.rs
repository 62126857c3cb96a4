//! Room bans and mutes, blocks and reports in the embedded store, with the
//! PostgreSQL store's semantics (`postgres/safety.rs`): a restriction
//! whose `until` has passed is kept but ignored, and a ban ends the
//! membership at once.

use super::State;
use crate::domain::{Limit, RestrictionKind, RoomId, RoomKind, UserId};
use crate::store::{
    Block, Imposed, NewReport, NewRestriction, Report, Restriction, RoomAccess, StoreError,
};
use chrono::Utc;

/// Whether a stored restriction holds now.
fn in_force(restriction: &Restriction) -> bool {
    restriction.until.is_none_or(|until| until > Utc::now())
}

impl State {
    pub(super) fn room_access(&self, room: RoomId, user: UserId) -> Option<RoomAccess> {
        let row = self.rooms.get(&room)?;
        let restriction = |kind| {
            self.restrictions
                .get(&(room, kind, user))
                .filter(|r| in_force(r))
                .cloned()
        };
        let blocked_by_peer = row.room.kind == RoomKind::Direct
            && row
                .members
                .keys()
                .any(|peer| *peer != user && self.blocks.contains_key(&(*peer, user)));
        Some(RoomAccess {
            room: row.room.clone(),
            role: row.members.get(&user).map(|m| m.role),
            banned: restriction(RestrictionKind::Ban),
            muted: restriction(RestrictionKind::Mute),
            blocked_by_peer,
        })
    }

    pub(super) fn restrict(&mut self, new: NewRestriction) -> Result<Imposed, StoreError> {
        if !self.users.contains_key(&new.user) || !self.users.contains_key(&new.by) {
            return Err(StoreError::NotFound);
        }
        let row = self.rooms.get_mut(&new.room).ok_or(StoreError::NotFound)?;
        let ended_membership =
            new.kind == RestrictionKind::Ban && row.members.remove(&new.user).is_some();
        let restriction = Restriction {
            room: new.room,
            user: new.user,
            kind: new.kind,
            reason: new.reason.as_str().to_owned(),
            until: new.until.map(|u| u.get()),
            created_by: new.by,
            created_at: Utc::now(),
        };
        self.restrictions
            .insert((new.room, new.kind, new.user), restriction.clone());
        Ok(Imposed {
            restriction,
            ended_membership,
        })
    }

    pub(super) fn lift_restriction(
        &mut self,
        room: RoomId,
        user: UserId,
        kind: RestrictionKind,
    ) -> Result<(), StoreError> {
        match self.restrictions.remove(&(room, kind, user)) {
            Some(lifted) if in_force(&lifted) => Ok(()),
            _ => Err(StoreError::NotFound),
        }
    }

    pub(super) fn restrictions(
        &self,
        room: RoomId,
        kind: RestrictionKind,
        after: Option<UserId>,
        limit: Limit,
    ) -> Vec<Restriction> {
        let from = after.unwrap_or(UserId(uuid::Uuid::nil()));
        let to = UserId(uuid::Uuid::max());
        self.restrictions
            .range((room, kind, from)..=(room, kind, to))
            .map(|(_, r)| r)
            .filter(|r| Some(r.user) != after && in_force(r))
            .take(limit.get() as usize)
            .cloned()
            .collect()
    }

    pub(super) fn block(&mut self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        if !self.users.contains_key(&blocker) || !self.users.contains_key(&blocked) {
            return Err(StoreError::NotFound);
        }
        if blocker == blocked {
            return Err(StoreError::Rejected(anyhow::anyhow!(
                "a user cannot block themselves"
            )));
        }
        self.follows.remove(&(blocker, blocked));
        self.follows.remove(&(blocked, blocker));
        Ok(self.blocks.insert((blocker, blocked), Utc::now()).is_none())
    }

    pub(super) fn blocks_of(
        &self,
        blocker: UserId,
        after: Option<UserId>,
        limit: Limit,
    ) -> Vec<Block> {
        let from = after.unwrap_or(UserId(uuid::Uuid::nil()));
        let to = UserId(uuid::Uuid::max());
        self.blocks
            .range((blocker, from)..=(blocker, to))
            .filter(|((_, blocked), _)| Some(*blocked) != after)
            .filter_map(|((_, blocked), since)| {
                let row = self.users.get(blocked)?;
                Some(Block {
                    user: row.user.clone(),
                    since: *since,
                })
            })
            .take(limit.get() as usize)
            .collect()
    }

    pub(super) fn create_report(&mut self, new: NewReport) -> Result<Report, StoreError> {
        let room_known = new
            .message
            .is_none_or(|(room, _)| self.rooms.contains_key(&room));
        let user_known = new.user.is_none_or(|user| self.users.contains_key(&user));
        if !room_known || !user_known || !self.users.contains_key(&new.reporter) {
            return Err(StoreError::NotFound);
        }
        let report = Report {
            id: crate::domain::ReportId::new(),
            reporter: new.reporter,
            kind: new.kind,
            message: new.message,
            user: new.user,
            reason: new.reason.as_str().to_owned(),
            created_at: Utc::now(),
        };
        self.reports.insert(report.id, report.clone());
        Ok(report)
    }
}
