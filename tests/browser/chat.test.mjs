// End to end in headless Debian Chromium: two people register, one creates
// a room and adds the other, they chat both ways (typing, presence, a
// mention notification); then parley restarts (SIGTERM drain, same
// database and keys) while messages are posted, and the first page must
// say "reconnecting", come back and show every message exactly once, in
// seq order. Last, a reload and scroll-back through history.
// Run it with scripts/test/test-browser.sh.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { createDatabase, createKeysDir, Parley } from './harness.mjs';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 15_000 };
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const suffix = Math.random().toString(36).slice(2, 8);

let db;
let keys;
let parley;
let browser;

before(async () => {
  db = createDatabase();
  keys = createKeysDir();
  parley = await Parley.create({ databaseUrl: db.url, keysDir: keys.dir });
  await parley.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await parley?.stop().catch(() => {});
  try {
    db?.drop();
  } finally {
    keys?.remove();
  }
});

const byId = (page, id) => page.locator(`[data-testid="${id}"]`);

async function openAs(username) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const page = await context.newPage();
  const problems = [];
  // A CSP violation or a script error fails the test at the end. (Refused
  // connections while parley restarts are logged as errors too: expected.)
  page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
  page.problems = problems;
  await page.goto(parley.base);
  await byId(page, 'auth-username').fill(username);
  await byId(page, 'auth-email').fill(`${username}@example.com`);
  await byId(page, 'auth-password').fill('correct horse battery');
  await byId(page, 'register').click();
  await byId(page, 'chat-view').waitFor({ state: 'visible', ...WAIT });
  await page.locator('[data-testid="conn-status"][data-state="connected"]').waitFor(WAIT);
  page.userId = await byId(page, 'my-id').inputValue();
  page.firstToken = await accessToken(page);
  return page;
}

/** [seq, body] of every message the page shows, in DOM order. */
const shown = (page) =>
  page.$$eval('[data-testid="message-list"] > li', (items) =>
    items.map((li) => [Number(li.dataset.seq), li.querySelector('.body').textContent]));

const waitForMessage = (page, body) =>
  page.locator('[data-testid="message-body"]', { hasText: body }).first().waitFor(WAIT);

async function send(page, body) {
  await byId(page, 'composer-input').fill(body);
  await byId(page, 'composer-send').click();
}

/** Clicks "Refresh" until the room shows up in the list (bounded). */
async function openRoomFromList(page, roomId) {
  const item = page.locator(`[data-testid="room-item"][data-room-id="${roomId}"] button`);
  for (let i = 0; i < 20 && (await item.count()) === 0; i += 1) {
    await byId(page, 'rooms-refresh').click();
    await item.waitFor({ timeout: 500 }).catch(() => {});
  }
  await item.click();
}

const accessToken = (page) =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem('parley.session')).accessToken);

async function postAs(page, roomId, body, clientId) {
  // Through the page's own api.js, which refreshes a token about to expire.
  const token = await page.evaluate(() => import('/js/api.js').then((api) => api.freshToken()));
  const res = await fetch(`${parley.base}/api/v1/rooms/${roomId}/messages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ body, client_id: clientId }),
  });
  assert.equal(res.status, 201, await res.text());
}

test('two people chat, and a page catches up after a server restart with nothing missing or doubled', async () => {
  const ada = await openAs(`ada_${suffix}`);
  const bobName = `bob_${suffix}`;
  const bob = await openAs(bobName);

  // Ada creates a room and adds Bob by name: typing the start of it offers
  // him (GET /users?q=), and the name resolves to his id.
  await byId(ada, 'create-room-name').fill('general');
  await byId(ada, 'create-room-submit').click();
  await byId(ada, 'room-title').filter({ hasText: 'general' }).waitFor(WAIT);
  const roomId = await ada
    .locator('[data-testid="room-item"]:has(button[aria-current="true"])')
    .getAttribute('data-room-id', WAIT);
  await byId(ada, 'add-member-id').pressSequentially(bobName.slice(0, 4));
  await ada.locator(`#people-found option[value="${bobName}"]`).waitFor({ state: 'attached', ...WAIT });
  await byId(ada, 'add-member-id').fill(bobName);
  await byId(ada, 'add-member-submit').click();
  await byId(ada, 'member-status').filter({ hasText: 'Added.' }).waitFor(WAIT);

  await openRoomFromList(bob, roomId);
  await byId(bob, 'room-title').filter({ hasText: 'general' }).waitFor(WAIT);
  // Bob subscribed after Ada: Ada sees him come online.
  await ada.locator(`[data-testid="member"][data-user="${bob.userId}"][data-state="online"]`).waitFor(WAIT);

  const expected = [];
  const say = async (page, body) => {
    await send(page, body);
    expected.push(body);
    await Promise.all([waitForMessage(ada, body), waitForMessage(bob, body)]);
  };
  await say(ada, `hello @${bobName}`);
  await say(bob, 'hi ada');

  // Typing and the mention notification reach the other side.
  await byId(bob, 'composer-input').pressSequentially('typ');
  await byId(ada, 'typing').filter({ hasText: `${bobName} is typing` }).waitFor(WAIT);
  await bob.locator('[data-testid="notif-badge"][data-count="1"]').waitFor(WAIT);
  await byId(bob, 'notif-toggle').click();
  await byId(bob, 'notif-mark-read').click();
  await bob.locator('[data-testid="notif-badge"][data-count="0"]').waitFor({ state: 'attached', ...WAIT });
  await byId(bob, 'notif-toggle').click();
  await byId(bob, 'composer-input').fill('');

  // Restart: drain (reconnect frame, close 1012), exit, start again.
  const stopping = parley.stop();
  await byId(ada, 'conn-status').filter({ hasText: 'reconnecting' }).waitFor(WAIT);
  // Keeps Ada away until Bob has posted, whatever her backoff draws.
  await ada.context().setOffline(true);
  const exit = await stopping;
  assert.equal(exit.code, 0, `parley exit ${JSON.stringify(exit)}:\n${parley.logText()}`);
  await parley.start();
  for (let i = 1; i <= 5; i += 1) {
    const body = `while away ${i}`;
    await postAs(bob, roomId, body, `rest-${i}`);
    expected.push(body);
  }
  assert.equal(await byId(ada, 'conn-status').getAttribute('data-state'), 'reconnecting');
  await ada.context().setOffline(false);
  await ada.locator('[data-testid="conn-status"][data-state="connected"]').waitFor(WAIT);
  await bob.locator('[data-testid="conn-status"][data-state="connected"]').waitFor(WAIT);
  await say(ada, 'back again');
  await say(bob, 'welcome back');

  for (const page of [ada, bob]) {
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="message-list"] > li').length >= n,
      expected.length, WAIT);
    const list = await shown(page);
    assert.deepEqual(list.map(([, body]) => body), expected, 'every message once, in order');
    assert.deepEqual(list.map(([seq]) => seq), expected.map((_, i) => i + 1), 'seqs 1..n');
    await byId(page, 'pending').waitFor({ state: 'detached', ...WAIT });
    assert.deepEqual(page.problems, [], 'no console errors (CSP included)');
  }

  mkdirSync(ARTIFACTS, { recursive: true });
  await ada.screenshot({ path: join(ARTIFACTS, 'chat.png') });

  // A reload keeps the session (sessionStorage); the room opens on its
  // newest page and scrolls back with before_seq.
  for (let i = 1; i <= 55; i += 1) {
    const body = `bulk ${i}`;
    await postAs(bob, roomId, body, `bulk-${i}`);
    expected.push(body);
  }
  await ada.reload();
  await ada.locator('[data-testid="conn-status"][data-state="connected"]').waitFor(WAIT);
  await openRoomFromList(ada, roomId);
  await waitForMessage(ada, 'bulk 55');
  assert.equal((await shown(ada)).length, 50, 'one page of history');
  await byId(ada, 'load-older').click();
  await byId(ada, 'load-older').waitFor({ state: 'hidden', ...WAIT });
  const all = await shown(ada);
  assert.deepEqual(all.map(([, body]) => body), expected);
  assert.deepEqual(all.map(([seq]) => seq), expected.map((_, i) => i + 1));
  assert.deepEqual(ada.problems, []);
  // With 8 s access tokens each page refreshes its token before expiry;
  // a fast run may get here first, so wait for the refresh (the page does
  // it on a timer, there is no event to hook).
  for (const page of [ada, bob]) {
    await page.waitForFunction(
      (first) => JSON.parse(sessionStorage.getItem('parley.session')).accessToken !== first,
      page.firstToken,
      { timeout: 20_000, polling: 200 },
    );
    assert.notEqual(await accessToken(page), page.firstToken, 'the access token was refreshed');
  }
});
