// One conversation as the page holds it: the messages of a contiguous stretch of the
// server's history, plus the messages this page is still sending.
//
// The invariant that keeps the view free of gaps: `messages` always holds *every* message
// with an id from the oldest held to the newest held. History pages extend the stretch at
// either end; a live event extends it only when the stretch reaches the present (`atNewest`)
// and is not being loaded. While a page is in flight, or while the stretch ends in the past
// (after a jump to a search result), live events wait in `buffer` and are merged when the
// stretch reaches the present. An event older than the stretch is left out: scrolling up
// will fetch it in its page.
//
// Messages are keyed by id, so the same message from a history page, the live feed and the
// answer to our own post is held once. Sent messages wait in `pending` (shown after the
// others, marked "sending") until the server's id for them is known; then they take their
// place in the server's order (client prediction, then reconciliation).

/** Most live events kept while the stretch does not reach the present. */
export const MAX_BUFFERED_EVENTS = 2000;

const compareIds = (a, b) => {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

let nextLocalId = 1;

export class Timeline {
  constructor(place) {
    this.place = place;
    this.messages = [];
    this.byId = new Map();
    this.pending = [];
    this.buffer = [];
    this.loaded = false;
    this.loading = 0;
    this.atOldest = false;
    this.atNewest = false;
    this.bufferOverflowed = false;
  }

  get oldestId() { return this.messages.length ? this.messages[0].id : null; }
  get newestId() { return this.messages.length ? this.messages[this.messages.length - 1].id : null; }

  /** Whether live events can be applied directly. */
  get live() { return this.loaded && this.atNewest && this.loading === 0; }

  /** Forgets everything held (before a jump); pending sends stay. */
  reset() {
    this.messages = [];
    this.byId.clear();
    this.buffer = [];
    this.loaded = false;
    this.atOldest = false;
    this.atNewest = false;
    this.bufferOverflowed = false;
  }

  /** Inserts or replaces one message, keeping id order. */
  upsert(message) {
    const known = this.byId.get(message.id);
    if (known) {
      Object.assign(known, message);
      return;
    }
    const held = { ...message };
    this.byId.set(held.id, held);
    let low = 0;
    let high = this.messages.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compareIds(this.messages[middle].id, held.id) < 0) low = middle + 1;
      else high = middle;
    }
    this.messages.splice(low, 0, held);
    this.claimPending(held);
  }

  /**
   * Adds a history page. `kind` is 'newest', 'before', 'after' or 'around'; `full` says the
   * page was as long as asked (so more may lie beyond it).
   */
  addPage(messages, kind, full) {
    for (const message of messages) this.upsert(message);
    if (kind === 'newest') { this.atNewest = true; this.atOldest = !full; }
    if (kind === 'before') this.atOldest = !full;
    if (kind === 'after') this.atNewest = !full;
    this.loaded = true;
  }

  /** A live event for this timeline. Returns whether anything shown changed. */
  applyEvent(event) {
    if (!this.loaded && this.loading === 0) return false;
    if (!this.live) {
      if (this.buffer.length >= MAX_BUFFERED_EVENTS) {
        this.bufferOverflowed = true;
        this.buffer = [];
      }
      if (!this.bufferOverflowed) this.buffer.push(event);
      return false;
    }
    return this.applyNow(event);
  }

  applyNow(event) {
    switch (event.kind) {
      case 'posted': {
        const oldest = this.oldestId;
        if (oldest !== null && compareIds(event.message.id, oldest) < 0 && !this.atOldest) return false;
        this.upsert(event.message);
        return true;
      }
      case 'edited': {
        const message = this.byId.get(event.target);
        if (!message) return false;
        message.body = event.body;
        message.edited = event.time;
        return true;
      }
      case 'deleted': {
        const message = this.byId.get(event.target);
        if (!message) return false;
        message.body = '';
        message.deleted = true;
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * Applies the events that waited while the stretch was loading, once it reaches the
   * present. Returns false if too many waited and the caller must reload the newest page.
   */
  flushBuffer() {
    if (!this.live) return true;
    if (this.bufferOverflowed) return false;
    const waiting = this.buffer;
    this.buffer = [];
    for (const event of waiting) this.applyNow(event);
    return true;
  }

  /** Shows a message being sent; returns its local entry. */
  addPending(body, author) {
    const entry = { localId: `local-${nextLocalId++}`, body, author, state: 'sending', serverId: null };
    this.pending.push(entry);
    return entry;
  }

  /** The server stored `entry` as `message`: it takes its place in the server's order. */
  confirmPending(entry, message) {
    this.pending = this.pending.filter((pending) => pending !== entry);
    if (this.live || (this.oldestId !== null && compareIds(message.id, this.oldestId) >= 0)) {
      this.upsert(message);
    }
  }

  /**
   * A message of ours arrived (from the feed or a page) before the answer to its post: the
   * first pending entry with the same author and body is that post. Matching in order is
   * right because the outbox sends one post at a time, in order.
   */
  claimPending(message) {
    const index = this.pending.findIndex((entry) => entry.state === 'sending'
      && entry.author === message.author && entry.body === message.body && !entry.serverId);
    if (index >= 0) this.pending[index].serverId = message.id;
    this.pending = this.pending.filter((entry) => entry.serverId === null || entry.state !== 'sending');
  }

  removePending(entry) {
    this.pending = this.pending.filter((pending) => pending !== entry);
  }
}
