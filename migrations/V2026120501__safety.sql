-- People and safety (contract 1.1, 6.2): blocks, room bans and mutes,
-- reports.

-- "blocker no longer hears from blocked". The primary key answers "has X
-- blocked Y" and lists X's blocks; the second index answers "who blocked
-- Y" among a notification's recipients.
CREATE TABLE user_blocks (
    blocker    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker, blocked),
    CHECK (blocker <> blocked)
);
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked, blocker);

-- A ban or a mute of one user in one room. Lifting deletes the row; an
-- expired one (`until` past) is ignored where it is read and replaced by
-- the next ban or mute, so expiry needs no job.
CREATE TABLE room_restrictions (
    room_id    uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CHECK (kind IN ('ban', 'mute')),
    reason     text        NOT NULL DEFAULT '',
    until      timestamptz,
    created_by uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Access checks look up (room, user); listings range over (room, kind).
    PRIMARY KEY (room_id, user_id, kind)
);
CREATE INDEX room_restrictions_list_idx ON room_restrictions (room_id, kind, user_id);

-- What users reported, for operators. No foreign key on the reported
-- message: reports outlive a deleted or purged message.
CREATE TABLE reports (
    id         uuid        PRIMARY KEY,
    reporter   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL CHECK (kind IN ('message', 'user')),
    room_id    uuid        REFERENCES rooms (id) ON DELETE CASCADE,
    seq        bigint,
    user_id    uuid        REFERENCES users (id) ON DELETE CASCADE,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'message') = (room_id IS NOT NULL AND seq IS NOT NULL))
);
