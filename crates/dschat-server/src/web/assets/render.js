// Drawing into the page. A timeline is drawn keyed by message id: an element is rebuilt
// only when what it shows changed, and a message being edited is left alone, so live events
// do not steal focus or scroll the reader away. Also the room lists, members, search hits.

/** Where the reader is in a scrolled box. */
export function scrollState(box) {
  const fromBottom = box.scrollHeight - box.scrollTop;
  return { fromBottom, atBottom: fromBottom - box.clientHeight < 48 };
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, className, label, action) {
  const node = element('button', className, text);
  node.type = 'button';
  if (label) node.setAttribute('aria-label', label);
  node.addEventListener('click', action);
  return node;
}

function meta(author, time, edited) {
  const line = element('div', 'meta');
  line.append(element('span', 'author', author));
  if (time) {
    const stamp = element('time', '', formatTime(time));
    stamp.dateTime = time;
    stamp.title = new Date(time).toLocaleString();
    line.append(' ', stamp);
  }
  if (edited) line.append(' ', element('span', 'edited', '(edited)'));
  return line;
}

function fillMessage(node, message, own, actions) {
  node.replaceChildren(meta(message.author, message.time, Boolean(message.edited) && !message.deleted));
  if (message.deleted) {
    node.append(element('p', 'body tombstone', 'This message was deleted.'));
    return;
  }
  node.append(element('p', 'body', message.body));
  if (!own) return;
  const tools = element('span', 'actions');
  tools.append(
    button('Edit', 'edit', 'Edit this message', () => startEditing(node, message, actions)),
    button('Delete', 'delete', 'Delete this message', () => actions.remove(message.id)),
  );
  node.querySelector('.meta').append(tools);
}

function startEditing(node, message, actions) {
  node.dataset.editing = 'true';
  const form = element('form', 'edit-form');
  const label = element('label', 'visually-hidden', 'Edit the message');
  const input = element('textarea', '');
  input.id = `edit-${message.id}`;
  label.htmlFor = input.id;
  input.value = message.body;
  input.rows = 2;
  const stop = () => {
    delete node.dataset.editing;
    node.dataset.sig = '';
    actions.refresh();
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    delete node.dataset.editing;
    node.dataset.sig = '';
    if (input.value.trim() && input.value !== message.body) actions.edit(message.id, input.value);
    else actions.refresh();
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') { event.preventDefault(); stop(); }
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  form.append(label, input, element('div', 'actions'));
  form.lastChild.append(
    Object.assign(element('button', '', 'Save'), { type: 'submit' }),
    button('Cancel', 'secondary', '', stop),
  );
  node.querySelector('.body').replaceWith(form);
  node.querySelector('.meta .actions')?.remove();
  input.focus();
}

function fillPending(node, entry, actions) {
  node.replaceChildren(meta(entry.author, null, false), element('p', 'body', entry.body));
  if (entry.state === 'failed') {
    const status = element('div', 'actions');
    status.append(
      element('span', 'status', `Not sent: ${entry.error || 'failed'}`),
      button('Retry', 'retry', 'Retry sending this message', () => actions.retry(entry)),
      button('Discard', 'secondary', 'Discard this message', () => actions.discard(entry)),
    );
    node.append(status);
  } else {
    node.append(element('span', 'status', 'Sending…'));
  }
}

/** Draws `timeline` (messages, then pending sends) into `list`. */
export function renderMessages(list, timeline, me, actions) {
  const refresh = () => renderMessages(list, timeline, me, actions);
  const withRefresh = { ...actions, refresh };
  const old = new Map();
  for (const child of list.children) old.set(child.dataset.key, child);
  const wanted = [];
  for (const message of timeline.messages) {
    const key = `m${message.id}`;
    const own = message.author === me;
    const sig = JSON.stringify([message.body, message.edited || '', message.deleted, own]);
    let node = old.get(key);
    if (!node) {
      node = element('li', 'message');
      node.dataset.key = key;
      node.dataset.id = message.id;
      node.dataset.author = message.author;
      node.tabIndex = -1;
    }
    node.classList.toggle('own', own);
    node.classList.toggle('deleted', Boolean(message.deleted));
    if (node.dataset.sig !== sig && !node.dataset.editing) {
      fillMessage(node, message, own, withRefresh);
      node.dataset.sig = sig;
    }
    wanted.push(node);
  }
  for (const entry of timeline.pending) {
    const key = entry.localId;
    const sig = JSON.stringify([entry.state, entry.error || '']);
    let node = old.get(key);
    if (!node) {
      node = element('li', 'message own pending');
      node.dataset.key = key;
      node.dataset.localId = entry.localId;
    }
    node.dataset.state = entry.state;
    if (node.dataset.sig !== sig) {
      fillPending(node, entry, withRefresh);
      node.dataset.sig = sig;
    }
    wanted.push(node);
  }
  const keep = new Set(wanted);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  wanted.forEach((node, index) => {
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
}

/** Draws search hits; `open(place, id)` jumps to one. */
export function renderSearchResults(list, hits, me, open) {
  if (!hits.length) {
    list.replaceChildren(element('li', 'empty', 'Nothing found.'));
    return;
  }
  list.replaceChildren(...hits.map((hit) => {
    const message = hit.message;
    let place;
    let where;
    if (message.room) {
      place = { kind: 'room', name: message.room };
      where = `#${message.room}`;
    } else {
      const [a, b] = message.direct;
      const other = a.toLowerCase() === me.toLowerCase() ? b : a;
      place = { kind: 'direct', name: other };
      where = `@${other}`;
    }
    const item = element('li');
    const link = button('', 'search-hit', '', () => open(place, message.id));
    link.dataset.id = message.id;
    link.append(
      element('span', 'where', `${where} · ${message.author} · ${formatTime(message.time)}`),
      element('span', 'snippet', message.body),
    );
    item.append(link);
    return item;
  }));
}

function placeButton(place, label, unread, current, key, open) {
  const item = element('li');
  const node = button('', 'place', '', () => open(place));
  node.dataset.place = key;
  if (current) node.setAttribute('aria-current', 'page');
  node.append(element('span', '', label));
  if (unread > 0) {
    const badge = element('span', 'unread', unread >= 10000 ? '9999+' : String(unread));
    badge.setAttribute('aria-label', `${unread} unread`);
    node.append(badge);
  }
  item.append(node);
  return item;
}

/**
 * Draws the sidebar: joined rooms with unread counts, private conversations (`direct`:
 * {place, unread}), and other rooms with a Join button.
 */
export function renderPlaceLists(lists, { rooms, direct, activeKey, keyOf, open, join }) {
  const joined = rooms.filter((room) => room.joined).map((room) => {
    const place = { kind: 'room', name: room.name };
    const current = keyOf(place) === activeKey;
    return placeButton(place, `#${room.name}`, current ? 0 : room.unread, current, keyOf(place), open);
  });
  lists.joined.replaceChildren(...(joined.length ? joined : [element('li', 'empty', 'None yet: join or create one.')]));
  lists.direct.replaceChildren(...direct.map(({ place, unread }) => {
    const current = keyOf(place) === activeKey;
    return placeButton(place, `@${place.name}`, current ? 0 : unread, current, keyOf(place), open);
  }));
  const others = rooms.filter((room) => !room.joined).map((room) => {
    const item = element('li', 'other-room');
    const label = element('span', '', `#${room.name}`);
    label.title = room.topic;
    item.append(label, button('Join', '', `Join #${room.name}`, () => join(room.name)));
    return item;
  });
  lists.others.replaceChildren(...(others.length ? others : [element('li', 'empty', 'No other rooms.')]));
}

/** Draws a room's members, each marked online or offline (on this node). */
export function renderMembers(list, members) {
  list.replaceChildren(...members.map((member) => {
    const item = element('li', '', member.nickname);
    item.dataset.online = String(member.online);
    item.append(element('span', 'visually-hidden', member.online ? ' (online)' : ' (offline)'));
    return item;
  }));
}
