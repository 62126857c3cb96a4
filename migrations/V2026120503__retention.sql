-- Retention (contract 1.1, section 6.2): a room may keep its events for a
-- number of days only; older ones are purged.

ALTER TABLE rooms
    -- Days an event is kept; NULL keeps them forever.
    ADD COLUMN retention_days integer CHECK (retention_days > 0),
    -- The first seq the room still holds: every event below it is purged or
    -- being purged. A purge advances it (a short committed update) before it
    -- deletes anything, and readers filter on it, so a reader sees either
    -- the old horizon with the rows still there or the new horizon, never a
    -- silent hole. Never moves back.
    ADD COLUMN first_seq bigint NOT NULL DEFAULT 1 CHECK (first_seq >= 1);

-- The rooms a purge pass visits: only those with a retention.
CREATE INDEX rooms_retention_idx ON rooms (id) WHERE retention_days IS NOT NULL;
