// Web Push (protocol 1.1, 6.3) in headless Debian Chromium: the switch in
// the notifications panel registers /sw.js, subscribes with the server's
// VAPID key and posts the subscription; off, it deletes it.
//
// Headless Chromium here reaches no real push service, so
// PushManager.subscribe is replaced in the page by a stub that records the
// applicationServerKey it was given and returns a subscription with a real
// P-256 key made here (the server checks the point). Everything else is
// real: the permission, the service worker, the page's requests and the
// server's answers. The delivery path (encryption, VAPID, retries) is
// tested against a local push service in tests/api/push.rs.
// Run it with scripts/test/test-browser.sh, or after `cargo build --bin
// parley`: cd tests/browser && node --test push.test.mjs

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createDatabase, createKeysDir, Parley } from './harness.mjs';
import { byId, launch, tab, WAIT } from './pages.mjs';

const suffix = Math.random().toString(36).slice(2, 8);
const PUSH_HOST = '127.0.0.1:9';

let parley;
let browser;
let db;
let keys;

before(async () => {
  db = createDatabase();
  keys = createKeysDir();
  parley = await Parley.create({
    databaseUrl: db.url,
    keysDir: keys.dir,
    env: { PARLEY_ACCESS_TTL_S: '300', PARLEY_PUSH_ALLOW_HOSTS: PUSH_HOST },
  });
  await parley.start();
  browser = await launch();
});

after(async () => {
  await browser?.close().catch(() => {});
  await parley?.stop().catch(() => {});
  db?.drop();
  keys?.remove();
});

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** What a browser's PushSubscription.toJSON() gives, with a real P-256 key. */
function fakeSubscription() {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  return {
    endpoint: `http://${PUSH_HOST}/push/${randomBytes(8).toString('hex')}`,
    expirationTime: null,
    keys: { p256dh: b64url(point), auth: b64url(randomBytes(16)) },
  };
}

/** Replaces PushManager in every page of `context` with a recording stub. */
async function stubPushManager(context, subscription) {
  await context.addInitScript((json) => {
    let current = null;
    window.pushCalls = [];
    const make = (key) => ({
      endpoint: json.endpoint,
      options: { applicationServerKey: key, userVisibleOnly: true },
      toJSON: () => json,
      unsubscribe: async () => {
        window.pushCalls.push({ unsubscribe: true });
        current = null;
        return true;
      },
    });
    PushManager.prototype.subscribe = async function subscribe(options) {
      const key = new Uint8Array(options.applicationServerKey).buffer;
      window.pushCalls.push({ subscribe: btoa(String.fromCharCode(...new Uint8Array(key))) });
      current = make(key);
      return current;
    };
    PushManager.prototype.getSubscription = async () => current;
  }, subscription);
}

test('the push switch subscribes with the server key, posts the subscription and deletes it when turned off', async () => {
  const subscription = fakeSubscription();
  const page = await tab(browser, parley, `pusher_${suffix}`, {
    register: true,
    prepare: async (context) => {
      await context.grantPermissions(['notifications'], { origin: parley.base });
      await stubPushManager(context, subscription);
    },
  });
  const toggle = byId(page, 'push-toggle');
  await byId(page, 'notif-toggle').click();
  assert.equal(await toggle.isChecked(), false);

  await toggle.check();
  await byId(page, 'push-status').filter({ hasText: 'on for this browser' }).waitFor(WAIT);
  // The service worker is registered and active at /sw.js.
  const worker = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
  assert.equal(new URL(worker).pathname, '/sw.js');
  // It subscribed with the server's VAPID key.
  const { key } = await (await fetch(`${parley.base}/api/v1/push/vapid-public-key`)).json();
  const calls = await page.evaluate(() => window.pushCalls);
  assert.equal(Buffer.from(calls[0].subscribe, 'base64').toString('base64url'), key);
  // The server holds the subscription: posting it again is the same one.
  const stored = await page.evaluate((user) => JSON.parse(localStorage.getItem(`parley.push.${user}`)), page.userId);
  const again = await page.evaluate(async (body) => {
    const { accessToken: access } = JSON.parse(sessionStorage.getItem('parley.session'));
    const res = await fetch('/api/v1/push/subscriptions', {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  }, subscription);
  assert.deepEqual(again, { status: 201, body: { id: stored.id } });

  // Still on after a reload.
  await page.reload();
  await byId(page, 'chat-view').waitFor({ state: 'visible', ...WAIT });
  assert.equal(await byId(page, 'push-toggle').isChecked(), true);

  // Off: deleted on the server (a second delete is 404) and unsubscribed.
  await byId(page, 'notif-toggle').click();
  await byId(page, 'push-toggle').uncheck();
  await byId(page, 'push-status').filter({ hasText: 'off' }).waitFor(WAIT);
  const gone = await page.evaluate(async (id) => {
    const { accessToken: access } = JSON.parse(sessionStorage.getItem('parley.session'));
    const res = await fetch(`/api/v1/push/subscriptions/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${access}` },
    });
    return res.status;
  }, stored.id);
  assert.equal(gone, 404);
  assert.ok((await page.evaluate(() => window.pushCalls)).some((c) => c.unsubscribe));
  assert.deepEqual(page.problems, []);
});
