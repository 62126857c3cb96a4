// The chat state and its rules: rooms, and per room a Timeline, members,
// presence, typing and messages being sent. Talks to the server through
// api.js and one ChatSocket; views listen to its events:
//   status {status} · rooms · room {room} · messages {room, messages}
//   members {room} · typing {room} · pending {room} · notification {frame}
//   error {room, message}

import * as api from './api.js';
import { ChatSocket } from './socket.js';
import { Timeline } from './timeline.js';

const TYPING_SHOWN_MS = 5_000;
const TYPING_SEND_EVERY_MS = 3_000;
const PAGE = 50;
const FILL_PAGE = 200;

/** An idempotency key; works outside secure contexts too (no randomUUID). */
function clientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

class RoomState {
  constructor(id) {
    this.id = id;
    this.timeline = new Timeline();
    this.wanted = false; // subscribed, or to resubscribe after a reconnect
    this.loading = false;
    this.filling = false;
    this.members = [];
    this.online = new Set();
    this.typing = new Map(); // user → until (ms)
    this.pending = new Map(); // client_id → body
    this.lastTypingSent = 0;
  }
}

export class Chat extends EventTarget {
  constructor() {
    super();
    this.rooms = [];
    this.states = new Map();
    this.current = null;
    this.status = 'offline';
    this.socket = new ChatSocket({
      // A single-use ticket keeps the access token out of the URL (and so
      // out of proxy logs). Getting one is a REST call, which refreshes a
      // refused token by itself, or fails while the server is away.
      ticket: () => api.wsTicket(),
      onReady: () => this.#resubscribe(),
      onFrame: (frame) => this.#receive(frame),
      onStatus: (status) => {
        this.status = status;
        this.#emit('status', { status });
      },
    });
  }

  get me() {
    return api.currentSession()?.user;
  }

  start() {
    this.socket.start();
    this.loadRooms();
  }

  stop() {
    this.socket.stop();
    this.states.clear();
    this.rooms = [];
    this.current = null;
  }

  state(id) {
    if (!this.states.has(id)) this.states.set(id, new RoomState(id));
    return this.states.get(id);
  }

  async loadRooms() {
    try {
      const page = await api.listRooms();
      this.rooms = page.items;
      this.#emit('rooms');
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
    this.current = id;
    const st = this.state(id);
    this.#emit('room', { room: id });
    if (!st.wanted) {
      st.wanted = true;
      this.#subscribe(st);
    }
    this.loadMembers(id);
  }

  async loadMembers(id) {
    try {
      const room = await api.getRoom(id);
      this.state(id).members = room.members ?? [];
      this.#emit('members', { room: id });
    } catch (error) {
      this.#fail(id, error);
    }
  }

  async addMember(room, userId) {
    await api.addMember(room, userId);
    await this.loadMembers(room);
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
    st.pending.set(id, body);
    this.#emit('pending', { room });
    this.#sendPublish(room, id, body);
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

  #sendPublish(room, id, body) {
    // Not connected: the message stays pending and goes out after the
    // reconnect with the same client_id, so it is stored once.
    this.socket.send({ type: 'publish', room, body, client_id: id, ref: `pub:${id}` });
  }

  #subscribe(st) {
    const frame = { type: 'subscribe', room: st.id, ref: `sub:${st.id}` };
    if (st.timeline.top !== null) frame.since = st.timeline.top;
    this.socket.send(frame);
  }

  #resubscribe() {
    for (const st of this.states.values()) {
      if (!st.wanted) continue;
      st.online.clear();
      this.#emit('members', { room: st.id });
      this.#subscribe(st);
      for (const [id, body] of st.pending) this.#sendPublish(st.id, id, body);
    }
  }

  #receive(frame) {
    const st = frame.room ? this.state(frame.room) : null;
    switch (frame.type) {
      case 'subscribed':
        if (st.timeline.top === null) this.#loadInitial(st, frame.seq);
        else this.#fillGap(st);
        break;
      case 'message':
        this.#add(st, [frame]);
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
        break; // frames added by later servers
    }
  }

  #onError(frame) {
    const ref = frame.ref ?? '';
    const room = ref.startsWith('sub:') ? ref.slice(4) : null;
    if (room) this.state(room).wanted = false;
    this.#emit('error', { room: room ?? this.current, message: `${frame.code}: ${frame.message}` });
  }

  async #loadInitial(st, seq) {
    if (st.loading) return;
    st.loading = true;
    try {
      const page = await api.history(st.id, { before_seq: seq + 1, limit: PAGE });
      st.timeline.hasOlder = page.next_cursor !== null;
      st.timeline.completeTo(seq);
      this.#add(st, page.items);
    } catch (error) {
      this.#fail(st.id, error);
    } finally {
      st.loading = false;
    }
  }

  #add(st, messages) {
    const added = messages.filter((m) => st.timeline.add(m));
    let sent = false;
    for (const m of messages) sent = st.pending.delete(m.client_id) || sent;
    if (sent) this.#emit('pending', { room: st.id });
    if (added.length) this.#emit('messages', { room: st.id, messages: added });
    if (st.timeline.hasGap) this.#fillGap(st);
  }

  /** Fetches what is missing above `top` over REST, page by page. */
  async #fillGap(st) {
    if (st.filling || !st.timeline.hasGap) return;
    st.filling = true;
    try {
      for (let pages = 0; st.timeline.hasGap && pages < 20; pages += 1) {
        const from = st.timeline.top;
        const page = await api.history(st.id, { after_seq: from, limit: FILL_PAGE });
        this.#add(st, page.items);
        if (page.items.length === 0 || st.timeline.top === from) break;
      }
    } catch (error) {
      this.#fail(st.id, error);
    } finally {
      st.filling = false;
    }
  }

  #fail(room, error) {
    this.#emit('error', { room, message: error.message });
  }

  #emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
