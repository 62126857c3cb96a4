// Room events (protocol 1.1) end to end in headless Debian Chromium, on
// two parley instances sharing one PostgreSQL database, one key folder and
// one Redis (a key prefix of this run's own). Alice has two tabs, A1 on
// instance 1 and A2 on instance 2; Bob has one, on instance 2. Unread
// badges show on both of Alice's tabs and clear on both when she reads in
// one; a reply shows its quote, an edit its "edited", a reaction its count
// (highlighted for its author), a delete its tombstone, on every tab; a
// room owner deletes another's message. Then instance 1 restarts while
// Bob posts: A1 catches up, and after reloads every tab shows the same
// state and the badges agree with each other and with the server.
// Run it with scripts/test/test-browser.sh.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { byId, connected, createRoom, message, openRoom, send, tab, twoInstances, WAIT } from './pages.mjs';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const suffix = Math.random().toString(36).slice(2, 8);

let one;
let two;
let browser;
let stop;

before(async () => {
  ({ one, two, browser, stop } = await twoInstances('browser'));
});

after(async () => {
  await stop?.();
});

const bySeq = (page, seq) => page.locator(`[data-testid="message"][data-seq="${seq}"]`);

/** Waits for the room's badge to show `n` (0: no badge) and the title to agree. */
async function badge(page, roomId, n) {
  const selector = `[data-testid="room-item"][data-room-id="${roomId}"] [data-testid="room-unread"][data-count="${n}"]`;
  if (n === 0) await page.locator(`${selector}[hidden]`).waitFor({ state: 'attached', ...WAIT });
  else await page.locator(selector).waitFor({ state: 'visible', ...WAIT });
}

async function title(page, text) {
  await page.waitForFunction((t) => document.title === t, text, WAIT);
}

/** What the page shows of the open room, message by message. */
const shown = (page, { mine = true } = {}) =>
  page.$$eval('[data-testid="message-list"] > li', (items, withMine) =>
    items.map((li) => ({
      seq: Number(li.dataset.seq),
      author: li.dataset.author,
      body: li.querySelector('[data-testid="message-body"]').textContent,
      deleted: li.dataset.deleted === 'true',
      edited: !li.querySelector('[data-testid="edited-marker"]').hidden,
      quote: li.querySelector('[data-testid="reply-preview"]').hidden
        ? null
        : li.querySelector('[data-testid="reply-preview"]').textContent,
      reactions: [...li.querySelectorAll('[data-testid="reaction"]')]
        .filter((b) => b.dataset.count !== '0')
        .map((b) => [b.dataset.emoji, Number(b.dataset.count), ...(withMine ? [b.getAttribute('aria-pressed')] : [])]),
    })), mine);

/** The caller's unread counts from the server (GET /api/v1/rooms/unread), through the page's token. */
async function serverUnread(page) {
  const token = await page.evaluate(() => import('/js/api.js').then((api) => api.freshToken()));
  const res = await fetch(`${page.parley.base}/api/v1/rooms/unread`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

test('room events on two instances: unread badges across tabs, replies, edits, reactions, deletes, and a restart', async () => {
  const aliceName = `alice_${suffix}`;
  const bobName = `bob_${suffix}`;
  const a1 = await tab(browser, one, aliceName, { register: true });
  const bob = await tab(browser, two, bobName, { register: true });
  const a2 = await tab(browser, two, aliceName, { register: false });
  const pages = [a1, a2, bob];

  // Alice owns "events" (Bob is a member) and "lobby", where her tabs wait.
  const events = await createRoom(a1, 'events');
  await byId(a1, 'add-member-id').fill(bob.userId);
  await byId(a1, 'add-member-submit').click();
  await byId(a1, 'member-status').filter({ hasText: 'Added.' }).waitFor(WAIT);
  const lobby = await createRoom(a1, 'lobby');
  // A2 subscribes to "events" by opening it once, then waits in "lobby" too.
  await openRoom(a2, events);
  await openRoom(a2, lobby);
  await openRoom(bob, events);
  await a1.locator(`[data-testid="room-item"][data-room-id="${events}"] button`).waitFor(WAIT);

  // Bob's message: a badge on both of Alice's tabs, and the total in the title.
  await send(bob, 'hello alice, from instance 2');
  await Promise.all([badge(a1, events, 1), badge(a2, events, 1)]);
  await Promise.all([title(a1, '(1) parley'), title(a2, '(1) parley')]);
  assert.equal((await serverUnread(a1)).total, 1);

  // Alice reads in A1: the message scrolls into view, `read` goes out, and
  // the server's `read` clears the badge in A2 (instance 2) too.
  await openRoom(a1, events);
  await message(a1, 'hello alice').waitFor(WAIT);
  await Promise.all([badge(a1, events, 0), badge(a2, events, 0)]);
  await Promise.all([title(a1, 'parley'), title(a2, 'parley')]);
  assert.equal((await serverUnread(a2)).total, 0);

  // A reply from A1 quotes Bob's message.
  await message(a1, 'hello alice').locator('[data-testid="reply-button"]').click();
  await byId(a1, 'reply-banner').filter({ hasText: 'hello alice' }).waitFor(WAIT);
  await send(a1, 'a reply from A1');
  await byId(a1, 'reply-banner').waitFor({ state: 'hidden', ...WAIT });
  for (const page of [a1, bob]) {
    await message(page, 'a reply from A1').locator('[data-testid="reply-preview"]')
      .filter({ hasText: bobName }).filter({ hasText: 'hello alice, from instance 2' }).waitFor(WAIT);
  }
  // Her own message moves her cursor: no badge in A2 for it.
  await badge(a2, events, 0);

  // Alice edits her reply and reacts to Bob's message, in A1; A2 follows.
  await openRoom(a2, events);
  const reply = message(a1, 'a reply from A1');
  await reply.locator('[data-testid="edit-button"]').click();
  await reply.locator('[data-testid="edit-input"]').fill('a reply from A1, edited');
  await reply.locator('[data-testid="edit-save"]').click();
  for (const page of pages) {
    const edited = message(page, 'a reply from A1, edited');
    await edited.locator('[data-testid="edited-marker"]').waitFor(WAIT);
  }
  await message(a1, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"]').click();
  for (const page of pages) {
    const mine = page === bob ? 'false' : 'true';
    await message(page, 'hello alice')
      .locator(`[data-testid="reaction"][data-emoji="👍"][data-count="1"][aria-pressed="${mine}"]`).waitFor(WAIT);
  }
  // Bob adds his own: two, and his highlighted only on his tab.
  await message(bob, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"]').click();
  for (const page of pages) {
    await message(page, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"][data-count="2"][aria-pressed="true"]')
      .waitFor(WAIT);
  }
  // A2 takes Alice's back: one, highlighted for Bob only.
  await message(a2, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await message(a1, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"][data-count="1"][aria-pressed="false"]')
    .waitFor(WAIT);
  await message(bob, 'hello alice').locator('[data-testid="reaction"][data-emoji="👍"][data-count="1"][aria-pressed="true"]')
    .waitFor(WAIT);

  // Only the author may edit; Alice owns the room, so she may delete Bob's.
  const bobsFirst = message(a1, 'hello alice');
  assert.equal(await bobsFirst.locator('[data-testid="edit-button"]').count(), 0, 'no edit on another\'s message');
  await bobsFirst.locator('[data-testid="delete-button"]').waitFor(WAIT);
  const aliceReply = message(bob, 'a reply from A1, edited');
  assert.equal(await aliceReply.locator('[data-testid="delete-button"]').count(), 0, 'a member deletes only their own');

  // Bob deletes his message: a tombstone everywhere, and the reply's quote says so.
  const seq = Number(await message(bob, 'hello alice').getAttribute('data-seq', WAIT));
  await message(bob, 'hello alice').locator('[data-testid="delete-button"]').click();
  await message(bob, 'hello alice').locator('[data-testid="delete-confirm-button"]').click();
  for (const page of pages) {
    await page.locator(`[data-testid="message"][data-seq="${seq}"][data-deleted="true"]`).waitFor(WAIT);
    await bySeq(page, seq).locator('[data-testid="message-body"]', { hasText: 'message deleted' }).waitFor(WAIT);
    assert.equal(await bySeq(page, seq).locator('[data-testid="reaction"][data-count="1"]').count(), 0);
    await message(page, 'a reply from A1, edited').locator('[data-testid="reply-preview"]', { hasText: 'deleted message' })
      .waitFor(WAIT);
  }

  // The owner deletes Bob's second message from A1.
  await send(bob, 'alice may delete this');
  const ownerDeleted = Number(await message(a1, 'alice may delete this').getAttribute('data-seq', WAIT));
  for (const page of pages) await bySeq(page, ownerDeleted).waitFor(WAIT);
  await message(a1, 'alice may delete this').locator('[data-testid="delete-button"]').click();
  await message(a1, 'alice may delete this').locator('[data-testid="delete-confirm-button"]').click();
  for (const page of pages) {
    await page.locator(`[data-testid="message"][data-seq="${ownerDeleted}"][data-deleted="true"]`).waitFor(WAIT);
  }

  // Alice's tabs go back to the lobby; Bob posts twice: two unread on each.
  await openRoom(a1, lobby);
  await openRoom(a2, lobby);
  await send(bob, 'unread one');
  await send(bob, 'unread two');
  await Promise.all([badge(a1, events, 2), badge(a2, events, 2)]);

  // Instance 1 restarts (drain: `reconnect`, close 1012) while Bob posts on 2.
  const stopping = one.stop();
  await byId(a1, 'conn-status').filter({ hasText: 'reconnecting' }).waitFor(WAIT);
  const exit = await stopping;
  assert.equal(exit.code, 0, `instance 1 exit ${JSON.stringify(exit)}:\n${one.logText()}`);
  await send(bob, 'unread three, while instance 1 was down');
  await badge(a2, events, 3);
  await one.start();
  await connected(a1);
  // A1 caught up by the replay and a refetch of /rooms/unread.
  await badge(a1, events, 3);
  await title(a1, '(3) parley');
  await title(a2, '(3) parley');
  assert.equal((await serverUnread(a1)).total, 3);

  // Reloads: counts from GET /rooms, the same on both tabs.
  for (const page of [a1, a2]) {
    await page.reload();
    await connected(page);
    await badge(page, events, 3);
    await title(page, '(3) parley');
  }

  // The room's state is the same on every tab (Alice's two agree on her
  // own reactions too), and reading it in A2 clears A1.
  await openRoom(a2, events);
  await message(a2, 'unread three').waitFor(WAIT);
  await badge(a1, events, 0);
  await title(a1, 'parley');
  await openRoom(a1, events);
  await message(a1, 'unread three').waitFor(WAIT);
  await bob.reload();
  await connected(bob);
  await openRoom(bob, events);
  await message(bob, 'unread three').waitFor(WAIT);
  const state = await shown(a1);
  assert.deepEqual(await shown(a2), state);
  assert.deepEqual(await shown(bob, { mine: false }), await shown(a1, { mine: false }));
  assert.deepEqual(state.map((m) => m.body), [
    'message deleted', 'a reply from A1, edited', 'message deleted', 'unread one', 'unread two',
    'unread three, while instance 1 was down',
  ]);
  const replyState = state[1];
  assert.equal(replyState.edited, true);
  assert.equal(replyState.quote, 'deleted message');
  assert.equal(state[0].deleted, true);
  assert.deepEqual(state[0].reactions, [], 'a deleted message keeps no reactions');
  assert.equal((await serverUnread(a1)).total, 0);

  // For the screenshot: a reaction, counted and highlighted.
  await message(a1, 'unread one').locator('[data-testid="reaction"][data-emoji="🎉"]').click();
  await message(a1, 'unread one').locator('[data-testid="reaction"][data-emoji="🎉"][data-count="1"][aria-pressed="true"]')
    .waitFor(WAIT);
  await byId(a1, 'composer-input').focus();
  mkdirSync(ARTIFACTS, { recursive: true });
  await a1.screenshot({ path: join(ARTIFACTS, 'events.png') });
  for (const page of pages) assert.deepEqual(page.problems, [], 'no console errors (CSP included)');
});
