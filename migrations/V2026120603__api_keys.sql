-- API keys of the server API (contract 6.3). Only the SHA-256 of a key is
-- stored: the key is 32 random bytes, so a fast hash is as good as a slow
-- one and a database leak yields no usable key. `prefix` is the key's
-- first characters, for operators to tell keys apart.

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    prefix     text        NOT NULL,
    hash       bytea       NOT NULL UNIQUE,
    scopes     text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
