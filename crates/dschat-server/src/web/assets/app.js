// The dschat web client: the page's state and its rendering. It uses only the public API
// (api.js), the live feed (feed.js) and the gap-free timeline model (timeline.js).
//
// Start-up order matters for "no gap, no duplicate": the feed is opened first; a timeline
// is loaded by HTTP while live events for it wait in its buffer (timeline.js), and a feed
// that could not resume from a known id triggers a catch-up fetch of every loaded timeline
// (onSubscribed). The feed's cursor is kept in sessionStorage, so a reload resumes from it.

import { Api, ApiError } from './api.js';
import { Outbox } from './outbox.js';
import { Feed, idAfter } from './feed.js';
import { Timeline } from './timeline.js';
import {
  renderMembers, renderMessages, renderPlaceLists, renderSearchResults, scrollState,
} from './render.js';

const PAGE_SIZE = 50;
const CATCH_UP_PAGE_SIZE = 500;
const AROUND_PAGE_SIZE = 25;
const PRESENCE_REFRESH_MS = 15000;

const $ = (id) => document.getElementById(id);

const app = {
  api: null,
  feed: null,
  me: null,
  rooms: [],
  conversations: [],
  directUnread: new Map(),
  timelines: new Map(),
  active: null,
  outbox: null,
  timers: {},
};

function placeKey(place) { return `${place.kind}:${place.name.toLowerCase()}`; }

function timelineFor(place) {
  const key = placeKey(place);
  if (!app.timelines.has(key)) app.timelines.set(key, new Timeline(place));
  return app.timelines.get(key);
}

/** The nodes the feed may use: this one, any given as ?nodes=…, then the cluster's peers. */
function knownNodes() {
  const nodes = [window.location.origin];
  const fromUrl = new URLSearchParams(window.location.search).get('nodes');
  if (fromUrl) localStorage.setItem('dschat.nodes', fromUrl);
  const extra = (localStorage.getItem('dschat.nodes') || '').split(',').map((node) => node.trim());
  for (const node of extra) if (/^https?:\/\//.test(node) && !nodes.includes(node)) nodes.push(node);
  return nodes;
}

/** Adds the HTTP addresses of this node's cluster peers to the feed's nodes, if clustered. */
async function discoverNodes() {
  try {
    const status = await app.api.cluster();
    for (const peer of status.peers || []) {
      const node = peer.http_addr ? `http://${peer.http_addr}` : null;
      if (node && !app.feed.nodes.includes(node)) app.feed.nodes.push(node);
    }
  } catch { /* a node that runs alone has no peers to learn */ }
}

function showError(element, error) {
  $(element).textContent = error ? (error.message || String(error)) : '';
}

// ---- log in ----

async function boot() {
  wireStaticControls();
  const token = localStorage.getItem('dschat.token');
  if (!token) { showLogin(); return; }
  app.api = new Api('', token);
  try {
    app.me = await app.api.me();
  } catch (error) {
    if (error.status === 401) { localStorage.removeItem('dschat.token'); showLogin(); return; }
    showLogin();
    showError('login-error', error);
    return;
  }
  startChat(token);
}

function showLogin() {
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('logout').hidden = true;
  $('menu-toggle').hidden = true;
  $('whoami').textContent = '';
  $('connection').hidden = true;
  $('login-nickname').focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : 'login';
  const nickname = $('login-nickname').value.trim();
  const password = $('login-password').value;
  showError('login-error', null);
  const api = new Api('', null);
  try {
    const session = action === 'register'
      ? await api.register(nickname, password)
      : await api.login(nickname, password);
    localStorage.setItem('dschat.token', session.token);
    sessionStorage.removeItem('dschat.cursor');
    app.api = new Api('', session.token);
    app.me = session.user;
    $('login-password').value = '';
    startChat(session.token);
  } catch (error) {
    showError('login-error', error);
  }
}

async function logout() {
  try { await app.api.logout(); } catch { /* the token is dropped here either way */ }
  endSession();
}

function endSession() {
  if (app.feed) app.feed.stop();
  clearInterval(app.timers.presence);
  localStorage.removeItem('dschat.token');
  sessionStorage.clear();
  window.location.reload();
}

// ---- the chat ----

function startChat(token) {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('logout').hidden = false;
  $('menu-toggle').hidden = false;
  $('whoami').textContent = app.me.nickname;
  $('connection').hidden = false;
  app.outbox = new Outbox(app.api, sendingChanged);
  app.feed = new Feed(knownNodes(), token, sessionStorage.getItem('dschat.cursor'), {
    onEvent,
    onEphemeral: () => {},
    onState: (state, detail) => {
      setConnection(state, detail);
      if (state === 'live') discoverNodes();
      // A feed refused at the upgrade (401) only looks like a lost connection: ask.
      if (state === 'reconnecting') {
        app.api.me().catch((error) => { if (error.status === 401) endSession(); });
      }
    },
    onSubscribed,
    onProblem: (problem) => showError('room-error', problem.detail || problem.title),
    onUnauthenticated: endSession,
  });
  refreshPlaces().then(() => {
    app.feed.start();
    const saved = sessionStorage.getItem('dschat.active');
    const [kind, ...rest] = saved ? saved.split(':') : [];
    const joined = app.rooms.filter((room) => room.joined);
    if (kind === 'room' && joined.some((room) => room.name === rest.join(':'))) openPlace({ kind, name: rest.join(':') }, false);
    else if (kind === 'direct') openPlace({ kind, name: rest.join(':') }, false);
    else if (joined.length) openPlace({ kind: 'room', name: joined[0].name }, false);
  });
  app.timers.presence = setInterval(refreshPresence, PRESENCE_REFRESH_MS);
}

function setConnection(state, detail) {
  const labels = {
    offline: 'Not connected',
    connecting: 'Connecting…',
    'catching-up': 'Catching up…',
    live: 'Live',
    reconnecting: 'Connection lost; reconnecting',
  };
  const element = $('connection');
  element.dataset.state = state;
  element.textContent = labels[state] || state;
  element.title = detail || '';
}

async function refreshPlaces() {
  try {
    const [rooms, conversations] = await Promise.all([app.api.rooms(), app.api.conversations()]);
    app.rooms = rooms;
    app.conversations = conversations;
    const joined = rooms.filter((room) => room.joined).map((room) => room.name).sort();
    if (JSON.stringify(joined) !== JSON.stringify(app.feed.rooms)) app.feed.follow(joined);
    renderPlaces();
  } catch (error) {
    showError('sidebar-error', error);
  }
}

function scheduleRefreshPlaces() {
  clearTimeout(app.timers.places);
  app.timers.places = setTimeout(refreshPlaces, 300);
}

function isActive(place) { return app.active && placeKey(app.active) === placeKey(place); }

function renderPlaces() {
  const partners = new Map();
  for (const conversation of app.conversations) partners.set(conversation.with.toLowerCase(), conversation.with);
  if (app.active && app.active.kind === 'direct') partners.set(app.active.name.toLowerCase(), app.active.name);
  const direct = [...partners.values()].map((name) => ({
    place: { kind: 'direct', name }, unread: app.directUnread.get(name.toLowerCase()) || 0,
  }));
  renderPlaceLists({ joined: $('room-list'), direct: $('direct-list'), others: $('other-rooms') }, {
    rooms: app.rooms,
    direct,
    activeKey: app.active ? placeKey(app.active) : null,
    keyOf: placeKey,
    open: (place) => openPlace(place, true),
    join: joinRoom,
  });
  renderRoomHeader();
}

function activeRoom() {
  if (!app.active || app.active.kind !== 'room') return null;
  return app.rooms.find((room) => room.name.toLowerCase() === app.active.name.toLowerCase()) || null;
}

function renderRoomHeader() {
  const place = app.active;
  const room = activeRoom();
  $('room-title').textContent = place ? (place.kind === 'room' ? `#${place.name}` : `@${place.name}`) : 'No room open';
  $('room-topic').textContent = room ? (room.topic || 'No topic') : (place ? `Private conversation with ${place.name}` : 'Pick a room from the room list, or create one.');
  $('edit-topic').hidden = !room;
  $('leave-room').hidden = !room;
  const enabled = Boolean(place);
  $('composer-input').disabled = !enabled;
  $('send').disabled = !enabled;
  $('composer-input').placeholder = place ? `Message ${$('room-title').textContent}` : 'Open a room to write';
  document.title = place ? `${$('room-title').textContent} · dschat` : 'dschat';
}

async function openPlace(place, byUser) {
  app.active = place;
  sessionStorage.setItem('dschat.active', `${place.kind}:${place.name}`);
  if (place.kind === 'direct') app.directUnread.delete(place.name.toLowerCase());
  document.body.classList.remove('sidebar-open');
  $('menu-toggle').setAttribute('aria-expanded', 'false');
  showError('room-error', null);
  renderPlaces();
  $('message-list').replaceChildren();
  const timeline = timelineFor(place);
  renderTimeline({ stickToBottom: true });
  if (!timeline.loaded && timeline.loading === 0) await loadNewest(timeline);
  refreshPresence();
  if (byUser) $('composer-input').focus();
}

// ---- history ----

async function fetchPage(timeline, page, limit) {
  timeline.loading += 1;
  try {
    const answer = await app.api.history(timeline.place, page, limit);
    return answer.messages;
  } finally {
    timeline.loading -= 1;
  }
}

async function loadNewest(timeline) {
  $('history-status').textContent = 'Loading…';
  try {
    const messages = await fetchPage(timeline, {}, PAGE_SIZE);
    timeline.addPage(messages, 'newest', messages.length === PAGE_SIZE);
    afterPageLoaded(timeline);
    if (isActive(timeline.place)) renderTimeline({ stickToBottom: true });
  } catch (error) {
    failedToLoad(timeline, error);
  }
}

function afterPageLoaded(timeline) {
  if (!timeline.flushBuffer()) {
    timeline.reset();
    loadNewest(timeline);
    return;
  }
  if (timeline.catchUpWanted && timeline.loading === 0) {
    timeline.catchUpWanted = false;
    catchUp(timeline);
  }
}

function failedToLoad(timeline, error) {
  if (!isActive(timeline.place)) return;
  $('history-status').textContent = '';
  showError('room-error', error);
  if (error instanceof ApiError && (error.type === 'unknown-user' || error.type === 'unknown-room')) {
    app.timelines.delete(placeKey(timeline.place));
    app.active = null;
    sessionStorage.removeItem('dschat.active');
    renderPlaces();
  }
}

async function loadOlder(timeline) {
  if (timeline.atOldest || !timeline.loaded || timeline.loadingOlder) return;
  timeline.loadingOlder = true;
  const before = timeline.oldestId;
  try {
    const messages = before ? await fetchPage(timeline, { before }, PAGE_SIZE) : [];
    timeline.addPage(messages, 'before', messages.length === PAGE_SIZE);
    afterPageLoaded(timeline);
    if (isActive(timeline.place)) renderTimeline({ keepPosition: true });
  } catch (error) {
    failedToLoad(timeline, error);
  } finally {
    timeline.loadingOlder = false;
  }
}

async function loadNewer(timeline, limit = PAGE_SIZE) {
  if (timeline.atNewest || !timeline.loaded || timeline.loadingNewer) return;
  timeline.loadingNewer = true;
  try {
    const after = timeline.newestId;
    const messages = after ? await fetchPage(timeline, { after }, limit) : [];
    timeline.addPage(messages, 'after', messages.length === limit);
    afterPageLoaded(timeline);
    if (isActive(timeline.place)) renderTimeline({});
  } catch (error) {
    failedToLoad(timeline, error);
  } finally {
    timeline.loadingNewer = false;
  }
}

/** After a feed that could not resume: fetch whatever each loaded timeline may have missed. */
async function catchUp(timeline) {
  if (timeline.loading > 0) { timeline.catchUpWanted = true; return; }
  if (!timeline.loaded) return;
  if (!timeline.newestId) { timeline.reset(); await loadNewest(timeline); return; }
  timeline.atNewest = false;
  while (!timeline.atNewest && timeline.loaded) {
    const before = timeline.newestId;
    await loadNewer(timeline, CATCH_UP_PAGE_SIZE);
    if (timeline.newestId === before && !timeline.atNewest) break;
  }
}

/** Shows the stretch of history around message `id` and puts it in view. */
async function jumpTo(place, id) {
  await openPlace(place, false);
  const timeline = timelineFor(place);
  timeline.reset();
  $('message-list').replaceChildren();
  $('history-status').textContent = 'Loading…';
  try {
    timeline.loading += 1;
    const [older, newer] = await Promise.all([
      app.api.history(place, { before: (BigInt(id) + 1n).toString() }, AROUND_PAGE_SIZE),
      app.api.history(place, { after: id }, AROUND_PAGE_SIZE),
    ]).finally(() => { timeline.loading -= 1; });
    timeline.addPage(older.messages, 'before', older.messages.length === AROUND_PAGE_SIZE);
    timeline.addPage(newer.messages, 'after', newer.messages.length === AROUND_PAGE_SIZE);
    afterPageLoaded(timeline);
    renderTimeline({});
    const element = $('message-list').querySelector(`[data-id="${id}"]`);
    if (element) {
      element.classList.add('highlight');
      element.scrollIntoView({ block: 'center' });
      element.focus();
    }
  } catch (error) {
    failedToLoad(timeline, error);
  }
}

// ---- the live feed ----

function eventPlace(frame) {
  if (frame.room) return { kind: 'room', name: frame.room };
  if (frame.direct) {
    const [a, b] = frame.direct;
    const other = a.toLowerCase() === app.me.nickname.toLowerCase() ? b : a;
    return { kind: 'direct', name: other };
  }
  return null;
}

function onEvent(frame) {
  sessionStorage.setItem('dschat.cursor', frame.id);
  const place = eventPlace(frame);
  if (!place) return;
  const key = placeKey(place);
  const timeline = app.timelines.get(key);
  const changed = timeline ? timeline.applyEvent(frame) : false;
  const active = isActive(place);
  if (changed && active) renderTimeline({});
  if (frame.kind === 'posted' && !active && frame.message.author !== app.me.nickname) {
    if (place.kind === 'room') scheduleRefreshPlaces();
    else {
      app.directUnread.set(key.slice('direct:'.length), (app.directUnread.get(key.slice('direct:'.length)) || 0) + 1);
      if (!app.conversations.some((c) => c.with.toLowerCase() === place.name.toLowerCase())) {
        app.conversations.push({ with: place.name });
      }
      renderPlaces();
    }
  }
  if (['topic_changed', 'joined', 'left'].includes(frame.kind)) {
    scheduleRefreshPlaces();
    if (active) refreshPresence();
  }
  if (active && frame.kind === 'posted') scheduleMarkRead();
}

function onSubscribed(resumed) {
  if (resumed) return;
  for (const timeline of app.timelines.values()) catchUp(timeline);
}

// ---- reading and presence ----

function scheduleMarkRead() {
  clearTimeout(app.timers.read);
  app.timers.read = setTimeout(markRead, 400);
}

async function markRead() {
  const room = activeRoom();
  if (!room || !room.joined || document.hidden || !scrollState($('messages')).atBottom) return;
  const timeline = timelineFor(app.active);
  const newest = timeline.atNewest ? timeline.newestId : null;
  if (!newest || !idAfter(newest, room.read_marker)) return;
  try {
    const updated = await app.api.markRead(room.name, newest);
    Object.assign(room, updated);
    renderPlaces();
  } catch { /* a read marker is a hint; the next one will do */ }
}

async function refreshPresence() {
  const room = activeRoom();
  if (!room) {
    $('member-list').replaceChildren();
    $('presence-line').textContent = '';
    $('presence').hidden = true;
    return;
  }
  $('presence').hidden = false;
  try {
    const answer = await app.api.presence(room.name);
    if (activeRoom() !== room) return;
    renderMembers($('member-list'), answer.members);
    const online = answer.members.filter((member) => member.online).map((member) => member.nickname);
    $('presence-line').textContent = `${online.length} of ${answer.members.length} online: ${online.join(', ') || 'nobody'}`;
  } catch { /* presence is informative only */ }
}

// ---- sending: prediction, then reconciliation (outbox.js) ----

function send(body) {
  if (!app.active || !body.trim()) return;
  app.outbox.send(timelineFor(app.active), body, app.me.nickname);
  renderTimeline({ stickToBottom: true });
}

function sendingChanged(timeline, confirmed) {
  if (!isActive(timeline.place)) return;
  renderTimeline({});
  if (confirmed) scheduleMarkRead();
}

async function editMessage(timeline, id, body) {
  try {
    const message = await app.api.edit(timeline.place, id, body);
    timeline.upsert(message);
  } catch (error) {
    showError('room-error', error);
  }
  renderTimeline({});
}

async function deleteMessage(timeline, id) {
  if (!window.confirm('Delete this message?')) return;
  try {
    await app.api.remove(timeline.place, id);
    timeline.applyNow({ kind: 'deleted', target: id });
  } catch (error) {
    showError('room-error', error);
  }
  renderTimeline({});
}

function renderTimeline(options) {
  if (!app.active) return;
  const timeline = timelineFor(app.active);
  const list = $('message-list');
  const box = $('messages');
  const before = scrollState(box);
  renderMessages(list, timeline, app.me.nickname, {
    edit: (id, body) => editMessage(timeline, id, body),
    remove: (id) => deleteMessage(timeline, id),
    retry: (entry) => app.outbox.retry(timeline, entry),
    discard: (entry) => app.outbox.discard(timeline, entry),
  });
  $('history-status').textContent = !timeline.loaded ? 'Loading…'
    : timeline.atOldest ? (timeline.messages.length ? 'The beginning of this conversation.' : 'No messages yet.')
      : 'Scroll up for older messages.';
  $('jump-latest').hidden = !timeline.loaded || timeline.atNewest;
  if (options.keepPosition) box.scrollTop = box.scrollHeight - before.fromBottom;
  else if (options.stickToBottom || before.atBottom) box.scrollTop = box.scrollHeight;
  if (timeline.loaded && !timeline.atOldest && box.scrollHeight <= box.clientHeight) loadOlder(timeline);
}

function onScroll() {
  if (!app.active) return;
  const timeline = timelineFor(app.active);
  const box = $('messages');
  if (box.scrollTop < 120) loadOlder(timeline);
  const state = scrollState(box);
  if (state.atBottom) {
    if (!timeline.atNewest) loadNewer(timeline);
    else scheduleMarkRead();
  }
}

// ---- rooms ----

async function roomAction(action) {
  showError('sidebar-error', null);
  showError('room-error', null);
  try {
    await action();
  } catch (error) {
    showError(app.active ? 'room-error' : 'sidebar-error', error);
  }
}

function joinRoom(name) {
  return roomAction(async () => {
    await app.api.join(name);
    await refreshPlaces();
    await openPlace({ kind: 'room', name }, true);
  });
}

function leaveRoom() {
  const room = activeRoom();
  if (!room) return;
  roomAction(async () => {
    await app.api.leave(room.name);
    app.timelines.delete(placeKey(app.active));
    app.active = null;
    sessionStorage.removeItem('dschat.active');
    $('message-list').replaceChildren();
    await refreshPlaces();
    refreshPresence();
  });
}

function createRoom(event) {
  event.preventDefault();
  const name = $('new-room-name').value.trim().replace(/^#/, '');
  const topic = $('new-room-topic').value.trim();
  roomAction(async () => {
    try {
      await app.api.createRoom(name, topic);
    } catch (error) {
      showError('sidebar-error', error);
      return;
    }
    $('new-room-name').value = '';
    $('new-room-topic').value = '';
    await refreshPlaces();
    await openPlace({ kind: 'room', name }, true);
  });
}

function setTopic(event) {
  event.preventDefault();
  const room = activeRoom();
  if (!room) return;
  roomAction(async () => {
    const updated = await app.api.setTopic(room.name, $('topic-input').value);
    Object.assign(room, updated);
    $('topic-form').hidden = true;
    renderPlaces();
    $('edit-topic').focus();
  });
}

// ---- search ----

async function search(event) {
  event.preventDefault();
  const query = $('search-input').value.trim();
  if (!query) return;
  try {
    const hits = await app.api.search(query);
    $('search-results').hidden = false;
    renderSearchResults($('search-list'), hits, app.me.nickname, (place, id) => {
      $('search-results').hidden = true;
      jumpTo(place, id);
    });
    const first = $('search-list').querySelector('button');
    if (first) first.focus();
  } catch (error) {
    showError('room-error', error);
  }
}

// ---- wiring ----

function wireStaticControls() {
  $('login-form').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', logout);
  $('menu-toggle').addEventListener('click', () => {
    const open = document.body.classList.toggle('sidebar-open');
    $('menu-toggle').setAttribute('aria-expanded', String(open));
  });
  $('create-room-form').addEventListener('submit', createRoom);
  $('direct-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('direct-nickname').value.trim().replace(/^@/, '');
    if (!name) return;
    $('direct-nickname').value = '';
    openPlace({ kind: 'direct', name }, true);
  });
  $('leave-room').addEventListener('click', leaveRoom);
  $('edit-topic').addEventListener('click', () => {
    const room = activeRoom();
    $('topic-form').hidden = false;
    $('topic-input').value = room ? room.topic : '';
    $('topic-input').focus();
  });
  $('topic-cancel').addEventListener('click', () => { $('topic-form').hidden = true; $('edit-topic').focus(); });
  $('topic-form').addEventListener('submit', setTopic);
  $('search-form').addEventListener('submit', search);
  $('search-close').addEventListener('click', () => { $('search-results').hidden = true; $('search-input').focus(); });
  $('messages').addEventListener('scroll', onScroll, { passive: true });
  $('jump-latest').addEventListener('click', () => {
    const timeline = timelineFor(app.active);
    timeline.reset();
    loadNewest(timeline);
    $('composer-input').focus();
  });
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('composer-input');
    send(input.value);
    input.value = '';
    input.focus();
  });
  $('composer-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
    if (event.key === 'ArrowUp' && !event.target.value) {
      const own = [...$('message-list').querySelectorAll('.message.own:not(.deleted) .edit')];
      if (own.length) { event.preventDefault(); own[own.length - 1].click(); }
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
      document.body.classList.remove('sidebar-open');
      $('menu-toggle').setAttribute('aria-expanded', 'false');
      $('menu-toggle').focus();
    }
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) scheduleMarkRead(); });
}

boot();
