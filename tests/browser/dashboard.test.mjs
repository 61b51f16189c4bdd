// The lab dashboard on a three-node `dschat lab`: while alice keeps sending from the web
// client on a follower, the "Kill the leader" demo is clicked on the dashboard. The chat must
// go on (every message alice sent is in the cluster's history once, in her order, and her page
// shows exactly that history), the dashboard must show a new leader in a higher term, and its
// space-time diagram must draw the election's vote requests.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, callNode, launchBrowser, eventually, shownMessages, asShown, screenshot } from './harness.mjs';

const PASSWORD = 'correct horse battery';
let lab;
let browser;

before(async () => {
  lab = await Lab.start(3);
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (lab) await lab.dispose();
});

/** The dashboard's one-line summary: "3 nodes · leader 2 · term 1". */
async function summary(dashboard) {
  const text = await dashboard.textContent('#summary');
  const match = /leader (\d+|none) · term (\d+)/.exec(text || '');
  return match ? { leader: match[1] === 'none' ? null : Number(match[1]), term: Number(match[2]) } : null;
}

test('killing the leader from the dashboard while a user sends loses and doubles nothing', async () => {
  const dashboard = await (await browser.newContext({ viewport: { width: 1300, height: 1100 } })).newPage();
  dashboard.errors = [];
  dashboard.on('pageerror', (error) => { dashboard.errors.push(String(error)); });
  await dashboard.goto(`${lab.controls}/lab`);
  const before = await eventually(() => summary(dashboard), (s) => s && s.leader !== null, 'a leader on the dashboard');

  const follower = [1, 2, 3].find((id) => id !== before.leader);
  const base = lab.nodes[follower - 1];
  const alice = await callNode(base, 'POST', '/api/v1/accounts', null, { nickname: 'alice', password: PASSWORD });
  await callNode(base, 'POST', '/api/v1/rooms', alice.token, { name: 'general' });

  const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
  page.errors = [];
  page.on('pageerror', (error) => { page.errors.push(String(error)); });
  await page.goto(`${base}/`);
  await page.fill('#login-nickname', 'alice');
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-form button[value="login"]');
  await page.waitForSelector('#connection[data-state="live"]');
  await page.waitForSelector('#room-title:text("#general")');

  const lines = Array.from({ length: 10 }, (_, n) => `line ${n + 1}`);
  for (const [n, line] of lines.entries()) {
    if (n === 4) await dashboard.click('button[data-demo="kill"]');
    await page.fill('#composer-input', line);
    await page.press('#composer-input', 'Enter');
    await new Promise((resolve) => { setTimeout(resolve, 150); });
  }

  const afterKill = await eventually(() => summary(dashboard),
    (s) => s && s.leader !== null && s.leader !== before.leader && s.term > before.term,
    'a new leader in a higher term on the dashboard', 30000);
  assert.notEqual(afterKill.leader, before.leader);
  const story = await dashboard.textContent('#story');
  assert.match(story, /kill -9 of leader/);
  await eventually(() => dashboard.$$eval('#diagram line title', (titles) => titles.map((t) => t.textContent)),
    (kinds) => kinds.includes('vote request'), 'the election drawn in the diagram', 15000);

  let history = [];
  await eventually(async () => {
    history = asShown((await callNode(base, 'GET', '/api/v1/rooms/general/messages?limit=500', alice.token)).messages);
    return shownMessages(page);
  }, (shown) => history.length === lines.length && JSON.stringify(shown) === JSON.stringify(history),
  'the page to show exactly the history', 40000);
  assert.deepEqual(history.map((m) => m.body), lines, 'every line once, in order');

  await screenshot(dashboard, 'lab-dashboard');
  await screenshot(page, 'lab-chat-after-leader-kill');
  assert.deepEqual(dashboard.errors, []);
  assert.deepEqual(page.errors, []);
});
