// Uses every API of the SDK, so that `tsc --noEmit` checks parley.d.ts
// against real code (scripts/test/test-sdk.sh runs it). It is type-checked,
// never run.

import WebSocket from 'ws';
import {
  Connection,
  Session,
  backoffDelay,
  BASE_MS,
  CAP_MS,
  createClient,
  newClientId,
  ParleyError,
  quoteText,
  targetOf,
  Timeline,
  Unread,
  version,
  type Ack,
  type Client,
  type ConnectionState,
  type HistoryPage,
  type Hello,
  type MessageView,
  type Room,
  type Tokens,
  type UnreadCounts,
} from '../../static/sdk/parley.js';

async function main(): Promise<void> {
  const v: string = version;
  const client: Client = createClient({ baseUrl: 'http://127.0.0.1:8080', username: 'ada', password: 'pw', WebSocket });
  const resumed = createClient({
    baseUrl: 'http://127.0.0.1:8080',
    tokens: { accessToken: 'a', refreshToken: 'r', expiresAt: Date.now() + 60_000 },
    WebSocket,
    fetch,
  });
  resumed.close();

  const offs = [
    client.on('state', ({ state, closeCode, delayMs }) => {
      const s: ConnectionState = state;
      console.log(s, closeCode, delayMs);
    }),
    client.on('hello', (h: Hello) => console.log(h.instance, h.heartbeat_ms, h.protocol)),
    client.on('message', (m) => console.log(m.seq, m.body, m.reply_to)),
    client.on('edit', (e) => console.log(e.target, e.body)),
    client.on('delete', (d) => console.log(d.target, d.by)),
    client.on('reaction', (r) => console.log(r.emoji, r.on, r.count)),
    client.on('read', (r) => console.log(r.room, r.seq)),
    client.on('receipt', (r) => console.log(r.user, r.seq)),
    client.on('presence', (p) => console.log(p.user, p.state === 'online')),
    client.on('typing', (t) => console.log(t.user)),
    client.on('notification', (n) => console.log(n.kind, n.payload.excerpt)),
    client.on('unsubscribed', (u) => console.log(u.reason)),
    client.on('error', (e: ParleyError) => console.log(e.code, e.retryAfterMs)),
    client.on('unread', (u: UnreadCounts) => console.log(u.total, u.rooms)),
    client.on('tokens', (t: Tokens) => console.log(t.accessToken, t.refreshToken, t.expiresAt)),
  ];

  const hello: Hello = await client.connect();
  console.log(hello.user, client.state, client.user?.username, client.hello?.session, client.baseUrl, client.pending.size);

  const created = await client.createRoom('general', 'private');
  await client.addMember(created.id, '0197a3b2-4444-7000-8000-000000000004');
  const rooms = await client.listRooms(50);
  console.log(rooms.items.map((r) => [r.name, r.unread]), rooms.next_cursor);

  const room: Room = client.room(created.id);
  room.on('timeline', ({ seqs }) => console.log(seqs.map((s) => room.timeline.view(s)?.body)));
  room.on('message', (m) => console.log(m.author));
  room.on('edit', (e) => console.log(e.seq));
  room.on('delete', (e) => console.log(e.seq));
  room.on('reaction', (e) => console.log(e.user));
  room.on('read', (e) => console.log(e.seq));
  room.on('receipt', (e) => console.log(e.user));
  room.on('presence', (e) => console.log(e.state));
  room.on('typing', (e) => console.log(e.user));
  room.on('unsubscribed', (e) => console.log(e.reason, room.closedReason));
  const atSeq: number = await room.subscribe({ limit: 20 });
  await client.room('another').subscribe({ since: 0 });

  const ack: Ack = await room.publish('hello', { replyTo: null });
  const reply = await room.publish('a reply', { replyTo: ack.seq, clientId: newClientId() });
  await room.edit(ack.seq, 'hello, edited');
  await room.react(ack.seq, '👍');
  await room.react(ack.seq, '👍', false, { clientId: 'r-1' });
  await room.delete(reply.seq);
  const cursor: number = await room.markRead();
  await room.markRead(atSeq);
  const typed: boolean = room.typing();

  const page: HistoryPage = await room.history({ beforeSeq: 10, limit: 20 });
  await room.history({ afterSeq: 2 });
  await room.history({ replyTo: ack.seq });
  while (await room.loadOlder(20)) {
    // every older page
  }
  const shown: MessageView[] = room.messages();
  for (const m of shown) console.log(m.seq, m.body, m.deleted, m.edited_at, m.reactions.map((r) => `${r.emoji}${r.count}${r.me}`));
  console.log(page.items[0]?.reactions, room.online.has('x'), room.unread, cursor, typed);

  const counts: UnreadCounts = await client.refreshUnread();
  console.log(counts.total, client.unreadCounts().rooms[room.id]);
  const notes = await client.notifications(10);
  if (notes.items[0]) await client.markNotificationRead(notes.items[0].id);
  const me = await client.request<{ id: string }>('GET', '/users/me');
  console.log(me.id);

  try {
    await room.edit(1, 'x');
  } catch (error) {
    if (error instanceof ParleyError) console.log(error.code, error.status, error.problem);
  }

  // The pure parts.
  const timeline = new Timeline('me');
  timeline.add({ room: 'r', seq: 1, id: 'i', author: 'a', body: 'b', ts: 't', client_id: 'c' , reply_to: null, edited_at: null, deleted: false, reactions: [] });
  timeline.add({ type: 'edit', room: 'r', seq: 2, id: 'i2', target: 1, body: 'b2', author: 'a', ts: 't', client_id: 'c2' });
  timeline.completeTo(2);
  console.log(timeline.top, timeline.hasGap, timeline.maxSeq, timeline.minSeq, timeline.sorted(), timeline.unreadAfter(0));
  console.log(quoteText(timeline.view(1)), targetOf({ type: 'delete', room: 'r', seq: 3, id: 'i3', target: 1, by: 'a', ts: 't', client_id: 'c3' }));
  const unread = new Unread();
  unread.server('r', { unread: 2, read_seq: 1, last_seq: 3 });
  unread.message('r', { seq: 4, author: 'b' }, 'me');
  console.log(unread.count('r'), unread.total(), unread.read('r', 4), unread.deleted('r', 4));
  console.log(backoffDelay(3, { retryAfterMs: 100 }), BASE_MS, CAP_MS, v);

  for (const off of offs) off();
  client.close();
  await client.logout();
}

/** The building blocks, as an app that keeps its own room state uses them. */
async function blocks(): Promise<void> {
  const session = new Session({
    baseUrl: 'http://127.0.0.1:8080',
    fetch,
    tokens: null,
    onTokens: (t: Tokens) => console.log(t.accessToken, t.expiresAt),
    onUnauthorized: (e: ParleyError) => console.log(e.code),
  });
  const user = await session.signIn('/auth/login', { username: 'ada', password: 'pw' });
  console.log(user?.id, session.user?.username, await session.token(), await session.me());
  const rooms = await session.request<{ items: unknown[] }>('GET', '/rooms');
  console.log(rooms.items.length);
  const connection = new Connection({
    url: 'ws://127.0.0.1:8080/ws',
    WebSocket,
    ticket: async () => (await session.request<{ ticket: string }>('POST', '/ws-ticket')).ticket,
    onReady: (hello: Hello) => console.log(hello.instance),
    onFrame: (frame) => console.log(frame.type),
    onState: (state: ConnectionState) => console.log(state),
  });
  connection.start();
  const sent: boolean = connection.send({ type: 'ping' });
  connection.wake();
  connection.stop('offline');
  await session.logout();
  session.close();
  console.log(sent);
}

void main();
void blocks();
