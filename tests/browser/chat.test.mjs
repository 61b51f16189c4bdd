// Two people chat in one room through the web client, in headless Chromium, against a
// real `dschat serve`. Every check compares exact message sequences: what each page shows
// must be the server's history, each message once, in the server's order — after
// concurrent sending, a reload, a server restart under the pages' feet, edits, deletes,
// scrolling back through history, and a jump to a search result.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, launchBrowser, eventually, shownMessages, asShown, screenshot,
} from './harness.mjs';

const PASSWORD = 'correct horse battery';
let server;
let browser;
let alice;
let bob;

before(async () => {
  server = await Server.start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.dispose();
});

async function openPage(options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on('pageerror', (error) => { page.errors.push(String(error)); });
  page.on('dialog', (dialog) => dialog.accept());
  page.errors = [];
  await page.goto(`${server.base}/`);
  return page;
}

async function register(page, nickname) {
  await page.fill('#login-nickname', nickname);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-form button[value="register"]');
  await page.waitForSelector('#chat-view:not([hidden])');
  await page.waitForSelector('#connection[data-state="live"]');
}

async function send(page, text) {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
}

const token = (page) => page.evaluate(() => localStorage.getItem('dschat.token'));

/**
 * Waits until `page` shows exactly the server's history of `room`, nothing pending. With
 * `tail`, the page may show only the newest part (it has not scrolled all the way up), but
 * that part must be exactly the end of the history: contiguous, in order, each once.
 */
async function showsHistory(page, room, what, { tail = false } = {}) {
  const viewer = await token(page);
  let expected = [];
  await eventually(async () => {
    const pending = await page.$$eval('#message-list li.pending', (items) => items.length);
    const shown = await shownMessages(page);
    const history = asShown(await server.fullHistory(room, viewer));
    expected = tail ? history.slice(-shown.length) : history;
    return { shown, pending };
  }, ({ shown, pending }) => pending === 0 && shown.length > 0
    && JSON.stringify(shown) === JSON.stringify(expected), what);
  const shown = await shownMessages(page);
  assert.deepEqual(shown, expected, what);
  assert.equal(new Set(shown.map((message) => message.id)).size, shown.length, `${what}: an id shown twice`);
  return shown;
}

async function openSidebar(page) {
  if (await page.isVisible('#menu-toggle')) {
    if ((await page.getAttribute('#menu-toggle', 'aria-expanded')) !== 'true') await page.click('#menu-toggle');
  }
}

test('the page is served from the binary with its content types', async () => {
  const page = await fetch(`${server.base}/`, { headers: { Accept: 'text/html' } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const script = await fetch(`${server.base}/web/app.js`);
  assert.match(script.headers.get('content-type'), /^text\/javascript/);
  const again = await fetch(`${server.base}/web/app.js`, { headers: { 'If-None-Match': script.headers.get('etag') } });
  assert.equal(again.status, 304);
  const index = await fetch(`${server.base}/`);
  assert.equal((await index.json()).name, 'dschat');
});

test('two users register, meet in a room and see each other live', async () => {
  alice = await openPage({ viewport: { width: 1280, height: 800 } });
  await screenshot(alice, 'login-desktop');
  await register(alice, 'alice');
  await alice.fill('#new-room-name', 'general');
  await alice.fill('#new-room-topic', 'anything goes');
  await alice.click('#create-room-form button[type="submit"]');
  await alice.waitForSelector('#room-title:text("#general")');

  bob = await openPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await register(bob, 'bob');
  await openSidebar(bob);
  await screenshot(bob, 'phone-sidebar');
  await bob.click('button[aria-label="Join #general"]');
  await bob.waitForSelector('#room-title:text("#general")');
  assert.equal(await bob.textContent('#room-topic'), 'anything goes');

  await eventually(() => alice.textContent('#member-list'), (text) => text.includes('bob (online)'),
    'alice to see bob online', 20000);
});

test('messages sent at once by both appear for each, once, in the same order', async () => {
  const lines = (who) => Array.from({ length: 12 }, (_, n) => `${who} says ${n + 1}`);
  await Promise.all([
    (async () => { for (const line of lines('alice')) await send(alice, line); })(),
    (async () => { for (const line of lines('bob')) await send(bob, line); })(),
  ]);
  const seenByAlice = await showsHistory(alice, 'general', 'alice sees every message');
  const seenByBob = await showsHistory(bob, 'general', 'bob sees every message');
  assert.deepEqual(seenByAlice, seenByBob);
  assert.equal(seenByAlice.length, 24);
  for (const who of ['alice', 'bob']) {
    assert.deepEqual(seenByAlice.filter((m) => m.author === who).map((m) => m.body), lines(who),
      `${who}'s messages in the order sent`);
  }
  await screenshot(alice, 'chat-desktop');
  await screenshot(bob, 'chat-phone');
});

test('a reload resumes with no gap and no duplicate', async () => {
  const reloading = bob.reload();
  for (let n = 1; n <= 5; n += 1) await send(alice, `during bob's reload ${n}`);
  await reloading;
  await bob.waitForSelector('#connection[data-state="live"]');
  for (let n = 1; n <= 3; n += 1) await send(alice, `after bob's reload ${n}`);
  const seenByBob = await showsHistory(bob, 'general', 'bob after a reload');
  assert.deepEqual(seenByBob, await showsHistory(alice, 'general', 'alice'));
});

test('a dropped connection shows, a failed send can be retried, and the feed resumes', async () => {
  await server.stop();
  await alice.waitForSelector('#connection[data-state="reconnecting"]');
  await send(alice, 'written while the server was down');
  await alice.waitForSelector('#message-list li.pending[data-state="sending"]');
  await alice.waitForSelector('#message-list li.pending[data-state="failed"]', { timeout: 20000 });
  await screenshot(alice, 'failed-send');
  await server.restart();
  const carol = await server.call('POST', '/api/v1/accounts', null, { nickname: 'carol', password: PASSWORD });
  await server.call('PUT', '/api/v1/rooms/general/members/me', carol.token);
  for (let n = 1; n <= 4; n += 1) {
    await server.call('POST', '/api/v1/rooms/general/messages', carol.token, { body: `carol while they reconnect ${n}` });
  }
  await alice.waitForSelector('#connection[data-state="live"]', { timeout: 20000 });
  await bob.waitForSelector('#connection[data-state="live"]', { timeout: 20000 });
  await alice.click('#message-list li.pending button.retry');
  const seenByAlice = await showsHistory(alice, 'general', 'alice after the restart');
  assert.deepEqual(await showsHistory(bob, 'general', 'bob after the restart'), seenByAlice);
  assert.equal(seenByAlice.filter((m) => m.body === 'written while the server was down').length, 1);
});

test('edits and deletes reach the other user', async () => {
  const mine = alice.locator('#message-list li.message.own[data-id]', { hasText: 'alice says 3' });
  await mine.locator('button.edit').click();
  await alice.fill('#message-list li.message.own textarea', 'alice says three (edited)');
  await alice.press('#message-list li.message.own textarea', 'Enter');
  const doomed = alice.locator('#message-list li.message.own[data-id]', { hasText: 'alice says 4' });
  await doomed.locator('button.delete').click();
  const seen = await showsHistory(bob, 'general', 'bob sees the edit and the delete');
  assert.ok(seen.some((m) => m.body === 'alice says three (edited)'));
  assert.ok(seen.some((m) => m.body === '(deleted)'));
  assert.deepEqual(await showsHistory(alice, 'general', 'alice'), seen);
});

test('scrolling up loads the whole history, in order, without gaps', async () => {
  const viewer = await token(alice);
  for (let n = 1; n <= 130; n += 1) {
    await server.call('POST', '/api/v1/rooms/general/messages', viewer, { body: `backlog ${n}` });
  }
  await alice.reload();
  await alice.waitForSelector('#connection[data-state="live"]');
  await eventually(async () => {
    await alice.$eval('#messages', (box) => { box.scrollTop = 0; box.dispatchEvent(new Event('scroll')); });
    return alice.textContent('#history-status');
  }, (status) => status.includes('beginning'), 'the beginning of the history', 20000);
  const shown = await showsHistory(alice, 'general', 'alice scrolled to the top');
  assert.ok(shown.length > 150, `only ${shown.length} messages`);
});

test('search jumps to the message', async () => {
  await send(bob, 'the walrus is a distinctive pinniped');
  await showsHistory(bob, 'general', 'bob sees his post');
  await eventually(async () => {
    await bob.fill('#search-input', 'walrus');
    await bob.press('#search-input', 'Enter');
    await bob.waitForSelector('#search-results:not([hidden])');
    return bob.$$eval('#search-list .search-hit', (hits) => hits.length);
  }, (count) => count === 1, 'a search hit (the index commits every 250 ms)');
  await bob.click('#search-list .search-hit');
  const target = bob.locator('#message-list li.message.highlight');
  assert.equal(await target.locator('.body').textContent(), 'the walrus is a distinctive pinniped');
  assert.ok(await target.isVisible());
});

test('private messages arrive and show as unread', async () => {
  await openSidebar(alice);
  await alice.fill('#direct-nickname', 'bob');
  await alice.press('#direct-nickname', 'Enter');
  await alice.waitForSelector('#room-title:text("@bob")');
  await send(alice, 'psst, bob');
  await openSidebar(bob);
  await bob.waitForSelector('#direct-list button[data-place="direct:alice"] .unread');
  await bob.click('#direct-list button[data-place="direct:alice"]');
  await eventually(() => shownMessages(bob), (shown) => shown.length === 1 && shown[0].body === 'psst, bob',
    'bob sees the private message');
  await screenshot(bob, 'private-phone');
});

test('unread counts, the topic, and leaving a room', async () => {
  await openSidebar(alice);
  await alice.click('#room-list button[data-place="room:general"]');
  await send(alice, 'unread one');
  await send(alice, 'unread two');
  await openSidebar(bob);
  await eventually(() => bob.textContent('#room-list button[data-place="room:general"]'),
    (text) => text === '#general2', 'bob to see 2 unread in #general');
  await screenshot(bob, 'phone-unread');
  await alice.click('#edit-topic');
  await alice.fill('#topic-input', 'now about walruses');
  await alice.press('#topic-input', 'Enter');
  await alice.waitForSelector('#room-topic:text("now about walruses")');
  await bob.click('#room-list button[data-place="room:general"]');
  await bob.waitForSelector('#room-topic:text("now about walruses")');
  const tail = await showsHistory(bob, 'general', 'bob back in #general', { tail: true });
  assert.deepEqual(tail.slice(-2).map((m) => m.body), ['unread one', 'unread two']);
  await openSidebar(bob);
  await eventually(() => bob.textContent('#room-list button[data-place="room:general"]'),
    (text) => text === '#general', 'the unread count to clear once read');
  await bob.click('#room-list button[data-place="room:general"]');
  await bob.click('#leave-room');
  await openSidebar(bob);
  await bob.waitForSelector('button[aria-label="Join #general"]');
  await eventually(() => alice.textContent('#member-list'), (text) => !text.includes('bob'),
    'bob to leave the member list', 20000);
});

test('keyboard only: the skip link leads to the message box, Enter sends', async () => {
  await alice.click('#room-list button[data-place="room:general"]');
  await alice.reload();
  await alice.waitForSelector('#connection[data-state="live"]');
  await alice.waitForSelector('#room-title:text("#general")');
  await alice.keyboard.press('Tab');
  assert.equal(await alice.evaluate(() => document.activeElement.className), 'skip-link');
  await alice.keyboard.press('Enter');
  assert.equal(await alice.evaluate(() => document.activeElement.id), 'composer-input');
  await alice.keyboard.type('typed without a mouse');
  await alice.keyboard.press('Enter');
  const shown = await showsHistory(alice, 'general', 'the typed message', { tail: true });
  assert.equal(shown[shown.length - 1].body, 'typed without a mouse');
});

test('every control is labelled and the pages raised no errors', async () => {
  for (const page of [alice, bob]) {
    const unlabelled = await page.$$eval('button, input, textarea', (controls) => controls
      .filter((control) => {
        if (control.type === 'hidden') return false;
        const byLabel = control.labels && [...control.labels].some((label) => label.textContent.trim());
        return !(byLabel || control.getAttribute('aria-label') || (control.tagName === 'BUTTON' && control.textContent.trim()));
      })
      .map((control) => control.outerHTML.slice(0, 120)));
    assert.deepEqual(unlabelled, []);
  }
  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);
});

test('a token revoked elsewhere sends the page back to the login form', async () => {
  await server.call('DELETE', '/api/v1/sessions/current', await token(bob));
  // The server checks the token at every ping (20 s) and closes the feed with code 4001.
  await bob.waitForSelector('#login-view:not([hidden])', { timeout: 30000 });
  assert.equal(await token(bob), null);
  assert.equal(await bob.isVisible('#chat-view'), false);
});
