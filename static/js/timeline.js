// One room's messages, keyed by seq: each seq is held (and so shown) once,
// and `top` tracks how far the history is known to be complete, which is
// the `since` to resubscribe with and where a gap fill starts.

export class Timeline {
  constructor() {
    /** seq → message */
    this.bySeq = new Map();
    /** Every seq up to here (from the oldest loaded) is held; null until known. */
    this.top = null;
    /** Whether REST history has older pages. */
    this.hasOlder = false;
  }

  /** Adds a message; false when its seq is already held. */
  add(message) {
    if (this.bySeq.has(message.seq)) return false;
    this.bySeq.set(message.seq, message);
    this.#advance();
    return true;
  }

  /** Marks everything up to `seq` as known complete (the initial load). */
  completeTo(seq) {
    this.top = Math.max(this.top ?? 0, seq);
    this.#advance();
  }

  #advance() {
    if (this.top === null) return;
    while (this.bySeq.has(this.top + 1)) this.top += 1;
  }

  /** True when a message above `top` is held but `top + 1` is not. */
  get hasGap() {
    return this.top !== null && this.maxSeq > this.top;
  }

  get maxSeq() {
    let max = 0;
    for (const seq of this.bySeq.keys()) if (seq > max) max = seq;
    return max;
  }

  get minSeq() {
    let min = Infinity;
    for (const seq of this.bySeq.keys()) if (seq < min) min = seq;
    return min === Infinity ? null : min;
  }

  /** The messages in seq order. */
  sorted() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
}
