// The live feed: one WebSocket to /api/v1/stream that survives dropped connections.
//
// Event ids follow the server's log, so the feed keeps one cursor, the id of the last
// `event` frame handled, and every (re)subscription asks for the events `after` it: the
// server then sends each later event exactly once, in order (docs/api.md, "Resuming").
// An event at or below the cursor is ignored, so even a server that sent one twice could
// not make the page show it twice.
//
// On a lost connection the feed waits (0.5 s, doubling up to 8 s, with jitter) and
// reconnects, each time to the next node it knows, so a cluster with one node down still
// serves it. A connection that stops answering pings for PONG_TIMEOUT_MS is given up.

const PING_EVERY_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 8000;

/** Whether decimal id `a` is greater than `b` (ids exceed 2^53: compare as BigInt). */
export function idAfter(a, b) {
  return BigInt(a) > BigInt(b || '0');
}

export class Feed {
  /**
   * nodes: base URLs (http://host:port) of the nodes to try, in order.
   * handlers: onEvent(frame), onEphemeral(frame), onState(state, detail), onSubscribed(resumed),
   * onProblem(problem), onUnauthenticated().
   */
  constructor(nodes, token, cursor, handlers) {
    this.nodes = nodes;
    this.nodeIndex = 0;
    this.token = token;
    this.cursor = cursor || null;
    this.handlers = handlers;
    this.rooms = [];
    this.socket = null;
    this.retryMs = FIRST_RETRY_MS;
    this.stopped = false;
    this.timers = new Set();
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearInterval(this.pinger);
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
  }

  /** Follow these rooms (and always one's private messages) from now on. */
  follow(rooms) {
    this.rooms = [...rooms];
    this.subscribe();
  }

  later(ms, action) {
    const timer = setTimeout(() => { this.timers.delete(timer); action(); }, ms);
    this.timers.add(timer);
  }

  connect() {
    if (this.stopped) return;
    const base = this.nodes[this.nodeIndex % this.nodes.length];
    const url = `${base.replace(/^http/, 'ws')}/api/v1/stream?token=${encodeURIComponent(this.token)}`;
    this.handlers.onState('connecting', base);
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    this.subscribedOnce = false;
    socket.onopen = () => {
      this.retryMs = FIRST_RETRY_MS;
      this.lastHeard = Date.now();
      this.subscribe();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
    };
    socket.onmessage = (message) => {
      this.lastHeard = Date.now();
      let frame;
      try { frame = JSON.parse(message.data); } catch { return; }
      this.handle(frame);
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.pinger);
      if (close.code === 4001) {
        this.handlers.onUnauthenticated();
        return;
      }
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    this.nodeIndex += 1;
    const wait = Math.round(this.retryMs * (0.75 + Math.random() * 0.5));
    this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
    this.handlers.onState('reconnecting', `retrying in ${(wait / 1000).toFixed(1)} s`);
    this.later(wait, () => this.connect());
  }

  ping() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > PING_EVERY_MS + PONG_TIMEOUT_MS) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
      this.retry();
      return;
    }
    this.socket.send(JSON.stringify({ type: 'ping' }));
  }

  subscribe() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    const frame = { type: 'subscribe', rooms: this.rooms, direct: true };
    if (this.cursor) frame.after = this.cursor;
    this.socket.send(JSON.stringify(frame));
  }

  handle(frame) {
    switch (frame.type) {
      case 'subscribed': {
        const resumed = Boolean(this.cursor);
        if (!this.cursor) this.cursor = frame.after;
        if (!this.subscribedOnce) this.handlers.onState('catching-up', '');
        this.subscribedOnce = true;
        this.handlers.onSubscribed(resumed);
        break;
      }
      case 'event':
        if (this.cursor && !idAfter(frame.id, this.cursor)) return;
        this.cursor = frame.id;
        this.handlers.onEvent(frame);
        break;
      case 'caught_up':
        this.handlers.onState('live', this.nodes[this.nodeIndex % this.nodes.length]);
        break;
      case 'ephemeral':
        this.handlers.onEphemeral(frame);
        break;
      case 'error':
        this.handlers.onProblem(frame.problem || {});
        break;
      default:
        break;
    }
  }
}
