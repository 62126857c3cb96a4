-- Webhooks (contract 6.3): endpoints, the durable outbox, the delivery log.
--
-- An event enters the outbox in the transaction of its own change (a room
-- event in its append batch), one row per subscribing endpoint; the
-- delivery worker of any instance claims due rows and deletes each once
-- its endpoint answered 2xx. Nothing is lost on a crash: a claimed row is
-- only leased (`due_at` moved past the lease), so another instance takes
-- it once the lease runs out.

CREATE TABLE webhook_endpoints (
    id            uuid        PRIMARY KEY,
    url           text        NOT NULL,
    -- Event type names ('message.created', ...), validated by the server.
    events        text[]      NOT NULL,
    -- 'whsec_' + base64 of the HMAC key. Needed in clear to sign.
    secret        text        NOT NULL,
    enabled       boolean     NOT NULL DEFAULT true,
    -- Consecutive failed attempts, and since when they fail: an endpoint
    -- is disabled after enough of them over a long enough time.
    failures      integer     NOT NULL DEFAULT 0,
    failing_since timestamptz,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_outbox (
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The webhook-id (with 'msg_'): the same on every attempt.
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    -- The exact body sent on every attempt.
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL DEFAULT 0,
    -- When the row may next be claimed: the next attempt, or the end of
    -- the lease of the instance delivering it now.
    due_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_id)
);
-- What the worker's claim scans, soonest first.
CREATE INDEX webhook_outbox_due_idx ON webhook_outbox (due_at);

CREATE TABLE webhook_deliveries (
    id          uuid        PRIMARY KEY,
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    attempt     integer     NOT NULL,
    -- The HTTP status, when the endpoint answered at all.
    status      integer,
    -- 'delivered', 'failed' (an answer that is not 2xx) or 'error' (no answer).
    outcome     text        NOT NULL,
    error       text,
    duration_ms integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
-- One endpoint's log, newest first (UUIDv7 ids sort by time).
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);
