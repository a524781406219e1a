// The room's message log as one client sees it: exactly once, in seq order,
// without gaps. No DOM.
//
// Frames may arrive twice (a live wake-up and a backfill), out of order, or
// not at all (the channel layer is at most once). Messages are buffered by
// seq and released only when every earlier seq has been released; a hole
// asks for a backfill (chat.sync after the last contiguous seq).

/**
 * @typedef {{seq: number, hidden?: boolean, client_id?: string, author_id?: number,
 *            author_name?: string, body?: string, created_at?: string}} ChatMessage
 */

export class ChatLog {
  constructor() {
    /** Last seq released in order; null until the first page or sync says where to start. */
    this.lastSeq = null;
    /** Oldest seq held (for paging history backwards); null when none. */
    this.oldestSeq = null;
    this.hasOlder = false;
    /** @type {Map<number, ChatMessage>} received but not yet releasable */
    this.pending = new Map();
  }

  /**
   * The newest page (chat.page without before_seq) sets the starting point.
   * @param {ChatMessage[]} messages oldest first
   * @param {boolean} hasMore older pages exist
   * @returns {ChatMessage[]} to show, in order
   */
  start(messages, hasMore) {
    const sorted = [...messages].sort((a, b) => a.seq - b.seq);
    this.lastSeq = sorted.length ? sorted[sorted.length - 1].seq : 0;
    this.oldestSeq = sorted.length ? sorted[0].seq : null;
    this.hasOlder = hasMore;
    return [...sorted, ...this.drain()];
  }

  /**
   * An older page (chat.page with before_seq).
   * @returns {ChatMessage[]} to prepend, oldest first
   */
  older(messages, hasMore) {
    const fresh = messages
      .filter((m) => this.oldestSeq === null || m.seq < this.oldestSeq)
      .sort((a, b) => a.seq - b.seq);
    if (fresh.length) this.oldestSeq = fresh[0].seq;
    this.hasOlder = hasMore;
    return fresh;
  }

  /**
   * Live messages or a backfill batch.
   * @param {ChatMessage[]} messages
   * @returns {{released: ChatMessage[], gap: boolean}} released in seq order;
   *   gap: something is missing before a held message (ask for chat.sync)
   */
  receive(messages) {
    for (const m of messages) {
      if (!Number.isInteger(m?.seq) || m.seq < 1) continue;
      if (this.lastSeq !== null && m.seq <= this.lastSeq) continue; // already shown
      if (!this.pending.has(m.seq)) this.pending.set(m.seq, m);
    }
    if (this.lastSeq === null) return { released: [], gap: false };
    const released = this.drain();
    return { released, gap: this.pending.size > 0 };
  }

  /** An acknowledged seq beyond what we hold means a wake-up was lost. */
  behind(seq) {
    return this.lastSeq !== null && seq > this.lastSeq;
  }

  drain() {
    const out = [];
    for (const seq of [...this.pending.keys()]) if (seq <= this.lastSeq) this.pending.delete(seq);
    while (this.pending.has(this.lastSeq + 1)) {
      const m = this.pending.get(this.lastSeq + 1);
      this.pending.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      if (this.oldestSeq === null) this.oldestSeq = m.seq;
      out.push(m);
    }
    return out;
  }
}
