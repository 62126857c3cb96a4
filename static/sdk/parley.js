// parley's client SDK (contract 6.4): one ES module, no build step, no
// runtime dependency; runs in browsers and in Node 20+ (pass `WebSocket`
// there, e.g. from the `ws` package). Served by parley itself at
// /sdk/parley.js, its declarations at /sdk/parley.d.ts; docs/sdk.md is the
// guide.
//
// What it does so that applications need not: logs in and refreshes
// access tokens itself (one refresh in flight, one retry of a refused
// request, then the `unauthorized` state); connects with a single-use ticket
// rather than a token in the URL; reconnects with jittered backoff,
// honouring `reconnect` and its `retry_after_ms`; resubscribes each room with
// `since` = the highest seq held, so a timeline has every event once, in seq
// order; queues event frames (publish, edit, delete, react) while
// disconnected and sends them again with the same `client_id` until acked,
// so each lands exactly once; folds every event kind into a timeline.
//
// Layout: backoff, Timeline (the fold), Unread (the counts), then the
// network half: errors, the session (tokens), the connection, rooms and the
// client. The page in static/js/ imports the pure parts from here.

/** The SDK's version; it ships with the server that serves it. */
export const version = '0.1.0';

// ---------------------------------------------------------------- backoff
// Reconnect delays: exponential backoff with full jitter, so that clients
// dropped together by one restart do not come back together.

export const BASE_MS = 250;
export const CAP_MS = 5_000;

/**
 * Delay before reconnect attempt `attempt` (0 = first): a uniform pick in
 * [0, min(CAP, BASE * 2^attempt)), added to the server's `retry_after_ms`.
 */
export function backoffDelay(attempt, { retryAfterMs = 0, random = Math.random } = {}) {
  const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** Math.min(attempt, 20));
  return retryAfterMs + Math.floor(random() * ceiling);
}

// --------------------------------------------------------------- timeline

// One room's timeline as a fold of its events. A room's seq numbers every
// event (message, edit, delete, reaction: protocol 1.1), so each seq is
// held once and applying it again changes nothing: a replay after a
// reconnect, a page that overlaps the live stream or a frame seen twice is
// harmless. `top` tracks how far the stream is known to be complete, which
// is the `since` to resubscribe with.
//
// A message's shown state is its base (a REST history item, already folded
// by the server, or a live `message` frame) with the held edit, delete and
// reaction events that target it folded on top, in seq order. Events are
// kept even while their target is not loaded, so a message that arrives
// later (an older page, a quoted target) still gets them.
//

/** The event kinds that change an earlier message. */
const CHANGES = new Set(['edit', 'delete', 'reaction']);

/** The seq of the message an event shows on: its own, or its target's. */
export const targetOf = (event) => (CHANGES.has(event.type) ? event.target : event.seq);

const QUOTE_CHARS = 80;

/** A reply's preview of its target: the first ~80 characters, or that it is gone. */
export function quoteText(view) {
  if (!view || view.deleted) return 'deleted message';
  const body = view.body.replace(/\s+/g, ' ').trim();
  const chars = [...body]; // by code point, so an emoji is never cut in half
  return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS).join('').trimEnd()}…` : body;
}

/** A base: the message fields with the 1.1 state defaulted (live frames carry none). */
function base(item) {
  return {
    seq: item.seq,
    id: item.id,
    author: item.author,
    body: item.deleted ? '' : item.body,
    ts: item.ts,
    client_id: item.client_id,
    reply_to: item.reply_to ?? null,
    edited_at: item.edited_at ?? null,
    deleted: Boolean(item.deleted),
    reactions: (item.reactions ?? []).map((r) => ({ emoji: r.emoji, count: r.count, me: Boolean(r.me) })),
  };
}

/**
 * Folds `events` (seq order) over `b`. `me` is the signed-in user, for the
 * `me` flag of reactions.
 *
 * A REST base is the server's state at some moment after the live stream
 * began, so it may already include the first live events. Edits are safe
 * (the last one wins, and one older than the base's `edited_at` is
 * skipped), deletes are final. A REST base only counts reactions, so for
 * another user's first live reaction event we assume the base predates
 * it: an `on` adds one, an `off` takes one away. Later events of that user
 * follow what the fold already knows, so `on` twice counts once.
 */
function fold(b, events, me) {
  const view = { ...b, reactions: b.reactions.map((r) => ({ ...r })) };
  const editedAt = b.edited_at ? Date.parse(b.edited_at) : null;
  const known = new Map(); // emoji + user → on
  for (const e of events) {
    if (view.deleted) break; // nothing changes a deleted message
    if (e.type === 'edit') {
      if (editedAt !== null && Date.parse(e.ts) < editedAt) continue; // the base is newer
      view.body = e.body;
      view.edited_at = e.ts;
    } else if (e.type === 'delete') {
      view.deleted = true;
      view.body = '';
      view.reactions = [];
    } else if (e.type === 'reaction') {
      react(view, e, me, known);
    }
  }
  view.reactions = view.reactions.filter((r) => r.count > 0);
  return view;
}

function react(view, e, me, known) {
  const key = `${e.emoji}\n${e.user}`;
  const mine = e.user === me;
  let r = view.reactions.find((x) => x.emoji === e.emoji);
  if (Number.isInteger(e.count)) {
    // The server says how many hold the emoji once this event applied:
    // exact, whatever this client saw before.
    known.set(key, e.on);
    if (!r) {
      r = { emoji: e.emoji, count: 0, me: false };
      view.reactions.push(r);
    }
    r.count = e.count;
    if (mine) r.me = e.on;
    return;
  }
  // Whether this user's reaction is counted already (see fold).
  const was = known.has(key) ? known.get(key) : mine ? Boolean(r?.me) : !e.on;
  known.set(key, e.on);
  if (was === e.on) return;
  if (!r) {
    r = { emoji: e.emoji, count: 0, me: false };
    view.reactions.push(r);
  }
  r.count = Math.max(0, r.count + (e.on ? 1 : -1));
  if (mine) r.me = e.on;
}

export class Timeline {
  /** @param {string} [me] the signed-in user's id (reactions' `me`) */
  constructor(me) {
    this.me = me;
    /** seq → base of a shown message */
    this.messages = new Map();
    /** seq → base of a message fetched only to quote it (outside the loaded range) */
    this.quoted = new Map();
    /** seq → edit/delete/reaction event (or a kind this client does not know) */
    this.events = new Map();
    /** target seq → its events, in seq order */
    this.byTarget = new Map();
    /** seq → folded view, dropped when something changes it */
    this.views = new Map();
    /** Every seq up to here (from the oldest loaded) is held; null until known. */
    this.top = null;
    /** Whether REST history has older pages. */
    this.hasOlder = false;
  }

  /**
   * Folds in one event: a REST history item (a message) or a server frame
   * (`message`, `edit`, `delete`, `reaction`). False when its seq is
   * already held. `targetOf(event)` says which message it changed.
   */
  add(event) {
    const kind = event.type ?? 'message';
    const { seq } = event;
    if (this.messages.has(seq) || this.events.has(seq)) return false;
    if (kind === 'message') {
      // A quoted message that now comes in a page keeps the base it had.
      this.messages.set(seq, this.quoted.get(seq) ?? base(event));
      this.quoted.delete(seq);
    } else {
      this.events.set(seq, event);
      if (CHANGES.has(kind)) {
        const list = this.byTarget.get(event.target) ?? [];
        let at = list.length;
        while (at > 0 && list[at - 1].seq > seq) at -= 1;
        list.splice(at, 0, event);
        this.byTarget.set(event.target, list);
      }
    }
    this.views.delete(targetOf(event));
    this.#advance();
    return true;
  }

  /** Keeps a message that is only quoted (a reply's target outside the loaded pages). */
  addQuoted(item) {
    if (this.messages.has(item.seq) || this.quoted.has(item.seq)) return false;
    this.quoted.set(item.seq, base(item));
    this.views.delete(item.seq);
    return true;
  }

  /** Whether `seq` is a message shown in the timeline (not only quoted). */
  shows(seq) {
    return this.messages.has(seq);
  }

  /** The current state of message `seq` (shown or quoted), or null. */
  view(seq) {
    if (!this.views.has(seq)) {
      const b = this.messages.get(seq) ?? this.quoted.get(seq);
      if (!b) return null;
      this.views.set(seq, fold(b, this.byTarget.get(seq) ?? [], this.me));
    }
    return this.views.get(seq);
  }

  /**
   * Retention purged the room's events below `firstSeq` (a `truncated`
   * frame): drops what is held below it, since the server no longer has
   * it, and counts the stream as complete up to there. Events below it
   * only ever target messages below it (an event follows its target).
   */
  truncate(firstSeq) {
    for (const map of [this.messages, this.quoted, this.events]) {
      for (const seq of [...map.keys()]) if (seq < firstSeq) map.delete(seq);
    }
    for (const target of [...this.byTarget.keys()]) if (target < firstSeq) this.byTarget.delete(target);
    this.views.clear();
    this.hasOlder = false;
    this.completeTo(firstSeq - 1);
  }

  /** Marks everything up to `seq` as known complete (the initial load). */
  completeTo(seq) {
    this.top = Math.max(this.top ?? 0, seq);
    this.#advance();
  }

  #advance() {
    if (this.top === null) return;
    while (this.messages.has(this.top + 1) || this.events.has(this.top + 1)) this.top += 1;
  }

  /** True when an event above `top` is held but `top + 1` is not. */
  get hasGap() {
    return this.top !== null && this.maxSeq > this.top;
  }

  /** The highest seq held, of any kind. */
  get maxSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) if (seq > max) max = seq;
    for (const seq of this.events.keys()) if (seq > max) max = seq;
    return max;
  }

  /** The oldest shown message (where the next older page ends). */
  get minSeq() {
    let min = Infinity;
    for (const seq of this.messages.keys()) if (seq < min) min = seq;
    return min === Infinity ? null : min;
  }

  /** The shown messages, folded, in seq order. */
  sorted() {
    return [...this.messages.keys()].sort((a, b) => a - b).map((seq) => this.view(seq));
  }

  /**
   * What the server counts as unread after cursor `read`: messages by
   * others, not deleted. Null when the loaded range does not cover every
   * message after `read` (older pages not loaded, or a gap above `top`).
   */
  unreadAfter(read, me = this.me) {
    if (this.top === null || this.hasGap) return null;
    const min = this.minSeq;
    if (this.hasOlder && (min === null || read < min - 1)) return null;
    let n = 0;
    for (const seq of this.messages.keys()) {
      if (seq <= read) continue;
      const v = this.view(seq);
      if (v.author !== me && !v.deleted) n += 1;
    }
    return n;
  }
}

// ----------------------------------------------------------------- unread

// Unread counts per room and the caller's read cursor. They start from the
// server's numbers (GET /rooms, GET /rooms/unread) and move with live
// frames, so a badge changes at once and agrees with the server after any
// refetch. The count is what the server counts: `message` events after the
// read cursor, written by others, not deleted.
//
// Per room: `read` (the cursor), `snap` and `base` (the server said `base`
// unread among the events up to seq `snap`), `live` (unread messages that
// arrived after `snap`, by seq) and `seen` (the highest seq accounted for,
// so a replayed frame is not counted twice).
//
// When a change cannot be counted here (a cursor that moves to the middle
// of the server's count, a deleted message from before `snap`), the method
// answers 'recount': the caller counts from its timeline or refetches.
//

export class Unread {
  constructor() {
    /** room → {read, snap, base, live: Set<seq>, seen} */
    this.rooms = new Map();
  }

  #room(id) {
    if (!this.rooms.has(id)) {
      this.rooms.set(id, { read: 0, snap: 0, base: 0, live: new Set(), seen: 0 });
    }
    return this.rooms.get(id);
  }

  count(id) {
    const r = this.rooms.get(id);
    return r ? r.base + r.live.size : 0;
  }

  /** The read cursor as last heard from the server (or moved by an own message). */
  readOf(id) {
    return this.rooms.get(id)?.read ?? 0;
  }

  /** The highest seq whose message is counted (or known not to count). */
  seenOf(id) {
    return this.rooms.get(id)?.seen ?? 0;
  }

  /** The sum over every room but `except` (the one being looked at). */
  total(except = null) {
    let n = 0;
    for (const id of this.rooms.keys()) if (id !== except) n += this.count(id);
    return n;
  }

  /**
   * The server's numbers for a room ({unread, read_seq, last_seq}, from
   * GET /rooms or GET /rooms/unread). Live messages above `last_seq`
   * arrived after the server counted, so they stay counted; an answer
   * older than this room's count only moves the cursor. 'recount' when
   * the cursor here is already past the server's and its count may be stale.
   */
  server(id, { unread, read_seq: readSeq, last_seq: lastSeq }) {
    const r = this.#room(id);
    r.read = Math.max(r.read, readSeq ?? 0);
    if ((lastSeq ?? 0) < r.snap) return 'ok'; // an answer older than what is counted here
    r.snap = lastSeq ?? 0;
    r.seen = Math.max(r.seen, r.snap);
    r.base = r.read >= r.snap ? 0 : unread ?? 0;
    for (const seq of r.live) if (seq <= r.snap || seq <= r.read) r.live.delete(seq);
    return r.read > (readSeq ?? 0) && r.base > 0 ? 'recount' : 'ok';
  }

  /** GET /rooms/unread left the room out: nothing is unread there now. */
  none(id) {
    const r = this.#room(id);
    r.base = 0;
    r.live.clear();
  }

  /**
   * An exact count (from a timeline that holds every message after the
   * cursor, up to `upTo`).
   */
  set(id, n, upTo) {
    const r = this.#room(id);
    r.base = n;
    r.snap = Math.max(r.snap, upTo);
    r.seen = Math.max(r.seen, upTo);
    for (const seq of r.live) if (seq <= upTo) r.live.delete(seq);
  }

  /**
   * A `message` frame. The caller's own moves the cursor to it (the server
   * does the same and sends no `read` for it). Another's counts unless the
   * caller is looking at the room (`viewing`), where it is seen as it
   * arrives and marked read as it scrolls into view. True when the count
   * changed.
   */
  message(id, { seq, author }, me, viewing = false) {
    const r = this.#room(id);
    if (author === me) {
      const before = this.count(id);
      r.read = Math.max(r.read, seq);
      r.seen = Math.max(r.seen, seq);
      // Frames come in seq order: nothing after this one has arrived yet.
      r.base = 0;
      r.live.clear();
      return before !== 0;
    }
    if (seq <= r.seen) return false; // counted by the server or already here
    r.seen = seq;
    if (viewing || seq <= r.read) return false;
    r.live.add(seq);
    return true;
  }

  /** A `read` frame: the cursor (this or another tab or device). */
  read(id, seq) {
    const r = this.#room(id);
    if (seq <= r.read) return 'ok';
    r.read = seq;
    for (const s of r.live) if (s <= seq) r.live.delete(s);
    if (seq >= r.snap) {
      r.base = 0;
      return 'ok';
    }
    return r.base > 0 ? 'recount' : 'ok';
  }

  /** A `delete` frame for message `target`. */
  deleted(id, target) {
    const r = this.#room(id);
    if (r.live.delete(target)) return 'ok';
    // Within the server's count and unread: it may have been counted.
    return target > r.read && target <= r.snap && r.base > 0 ? 'recount' : 'ok';
  }
}

// ----------------------------------------------------------------- errors

/**
 * A failed call: `code` is the server's error code (`unauthorized`,
 * `forbidden`, `not_found`, `conflict`, `rate_limited`, `unavailable`, ...)
 * or `network` / `closed`; `status` the HTTP status of a REST failure.
 */
export class ParleyError extends Error {
  constructor(code, message, { status = null, problem = null, retryAfterMs = null } = {}) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.status = status;
    this.problem = problem;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error code of an HTTP status without a problem body. */
const CODE_OF_STATUS = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found',
  409: 'conflict', 429: 'rate_limited', 503: 'unavailable' };

function httpError(status, problem) {
  const code = problem?.code ?? CODE_OF_STATUS[status] ?? 'internal';
  return new ParleyError(code, problem?.detail || problem?.title || `request failed (${status})`,
    { status, problem });
}

// ---------------------------------------------------------------- emitter

/** `on(type, fn)` answers a function that removes `fn`. */
class Emitter {
  #listeners = new Map();

  on(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(fn);
    return () => this.#listeners.get(type)?.delete(fn);
  }

  emit(type, event) {
    for (const fn of this.#listeners.get(type) ?? []) {
      try {
        fn(event);
      } catch (error) {
        // A listener's bug must not break the stream for the others.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** A timer that does not keep Node alive by itself. */
function timer(fn, ms) {
  const t = setTimeout(fn, ms);
  t?.unref?.();
  return t;
}

/** An idempotency key; works outside secure contexts too (no randomUUID). */
export function newClientId() {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------- session

// Refresh this long before expiry (a quarter of the lifetime for
// short-lived tokens), so that a token is never sent stale.
const REFRESH_MARGIN_MS = 60_000;
const RETRY_REFRESH_MS = 5_000;

/**
 * The token pair and every REST call. Refresh tokens rotate and a reused
 * one revokes its family, so only one refresh is ever in flight. A request
 * refused 401 is retried once after a refresh; a refresh refused 400/401
 * ends the session (`onUnauthorized`).
 *
 * Exported for applications that keep their own room state (parley's own
 * chat page does) but want the SDK's token handling; `createClient` uses it.
 */
export class Session {
  constructor({ baseUrl, fetch, credentials, tokens, onTokens, onUnauthorized }) {
    this.baseUrl = baseUrl;
    this.fetch = fetch;
    this.credentials = credentials;
    this.onTokens = onTokens;
    this.onUnauthorized = onUnauthorized;
    this.tokens = tokens ? { ...tokens } : null;
    this.user = tokens?.user ?? null;
    this.refreshing = null;
    this.refreshTimer = null;
    this.dead = false;
    // Tokens kept from an earlier run: refresh ahead of their expiry too.
    if (tokens?.expiresAt !== undefined) this.#schedule(Math.max(0, tokens.expiresAt - Date.now()));
  }

  async send(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await this.fetch(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ParleyError('network', `${method} ${path}: ${error.message}`);
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    return { res, data };
  }

  /** Logs in with the credentials given to createClient, once. */
  async login() {
    if (!this.credentials) throw this.#end('no tokens and no credentials');
    const { res, data } = await this.send('POST', '/auth/login', this.credentials);
    if (!res.ok) {
      const error = httpError(res.status, data);
      if (res.status === 401) throw this.#end(error.message);
      throw error;
    }
    this.#keep(data);
  }

  /**
   * Signs in with a `/auth/login` or `/auth/register` body (`path` is one
   * of those) and keeps the tokens it answers.
   */
  async signIn(path, body) {
    const { res, data } = await this.send('POST', path, body);
    if (!res.ok) throw httpError(res.status, data);
    this.dead = false;
    this.#keep(data);
    return this.user;
  }

  /** Ends this login on the server (best effort) and stops refreshing. */
  async logout() {
    const tokens = this.tokens;
    this.close();
    if (!tokens?.refreshToken) return;
    await this.send('POST', '/auth/logout', { refresh_token: tokens.refreshToken }, tokens.accessToken)
      .catch(() => {});
  }

  #keep(body) {
    this.tokens = {
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      expiresAt: Date.now() + body.expires_in * 1000,
    };
    if (body.user) this.user = body.user;
    this.tokens.user = this.user;
    this.#schedule(body.expires_in * 1000);
    this.onTokens?.({ ...this.tokens });
  }

  #schedule(ttlMs) {
    clearTimeout(this.refreshTimer);
    const wait = Math.max(0, ttlMs - Math.min(REFRESH_MARGIN_MS, ttlMs / 4));
    this.refreshTimer = timer(() => this.#refreshSoon(), wait);
  }

  #refreshSoon() {
    if (this.dead) return;
    // A failed refresh (server away) is tried again; success reschedules.
    this.refresh().catch((error) => {
      if (!this.dead) this.refreshTimer = timer(() => this.#refreshSoon(), RETRY_REFRESH_MS);
      return error;
    });
  }

  /** One refresh at a time; callers that arrive meanwhile share it. */
  refresh() {
    this.refreshing ??= this.#refresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async #refresh() {
    if (!this.tokens?.refreshToken) return this.login();
    const { res, data } = await this.send('POST', '/auth/refresh', {
      refresh_token: this.tokens.refreshToken,
    });
    if (res.ok) return this.#keep(data);
    // Spent or revoked: the session is over. Other failures may pass.
    if (res.status === 400 || res.status === 401) throw this.#end(httpError(res.status, data).message);
    throw httpError(res.status, data);
  }

  #end(message) {
    const error = new ParleyError('unauthorized', `unauthorized: ${message}`, { status: 401 });
    if (!this.dead) {
      this.dead = true;
      clearTimeout(this.refreshTimer);
      this.onUnauthorized(error);
    }
    return error;
  }

  /** A usable access token; `stale` is one the server just refused. */
  async token({ stale } = {}) {
    if (this.dead) throw new ParleyError('unauthorized', 'unauthorized: the session ended', { status: 401 });
    if (!this.tokens) {
      this.refreshing ??= this.login().finally(() => {
        this.refreshing = null;
      });
      await this.refreshing;
    }
    const expiring = this.tokens.expiresAt !== undefined && this.tokens.expiresAt - Date.now() < 1_000;
    if (expiring || (stale !== undefined && stale === this.tokens.accessToken)) await this.refresh();
    return this.tokens.accessToken;
  }

  /** An authenticated JSON request, retried once with a new token on 401. */
  async request(method, path, body) {
    let token = await this.token();
    let { res, data } = await this.send(method, path, body, token);
    if (res.status === 401) {
      token = await this.token({ stale: token });
      ({ res, data } = await this.send(method, path, body, token));
      if (res.status === 401) throw this.#end(httpError(401, data).message);
    }
    if (!res.ok) throw httpError(res.status, data);
    return data;
  }

  async me() {
    this.user ??= await this.request('GET', '/users/me');
    return this.user;
  }

  close() {
    this.dead = true;
    clearTimeout(this.refreshTimer);
  }
}

// ------------------------------------------------------------- connection

/**
 * The one WebSocket to /ws. Reconnects by itself: after a dropped
 * connection, a `reconnect` frame (drain) or a silent server, it waits a
 * backoff with full jitter (plus the server's `retry_after_ms`) and tries
 * again until stopped.
 *
 * Exported, like `Session`, for applications that route frames themselves;
 * `createClient` uses it.
 */
export class Connection {
  constructor({ url, WebSocket, ticket, onReady, onFrame, onState }) {
    Object.assign(this, { url, WebSocketImpl: WebSocket, ticketFor: ticket, onReady, onFrame, onState });
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.retryAfterMs = 0;
    this.timer = null;
    this.waiting = false;
    this.watchdog = null;
    // Back online (browsers): try now rather than at the end of a long backoff.
    globalThis.addEventListener?.('online', () => this.wake());
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.onState('connecting');
    this.#connect();
  }

  stop(state = 'closed') {
    this.stopped = true;
    this.waiting = false;
    clearTimeout(this.timer);
    this.#detach(1000);
    this.onState(state);
  }

  /** Sends a frame; false when not connected (the caller resends after onReady). */
  send(frame) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  wake() {
    if (this.stopped || !this.waiting) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.#connect();
  }

  async #connect() {
    this.waiting = false;
    let ticket;
    try {
      ticket = await this.ticketFor();
    } catch (error) {
      if (error.code !== 'unauthorized') this.#retry();
      return;
    }
    if (this.stopped) return;
    const ws = new this.WebSocketImpl(`${this.url}?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onmessage = (event) => this.#receive(event);
    // A refused upgrade or a reset ends in close as well.
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.#detach();
      this.#retry(event?.code);
    };
  }

  #receive(event) {
    this.lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(typeof event.data === 'string' ? event.data : String(event.data));
    } catch {
      return;
    }
    switch (frame.type) {
      case 'hello':
        this.attempt = 0;
        this.ready = true;
        this.#watch(frame.heartbeat_ms);
        this.onState('connected', frame);
        this.onReady(frame);
        break;
      case 'reconnect':
        // The instance is draining and will close with 1012: leave now.
        this.retryAfterMs = frame.retry_after_ms ?? 0;
        this.#detach(1000);
        this.#retry(1012);
        break;
      case 'pong':
        break;
      default:
        this.onFrame(frame);
    }
  }

  /** Pings each heartbeat; a server silent for 2.5 heartbeats is gone. */
  #watch(heartbeatMs) {
    const every = Math.max(1000, heartbeatMs || 15_000);
    this.lastHeard = Date.now();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > every * 2.5) {
        this.#detach(4000);
        this.#retry();
        return;
      }
      this.send({ type: 'ping' });
    }, every);
    this.watchdog?.unref?.();
  }

  #detach(code) {
    clearInterval(this.watchdog);
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    this.ready = false;
    ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    if (code && ws.readyState <= 1) ws.close(code);
  }

  #retry(closeCode) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt, { retryAfterMs: this.retryAfterMs });
    this.onState('reconnecting', { closeCode: closeCode ?? null, delayMs: delay });
    this.attempt += 1;
    this.retryAfterMs = 0;
    clearTimeout(this.timer);
    this.waiting = true;
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}

// ------------------------------------------------------------------ rooms

const PAGE = 50;
/** The event frames: answered by `ack`, retried with the same `client_id`. */
const EVENT_KINDS = new Set(['message', 'edit', 'delete', 'reaction']);
/** Errors after which the same event frame may succeed. */
const RETRYABLE = new Set(['unavailable', 'rate_limited', 'internal']);

/**
 * One room: its timeline, its subscription and its actions. Get it with
 * `client.room(id)`; listen with `room.on(type, fn)`.
 */
class Room extends Emitter {
  constructor(client, id) {
    super();
    this.client = client;
    this.id = id;
    this.timeline = new Timeline(client.user?.id);
    /** Users seen online here (presence frames since the subscription). */
    this.online = new Set();
    this.wanted = false;
    this.resyncing = false;
    this.loading = null;
    this.subscribing = null;
    /** Why the server ended the subscription (`banned`, `removed`), or null. */
    this.closedReason = null;
    /**
     * The highest seq this client's own events were acked with: an ack may
     * arrive before the event's own frame, and what the user just sent is
     * read by them.
     */
    this.ackedSeq = 0;
  }

  /**
   * Joins the live stream. Without `since`, the newest page of history is
   * loaded and the stream continues from there; `since: 0` replays the whole
   * room; `limit` is the size of that first page. Resolves once the
   * server confirmed (and the first page is in).
   */
  subscribe({ since, limit = PAGE } = {}) {
    this.wanted = true;
    this.pageSize = limit;
    this.closedReason = null;
    if (since !== undefined && this.timeline.top === null) this.timeline.completeTo(since);
    this.subscribing ??= new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.client.sendSubscribe(this);
    return this.subscribing;
  }

  /** Leaves the live stream (the timeline stays as it is). */
  async unsubscribe() {
    this.wanted = false;
    this.online.clear();
    this.client.connection.send({ type: 'unsubscribe', room: this.id, ref: `unsub:${this.id}` });
  }

  /** The shown messages, folded, in seq order. */
  messages() {
    return this.timeline.sorted();
  }

  /** Publishes a message; resolves with the ack once it is durable. */
  publish(body, { replyTo, clientId } = {}) {
    const frame = { type: 'publish', room: this.id, body, client_id: clientId ?? newClientId() };
    if (replyTo !== undefined && replyTo !== null) frame.reply_to = replyTo;
    return this.client.sendEvent(frame);
  }

  edit(target, body, { clientId } = {}) {
    return this.client.sendEvent({ type: 'edit', room: this.id, target, body, client_id: clientId ?? newClientId() });
  }

  delete(target, { clientId } = {}) {
    return this.client.sendEvent({ type: 'delete', room: this.id, target, client_id: clientId ?? newClientId() });
  }

  react(target, emoji, on = true, { clientId } = {}) {
    return this.client.sendEvent({ type: 'react', room: this.id, target, emoji, on, client_id: clientId ?? newClientId() });
  }

  /**
   * Moves the read cursor to `seq` (default: the newest seq held or acked
   * to this client); resolves with the cursor as the server now has it.
   * Every session of the user gets a `read` event.
   */
  async markRead(seq = Math.max(this.timeline.maxSeq, this.ackedSeq)) {
    const answer = await this.client.request('POST', `/rooms/${this.id}/read`, { seq });
    this.client.unread.read(this.id, answer.seq);
    return answer.seq;
  }

  /** Tells the room's other sessions that the user is typing (no reply). */
  typing() {
    return this.client.connection.send({ type: 'typing', room: this.id });
  }

  /** A page of REST history: `{beforeSeq}` pages back, `{afterSeq}` forward. */
  history({ beforeSeq, afterSeq, limit = PAGE, replyTo } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (beforeSeq !== undefined) q.set('before_seq', String(beforeSeq));
    if (afterSeq !== undefined) q.set('after_seq', String(afterSeq));
    if (replyTo !== undefined) q.set('reply_to', String(replyTo));
    return this.client.request('GET', `/rooms/${this.id}/messages?${q}`);
  }

  /** Loads the page before the oldest message held into the timeline; false when none is left. */
  async loadOlder(limit = PAGE) {
    const before = this.timeline.minSeq;
    if (before !== null && !this.timeline.hasOlder) return false;
    const page = await this.history({ beforeSeq: before ?? undefined, limit });
    this.timeline.hasOlder = page.next_cursor !== null;
    this.add(page.items, false);
    return page.items.length > 0;
  }

  /** The unread count as this client knows it (see client.refreshUnread). */
  get unread() {
    return this.client.unread.count(this.id);
  }

  /**
   * Folds events in and answers those that were new (a replayed or
   * overlapping one is held once); emits what changed, resyncs on a gap.
   */
  add(events, live) {
    const changed = new Set();
    const fresh = [];
    for (const event of events) {
      if (!this.timeline.add(event)) continue;
      fresh.push(event);
      changed.add(targetOf(event));
      if (live) this.#count(event);
      if (live) this.emit(event.type, event);
    }
    if (changed.size) this.emit('timeline', { room: this.id, seqs: [...changed] });
    if (this.timeline.hasGap) this.#resync();
    return fresh;
  }

  #count(event) {
    const me = this.client.user?.id;
    if (event.type === 'message') this.client.unread.message(this.id, event, me);
    else if (event.type === 'delete') this.client.unread.deleted(this.id, event.target);
  }

  /**
   * A seq above `top` arrived without the ones before it (which the
   * server's ordering should never allow): resubscribing with `since`
   * replays from `top`, every kind included, which a REST page could not.
   */
  #resync() {
    if (this.resyncing || !this.wanted) return;
    this.resyncing = this.client.sendSubscribe(this);
  }

  /** `subscribed`: everything up to `seq` follows (replay) or is history. */
  async onSubscribed(frame) {
    this.resyncing = false;
    if (this.timeline.top === null) {
      this.loading ??= this.#loadInitial(frame.seq).finally(() => {
        this.loading = null;
      });
      await this.loading.catch((error) => this.#fail(error));
    }
    this.settle?.resolve(frame.seq);
    this.settle = null;
    this.subscribing = null;
  }

  async #loadInitial(seq) {
    const page = await this.history({ beforeSeq: seq + 1, limit: this.pageSize ?? PAGE });
    this.timeline.hasOlder = page.next_cursor !== null;
    this.timeline.completeTo(seq);
    this.add(page.items, false);
  }

  #fail(error) {
    this.settle?.reject(error);
    this.settle = null;
    this.subscribing = null;
  }

  /** The subscription ended: refused (`error`) or by the server (`unsubscribed`). */
  onEnded(error, reason = null) {
    this.wanted = false;
    this.closedReason = reason;
    this.online.clear();
    this.#fail(error);
  }
}

// ----------------------------------------------------------------- client

/**
 * The client. Create it with createClient; `await client.connect()`.
 * Events (client.on): `state`, `hello`, `message`, `edit`, `delete`,
 * `reaction`, `read`, `receipt`, `presence`, `typing`, `notification`,
 * `unsubscribed`, `error`, `unread`, `tokens`.
 */
class Client extends Emitter {
  constructor(options) {
    super();
    const baseUrl = String(options.baseUrl ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    if (!baseUrl) throw new TypeError('createClient: baseUrl is required outside a browser');
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketImpl) throw new TypeError('createClient: pass a WebSocket constructor (Node 20 has none)');
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.baseUrl = baseUrl;
    /** 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'unauthorized' | 'closed' */
    this.state = 'idle';
    this.hello = null;
    this.rooms = new Map();
    this.unread = new Unread();
    /** client_id → {frame, resolve, reject}: event frames not yet acked. */
    this.pending = new Map();
    const credentials =
      options.username !== undefined ? { username: options.username, password: options.password } : null;
    const tokens = options.tokens
      ? { accessToken: options.tokens.accessToken, refreshToken: options.tokens.refreshToken,
          expiresAt: options.tokens.expiresAt, user: options.tokens.user }
      : null;
    this.session = new Session({
      baseUrl,
      fetch: fetchImpl,
      credentials,
      tokens,
      onTokens: (t) => this.emit('tokens', t),
      onUnauthorized: (error) => this.#unauthorized(error),
    });
    this.connection = new Connection({
      url: `${baseUrl.replace(/^http/, 'ws')}/ws`,
      WebSocket: WebSocketImpl,
      // A single-use ticket keeps the access token out of the URL. Getting
      // one is a REST call, which refreshes a refused token by itself.
      ticket: async () => (await this.session.request('POST', '/ws-ticket')).ticket,
      onReady: (hello) => this.#ready(hello),
      onFrame: (frame) => this.#receive(frame),
      onState: (state, detail) => this.#setState(state, detail),
    });
    this.connected = null;
  }

  /** The signed-in user (`{id, username, ...}`), known once connected. */
  get user() {
    return this.session.user;
  }

  /** Logs in if needed and connects; resolves on the first `hello`. */
  async connect() {
    if (this.state === 'connected') return this.hello;
    await this.session.me();
    this.connected ??= new Promise((resolve, reject) => {
      const off = this.on('state', ({ state }) => {
        if (state === 'connected') {
          off();
          resolve(this.hello);
        } else if (state === 'unauthorized' || state === 'closed') {
          off();
          reject(new ParleyError(state, `not connected: ${state}`));
        }
      });
    }).finally(() => {
      this.connected = null;
    });
    this.connection.start();
    return this.connected;
  }

  /** Closes the socket and stops refreshing; pending operations are rejected. */
  close() {
    this.connection.stop('closed');
    this.session.close();
    this.#rejectPending(new ParleyError('closed', 'the client was closed'));
  }

  /** Ends this login on the server (its refresh token stops working), then closes. */
  async logout() {
    this.connection.stop('closed');
    await this.session.logout();
    this.close();
  }

  /** The room object for `id` (one per id). */
  room(id) {
    if (!this.rooms.has(id)) this.rooms.set(id, new Room(this, id));
    return this.rooms.get(id);
  }

  /** An authenticated REST call under /api/v1 (refreshes and retries once on 401). */
  request(method, path, body) {
    return this.session.request(method, path, body);
  }

  listRooms(limit = 200) {
    return this.request('GET', `/rooms?limit=${limit}`);
  }

  createRoom(name, kind = 'public') {
    return this.request('POST', '/rooms', { name, kind });
  }

  addMember(room, userId) {
    return this.request('POST', `/rooms/${room}/members`, { user_id: userId });
  }

  notifications(limit = 30) {
    return this.request('GET', `/notifications?limit=${limit}`);
  }

  markNotificationRead(id) {
    return this.request('POST', `/notifications/${id}/read`);
  }

  /**
   * Asks the server for every room's unread count and read cursor; resolves
   * with `{total, rooms: {id: count}}`. Live frames keep the counts moving
   * after that (`unread` events).
   */
  async refreshUnread() {
    const answer = await this.request('GET', '/rooms/unread');
    const listed = new Set();
    for (const item of answer.items) {
      listed.add(item.room);
      this.unread.server(item.room, item);
    }
    for (const id of this.unread.rooms.keys()) if (!listed.has(id)) this.unread.none(id);
    this.emit('unread', this.unreadCounts());
    return this.unreadCounts();
  }

  /** `{total, rooms: {id: count}}` as this client knows them now. */
  unreadCounts() {
    const rooms = {};
    for (const id of this.unread.rooms.keys()) rooms[id] = this.unread.count(id);
    return { total: this.unread.total(), rooms };
  }

  /** Sends an event frame now or after the next `hello`; resolves on its ack. */
  sendEvent(frame) {
    return new Promise((resolve, reject) => {
      if (this.state === 'unauthorized' || this.state === 'closed') {
        reject(new ParleyError(this.state, `cannot send: ${this.state}`));
        return;
      }
      this.pending.set(frame.client_id, { frame, resolve, reject });
      this.#sendPending(frame);
    });
  }

  #sendPending(frame) {
    this.connection.send({ ...frame, ref: `ev:${frame.client_id}` });
  }

  sendSubscribe(room) {
    const frame = { type: 'subscribe', room: room.id, ref: `sub:${room.id}` };
    if (room.timeline.top !== null) frame.since = room.timeline.top;
    return this.connection.send(frame);
  }

  /** Every (re)connection: resubscribe with `since`, resend what is not acked. */
  #ready(hello) {
    this.hello = hello;
    this.session.user ??= { id: hello.user };
    this.emit('hello', hello);
    for (const room of this.rooms.values()) {
      room.online.clear();
      room.resyncing = false;
      if (room.wanted) this.sendSubscribe(room);
    }
    for (const { frame } of this.pending.values()) this.#sendPending(frame);
  }

  #receive(frame) {
    const room = typeof frame.room === 'string' ? this.room(frame.room) : null;
    switch (frame.type) {
      case 'subscribed':
        room.onSubscribed(frame);
        break;
      case 'message':
      case 'edit':
      case 'delete':
      case 'reaction':
        for (const event of room.add([frame], true)) this.emit(event.type, event);
        if (frame.type === 'message' || frame.type === 'delete') this.emit('unread', this.unreadCounts());
        break;
      case 'ack':
        if (room && frame.seq > room.ackedSeq) room.ackedSeq = frame.seq;
        this.#settle(frame.client_id, (p) => p.resolve(frame));
        break;
      case 'error':
        this.#onError(frame);
        break;
      case 'truncated':
        // Retention purged what came before first_seq; the replay goes on
        // from there.
        room.timeline.truncate(frame.first_seq);
        this.#relay(room, frame);
        this.emit('unread', this.unreadCounts());
        break;
      case 'unsubscribed':
        // With no ref the server ended it (banned, removed): do not resubscribe.
        if (frame.reason) room.onEnded(new ParleyError('forbidden', `unsubscribed: ${frame.reason}`), frame.reason);
        room.emit('unsubscribed', frame);
        this.emit('unsubscribed', frame);
        break;
      case 'read':
        this.unread.read(frame.room, frame.seq);
        this.#relay(room, frame);
        this.emit('unread', this.unreadCounts());
        break;
      case 'presence':
        if (frame.state === 'online') room.online.add(frame.user);
        else room.online.delete(frame.user);
        this.#relay(room, frame);
        break;
      default:
        // receipt, typing, notification, and kinds of later servers.
        this.#relay(room, frame);
    }
  }

  #relay(room, frame) {
    room?.emit(frame.type, frame);
    this.emit(frame.type, frame);
  }

  #onError(frame) {
    const ref = frame.ref ?? '';
    const error = new ParleyError(frame.code, frame.message, { retryAfterMs: frame.retry_after_ms ?? null });
    if (ref.startsWith('ev:')) {
      const id = ref.slice(3);
      const pending = this.pending.get(id);
      if (pending && RETRYABLE.has(frame.code)) {
        // Not stored: the same client_id again, after the server's wait.
        timer(() => this.pending.has(id) && this.#sendPending(pending.frame), frame.retry_after_ms ?? 1_000);
        return;
      }
      this.#settle(id, (p) => p.reject(error));
      return;
    }
    if (ref.startsWith('sub:')) {
      this.room(ref.slice(4)).onEnded(error);
    } else if (!ref && frame.code === 'unavailable') {
      // A replay that failed: subscribe again from what is held.
      for (const room of this.rooms.values()) if (room.wanted) this.sendSubscribe(room);
    }
    this.emit('error', error);
  }

  #settle(clientId, fn) {
    const pending = this.pending.get(clientId);
    if (!pending) return;
    this.pending.delete(clientId);
    fn(pending);
  }

  #rejectPending(error) {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  #setState(state, detail = {}) {
    if (this.state === 'unauthorized' && state === 'closed') return;
    this.state = state;
    this.emit('state', { state, ...detail });
  }

  #unauthorized(error) {
    this.connection.stop('unauthorized');
    this.#rejectPending(error);
    for (const room of this.rooms.values()) room.settle?.reject(error);
  }
}

/**
 * A client for the parley server at `baseUrl`, from `username`/`password`
 * (it logs in) or `tokens` (`{accessToken, refreshToken}`).
 */
export function createClient(options) {
  return new Client(options);
}
