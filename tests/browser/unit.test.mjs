// The client's pure logic, without a browser: seq bookkeeping, the fold of
// room events, unread counts and backoff.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, CAP_MS } from '../../static/js/backoff.js';
import { quoteText, targetOf, Timeline } from '../../static/js/timeline.js';
import { Unread } from '../../static/js/unread.js';

const msg = (seq) => ({ seq, body: `m${seq}` });

test('a timeline holds each seq once and reports a gap above its complete range', () => {
  const t = new Timeline();
  assert.equal(t.add(msg(3)), true);
  assert.equal(t.hasGap, false, 'no gap before the initial load says where history ends');
  t.completeTo(2);
  assert.equal(t.top, 3);
  assert.equal(t.add(msg(3)), false);
  t.add(msg(6));
  assert.equal(t.hasGap, true);
  t.add(msg(4));
  t.add(msg(5));
  assert.equal(t.top, 6);
  assert.equal(t.hasGap, false);
  assert.deepEqual(t.sorted().map((m) => m.seq), [3, 4, 5, 6]);
});

test('backoff grows to a cap, jitters fully and adds the server retry_after_ms', () => {
  assert.equal(backoffDelay(0, { random: () => 0 }), 0);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 1000);
  assert.ok(backoffDelay(50, { random: () => 0.999999 }) < CAP_MS);
  assert.equal(backoffDelay(0, { retryAfterMs: 700, random: () => 0 }), 700);
});

// Room events (protocol 1.1): the timeline folds message, edit, delete and
// reaction events by seq; history items arrive already folded.

const ME = 'me-id';
const BOB = 'bob-id';
const TS = '2026-01-01T10:00:00Z';
const at = (minutes) => new Date(Date.parse(TS) + minutes * 60_000).toISOString();
const frame = (type, seq, fields) => ({ type, room: 'r', seq, ts: at(seq), client_id: `c${seq}`, ...fields });
const message = (seq, author = BOB, body = `m${seq}`, extra = {}) =>
  frame('message', seq, { id: `id${seq}`, author, body, ...extra });
const edit = (seq, target, body, author = BOB) => frame('edit', seq, { id: `id${seq}`, target, body, author });
const del = (seq, target, by = BOB) => frame('delete', seq, { id: `id${seq}`, target, by });
const reaction = (seq, target, emoji, user, on) =>
  frame('reaction', seq, { id: `id${seq}`, target, emoji, user, on });
/** A history item: a message in its current state, no `type`. */
const item = (seq, fields = {}) => ({
  seq, id: `id${seq}`, author: BOB, body: `m${seq}`, ts: at(seq), client_id: `c${seq}`,
  reply_to: null, edited_at: null, deleted: false, reactions: [], ...fields,
});
const live = (events) => {
  const t = new Timeline(ME);
  t.completeTo(0);
  for (const e of events) t.add(e);
  return t;
};

test('every event kind takes a seq: top advances over edits, deletes and reactions', () => {
  const t = live([message(1), edit(2, 1, 'x'), reaction(3, 1, '👍', BOB, true), del(5, 1)]);
  assert.equal(t.top, 3);
  assert.equal(t.hasGap, true, 'seq 4 is missing');
  t.add(frame('pinned', 4, {})); // a kind this client does not know still fills its seq
  assert.equal(t.top, 5);
  assert.equal(t.hasGap, false);
  assert.deepEqual(t.sorted().map((m) => m.seq), [1], 'only messages are shown');
  assert.equal(targetOf(edit(2, 1, 'x')), 1);
  assert.equal(targetOf(message(7)), 7);
});

test('edits replace the body and set edited_at; deletes leave a tombstone without reactions', () => {
  const t = live([message(1), message(2), edit(3, 1, 'first fix'), edit(4, 1, 'second fix')]);
  assert.equal(t.view(1).body, 'second fix');
  assert.equal(t.view(1).edited_at, at(4));
  assert.equal(t.view(2).edited_at, null);
  t.add(reaction(5, 2, '🎉', BOB, true));
  t.add(del(6, 2));
  t.add(edit(7, 2, 'too late')); // the server refuses this; a fold ignores it too
  assert.deepEqual(
    { body: t.view(2).body, deleted: t.view(2).deleted, reactions: t.view(2).reactions },
    { body: '', deleted: true, reactions: [] },
  );
});

test('the fold is idempotent: a replay or a repeated frame changes nothing', () => {
  const events = [
    message(1), message(2, ME), reaction(3, 1, '👍', BOB, true), reaction(4, 1, '👍', ME, true),
    edit(5, 2, 'mine, edited', ME), reaction(6, 1, '❤️', BOB, true), reaction(7, 1, '❤️', BOB, false),
    del(8, 1),
  ];
  const once = live(events);
  const twice = live(events);
  for (const e of [...events].reverse()) assert.equal(twice.add(e), false, `seq ${e.seq} again`);
  // A replay from `since` 2 after a reconnect, on top of everything.
  for (const e of events.slice(2)) twice.add(structuredClone(e));
  assert.deepEqual(twice.sorted(), once.sorted());
  assert.equal(twice.top, 8);
});

test('events fold in seq order whatever order they arrive in, and wait for a target not loaded yet', () => {
  const inOrder = live([message(1), edit(2, 1, 'a'), edit(3, 1, 'b'), reaction(4, 1, '😂', BOB, true)]);
  const t = new Timeline(ME);
  t.add(reaction(4, 1, '😂', BOB, true));
  t.add(edit(3, 1, 'b'));
  assert.equal(t.view(1), null, 'no message 1 yet');
  t.add(edit(2, 1, 'a'));
  t.add(message(1));
  t.completeTo(0);
  assert.deepEqual(t.sorted(), inOrder.sorted());
  assert.equal(t.view(1).body, 'b');
});

test('reactions: counts per emoji, `me` for the caller, on twice counts once, off removes', () => {
  const t = live([
    message(1),
    reaction(2, 1, '👍', BOB, true),
    reaction(3, 1, '👍', ME, true),
    reaction(4, 1, '👍', ME, true), // `on` twice is one reaction
    reaction(5, 1, '❤️', BOB, true),
    reaction(6, 1, '❤️', BOB, false),
    reaction(7, 1, '🎉', ME, true),
    reaction(8, 1, '🎉', ME, false),
    reaction(9, 1, '🎉', ME, false),
  ]);
  assert.deepEqual(t.view(1).reactions, [{ emoji: '👍', count: 2, me: true }]);
});

test('a reaction frame\'s count is the truth, even over a base that missed earlier reactions', () => {
  const t = new Timeline(ME);
  // The base says one 👍; bob's `on` arrives though he was that one, and
  // the server's count says so.
  t.add(item(1, { reactions: [{ emoji: '👍', count: 1, me: false }] }));
  t.completeTo(1);
  t.add({ ...reaction(2, 1, '👍', BOB, true), count: 1 });
  t.add({ ...reaction(3, 1, '👍', ME, true), count: 2 });
  assert.deepEqual(t.view(1).reactions, [{ emoji: '👍', count: 2, me: true }]);
});

test('history items carry folded state; live events fold on top of it', () => {
  const t = new Timeline(ME);
  t.add(item(3, {
    body: 'edited once', edited_at: at(5),
    reactions: [{ emoji: '👍', count: 2, me: true }, { emoji: '❤️', count: 1, me: false }],
  }));
  t.add(item(4, { deleted: true, body: '' }));
  t.add(item(6, { reply_to: 3 }));
  t.completeTo(10);
  assert.equal(t.top, 10);
  assert.deepEqual(t.view(3).reactions, [{ emoji: '👍', count: 2, me: true }, { emoji: '❤️', count: 1, me: false }]);
  // Live, after the page: the caller's own `on` is already counted (me), Bob's off/on are new.
  t.add(reaction(11, 3, '👍', ME, true));
  t.add(reaction(12, 3, '❤️', 'carol', false));
  t.add(reaction(13, 3, '🎉', BOB, true));
  assert.deepEqual(t.view(3).reactions, [{ emoji: '👍', count: 2, me: true }, { emoji: '🎉', count: 1, me: false }]);
  t.add(reaction(14, 3, '👍', ME, false));
  assert.deepEqual(t.view(3).reactions[0], { emoji: '👍', count: 1, me: false });
  // An edit older than the page's edited_at (the page already has a later one) is skipped.
  t.add({ ...edit(15, 3, 'stale'), ts: at(4) });
  assert.equal(t.view(3).body, 'edited once');
  t.add(edit(16, 3, 'edited twice'));
  assert.equal(t.view(3).body, 'edited twice');
  assert.equal(t.view(3).edited_at, at(16));
  assert.equal(t.view(4).deleted, true);
  assert.equal(t.view(6).reply_to, 3);
  assert.equal(t.top, 16);
});

test('a quoted message is held apart until a page brings it, and events fold on it too', () => {
  const t = new Timeline(ME);
  t.add(item(40));
  t.completeTo(40);
  t.hasOlder = true;
  assert.equal(t.addQuoted(item(7, { body: 'the question' })), true);
  assert.equal(t.shows(7), false);
  assert.equal(t.minSeq, 40, 'a quoted message is not the oldest loaded');
  t.add(edit(41, 7, 'the better question'));
  assert.equal(t.view(7).body, 'the better question');
  assert.equal(t.add(item(7, { body: 'the question' })), true, 'an older page brings it');
  assert.equal(t.shows(7), true);
  assert.equal(t.view(7).body, 'the better question');
  assert.equal(t.addQuoted(item(7)), false);
});

test('a reply quotes its target: author and the first ~80 characters, or "deleted message"', () => {
  assert.equal(quoteText({ body: 'short', deleted: false }), 'short');
  assert.equal(quoteText({ body: 'line one\n\n  line two', deleted: false }), 'line one line two');
  const long = `${'a'.repeat(79)} ${'b'.repeat(40)}`;
  assert.equal(quoteText({ body: long, deleted: false }), `${'a'.repeat(79)}…`);
  const emoji = '🎉'.repeat(100);
  assert.equal(quoteText({ body: emoji, deleted: false }), `${'🎉'.repeat(80)}…`, 'cut by code point');
  assert.equal(quoteText({ body: '', deleted: true }), 'deleted message');
  assert.equal(quoteText(null), 'deleted message');
});

test('unread after a cursor counts others\' messages that are not deleted, when the timeline covers it', () => {
  const t = live([message(1), message(2, ME), message(3), reaction(4, 3, '👍', BOB, true), message(5), del(6, 5)]);
  assert.equal(t.unreadAfter(0), 2, 'messages 1 and 3 (5 is deleted, 2 is mine)');
  assert.equal(t.unreadAfter(1), 1);
  assert.equal(t.unreadAfter(6), 0);
  const partial = new Timeline(ME);
  partial.add(item(20));
  partial.add(item(21));
  partial.completeTo(21);
  partial.hasOlder = true;
  assert.equal(partial.unreadAfter(19), 2, 'the cursor is just below the oldest page');
  assert.equal(partial.unreadAfter(10), null, 'messages 11..19 are not loaded');
  assert.equal(new Timeline(ME).unreadAfter(0), null, 'nothing known yet');
});

test('unread counts start from the server and follow live frames without counting twice', () => {
  const u = new Unread();
  u.server('r', { unread: 2, read_seq: 4, last_seq: 8 });
  assert.equal(u.count('r'), 2);
  assert.equal(u.message('r', { seq: 7, author: BOB }, ME), false, 'a replayed message the server counted');
  assert.equal(u.message('r', { seq: 9, author: BOB }, ME), true);
  assert.equal(u.message('r', { seq: 9, author: BOB }, ME), false, 'the same frame again');
  assert.equal(u.count('r'), 3);
  assert.equal(u.message('r', { seq: 10, author: BOB }, ME, true), false, 'seen as it arrives in the open room');
  assert.equal(u.count('r'), 3);
  // A late answer from before seq 9 arrived keeps the live count.
  u.server('r', { unread: 2, read_seq: 4, last_seq: 8 });
  assert.equal(u.count('r'), 3);
  // The server's newer count includes 9 and 10.
  u.server('r', { unread: 4, read_seq: 4, last_seq: 10 });
  assert.equal(u.count('r'), 4);
  u.server('other', { unread: 1, read_seq: 0, last_seq: 1 });
  assert.equal(u.total(), 5);
  assert.equal(u.total('r'), 1, 'the open room is not in the total');
});

test('unread: read frames, own messages and deletes', () => {
  const u = new Unread();
  u.server('r', { unread: 3, read_seq: 2, last_seq: 6 });
  u.message('r', { seq: 7, author: BOB }, ME);
  u.message('r', { seq: 8, author: BOB }, ME);
  assert.equal(u.count('r'), 5);
  assert.equal(u.deleted('r', 8), 'ok', 'a live message deleted: one less');
  assert.equal(u.count('r'), 4);
  assert.equal(u.deleted('r', 5), 'recount', 'one the server counted: it may have been unread');
  assert.equal(u.deleted('r', 1), 'ok', 'before the cursor');
  assert.equal(u.read('r', 4), 'recount', 'a cursor inside the server\'s count');
  assert.equal(u.readOf('r'), 4);
  u.set('r', 1, 8); // the caller counted from its timeline
  assert.equal(u.count('r'), 1);
  assert.equal(u.read('r', 3), 'ok', 'never backwards');
  assert.equal(u.readOf('r'), 4);
  assert.equal(u.read('r', 8), 'ok');
  assert.equal(u.count('r'), 0);
  u.message('r', { seq: 9, author: BOB }, ME);
  u.message('r', { seq: 10, author: BOB }, ME);
  assert.equal(u.count('r'), 2);
  assert.equal(u.read('r', 9), 'ok', 'live messages are counted by seq');
  assert.equal(u.count('r'), 1);
  assert.equal(u.message('r', { seq: 11, author: ME }, ME), true, 'an own message moves the cursor');
  assert.equal(u.readOf('r'), 11);
  assert.equal(u.count('r'), 0);
  u.message('r', { seq: 12, author: BOB }, ME);
  u.none('r'); // GET /rooms/unread left the room out
  assert.equal(u.count('r'), 0);
  assert.equal(u.count('never-heard-of'), 0);
});

test('a replay as parley sends it (current bodies, erased bodies of deleted messages) ends where history does', () => {
  // What `subscribe` with `since: 0` sent in a probe of the server: the
  // message frames carry today's body, an edit of a deleted message an
  // empty one, and a second `on` is an event of its own.
  const replay = live([
    message(1, BOB, ''),
    message(2, ME, 'reply edited', { reply_to: 1 }),
    edit(3, 1, ''),
    reaction(4, 1, '👍', ME, true),
    reaction(5, 1, '👍', ME, true),
    del(6, 1),
    reaction(7, 2, '❤️', BOB, true),
    edit(8, 2, 'reply edited', ME),
  ]);
  const history = new Timeline(ME);
  history.add(item(1, { body: '', deleted: true, edited_at: at(3) }));
  history.add(item(2, {
    author: ME, body: 'reply edited', reply_to: 1, edited_at: at(8),
    reactions: [{ emoji: '❤️', count: 1, me: false }],
  }));
  history.completeTo(8);
  const shownState = (t) => t.sorted().map(({ seq, body, deleted, reply_to: replyTo, edited_at: editedAt, reactions }) =>
    ({ seq, body, deleted, replyTo, edited: editedAt !== null && !deleted, reactions }));
  assert.deepEqual(shownState(replay), shownState(history));
  assert.equal(replay.view(2).edited_at, at(8));
});

test('truncated drops what retention purged and counts the stream complete up to first_seq', () => {
  const t = new Timeline(ME);
  t.completeTo(0);
  for (const seq of [1, 2, 3]) t.add(message(seq));
  t.add(edit(4, 2, 'edited'));
  t.add(message(5));
  t.add(message(9));
  assert.equal(t.hasGap, true);
  t.truncate(8);
  assert.deepEqual(t.sorted().map((m) => m.seq), [9]);
  assert.equal(t.top, 7, 'the replay brings 8 next');
  t.truncate(9);
  assert.equal(t.top, 9);
  assert.equal(t.hasGap, false, 'the purged seqs are no gap to resync');
  assert.equal(t.view(2), null);
});
