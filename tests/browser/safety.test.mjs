// People and safety (protocol 1.1, 6.2) in headless Debian Chromium, on two
// parley instances sharing one PostgreSQL database, one key folder and one
// Redis. Alice (instance 1) owns a room; Bob (instance 2) is in it and
// starts a direct conversation with her by name. Alice mutes Bob from the
// member list: his next message is refused on his open tab; unmuted, it
// goes through. Alice bans him: his open tab, on the other instance, says
// so and stops offering the composer. Bob blocks Alice from a member list.
// Last, Alice logs out everywhere from one tab and her other tab, on the
// other instance, is logged out too.
// Run it with scripts/test/test-browser.sh.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { byId, createRoom, message, openRoom, roomButton, send, tab, twoInstances, WAIT } from './pages.mjs';

const suffix = Math.random().toString(36).slice(2, 8);

let one;
let two;
let browser;
let stop;

before(async () => {
  ({ one, two, browser, stop } = await twoInstances('safety'));
});

after(async () => {
  await stop?.();
});

const member = (page, userId) => page.locator(`[data-testid="member"][data-user="${userId}"]`);

test('mute, ban and block from the member list take effect on open tabs; log out everywhere ends every tab', async () => {
  const aliceName = `alice_${suffix}`;
  const bobName = `bob_${suffix}`;
  const alice = await tab(browser, one, aliceName, { register: true });
  const bob = await tab(browser, two, bobName, { register: true });

  // Alice creates "club" and adds Bob by name.
  const club = await createRoom(alice, 'club');
  await byId(alice, 'add-member-id').fill(bobName);
  await byId(alice, 'add-member-submit').click();
  await byId(alice, 'member-status').filter({ hasText: 'Added.' }).waitFor(WAIT);

  // Bob starts a direct conversation with Alice by name.
  await byId(bob, 'direct-user').fill(aliceName);
  await byId(bob, 'direct-submit').click();
  await byId(bob, 'room-title').filter({ hasText: aliceName }).waitFor(WAIT);
  await member(bob, alice.userId).waitFor(WAIT);

  await openRoom(bob, club);
  await send(bob, 'hello from bob');
  await message(alice, 'hello from bob').waitFor(WAIT);

  // Mute, from Alice's member list: Bob's open tab is refused at once.
  await member(alice, bob.userId).locator('[data-testid="member-mute"]').click();
  await member(alice, bob.userId).locator('[data-testid="member-muted"]').waitFor(WAIT);
  await send(bob, 'can you hear me');
  await byId(bob, 'room-error').filter({ hasText: 'muted' }).waitFor(WAIT);
  await byId(bob, 'pending-list').locator('li').waitFor({ state: 'detached', ...WAIT });
  await member(alice, bob.userId).locator('[data-testid="member-unmute"]').click();
  await member(alice, bob.userId).locator('[data-testid="member-mute"]').waitFor(WAIT);
  await send(bob, 'unmuted now');
  await message(alice, 'unmuted now').waitFor(WAIT);
  assert.equal(await message(alice, 'can you hear me').count(), 0);

  // Ban: Bob's open tab, on the other instance, says so and offers no composer.
  await member(alice, bob.userId).locator('[data-testid="member-ban"]').click();
  await member(alice, bob.userId).waitFor({ state: 'detached', ...WAIT });
  await byId(bob, 'room-error').filter({ hasText: 'You were banned from this room.' }).waitFor(WAIT);
  await byId(bob, 'composer').waitFor({ state: 'hidden', ...WAIT });
  await alice.screenshot({ path: new URL('./artifacts/safety-alice.png', import.meta.url).pathname }).catch(() => {});
  await bob.screenshot({ path: new URL('./artifacts/safety-bob.png', import.meta.url).pathname }).catch(() => {});

  // Block, from Bob's direct conversation with Alice.
  await roomButton(bob, await bob.locator('[data-testid="room-item"]', { hasText: aliceName }).getAttribute('data-room-id')).click();
  await member(bob, alice.userId).locator('[data-testid="member-block"]').click();
  await member(bob, alice.userId).locator('[data-testid="member-unblock"]').waitFor(WAIT);

  // Log out everywhere, from one of Alice's tabs: the other (instance 2) ends too.
  const alice2 = await tab(browser, two, aliceName, { register: false });
  await byId(alice, 'logout-all').click();
  await byId(alice, 'auth-view').waitFor({ state: 'visible', ...WAIT });
  await byId(alice2, 'auth-view').waitFor({ state: 'visible', ...WAIT });

  for (const page of [alice, alice2, bob]) assert.deepEqual(page.problems, []);
});
