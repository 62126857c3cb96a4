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
// Pure: no DOM, no network; tests/browser/unit.test.mjs covers it.

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
