// Sending, with client prediction and reconciliation.
//
// A message is shown at once as a pending entry of its timeline (timeline.js), then posted.
// Posts go one at a time, in the order written, each under the page's client session with
// its own sequence number (api.js). A post whose answer is lost (network error, 429, 503)
// is retried with the same sequence number, so the server applies it at most once; after
// SEND_ATTEMPTS the entry is marked failed, and a retry asked for by the user takes a new
// sequence number. The server's answer reconciles the entry: it takes the server's id and
// its place in the server's order (Timeline.confirmPending).

import { ApiError } from './api.js';

/** Attempts per post before it is marked failed (0.5 s, 1 s, 2 s, 4 s apart, or Retry-After). */
export const SEND_ATTEMPTS = 5;

export class Outbox {
  /** `changed(timeline, confirmed)` is called whenever a pending entry changes. */
  constructor(api, changed) {
    this.api = api;
    this.changed = changed;
    this.jobs = [];
    this.sending = false;
  }

  /** Shows `body` at once in `timeline` and queues its post. */
  send(timeline, body, author) {
    const entry = timeline.addPending(body, author);
    this.jobs.push({ timeline, entry, sequence: null });
    this.drain();
  }

  /** Queues a failed entry again, under a new sequence number. */
  retry(timeline, entry) {
    entry.state = 'sending';
    entry.error = null;
    this.jobs.push({ timeline, entry, sequence: null });
    this.changed(timeline, false);
    this.drain();
  }

  discard(timeline, entry) {
    timeline.removePending(entry);
    this.changed(timeline, false);
  }

  async drain() {
    if (this.sending) return;
    this.sending = true;
    while (this.jobs.length) await this.post(this.jobs.shift());
    this.sending = false;
  }

  async post(job) {
    const { timeline, entry } = job;
    if (job.sequence === null) job.sequence = this.api.nextSequence();
    for (let attempt = 1; ; attempt += 1) {
      try {
        const message = await this.api.post(timeline.place, entry.body, job.sequence);
        timeline.confirmPending(entry, message);
        this.changed(timeline, true);
        return;
      } catch (error) {
        if (!(error instanceof ApiError) || !error.retryable || attempt >= SEND_ATTEMPTS) {
          entry.state = 'failed';
          entry.error = error.message;
          this.changed(timeline, false);
          return;
        }
        const waitMs = Math.max(error.retryAfterSeconds * 1000, 500 * 2 ** (attempt - 1));
        await new Promise((resolve) => { setTimeout(resolve, waitMs); });
      }
    }
  }
}
