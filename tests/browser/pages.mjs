// What the multi-tab browser tests share: launching Debian's Chromium, a
// signed-in tab on a parley instance, and the page's controls by test id.

import { chromium } from 'playwright-core';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const WAIT = { timeout: 15_000 };
export const PASSWORD = 'correct horse battery';

export const launch = () => chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });

export const byId = (page, id) => page.locator(`[data-testid="${id}"]`);
export const connected = (page) =>
  page.locator('[data-testid="conn-status"][data-state="connected"]').waitFor(WAIT);

/**
 * A tab on `parley`, registered (or logged in) as `username` and connected.
 * `page.problems` collects page errors and CSP refusals; confirm dialogs
 * are accepted. `prepare(context)`, if given, runs before the first load.
 */
export async function tab(browser, parley, username, { register, prepare }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  // Permissions and init scripts a test sets before the page loads.
  await prepare?.(context);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => /Content Security Policy|Refused to/i.test(m.text()) && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('dialog', (dialog) => dialog.accept());
  page.problems = problems;
  page.parley = parley;
  await page.goto(parley.base);
  await byId(page, 'auth-username').fill(username);
  if (register) await byId(page, 'auth-email').fill(`${username}@example.com`);
  await byId(page, 'auth-password').fill(PASSWORD);
  await byId(page, register ? 'register' : 'login').click();
  await byId(page, 'chat-view').waitFor({ state: 'visible', ...WAIT });
  await connected(page);
  page.userId = await byId(page, 'my-id').inputValue();
  return page;
}

export const roomButton = (page, roomId) =>
  page.locator(`[data-testid="room-item"][data-room-id="${roomId}"] button`);

/** Opens a room from the list, clicking "Refresh" until it is there (bounded). */
export async function openRoom(page, roomId) {
  const button = roomButton(page, roomId);
  for (let i = 0; i < 20 && (await button.count()) === 0; i += 1) {
    await byId(page, 'rooms-refresh').click();
    await button.waitFor({ timeout: 500 }).catch(() => {});
  }
  await button.click();
  await page.locator(`[data-testid="room-item"][data-room-id="${roomId}"] button[aria-current="true"]`).waitFor(WAIT);
}

/** Creates a room from the sidebar form; returns its id once it is open. */
export async function createRoom(page, name) {
  await byId(page, 'create-room-name').fill(name);
  await byId(page, 'create-room-submit').click();
  await byId(page, 'room-title').filter({ hasText: name }).waitFor(WAIT);
  return page.locator('[data-testid="room-item"]:has(button[aria-current="true"])').getAttribute('data-room-id', WAIT);
}

export async function send(page, body) {
  await byId(page, 'composer-input').fill(body);
  await byId(page, 'composer-send').click();
}

/** The message of the open room whose body holds `body`. */
export const message = (page, body) =>
  page.locator('[data-testid="message"]', { has: page.locator('[data-testid="message-body"]', { hasText: body }) });

/**
 * Two parley instances sharing one fresh database, one key folder and one
 * Redis (a key prefix of this run's own), and a browser: what the
 * multi-instance tests start in `before`. `stop()` ends it all.
 * Tokens outlive the test: chat.test.mjs covers refreshes, and a reload
 * while a refresh is in flight loses the rotated pair (the page then holds
 * a spent refresh token), which would log a tab out.
 */
export async function twoInstances(name) {
  const { createDatabase, createKeysDir, Parley, REDIS_URL, redisPrefix } = await import('./harness.mjs');
  const db = createDatabase();
  const keys = createKeysDir();
  const redis = { url: REDIS_URL, prefix: redisPrefix() };
  const env = { PARLEY_ACCESS_TTL_S: '300' };
  const made = (i) => Parley.create({ databaseUrl: db.url, keysDir: keys.dir, redis, instanceId: `${name}-${i}`, env });
  const one = await made(1);
  const two = await made(2);
  // One after the other: the first runs the migrations.
  await one.start();
  await two.start();
  const browser = await launch();
  const stop = async () => {
    await browser.close().catch(() => {});
    await Promise.all([one.stop().catch(() => {}), two.stop().catch(() => {})]);
    try {
      db.drop();
    } finally {
      keys.remove();
    }
  };
  return { one, two, browser, stop };
}
