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
// Pure: no DOM, no network; tests/browser/unit.test.mjs covers it.

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
