-- Log out everywhere, and refresh-token reuse (contract 6.2): the access
-- tokens and WebSockets of revoked logins are refused on every instance.
-- Every instance loads the recent rows at start-up and polls for new ones
-- about every second, so a revocation takes effect even when the bus
-- message that carried it was lost. Only rows younger than the
-- access-token lifetime matter; older ones are kept for the record.
CREATE TABLE session_revocations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL: every login of the user begun before `at`; else that family.
    family      uuid,
    at          timestamptz NOT NULL,
    -- The database's clock, which every poller shares.
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_revocations_recorded_at_idx ON session_revocations (recorded_at);
CREATE INDEX session_revocations_user_idx ON session_revocations (user_id);
