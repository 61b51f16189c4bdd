// The web client on a three-node cluster (`dschat lab`): the node that served alice's page
// is killed with kill -9. Her live feed must move to another node it learned from
// /api/v1/cluster, resume from the last id it saw, and show every message bob sends
// through another node afterwards: exactly the cluster's history, once each, in order.

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

async function logIn(base, nickname) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (error) => { page.errors.push(String(error)); });
  await page.goto(`${base}/`);
  await page.fill('#login-nickname', nickname);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-form button[value="login"]');
  await page.waitForSelector('#connection[data-state="live"]');
  await page.waitForSelector('#room-title:text("#general")');
  return page;
}

test('when the node serving the page dies, the feed moves to another node and misses nothing', async () => {
  const [first, second] = lab.nodes;
  const alice = await callNode(first, 'POST', '/api/v1/accounts', null, { nickname: 'alice', password: PASSWORD });
  const bob = await callNode(second, 'POST', '/api/v1/accounts', null, { nickname: 'bob', password: PASSWORD });
  await callNode(first, 'POST', '/api/v1/rooms', alice.token, { name: 'general' });
  await callNode(second, 'PUT', '/api/v1/rooms/general/members/me', bob.token);
  await callNode(first, 'POST', '/api/v1/rooms/general/messages', alice.token, { body: 'before the crash' });

  const alicePage = await logIn(first, 'alice');
  const bobPage = await logIn(second, 'bob');
  // The page learns the other nodes once its feed is live.
  await new Promise((resolve) => { setTimeout(resolve, 500); });

  await lab.crash(1);
  await alicePage.waitForSelector('#connection[data-state="reconnecting"]');
  await alicePage.waitForSelector('#connection[data-state="live"]', { timeout: 30000 });
  const feedNode = await alicePage.getAttribute('#connection', 'title');
  assert.notEqual(feedNode, first, 'the feed moved off the dead node');

  const lines = Array.from({ length: 6 }, (_, n) => `bob after the crash ${n + 1}`);
  for (const line of lines) {
    await bobPage.fill('#composer-input', line);
    await bobPage.press('#composer-input', 'Enter');
  }
  let expected = [];
  await eventually(async () => {
    const history = await callNode(second, 'GET', '/api/v1/rooms/general/messages?limit=500', bob.token);
    expected = asShown(history.messages);
    return shownMessages(alicePage);
  }, (shown) => JSON.stringify(shown) === JSON.stringify(expected) && expected.length === 7,
  'alice to see exactly the cluster history', 40000);
  assert.deepEqual(expected.map((m) => m.body), ['before the crash', ...lines]);
  await screenshot(alicePage, 'failover-desktop');
  assert.deepEqual(alicePage.errors, []);
  assert.deepEqual(bobPage.errors, []);
});
