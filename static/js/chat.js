// The chat state and its rules: rooms, and per room a Timeline (the fold
// of its events), members, presence, typing, messages being sent and the
// message being replied to; unread counts and the read cursor. Talks to
// the server through api.js and one SDK Connection; views listen to its events:
//   status {status} · rooms · room {room} · messages {room, seqs}
//   members {room} · typing {room} · pending {room} · reply {room}
//   unread · visibility · notification {frame} · error {room, message}
//   access {room} (the server ended the subscription: banned or removed)
//   blocks (whom the user blocked changed)
// `messages` names the messages whose shown state changed (new, edited,
// deleted, reacted to, or fetched to be quoted).

import * as api from './api.js';
import { Connection } from '../sdk/parley.js';
import { targetOf, Timeline } from './timeline.js';
import { Unread } from './unread.js';

const TYPING_SHOWN_MS = 5_000;
const TYPING_SEND_EVERY_MS = 3_000;
const PAGE = 50;
// Unread refetches are batched: several reads or deletes, one request.
const UNREAD_REFETCH_MS = 250;
// After a reconnect the unread counts are refetched once every room said
// where its replay ends, so that the server counted all of it; a room that
// never answers does not hold that up longer than this.
const HEADS_WAIT_MS = 3_000;
const MANAGERS = new Set(['owner', 'admin']);

/** An idempotency key; works outside secure contexts too (no randomUUID). */
function clientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

class RoomState {
  constructor(id, me) {
    this.id = id;
    this.timeline = new Timeline(me);
    this.wanted = false; // subscribed, or to resubscribe after a reconnect
    this.loading = false;
    this.resyncing = false; // a re-subscribe with `since` is on its way
    this.members = [];
    this.online = new Set();
    this.typing = new Map(); // user → until (ms)
    this.pending = new Map(); // client_id → {body, reply_to}
    this.replyTo = null; // the seq the next publish answers
    this.readSent = 0; // the highest `read` sent on this connection
    this.quoting = new Set(); // seqs being fetched to be quoted
    this.missing = new Set(); // quoted seqs the server does not have
    this.lastTypingSent = 0;
    this.muted = new Set(); // members muted here (known to managers)
    this.shut = null; // why the server ended the subscription: 'banned', 'removed'
  }
}

export class Chat extends EventTarget {
  constructor() {
    super();
    this.rooms = [];
    this.states = new Map();
    this.current = null;
    this.status = 'offline';
    this.unread = new Unread();
    this.connectedBefore = false;
    this.awaitingHeads = null; // rooms whose `subscribed` a reconnect waits for
    this.unreadTimer = null;
    this.unreadFetch = null;
    this.unreadAgain = false;
    this.blocked = new Set(); // users this user blocked
    // The SDK's socket: reconnects with jittered backoff, honours a drain's
    // `reconnect`, pings, and notices a silent server.
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.socket = new Connection({
      url: `${scheme}//${location.host}/ws`,
      WebSocket,
      // A single-use ticket keeps the access token out of the URL (and so
      // out of proxy logs). Getting one is a REST call, which refreshes a
      // refused token by itself, or fails while the server is away.
      ticket: () => api.wsTicket(),
      onReady: () => this.#resubscribe(),
      onFrame: (frame) => this.#receive(frame),
      onState: (status) => {
        this.status = status;
        this.#emit('status', { status });
      },
    });
    document.addEventListener('visibilitychange', () => this.#onVisibility());
  }

  get me() {
    return api.currentSession()?.user;
  }

  /** The room the user is looking at: the open one, while the tab is visible. */
  get viewing() {
    return document.visibilityState === 'visible' ? this.current : null;
  }

  start() {
    this.socket.start();
    this.loadRooms();
    this.loadBlocks();
  }

  stop() {
    this.socket.stop('offline');
    this.states.clear();
    this.rooms = [];
    this.current = null;
    this.blocked = new Set();
    this.unread = new Unread();
    this.connectedBefore = false;
    this.awaitingHeads = null;
    clearTimeout(this.unreadTimer);
    this.#emit('unread');
  }

  state(id) {
    if (!this.states.has(id)) this.states.set(id, new RoomState(id, this.me?.id));
    return this.states.get(id);
  }

  async loadRooms() {
    try {
      const page = await api.listRooms();
      this.rooms = page.items;
      for (const room of page.items) {
        if (room.unread === undefined) continue; // a server before 1.1
        if (this.unread.server(room.id, room) === 'recount') this.#recount(room.id, { refetch: false });
      }
      this.#emit('rooms');
      this.#emit('unread');
    } catch (error) {
      this.#fail(null, error);
    }
  }

  async createRoom(name, kind) {
    const room = await api.createRoom(name, kind);
    await this.loadRooms();
    this.open(room.id);
    return room;
  }

  /** Shows a room; its live stream stays subscribed afterwards. */
  open(id) {
    const previous = this.current;
    this.current = id;
    const st = this.state(id);
    this.#emit('room', { room: id });
    if (!st.wanted) {
      st.wanted = true;
      st.shut = null;
      this.#subscribe(st);
    }
    this.loadMembers(id);
    // What arrived in the room just left was seen as it came; what did not
    // scroll into view is unread again.
    if (previous && previous !== id) this.#recount(previous);
    this.#emit('unread');
  }

  /** A room's unread count as shown: none in the room being looked at. */
  unreadCount(room) {
    return room === this.viewing ? 0 : this.unread.count(room);
  }

  unreadTotal() {
    return this.unread.total(this.viewing);
  }

  async loadMembers(id) {
    try {
      const room = await api.getRoom(id);
      const st = this.state(id);
      st.members = room.members ?? [];
      if (this.manages(id)) st.muted = new Set((await api.mutes(id)).items.map((m) => m.user_id));
      this.#emit('members', { room: id });
    } catch (error) {
      this.#fail(id, error);
    }
  }

  async addMember(room, userId) {
    await api.addMember(room, userId);
    await this.loadMembers(room);
  }

  /** Whether the user manages a room's members (and bans and mutes). */
  manages(room) {
    return MANAGERS.has(this.role(room));
  }

  /** Bans a member: the server removes them and ends their subscriptions. */
  async ban(room, userId) {
    await api.banUser(room, userId);
    await this.loadMembers(room);
  }

  async mute(room, userId, on) {
    if (on) await api.muteUser(room, userId);
    else await api.unmuteUser(room, userId);
    const st = this.state(room);
    if (on) st.muted.add(userId);
    else st.muted.delete(userId);
    this.#emit('members', { room });
  }

  async loadBlocks() {
    try {
      this.blocked = new Set((await api.blocks()).items.map((b) => b.user.id));
      this.#emit('blocks');
    } catch (error) {
      this.#fail(null, error);
    }
  }

  async block(userId, on) {
    if (on) await api.blockUser(userId);
    else await api.unblockUser(userId);
    if (on) this.blocked.add(userId);
    else this.blocked.delete(userId);
    this.#emit('blocks');
  }

  /** Opens a direct conversation with a user: a `direct` room with the two of you. */
  async startDirect(userId, name) {
    const room = await api.createRoom(`${this.me?.username} & ${name}`.slice(0, 100), 'direct');
    await api.addMember(room.id, userId);
    await this.loadRooms();
    this.open(room.id);
    return room;
  }

  /** The caller's role in a room (`owner`, `admin`, `member`), once its members are loaded. */
  role(room) {
    return this.state(room).members.find((m) => m.user_id === this.me?.id)?.role ?? null;
  }

  /** The server's rule for `edit`: the author, not on a deleted message. */
  canEdit(view) {
    return !view.deleted && view.author === this.me?.id;
  }

  /** The server's rule for `delete`: the author, or a room owner or admin. */
  canDelete(room, view) {
    return !view.deleted && (view.author === this.me?.id || MANAGERS.has(this.role(room)));
  }

  async loadOlder(room) {
    const st = this.state(room);
    const before = st.timeline.minSeq;
    if (before === null) return;
    const page = await api.history(room, { before_seq: before, limit: PAGE });
    st.timeline.hasOlder = page.next_cursor !== null;
    this.#add(st, page.items);
  }

  publish(room, body) {
    const st = this.state(room);
    const id = clientId();
    const message = { body, reply_to: st.replyTo };
    st.pending.set(id, message);
    this.replyTo(room, null);
    this.#emit('pending', { room });
    this.#sendPublish(room, id, message);
  }

  /** Makes the next publish in `room` a reply to message `seq` (null: no reply). */
  replyTo(room, seq) {
    const st = this.state(room);
    if (st.replyTo === seq) return;
    st.replyTo = seq;
    this.#emit('reply', { room });
  }

  edit(room, target, body) {
    const id = clientId();
    this.#act({ type: 'edit', room, target, body, client_id: id }, () =>
      api.editMessage(room, target, body, id));
  }

  remove(room, target) {
    const id = clientId();
    this.#act({ type: 'delete', room, target, client_id: id }, () => api.deleteMessage(room, target));
  }

  react(room, target, emoji, on) {
    const id = clientId();
    this.#act({ type: 'react', room, target, emoji, on, client_id: id }, () =>
      api.react(room, target, emoji, on));
  }

  /**
   * Moves the read cursor to `seq` (the newest message in view); never
   * backwards, and only while the tab is visible. The server answers with
   * `read` on every session of the user, this one included.
   */
  markRead(room, seq) {
    const st = this.state(room);
    if (document.visibilityState !== 'visible') return;
    if (seq <= Math.max(st.readSent, this.unread.readOf(room))) return;
    st.readSent = seq;
    if (this.socket.send({ type: 'read', room, seq })) return;
    api.markRoomRead(room, seq).then(
      (cursor) => this.#onRead(room, cursor.seq),
      () => {
        if (st.readSent === seq) st.readSent = 0; // the next scroll tries again
      },
    );
  }

  /**
   * Message `seq` of `room` for a reply's preview: its state, null when the
   * server does not have it, undefined while it is being fetched (once; a
   * `messages` event follows).
   */
  quote(room, seq) {
    const st = this.state(room);
    const view = st.timeline.view(seq);
    if (view) return view;
    if (st.missing.has(seq)) return null;
    if (st.quoting.has(seq)) return undefined;
    st.quoting.add(seq);
    api.history(room, { after_seq: seq - 1, limit: 1 }).then(
      (page) => {
        const item = page.items.find((m) => m.seq === seq);
        if (item) st.timeline.addQuoted(item);
        else st.missing.add(seq);
        st.quoting.delete(seq);
        this.#emit('messages', { room, seqs: [seq] });
      },
      () => st.quoting.delete(seq), // the next render asks again
    );
    return undefined;
  }

  typing(room) {
    const st = this.state(room);
    const now = Date.now();
    if (now - st.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (this.socket.send({ type: 'typing', room })) st.lastTypingSent = now;
  }

  /** Who is typing in a room now (user ids, not the caller). */
  typists(room) {
    const now = Date.now();
    return [...this.state(room).typing].filter(([, until]) => until > now).map(([u]) => u);
  }

  #sendPublish(room, id, { body, reply_to: replyTo }) {
    // Not connected: the message stays pending and goes out after the
    // reconnect with the same client_id, so it is stored once.
    const frame = { type: 'publish', room, body, client_id: id, ref: `pub:${id}` };
    if (replyTo !== null) frame.reply_to = replyTo;
    this.socket.send(frame);
  }

  /** An edit, delete or reaction: over the socket, else over REST (same client_id). */
  #act(frame, viaRest) {
    if (this.socket.send({ ...frame, ref: `${frame.type}:${frame.client_id}` })) return;
    // The event itself comes back with the replay after the reconnect.
    viaRest().catch((error) => this.#fail(frame.room, error));
  }

  #subscribe(st, since = st.timeline.top) {
    const frame = { type: 'subscribe', room: st.id, ref: `sub:${st.id}` };
    if (since !== null) frame.since = since;
    return this.socket.send(frame);
  }

  #resubscribe() {
    const reconnect = this.connectedBefore;
    this.connectedBefore = true;
    const rooms = new Set();
    for (const st of this.states.values()) {
      st.readSent = 0; // a `read` sent before the drop may not have arrived
      if (!st.wanted) continue;
      st.online.clear();
      this.#emit('members', { room: st.id });
      this.#subscribe(st);
      rooms.add(st.id);
      for (const [id, message] of st.pending) this.#sendPublish(st.id, id, message);
    }
    if (!reconnect) return; // the first time, GET /rooms has the counts
    // Frames (and reads) were missed while away: count again once the
    // server has counted what the replays will bring.
    this.awaitingHeads = rooms;
    if (rooms.size === 0) this.#headsKnown();
    else setTimeout(() => this.awaitingHeads === rooms && this.#headsKnown(), HEADS_WAIT_MS);
  }

  #headsKnown() {
    this.awaitingHeads = null;
    this.#refetchUnread();
  }

  #receive(frame) {
    const st = frame.room ? this.state(frame.room) : null;
    switch (frame.type) {
      case 'subscribed':
        // Sent before a replay: everything up to frame.seq follows.
        st.resyncing = false;
        if (st.timeline.top === null) this.#loadInitial(st, frame.seq);
        if (this.awaitingHeads?.delete(st.id) && this.awaitingHeads.size === 0) this.#headsKnown();
        break;
      case 'truncated':
        // Retention purged what came before first_seq: the replay goes on
        // from there. Show the room without what the server no longer has.
        st.timeline.truncate(frame.first_seq);
        if (st.id === this.current) this.#emit('room', { room: st.id });
        this.#recount(st.id);
        break;
      case 'message':
      case 'edit':
      case 'delete':
      case 'reaction':
        this.#add(st, [frame], { live: true });
        break;
      case 'read':
        this.#onRead(st.id, frame.seq);
        break;
      case 'unsubscribed':
        // Unprompted (no ref): the server ended it, and resubscribing would
        // be refused.
        if (!frame.reason) break;
        st.wanted = false;
        st.shut = frame.reason;
        this.#emit('access', { room: st.id });
        this.#emit('error', {
          room: st.id,
          message: frame.reason === 'banned' ? 'You were banned from this room.' : 'You were removed from this room.',
        });
        break;
      case 'ack':
        if (st.pending.delete(frame.client_id)) this.#emit('pending', { room: st.id });
        break;
      case 'typing':
        if (frame.user === this.me?.id) break;
        st.typing.set(frame.user, Date.now() + TYPING_SHOWN_MS);
        this.#emit('typing', { room: st.id });
        setTimeout(() => this.#emit('typing', { room: st.id }), TYPING_SHOWN_MS + 50);
        break;
      case 'presence':
        if (frame.state === 'online') st.online.add(frame.user);
        else st.online.delete(frame.user);
        this.#emit('members', { room: st.id });
        break;
      case 'notification':
        this.#emit('notification', { frame });
        break;
      case 'error':
        this.#onError(frame);
        break;
      default:
        break; // frames added by later servers (`receipt`: other members' cursors)
    }
  }

  #onError(frame) {
    const ref = frame.ref ?? '';
    const room = ref.startsWith('sub:') ? ref.slice(4) : null;
    if (room) this.state(room).wanted = false;
    // A publish refused for good (muted, blocked, too long) is not sent
    // again after a reconnect; one to retry (`unavailable`) stays pending.
    if (ref.startsWith('pub:') && frame.code !== 'unavailable') {
      const id = ref.slice(4);
      for (const st of this.states.values()) {
        if (st.pending.delete(id)) this.#emit('pending', { room: st.id });
      }
    }
    this.#emit('error', { room: room ?? this.current, message: `${frame.code}: ${frame.message}` });
  }

  #onRead(room, seq) {
    if (this.unread.read(room, seq) === 'recount') this.#recount(room);
    this.#emit('unread');
  }

  #onVisibility() {
    // A hidden tab looks at nothing: the open room counts again.
    if (this.current && document.visibilityState === 'hidden') this.#recount(this.current);
    this.#emit('unread');
    this.#emit('visibility');
  }

  /**
   * Counts a room's unread from its timeline when it covers the cursor,
   * else asks the server. A `read` sent counts as read already (its answer
   * is on the way), so leaving a room does not flash its old count.
   */
  #recount(room, { refetch = true } = {}) {
    const st = this.states.get(room);
    const read = Math.max(this.unread.readOf(room), st?.readSent ?? 0);
    const n = st?.timeline.unreadAfter(read, this.me?.id) ?? null;
    if (n !== null) {
      this.unread.set(room, n, st.timeline.top);
      this.#emit('unread');
    } else if (refetch) {
      this.#refetchUnread();
    }
  }

  #refetchUnread() {
    clearTimeout(this.unreadTimer);
    this.unreadTimer = setTimeout(() => this.#fetchUnread(), UNREAD_REFETCH_MS);
  }

  async #fetchUnread() {
    if (this.unreadFetch) {
      this.unreadAgain = true;
      return;
    }
    const unread = this.unread;
    this.unreadFetch = api.roomsUnread();
    try {
      const answer = await this.unreadFetch;
      if (unread !== this.unread) return; // logged out meanwhile
      const listed = new Set();
      for (const item of answer.items) {
        listed.add(item.room);
        if (unread.server(item.room, item) === 'recount') this.#recount(item.room, { refetch: false });
      }
      const known = new Set([...this.rooms.map((r) => r.id), ...unread.rooms.keys()]);
      for (const room of known) if (!listed.has(room)) unread.none(room);
      this.#emit('unread');
    } catch {
      // The badges keep their counts; the next read or reconnect asks again.
    } finally {
      this.unreadFetch = null;
      if (this.unreadAgain) {
        this.unreadAgain = false;
        this.#refetchUnread();
      }
    }
  }

  async #loadInitial(st, seq) {
    if (st.loading) return;
    st.loading = true;
    // Messages that came after the counts were fetched but before the
    // subscription reach no frame here: count them from the page.
    const uncounted = seq > this.unread.seenOf(st.id);
    try {
      const page = await api.history(st.id, { before_seq: seq + 1, limit: PAGE });
      st.timeline.hasOlder = page.next_cursor !== null;
      st.timeline.completeTo(seq);
      this.#add(st, page.items);
      if (uncounted) this.#recount(st.id);
    } catch (error) {
      this.#fail(st.id, error);
    } finally {
      st.loading = false;
    }
  }

  #add(st, events, { live = false } = {}) {
    const changed = new Set();
    for (const event of events) {
      if (!st.timeline.add(event)) continue;
      changed.add(targetOf(event));
      if (live) this.#count(st, event);
    }
    let sent = false;
    for (const e of events) sent = st.pending.delete(e.client_id) || sent;
    if (sent) this.#emit('pending', { room: st.id });
    if (changed.size) this.#emit('messages', { room: st.id, seqs: [...changed] });
    if (st.timeline.hasGap) this.#resync(st);
  }

  /** A new live event's effect on the unread count. */
  #count(st, event) {
    if (event.type === 'message') {
      if (this.unread.message(st.id, event, this.me?.id, st.id === this.viewing)) this.#emit('unread');
    } else if (event.type === 'delete') {
      if (this.unread.deleted(st.id, event.target) === 'recount') this.#recount(st.id);
      this.#emit('unread');
    }
  }

  /**
   * Something above `top` arrived without what comes before it (which the
   * server's ordering should never allow): a re-subscribe with `since`
   * makes the server replay from `top`, every kind included, which a REST
   * page could not (history lists messages only). Once per `subscribed`.
   */
  #resync(st) {
    if (st.resyncing || !st.wanted) return;
    st.resyncing = this.#subscribe(st);
  }

  #fail(room, error) {
    this.#emit('error', { room, message: error.message });
  }

  #emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
