// What the browser tests share: a real `dschat serve` on a loopback port, headless
// Chromium (Debian's /usr/bin/chromium) driven by playwright-core, and small helpers.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repositoryRoot = path.resolve(here, '..', '..');
export const artifactsDir = path.join(repositoryRoot, 'test-artifacts', 'browser');

/** The dschat binary: $DSCHAT_BIN, or the debug build. */
function dschatBinary() {
  return process.env.DSCHAT_BIN || path.join(repositoryRoot, 'target', 'debug', 'dschat');
}

/** A running `dschat serve`. `restart()` stops it and starts it again on the same port and data. */
export class Server {
  static async start() {
    const server = new Server(mkdtempSync(path.join(tmpdir(), 'dschat-browser-')));
    await server.spawn('127.0.0.1:0');
    return server;
  }

  constructor(dataDir) {
    this.dataDir = dataDir;
    this.process = null;
    this.base = null;
  }

  spawn(address) {
    const child = spawn(dschatBinary(), [
      'serve', '--http', address, '--data-dir', this.dataDir, '--no-rate-limits',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    let output = '';
    let started = false;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dschat serve did not start:\n${output}`)), 30000);
      child.stderr.on('data', (chunk) => { output += chunk; });
      child.stdout.on('data', (chunk) => {
        output += chunk;
        const match = /Web:\s+(http:\/\/[^/\s]+)\//.exec(output);
        if (match && !started) {
          started = true;
          clearTimeout(timer);
          this.base = match[1];
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (!started) reject(new Error(`dschat serve exited with ${code}:\n${output}`));
      });
    });
  }

  /** Stops the server (SIGTERM: a clean stop; open feeds drop). */
  async stop() {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
  }

  async restart() {
    await this.stop();
    await this.spawn(this.base.replace('http://', ''));
  }

  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** One API call; returns the parsed JSON (null when empty) or throws with the problem. */
  async call(method, pathname, token, body) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(this.base + pathname, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** Every message of a room, oldest first, paging through the whole history. */
  async fullHistory(room, token) {
    const all = [];
    let after = null;
    for (;;) {
      const query = after ? `?after=${after}&limit=500` : '?after=0&limit=500';
      const page = await this.call('GET', `/api/v1/rooms/${room}/messages${query}`, token);
      all.push(...page.messages);
      if (page.messages.length < 500) return all;
      after = page.messages[page.messages.length - 1].id;
    }
  }
}

/**
 * A `dschat lab` cluster on loopback: `nodes` are the nodes' HTTP base URLs (node i + 1 at
 * index i), `controls` the lab's fault controls.
 */
export class Lab {
  static async start(count) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dschat-browser-lab-'));
    const child = spawn(dschatBinary(), [
      'lab', '--port', '0', '--fresh', '--nodes', String(count), '--data-dir', dataDir,
    ], { stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    const lab = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dschat lab did not start:\n${output}`)), 60000);
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (!output.includes('Stop with')) return;
        clearTimeout(timer);
        const nodes = [...output.matchAll(/node \d+: (http:\/\/\S+)/g)].map((match) => match[1]);
        const controls = /controls: (http:\/\/[^/\s]+)/.exec(output)[1];
        resolve(new Lab(child, dataDir, nodes, controls));
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`dschat lab exited with ${code}:\n${output}`)); });
    });
    return lab;
  }

  constructor(child, dataDir, nodes, controls) {
    this.child = child;
    this.dataDir = dataDir;
    this.nodes = nodes;
    this.controls = controls;
  }

  /** kill -9 of node `id` (1-based). */
  async crash(id) {
    const response = await fetch(`${this.controls}/lab/api/nodes/${id}/crash`, { method: 'POST' });
    if (!response.ok) throw new Error(`crash ${id}: ${response.status} ${await response.text()}`);
  }

  async dispose() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGINT');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 15000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** One API call to `base`; returns the parsed JSON, retrying while the cluster elects a leader. */
export async function callNode(base, method, pathname, token, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(base + pathname, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    }).catch(() => null);
    const text = response ? await response.text() : '';
    if (response && response.ok) return text ? JSON.parse(text) : null;
    const retryable = !response || response.status === 503 || response.status === 429;
    if (!retryable || attempt >= 40) throw new Error(`${method} ${pathname}: ${response?.status} ${text}`);
    await new Promise((resolve) => { setTimeout(resolve, 250); });
  }
}

/** Headless Chromium with a fresh profile (playwright makes one per launch). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Polls `probe` until `accept(value)` holds; fails with the last value after `timeoutMs`. */
export async function eventually(probe, accept, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (accept(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last).slice(0, 2000)}`);
    }
    await new Promise((resolve) => { setTimeout(resolve, 100); });
  }
}

/** The confirmed messages a page shows, in display order. */
export function shownMessages(page) {
  return page.$$eval('#message-list li.message[data-id]', (items) => items.map((item) => ({
    id: item.dataset.id,
    author: item.dataset.author,
    body: item.classList.contains('deleted') ? '(deleted)' : item.querySelector('.body')?.textContent ?? '',
  })));
}

/** Server messages in the same shape as shownMessages. */
export function asShown(messages) {
  return messages.map((message) => ({
    id: message.id,
    author: message.author,
    body: message.deleted ? '(deleted)' : message.body,
  }));
}

export async function screenshot(page, name) {
  mkdirSync(artifactsDir, { recursive: true });
  await page.waitForFunction(() => document.getAnimations().every((animation) => animation.playState !== 'running'));
  await page.screenshot({ path: path.join(artifactsDir, `${name}.png`) });
}
