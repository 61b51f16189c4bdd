// The web client's Timeline (crates/dschat-server/src/web/assets/timeline.js) on its own,
// in Node: the rules that keep a conversation free of gaps and duplicates, and the
// reconciliation of predicted sends, checked case by case without a browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timeline, MAX_BUFFERED_EVENTS } from '../../crates/dschat-server/src/web/assets/timeline.js';

const message = (id, body = `m${id}`, author = 'bob') => ({ id: String(id), author, body, deleted: false });
const posted = (id, body, author) => ({ kind: 'posted', id: String(id), message: message(id, body, author) });
const ids = (timeline) => timeline.messages.map((m) => m.id);

test('ids order messages numerically, beyond 2^53', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  const big = 2n ** 60n;
  timeline.addPage([message(big + 2n), message(big), message(9), message(big + 1n)], 'newest', false);
  assert.deepEqual(ids(timeline), ['9', String(big), String(big + 1n), String(big + 2n)]);
});

test('a message seen by a page, the feed and twice more is held once', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([message(1), message(2)], 'newest', false);
  assert.ok(timeline.applyEvent(posted(2)));
  assert.ok(timeline.applyEvent(posted(3)));
  timeline.addPage([message(2), message(3)], 'after', false);
  assert.deepEqual(ids(timeline), ['1', '2', '3']);
});

test('events for a timeline never loaded are left to its first page', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  assert.equal(timeline.applyEvent(posted(5)), false);
  assert.deepEqual(timeline.buffer, []);
});

test('events that arrive while a page is in flight wait, then join it without a gap', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.loading += 1;
  timeline.applyEvent(posted(11));
  timeline.applyEvent({ kind: 'edited', id: '13', target: '10', body: 'ten, edited', time: 't' });
  timeline.applyEvent(posted(12));
  assert.deepEqual(ids(timeline), []);
  timeline.loading -= 1;
  timeline.addPage([message(9), message(10), message(11)], 'newest', true);
  assert.ok(timeline.flushBuffer());
  assert.deepEqual(ids(timeline), ['9', '10', '11', '12']);
  assert.equal(timeline.byId.get('10').body, 'ten, edited');
});

test('a live event older than the held stretch is left for scrolling up', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([message(50), message(51)], 'newest', true);
  assert.equal(timeline.applyEvent(posted(20)), false);
  assert.deepEqual(ids(timeline), ['50', '51']);
  timeline.addPage([message(49)], 'before', false);
  assert.ok(timeline.atOldest);
});

test('after a jump into the past, live events wait until the stretch reaches the present', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([message(5)], 'before', true);
  timeline.addPage([message(6), message(7)], 'after', true);
  assert.equal(timeline.live, false);
  timeline.applyEvent(posted(30));
  assert.deepEqual(ids(timeline), ['5', '6', '7']);
  timeline.addPage([message(8), message(29)], 'after', false);
  assert.ok(timeline.flushBuffer());
  assert.deepEqual(ids(timeline), ['5', '6', '7', '8', '29', '30']);
});

test('a buffer that overflows asks for the newest page again', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([message(1)], 'before', true);
  for (let n = 0; n <= MAX_BUFFERED_EVENTS; n += 1) timeline.applyEvent(posted(100 + n));
  timeline.addPage([], 'after', false);
  assert.equal(timeline.flushBuffer(), false);
});

test('a predicted send is reconciled once, whichever of feed and answer comes first', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([message(1)], 'newest', false);
  const first = timeline.addPending('same words', 'alice');
  const second = timeline.addPending('same words', 'alice');
  assert.equal(timeline.pending.length, 2);
  // The feed brings the first post before its answer: it claims the first entry only.
  timeline.applyEvent(posted(2, 'same words', 'alice'));
  assert.deepEqual(timeline.pending, [second]);
  timeline.confirmPending(first, message(2, 'same words', 'alice'));
  // The second post's answer comes first; its feed event then changes nothing.
  timeline.confirmPending(second, message(3, 'same words', 'alice'));
  timeline.applyEvent(posted(3, 'same words', 'alice'));
  assert.deepEqual(timeline.pending, []);
  assert.deepEqual(ids(timeline), ['1', '2', '3']);
});

test('a failed send stays until it is retried or discarded', () => {
  const timeline = new Timeline({ kind: 'room', name: 'general' });
  timeline.addPage([], 'newest', false);
  const entry = timeline.addPending('hello', 'alice');
  entry.state = 'failed';
  timeline.applyEvent(posted(4, 'hello', 'alice'));
  assert.deepEqual(timeline.pending, [entry], 'a failed entry is not claimed by a look-alike');
  timeline.removePending(entry);
  assert.deepEqual(timeline.pending, []);
});
