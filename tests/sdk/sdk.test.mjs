// The SDK (static/sdk/parley.js) against real parley processes: two
// instances sharing PostgreSQL and Redis behind haproxy (cluster.mjs).
// Each test drives clients as an application would and checks what its
// users would see: every publish exactly once in every timeline, in seq
// order, the same state as the server's history, across a drain, a
// kill -9 and a refused token.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { createClient, ParleyError, version } from '../../static/sdk/parley.js';
import { Cluster, TcpProxy, waitFor, within } from './cluster.mjs';

let cluster;
const clients = [];

before(async () => {
  cluster = await Cluster.start(2);
});

after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function client(user, options = {}) {
  const c = createClient({ baseUrl: cluster.base, username: user.username, password: user.password, WebSocket, ...options });
  clients.push(c);
  return c;
}

/** Alice's private room with Bob in it, both connected and subscribed. */
async function pair(prefix) {
  const [a, b] = [await cluster.user(`${prefix}a`), await cluster.user(`${prefix}b`)];
  const alice = client(a);
  const bob = client(b);
  await Promise.all([alice.connect(), bob.connect()]);
  const { id } = await alice.createRoom(`${prefix} room`, 'private');
  await alice.addMember(id, b.id);
  const rooms = [alice.room(id), bob.room(id)];
  await rooms[0].subscribe();
  await rooms[1].subscribe();
  return { alice, bob, a, b, id, rooms };
}

/** Records every event of `type` a client emits. */
function record(c, ...types) {
  const seen = Object.fromEntries(types.map((t) => [t, []]));
  for (const t of types) c.on(t, (e) => seen[t].push(e));
  return seen;
}

/** Every message of the room once, in seq order, the same in every timeline and as the server's history. */
async function assertConverged(rooms, bodies) {
  const last = (await rooms[0].client.request('GET', `/rooms/${rooms[0].id}`)).last_seq;
  assert.ok(Number.isInteger(last), 'GET /rooms/{id} has last_seq');
  await waitFor(() => rooms.every((r) => r.timeline.top >= last), 15_000, `every timeline to reach seq ${last}`);
  for (const room of rooms) {
    const shown = room.messages();
    const seqs = shown.map((m) => m.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'seq order');
    assert.equal(new Set(seqs).size, seqs.length, 'each seq once');
    const live = shown.filter((m) => !m.deleted).map((m) => m.body);
    for (const body of bodies) {
      assert.equal(live.filter((b) => b === body).length, 1, `${body} exactly once`);
    }
    // The fold agrees with the server's own (history is folded server-side).
    const history = (await room.history({ limit: 200 })).items;
    assert.deepEqual(
      shown.map((m) => [m.seq, m.body, m.deleted, m.edited_at !== null, m.reactions.map((r) => [r.emoji, r.count, r.me])]),
      history.map((m) => [m.seq, m.body, m.deleted, m.edited_at !== null, m.reactions.map((r) => [r.emoji, r.count, r.me])]),
    );
  }
}

test('the module exports its version', () => {
  assert.match(version, /^\d+\.\d+\.\d+$/);
});

test('two clients exchange a conversation of every event kind and hold the same timeline', async () => {
  const { alice, bob, b, rooms: [ra, rb] } = await pair('conv');
  const aliceSees = record(alice, 'message', 'edit', 'delete', 'reaction', 'receipt', 'presence', 'typing', 'read');
  const bobSees = record(bob, 'message', 'edit', 'delete', 'reaction', 'read', 'typing', 'notification');

  const hello = await ra.publish('hello bob');
  assert.equal(hello.target, null);
  const reply = await rb.publish(`hi @${alice.user.username}`, { replyTo: hello.seq });
  const mention = await ra.publish(`are you there @${b.username}?`);
  await ra.edit(hello.seq, 'hello bob, edited');
  const thumbs = await rb.react(hello.seq, '👍');
  assert.equal(thumbs.target, hello.seq);
  await ra.react(hello.seq, '👍');
  await ra.react(reply.seq, '🎉');
  await ra.react(reply.seq, '🎉', false);
  const doomed = await rb.publish('to be deleted');
  await rb.delete(doomed.seq);
  ra.typing();
  const cursor = await rb.markRead();
  assert.ok(cursor >= doomed.seq);

  // A refused event rejects with the server's code, and takes no seq.
  await assert.rejects(ra.edit(reply.seq, 'not mine'), (e) => e instanceof ParleyError && e.code === 'forbidden');
  await assert.rejects(ra.react(doomed.seq, '👍'), (e) => e.code === 'conflict');

  await assertConverged([ra, rb], ['hello bob, edited', `hi @${alice.user.username}`, `are you there @${b.username}?`]);
  const view = rb.timeline.view(hello.seq);
  assert.deepEqual(view.reactions, [{ emoji: '👍', count: 2, me: true }]);
  assert.equal(ra.timeline.view(reply.seq).reply_to, hello.seq);
  assert.equal(ra.timeline.view(doomed.seq).deleted, true);

  await waitFor(() => aliceSees.receipt.some((r) => r.user === b.id && r.seq === cursor), 5_000, 'the receipt');
  await waitFor(() => bobSees.read.some((r) => r.seq === cursor), 5_000, 'the read');
  await waitFor(() => bobSees.typing.length > 0, 5_000, 'typing');
  await waitFor(() => bobSees.notification.some((n) => n.payload?.seq === mention.seq), 5_000, 'the mention');
  for (const kind of ['message', 'edit', 'delete', 'reaction']) {
    assert.ok(aliceSees[kind].length > 0 && bobSees[kind].length > 0, `both saw ${kind}`);
  }
  // Each live event was emitted once per client.
  const seqs = aliceSees.message.map((m) => m.seq);
  assert.equal(new Set(seqs).size, seqs.length);
  assert.equal(ra.unread, 0, 'own messages and what was read do not count');
});

test('presence and unread counts follow the other client', async () => {
  const { alice, bob, a, id, rooms: [ra] } = await pair('pres');
  // Alice leaving the room and coming back is presence for Bob.
  const presence = record(bob, 'presence');
  await ra.unsubscribe();
  await waitFor(() => presence.presence.some((p) => p.user === a.id && p.state === 'offline'), 5_000, 'offline');
  await ra.subscribe();
  await waitFor(() => presence.presence.some((p) => p.user === a.id && p.state === 'online'), 5_000, 'online');
  await ra.publish('one');
  await ra.publish('two');
  await waitFor(() => bob.room(id).unread === 2, 5_000, 'Bob counts two unread');
  const counts = await bob.refreshUnread();
  assert.equal(counts.rooms[id], 2);
  assert.equal(counts.total, 2);
  await bob.room(id).markRead();
  await waitFor(() => bob.room(id).unread === 0, 5_000, 'read clears the count');
  assert.equal(alice.room(id).unread, 0);
});

test('history pages back through a room subscribed late', async () => {
  const { b, id, rooms: [ra] } = await pair('hist');
  for (let i = 0; i < 12; i += 1) await ra.publish(`m${i}`);
  const page = await ra.history({ limit: 5 });
  assert.deepEqual(page.items.map((m) => m.body), ['m7', 'm8', 'm9', 'm10', 'm11']);
  const older = await ra.history({ beforeSeq: page.items[0].seq, limit: 5 });
  assert.deepEqual(older.items.map((m) => m.body), ['m2', 'm3', 'm4', 'm5', 'm6']);
  // Bob on a second device: the newest page first, then older ones until none is left.
  const late = client(b);
  await late.connect();
  const room = late.room(id);
  await room.subscribe({ limit: 5 });
  assert.deepEqual(room.messages().map((m) => m.body), ['m7', 'm8', 'm9', 'm10', 'm11']);
  let pages = 0;
  while (await room.loadOlder(5)) pages += 1;
  assert.equal(pages, 2);
  assert.deepEqual(room.messages().map((m) => m.body), Array.from({ length: 12 }, (_, i) => `m${i}`));
  await ra.publish('live after paging');
  await waitFor(() => room.messages().at(-1)?.body === 'live after paging', 5_000, 'the live message');
});

test('a drained instance: the client reconnects through haproxy, resubscribes with since, nothing lost or doubled', async () => {
  const { bob, a, rooms: [, rb], id } = await pair('drain');
  // Alice's next ticket waits for the gate, so that Bob certainly talks
  // while she is away: only a resubscribe with `since` brings that back.
  let open = () => {};
  let gate = Promise.resolve();
  const gated = async (url, init) => {
    if (String(url).endsWith('/ws-ticket')) await gate;
    return fetch(url, init);
  };
  const alice = client(a, { fetch: gated });
  await alice.connect();
  const ra = alice.room(id);
  await ra.subscribe();
  const states = record(alice, 'state');
  const bodies = [];
  const say = async (room, body) => {
    bodies.push(body);
    return room.publish(body);
  };
  await say(ra, 'before the drain 1');
  await say(rb, 'before the drain 2');
  const drained = cluster.node(alice.hello.instance);
  gate = new Promise((resolve) => {
    open = resolve;
  });
  const draining = cluster.drain(drained);
  await waitFor(() => alice.state === 'reconnecting', 10_000, 'Alice told to reconnect');
  assert.equal(states.state.find((s) => s.state === 'reconnecting').closeCode, 1012);
  // Alice is away: Bob talks (on the drained node his own socket is
  // moving too, and his publishes wait for it).
  for (let i = 0; i < 5; i += 1) await say(rb, `while Alice is away ${i}`);
  const queued = say(ra, 'queued by Alice while away');
  assert.ok(alice.pending.size >= 1);
  open();
  const summary = await draining;
  assert.ok(summary.sessions_told >= 1, JSON.stringify(summary));
  await within(queued, 20_000, "the ack of Alice's queued publish");
  await waitFor(() => alice.state === 'connected', 20_000, 'Alice back');
  assert.notEqual(alice.hello.instance, drained.env.PARLEY_INSTANCE_ID, 'on the other instance');
  await say(ra, 'after the drain');
  await assertConverged([ra, rb], bodies);
  void bob;
  // The drained node comes back for the tests that follow.
  await drained.stop();
  await drained.start();
});

test('kill -9 mid-publish: queued publishes land exactly once after the restart', async () => {
  const { alice, bob, rooms: [ra, rb] } = await pair('kill');
  await ra.publish('before the crash');
  const victim = cluster.node(alice.hello.instance);
  const inFlight = [0, 1, 2].map((i) => ra.publish(`in flight ${i}`));
  await cluster.kill(victim);
  // A killed process's sockets close at once; the bound is generous for
  // a machine that is also compiling (it once took over 5 s in such a run).
  await waitFor(() => alice.state !== 'connected', 15_000, `Alice (on ${victim.env.PARLEY_INSTANCE_ID}) to notice`);
  // Made while disconnected: queued, sent once back.
  const queued = [0, 1, 2].map((i) => ra.publish(`while down ${i}`));
  assert.ok(alice.pending.size >= 3, 'queued while disconnected');
  await victim.start();
  const acks = await within(Promise.all([...inFlight, ...queued]), 20_000, 'the acks of every publish');
  assert.equal(new Set(acks.map((a) => a.seq)).size, 6, 'six distinct events');
  await assertConverged([ra, rb], ['before the crash', ...[0, 1, 2].map((i) => `in flight ${i}`), ...[0, 1, 2].map((i) => `while down ${i}`)]);
  assert.equal(alice.pending.size, 0);
  void bob;
});

test('a cut network: the client reconnects, catches up with since and sends what it queued, once', async () => {
  const { a, rooms: [, rb], id } = await pair('cut');
  const proxy = await TcpProxy.start(new URL(cluster.base).host);
  try {
    const alice = client(a, { baseUrl: proxy.base });
    await alice.connect();
    const ra = alice.room(id);
    await ra.subscribe();
    const bodies = ['before the cut'];
    await ra.publish(bodies[0]);
    proxy.cut();
    await waitFor(() => alice.state === 'reconnecting', 5_000, 'Alice to notice the cut');
    const queued = [0, 1].map((i) => {
      bodies.push(`Alice, cut off ${i}`);
      return ra.publish(bodies.at(-1));
    });
    for (let i = 0; i < 5; i += 1) {
      bodies.push(`Bob, while Alice is cut off ${i}`);
      await rb.publish(bodies.at(-1));
    }
    assert.notEqual(alice.state, 'connected');
    proxy.restore();
    await within(Promise.all(queued), 20_000, "the acks of Alice's queued publishes");
    await assertConverged([ra, rb], bodies);
  } finally {
    proxy.close();
  }
});

test('a slow consumer closed with 1013 reconnects and catches up with since', async () => {
  // A cluster of its own: an outbox of 4 frames makes a slow reader quick to find.
  // (One instance; behind haproxy all the same.)
  const small = await Cluster.start(1, { PARLEY_WS_OUTBOX: '4' });
  const local = [];
  try {
    const [a, b] = [await small.user('slowa'), await small.user('slowb')];
    const alice = createClient({ baseUrl: small.base, username: a.username, password: a.password, WebSocket });
    // Bob writes over REST only: a socket of his own would be a slow consumer too.
    const bob = createClient({ baseUrl: small.base, username: b.username, password: b.password, WebSocket });
    local.push(alice, bob);
    await alice.connect();
    const { id } = await alice.createRoom('firehose', 'public');
    const ra = alice.room(id);
    await ra.subscribe();
    const states = record(alice, 'state');
    // Alice stops reading while Bob writes more than socket buffers hold.
    const socket = alice.connection.ws;
    socket.pause();
    const bodies = [];
    for (let batch = 0; batch < 75; batch += 1) {
      const sent = [];
      for (let i = 0; i < 20; i += 1) {
        bodies.push(`${batch}.${i} ${'x'.repeat(7_900)}`);
        sent.push(bob.request('POST', `/rooms/${id}/messages`, { body: bodies.at(-1), client_id: `b${batch}.${i}` }));
      }
      await Promise.all(sent);
    }
    socket.resume();
    await waitFor(() => states.state.some((s) => s.state === 'reconnecting' && s.closeCode === 1013), 20_000, 'the 1013 close');
    await waitFor(() => alice.state === 'connected', 20_000, 'Alice back');
    const last = (await alice.request('GET', `/rooms/${id}`)).last_seq;
    await waitFor(() => ra.timeline.top >= last, 30_000, 'Alice to catch up');
    // Each batch was written concurrently, so seq order is not push order.
    const shown = ra.messages();
    assert.deepEqual(shown.map((m) => m.body).sort(), [...bodies].sort(), 'every message once');
    assert.deepEqual(shown.map((m) => m.seq), Array.from({ length: bodies.length }, (_, i) => i + 1), 'in seq order');
  } finally {
    for (const c of local) c.close();
    await small.stop();
  }
});

test('a refused token is refreshed and the request retried once, then a spent session is unauthorized', async () => {
  // A cluster of its own with strict single use set explicitly: a token
  // spent moments ago is a replay at once (with a grace window it would be
  // answered again, for a client whose first answer was lost).
  const strict = await Cluster.start(1, { PARLEY_REFRESH_REUSE_GRACE_S: '0' });
  const local = [];
  try {
    await refusedTokenIsRefreshedOnceThenUnauthorized(strict, local);
  } finally {
    for (const c of local) c.close();
    await strict.stop();
  }
});

async function refusedTokenIsRefreshedOnceThenUnauthorized(cluster, local) {
  const user = await cluster.user('tok');
  const calls = [];
  const counting = (url, init) => {
    calls.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    return fetch(url, init);
  };
  // A bad access token with a good refresh token: one refresh, one retry.
  const ok = createClient({ baseUrl: cluster.base, WebSocket, fetch: counting,
    tokens: { accessToken: 'not-a-token', refreshToken: user.tokens.refresh_token } });
  local.push(ok);
  const me = await ok.request('GET', '/users/me');
  assert.equal(me.id, user.id);
  assert.deepEqual(calls, ['GET /api/v1/users/me', 'POST /api/v1/auth/refresh', 'GET /api/v1/users/me']);
  await ok.connect();
  assert.equal(ok.state, 'connected');

  // A refresh token that was rotated away: one refresh attempt, then the
  // state says unauthorized and nothing retries behind the user's back.
  calls.length = 0;
  const spent = createClient({ baseUrl: cluster.base, WebSocket, fetch: counting,
    tokens: { accessToken: 'not-a-token', refreshToken: user.tokens.refresh_token } });
  local.push(spent);
  const states = record(spent, 'state');
  await assert.rejects(spent.connect(), (e) => e instanceof ParleyError && e.code === 'unauthorized');
  assert.equal(spent.state, 'unauthorized');
  assert.deepEqual(states.state.map((s) => s.state), ['unauthorized']);
  assert.deepEqual(calls, ['GET /api/v1/users/me', 'POST /api/v1/auth/refresh']);
  await assert.rejects(spent.room('00000000-0000-7000-8000-000000000000').publish('x'), (e) => e.code === 'unauthorized');
  assert.equal(calls.length, 2, 'no further calls');
}

test('logout ends the login on the server: its refresh token no longer works', async () => {
  const user = await cluster.user('bye');
  let kept = null;
  const c = client(user);
  c.on('tokens', (t) => {
    kept = t;
  });
  await c.connect();
  assert.ok(kept?.refreshToken, 'the client reported its tokens');
  await c.logout();
  assert.equal(c.state, 'closed');
  const res = await fetch(`${cluster.base}/api/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: kept.refreshToken }),
  });
  assert.equal(res.status, 401, await res.text());
});
