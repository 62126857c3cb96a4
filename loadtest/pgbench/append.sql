-- PostgreSQL's own cost of one group-commit batch, for loadtest/run.sh ack:
-- the shape of parley's append (store/postgres/messages.rs) for 10
-- messages in 10 rooms, with the statements of the application's plan: lock
-- the rooms in id order, look the client ids up, insert the messages,
-- advance the rooms, move the authors' read cursors, commit. The rooms and
-- users are the ones the parley run made; `pgbench_append_rooms` numbers
-- them (loadtest/pgbench/append.sh creates it).
\set r random(1, :rooms - 9)
BEGIN;
SELECT id, last_seq FROM rooms
 WHERE id IN (SELECT id FROM pgbench_append_rooms WHERE n BETWEEN :r AND :r + 9)
 ORDER BY id FOR UPDATE;
SELECT m.seq FROM room_messages m
  JOIN pgbench_append_rooms b ON b.id = m.room_id AND b.author = m.author
 WHERE b.n BETWEEN :r AND :r + 9 AND m.client_id = 'pgbench-' || :client_id || '-' || b.n;
INSERT INTO room_messages (room_id, seq, id, author, body, client_id, created_at, kind)
SELECT b.id, r.last_seq + 1, gen_random_uuid(), b.author, 'a message of some thirty bytes',
       'pgbench-' || txid_current() || '-' || b.n, now(), 'message'
  FROM pgbench_append_rooms b JOIN rooms r ON r.id = b.id
 WHERE b.n BETWEEN :r AND :r + 9;
UPDATE rooms SET last_seq = last_seq + 1
 WHERE id IN (SELECT id FROM pgbench_append_rooms WHERE n BETWEEN :r AND :r + 9);
INSERT INTO read_cursors (room_id, user_id, seq)
SELECT b.id, b.author, r.last_seq
  FROM pgbench_append_rooms b JOIN rooms r ON r.id = b.id
 WHERE b.n BETWEEN :r AND :r + 9
ON CONFLICT (room_id, user_id) DO UPDATE SET seq = GREATEST(read_cursors.seq, EXCLUDED.seq);
COMMIT;
