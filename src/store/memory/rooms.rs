//! Rooms, their members and their message logs in the embedded store.

use super::{RoomRow, State};
use crate::domain::{Limit, RoomId, RoomKind, RoomName, RoomRole, Seq, UserId};
use crate::store::{Member, Room, StoreError};
use chrono::Utc;
use parley_actors::ids::MessageId;
use parley_actors::model::{Appended, NewMessage, StoredMessage};
use parley_actors::ports::LogError;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// The index in a room's log of the message with `seq`, clamped to `0..=len`.
/// Seq n sits at index n - 1, so "seq > n" starts at index n.
fn index_of(seq: Seq, len: usize) -> usize {
    usize::try_from(seq.0).unwrap_or(0).min(len)
}

impl RoomRow {
    /// Appends one publish, or answers with the original for a repeated
    /// `(author, client_id)`.
    fn append(&mut self, new: &NewMessage) -> Appended {
        let key = (new.author, new.client_id.as_str().to_owned());
        if let Some(&index) = self.client_ids.get(&key) {
            return Appended::Duplicate(self.log[index].clone());
        }
        let message = StoredMessage {
            room: new.room,
            seq: Seq(self.log.len() as i64 + 1),
            id: MessageId::new(),
            author: new.author,
            body: new.body.as_str().to_owned(),
            ts: Utc::now(),
            client_id: key.1.clone(),
        };
        self.client_ids.insert(key, self.log.len());
        self.log.push(message.clone());
        Appended::New(message)
    }
}

impl State {
    /// The log of a room; an unknown room has an empty one, as a query on
    /// the PostgreSQL store finds no rows.
    fn log(&self, room: RoomId) -> &[StoredMessage] {
        self.rooms.get(&room).map_or(&[], |row| &row.log)
    }

    /// All or nothing: every room is checked before anything is written.
    pub(super) fn append(&mut self, batch: &[NewMessage]) -> Result<Vec<Appended>, LogError> {
        if batch.iter().any(|m| !self.rooms.contains_key(&m.room)) {
            return Err(LogError::RoomNotFound);
        }
        let mut appended = Vec::with_capacity(batch.len());
        for new in batch {
            let row = self
                .rooms
                .get_mut(&new.room)
                .ok_or(LogError::RoomNotFound)?;
            appended.push(row.append(new));
        }
        Ok(appended)
    }

    pub(super) fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Vec<StoredMessage> {
        let log = self.log(room);
        let start = index_of(after, log.len());
        let end = before.map_or(log.len(), |b| {
            index_of(Seq(b.0.saturating_sub(1)), log.len())
        });
        let end = end.max(start).min(start.saturating_add(limit as usize));
        log[start..end].to_vec()
    }

    pub(super) fn tail(&self, room: RoomId, before: Option<Seq>, limit: u32) -> Vec<StoredMessage> {
        let log = self.log(room);
        let end = before.map_or(log.len(), |b| {
            index_of(Seq(b.0.saturating_sub(1)), log.len())
        });
        let start = end.saturating_sub(limit as usize);
        log[start..end].to_vec()
    }

    pub(super) fn last_seq(&self, room: RoomId) -> Result<Seq, LogError> {
        let row = self.rooms.get(&room).ok_or(LogError::RoomNotFound)?;
        Ok(Seq(row.log.len() as i64))
    }

    pub(super) fn create_room(
        &mut self,
        creator: UserId,
        name: RoomName,
        kind: RoomKind,
    ) -> Result<Room, StoreError> {
        if !self.users.contains_key(&creator) {
            return Err(StoreError::NotFound);
        }
        let room = Room {
            id: RoomId::new(),
            name: name.as_str().to_owned(),
            kind,
            created_by: creator,
            created_at: Utc::now(),
        };
        let owner = Member {
            user: creator,
            role: RoomRole::Owner,
            joined_at: room.created_at,
        };
        let row = RoomRow {
            room: room.clone(),
            members: BTreeMap::from([(creator, owner)]),
            log: Vec::new(),
            client_ids: HashMap::new(),
        };
        self.rooms.insert(room.id, row);
        Ok(room)
    }

    pub(super) fn rooms_visible_to(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: Limit,
    ) -> Vec<Room> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.rooms
            .range((lower, Bound::Unbounded))
            .map(|(_, row)| row)
            .filter(|row| row.room.kind == RoomKind::Public || row.members.contains_key(&user))
            .take(limit.get() as usize)
            .map(|row| row.room.clone())
            .collect()
    }

    /// By user id, as the PostgreSQL store orders them; an unknown room has
    /// none.
    pub(super) fn members(&self, room: RoomId) -> Vec<Member> {
        let row = self.rooms.get(&room);
        row.map(|row| row.members.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn add_member(
        &mut self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<(), StoreError> {
        if !self.users.contains_key(&user) {
            return Err(StoreError::NotFound);
        }
        let row = self.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        if let Some(max) = row.room.kind.max_members()
            && !row.members.contains_key(&user)
            && row.members.len() >= max
        {
            return Err(StoreError::RoomFull {
                kind: row.room.kind,
                max,
            });
        }
        row.members.entry(user).or_insert_with(|| Member {
            user,
            role,
            joined_at: Utc::now(),
        });
        Ok(())
    }
}
