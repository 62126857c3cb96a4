//! Rooms, their members and their message logs in the embedded store.

use super::{Folded, RoomRow, State};
use crate::domain::{Limit, RoomId, RoomKind, RoomName, RoomRole, Seq, UserId};
use crate::store::{
    CursorMove, HistoryItem, HistoryQuery, Member, ReactionCount, ReadCursor, Room, RoomUnread,
    StoreError,
};
use chrono::Utc;
use parley_actors::ids::MessageId;
use parley_actors::model::{Appended, EventData, NewEvent, Refusal, StoredEvent, TargetState};
use parley_actors::ports::LogError;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// The index in a room's log of the message with `seq`, clamped to `0..=len`.
/// Seq n sits at index n - 1, so "seq > n" starts at index n.
fn index_of(seq: Seq, len: usize) -> usize {
    usize::try_from(seq.0).unwrap_or(0).min(len)
}

impl RoomRow {
    /// Appends one event, answers with the original for a repeated
    /// `(author, client_id)`, or refuses it by the rules of the stream.
    fn append(&mut self, new: &NewEvent) -> Result<Appended, Refusal> {
        let key = (new.author, new.client_id.as_str().to_owned());
        if let Some(&index) = self.client_ids.get(&key) {
            return Ok(Appended::Duplicate(self.log[index].clone()));
        }
        let target = new.action.target().and_then(|seq| self.target(seq));
        parley_actors::model::check(new, target)?;
        let mut event = StoredEvent {
            room: new.room,
            seq: Seq(self.log.len() as i64 + 1),
            id: MessageId::new(),
            author: new.author,
            ts: Utc::now(),
            client_id: key.1.clone(),
            data: EventData::from_action(&new.action),
        };
        self.fold(&mut event);
        self.client_ids.insert(key, self.log.len());
        self.log.push(event.clone());
        Ok(Appended::New(event))
    }

    /// What the rules read of the message at `seq`, if there is one.
    fn target(&self, seq: Seq) -> Option<TargetState> {
        let folded = self.folded.get(&seq)?;
        Some(TargetState {
            author: self.log[index_of(seq, self.log.len()) - 1].author,
            deleted: folded.deleted,
        })
    }

    /// Applies a new event to the stored state of its target, as the
    /// PostgreSQL store does in the append's transaction (a reaction learns
    /// its count here).
    fn fold(&mut self, event: &mut StoredEvent) {
        let (seq, author, ts) = (event.seq, event.author, event.ts);
        match &mut event.data {
            EventData::Message { reply_to, .. } => {
                let reply_to = *reply_to;
                self.folded.insert(
                    seq,
                    Folded {
                        reply_to,
                        ..Folded::default()
                    },
                );
                // A user's own message marks the room read up to it.
                let cursor = self.cursors.entry(author).or_default();
                *cursor = (*cursor).max(seq);
            }
            EventData::Edit { target, body } => {
                let target = *target;
                self.set_body(target, body);
                if let Some(folded) = self.folded.get_mut(&target) {
                    folded.edited_at = Some(ts);
                }
            }
            EventData::Delete { target } => {
                let target = *target;
                // Erased from storage: the message and every edit of it.
                self.set_body(target, "");
                for logged in self.log.iter_mut() {
                    if let EventData::Edit { target: t, body } = &mut logged.data
                        && *t == target
                    {
                        body.clear();
                    }
                }
                if let Some(folded) = self.folded.get_mut(&target) {
                    folded.deleted = true;
                    folded.reactions.clear();
                }
            }
            EventData::Reaction {
                target,
                emoji,
                on,
                count,
            } => {
                if let Some(folded) = self.folded.get_mut(target) {
                    let users = folded.reactions.entry(emoji.clone()).or_default();
                    if *on {
                        users.insert(author);
                    } else {
                        users.remove(&author);
                    }
                    *count = users.len() as i64;
                    if users.is_empty() {
                        folded.reactions.remove(emoji.as_str());
                    }
                }
            }
        }
    }

    /// Replaces the body of the message at `seq` in the log.
    fn set_body(&mut self, seq: Seq, new: &str) {
        let index = index_of(seq, self.log.len());
        if let Some(EventData::Message { body, .. }) =
            index.checked_sub(1).map(|i| &mut self.log[i].data)
        {
            new.clone_into(body);
        }
    }

    /// A message in its current state, as `viewer` sees it.
    fn history_item(&self, event: &StoredEvent, viewer: UserId) -> Option<HistoryItem> {
        let folded = self.folded.get(&event.seq)?;
        Some(HistoryItem {
            seq: event.seq,
            id: event.id,
            author: event.author,
            body: event.body().to_owned(),
            ts: event.ts,
            client_id: event.client_id.clone(),
            reply_to: folded.reply_to,
            edited_at: folded.edited_at,
            deleted: folded.deleted,
            reactions: folded
                .reactions
                .iter()
                .map(|(emoji, users)| ReactionCount {
                    emoji: emoji.clone(),
                    count: users.len() as i64,
                    me: users.contains(&viewer),
                })
                .collect(),
        })
    }

    /// `user`'s position in this room.
    fn unread(&self, user: UserId) -> RoomUnread {
        let read_seq = self.cursors.get(&user).copied().unwrap_or_default();
        let after = index_of(read_seq, self.log.len());
        let unread = self.log[after..]
            .iter()
            .filter(|e| e.author != user)
            .filter(|e| self.folded.get(&e.seq).is_some_and(|f| !f.deleted))
            .count();
        RoomUnread {
            room: self.room.id,
            last_seq: Seq(self.log.len() as i64),
            read_seq,
            unread: unread as i64,
        }
    }
}

impl State {
    /// The log of a room; an unknown room has an empty one, as a query on
    /// the PostgreSQL store finds no rows.
    fn log(&self, room: RoomId) -> &[StoredEvent] {
        self.rooms.get(&room).map_or(&[], |row| &row.log)
    }

    /// All or nothing: every room is checked before anything is written.
    pub(super) fn append(
        &mut self,
        batch: &[NewEvent],
    ) -> Result<Vec<Result<Appended, Refusal>>, LogError> {
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

    pub(super) fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        query: HistoryQuery,
    ) -> Vec<HistoryItem> {
        let Some(row) = self.rooms.get(&room) else {
            return Vec::new();
        };
        let after = query.after.unwrap_or_default();
        let before = query.before.map_or(i64::MAX, |b| b.0);
        let matching = row
            .log
            .iter()
            .filter(|e| e.seq > after && e.seq.0 < before)
            .filter_map(|e| row.history_item(e, viewer))
            .filter(|item| query.reply_to.is_none() || item.reply_to == query.reply_to);
        let limit = query.limit as usize;
        if query.after.is_some() {
            matching.take(limit).collect()
        } else {
            let mut newest: Vec<HistoryItem> = matching.rev().take(limit).collect();
            newest.reverse();
            newest
        }
    }

    pub(super) fn mark_room_read(
        &mut self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<CursorMove, StoreError> {
        let row = self.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let last = Seq(row.log.len() as i64);
        let wanted = seq.min(last);
        let (seq, moved) = match row.cursors.get(&user).copied() {
            Some(cursor) if cursor >= wanted => (cursor, false),
            _ => (wanted, true),
        };
        row.cursors.insert(user, seq);
        Ok(CursorMove { seq, moved })
    }

    pub(super) fn read_cursors(&self, room: RoomId) -> Vec<ReadCursor> {
        self.rooms.get(&room).map_or_else(Vec::new, |row| {
            row.cursors
                .iter()
                .map(|(&user, &seq)| ReadCursor { user, seq })
                .collect()
        })
    }

    pub(super) fn room_unread(&self, user: UserId, rooms: &[RoomId]) -> Vec<RoomUnread> {
        rooms
            .iter()
            .filter_map(|id| self.rooms.get(id))
            .map(|row| row.unread(user))
            .collect()
    }

    pub(super) fn unread_rooms(&self, user: UserId) -> Vec<RoomUnread> {
        self.rooms
            .values()
            .filter(|row| {
                row.members.contains_key(&user)
                    || (row.room.kind == RoomKind::Public && row.cursors.contains_key(&user))
            })
            .map(|row| row.unread(user))
            .filter(|position| position.unread > 0)
            .collect()
    }

    pub(super) fn range(
        &self,
        room: RoomId,
        after: Seq,
        before: Option<Seq>,
        limit: u32,
    ) -> Vec<StoredEvent> {
        let log = self.log(room);
        let start = index_of(after, log.len());
        let end = before.map_or(log.len(), |b| {
            index_of(Seq(b.0.saturating_sub(1)), log.len())
        });
        let end = end.max(start).min(start.saturating_add(limit as usize));
        log[start..end].to_vec()
    }

    pub(super) fn tail(&self, room: RoomId, before: Option<Seq>, limit: u32) -> Vec<StoredEvent> {
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
            folded: HashMap::new(),
            cursors: BTreeMap::new(),
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
