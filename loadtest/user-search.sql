-- User search on a million users: the plan and time of parley's search
-- statement (src/store/postgres/users.rs, SEARCH; keep the two in step),
-- with the indexes of migrations/V2026120402__user_search.sql, as a
-- prepared statement's generic plan (what the pool runs after five calls).
--
--   psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE search_probe' postgres
--   psql -h 127.0.0.1 -U postgres -f loadtest/user-search.sql search_probe
--   psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE search_probe' postgres
--
-- Half the users have a display name; usernames and names are hex strings,
-- so a two-character prefix matches about 1/256 of them.
CREATE TABLE users (id uuid PRIMARY KEY, username text NOT NULL, email text NOT NULL,
    password_hash text NOT NULL, display_name text NOT NULL DEFAULT '',
    bio text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users (id, username, email, password_hash, display_name)
SELECT gen_random_uuid(), substr(md5(i::text), 1, 10), i || '@x', 'h',
       CASE WHEN i % 2 = 0
            THEN initcap(substr(md5((i * 7)::text), 1, 8)) || ' ' || substr(md5((i * 3)::text), 1, 6)
            ELSE '' END
FROM generate_series(1, 1000000) AS i;
CREATE INDEX users_username_search_idx ON users ((lower(username) COLLATE "C"));
CREATE INDEX users_display_name_search_idx ON users ((lower(display_name) COLLATE "C"))
    WHERE display_name <> '';
VACUUM ANALYZE users;

PREPARE search(text, text, text, bigint) AS
SELECT id, username, email, display_name, bio, created_at FROM (
   (SELECT *, lower(username) COLLATE "C" AS k FROM users
     WHERE lower(username) COLLATE "C" >= $1 AND lower(username) COLLATE "C" < $2
       AND lower(username) COLLATE "C" > $3
     ORDER BY k LIMIT $4)
   UNION
   (SELECT * FROM (SELECT *, lower(username) COLLATE "C" AS k FROM users
       WHERE display_name <> '' AND lower(display_name) COLLATE "C" >= $1
         AND lower(display_name) COLLATE "C" < $2 OFFSET 0) AS by_display_name
     WHERE k > $3 ORDER BY k LIMIT $4)
 ) AS found ORDER BY k LIMIT $4;
SET plan_cache_mode = force_generic_plan;
\echo 'first page of "ab" (cold), then again (warm), then the page after "ab5", then "abc1"'
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE search('ab', 'ab' || chr(1114111), '', 51);
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE search('ab', 'ab' || chr(1114111), '', 51);
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE search('ab', 'ab' || chr(1114111), 'ab5', 51);
EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) EXECUTE search('abc1', 'abc1' || chr(1114111), '', 51);
