// The HTTP side of the client: one function per API call, errors as ApiError.
//
// Posts carry a client session (Dschat-Client-Id and Dschat-Sequence headers, see
// docs/api.md "Exactly-once retries"): a post whose answer was lost is retried with the same
// sequence number and is applied at most once. The outbox in app.js sends one post at a
// time, so sequence numbers reach the server in the order they were taken.

/** An error answer (application/problem+json) or a failed connection (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || 'request failed');
    this.status = status;
    this.type = (problem.type || '').replace('urn:dschat:problem:', '');
    this.retryAfterSeconds = problem.retry_after_seconds || 0;
  }

  /** Whether retrying the same request later may succeed (nothing was applied). */
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status === 503;
  }
}

/** A random 64-bit client id, as a decimal string. */
function randomClientId() {
  const words = new BigUint64Array(1);
  do crypto.getRandomValues(words); while (words[0] === 0n);
  return words[0].toString();
}

const enc = encodeURIComponent;

export class Api {
  constructor(base, token) {
    this.base = base;
    this.token = token;
    this.clientId = randomClientId();
    this.lastSequence = 0;
  }

  /** A fresh sequence number for one command (retries of it reuse it). */
  nextSequence() {
    this.lastSequence += 1;
    return this.lastSequence;
  }

  async call(method, path, body, sequence) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (sequence !== undefined) {
      headers['Dschat-Client-Id'] = this.clientId;
      headers['Dschat-Sequence'] = String(sequence);
    }
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, { title: 'Network error', detail: 'the server cannot be reached' });
    }
    const text = await response.text().catch(() => '');
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!response.ok) throw new ApiError(response.status, json || { title: response.statusText });
    return json;
  }

  register(nickname, password) { return this.call('POST', '/api/v1/accounts', { nickname, password }); }
  login(nickname, password) { return this.call('POST', '/api/v1/sessions', { nickname, password }); }
  logout() { return this.call('DELETE', '/api/v1/sessions/current'); }
  me() { return this.call('GET', '/api/v1/me'); }
  rooms() { return this.call('GET', '/api/v1/rooms'); }
  createRoom(name, topic) { return this.call('POST', '/api/v1/rooms', { name, topic }); }
  join(room) { return this.call('PUT', `/api/v1/rooms/${enc(room)}/members/me`); }
  leave(room) { return this.call('DELETE', `/api/v1/rooms/${enc(room)}/members/me`); }
  setTopic(room, topic) { return this.call('PUT', `/api/v1/rooms/${enc(room)}/topic`, { topic }); }
  markRead(room, messageId) {
    return this.call('PUT', `/api/v1/rooms/${enc(room)}/read-marker`, { message_id: messageId });
  }
  /** This node's view of its cluster (409 not-clustered on a node that runs alone). */
  cluster() { return this.call('GET', '/api/v1/cluster'); }
  presence(room) { return this.call('GET', `/api/v1/rooms/${enc(room)}/presence`); }
  conversations() { return this.call('GET', '/api/v1/direct'); }
  search(q) { return this.call('GET', `/api/v1/search?q=${enc(q)}&limit=30`); }

  /** The path of a place's messages: {kind: 'room'|'direct', name}. */
  messagesPath(place) {
    return place.kind === 'room'
      ? `/api/v1/rooms/${enc(place.name)}/messages`
      : `/api/v1/direct/${enc(place.name)}/messages`;
  }

  /** One history page, oldest first; `page` is {before}, {after} or {} (newest). */
  history(place, page, limit) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (page.before) query.set('before', page.before);
    if (page.after) query.set('after', page.after);
    return this.call('GET', `${this.messagesPath(place)}?${query}`);
  }

  post(place, body, sequence) { return this.call('POST', this.messagesPath(place), { body }, sequence); }
  edit(place, id, body) { return this.call('PATCH', `${this.messagesPath(place)}/${id}`, { body }); }
  remove(place, id) { return this.call('DELETE', `${this.messagesPath(place)}/${id}`); }
}
