-- Web Push (contract 1.1, section 6.3): browsers' push subscriptions, and a
-- durable outbox of pushes still to send. See docs/push.md.

-- One row per browser (or device) a user turned push on in. The same
-- endpoint posted again by the same user is the same subscription.
CREATE TABLE push_subscriptions (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The push service's URL for this browser: a capability, kept secret.
    endpoint   text        NOT NULL,
    -- The browser's P-256 public key (65 bytes, uncompressed) and its
    -- 16-byte auth secret (RFC 8291).
    p256dh     bytea       NOT NULL CHECK (length(p256dh) = 65),
    auth       bytea       NOT NULL CHECK (length(auth) = 16),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Also the index the enqueue trigger joins on (by user).
    UNIQUE (user_id, endpoint)
);

-- One row per (notification, subscription) still to push. Deleted when it
-- is done (sent, skipped, given up); a subscription or notification that
-- goes away takes its rows with it.
CREATE TABLE push_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    subscription_id uuid        NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    -- The notification's time: the row is due PARLEY_PUSH_DELAY_MS later
    -- (each instance's own setting: the delay is the sender's policy).
    created_at      timestamptz NOT NULL,
    -- NULL until claimed. Then: the end of the claim's lease, or the time
    -- of the next attempt after a retryable failure. Not due before it.
    not_before      timestamptz,
    -- The claim holding the row (a random token per claim); NULL when free.
    -- Finishing checks it, so a claim that outlived its lease (and was
    -- taken over) cannot also finish.
    lease           uuid,
    attempts        integer     NOT NULL DEFAULT 0
);
-- The claim's scan: oldest first.
CREATE INDEX push_outbox_created_idx ON push_outbox (created_at);
-- The cascades from a deleted subscription or notification.
CREATE INDEX push_outbox_subscription_idx ON push_outbox (subscription_id);
CREATE INDEX push_outbox_notification_idx ON push_outbox (notification_id);

-- Every notification insert enqueues one push per subscription of its
-- recipient in the same statement, so in the same transaction, whichever
-- code path inserted it. Once per statement (a post's 1,000 followers are
-- one join, not 1,000 trigger calls); a recipient without subscriptions
-- costs one index probe.
CREATE FUNCTION push_outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO push_outbox (notification_id, subscription_id, created_at)
    SELECT n.id, s.id, n.created_at
    FROM inserted n JOIN push_subscriptions s ON s.user_id = n.user_id
    WHERE n.read_at IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER notifications_push_outbox
    AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION push_outbox_enqueue();
