// REST client for /api/v1. Owns the token pair: kept in sessionStorage (one
// tab, one session), refreshed shortly before the access token expires and
// once more when a request is answered 401. Refresh tokens rotate and a
// reused one revokes the whole family, so only one refresh is ever in flight.

const STORAGE_KEY = 'parley.session';
// Refresh this long before expiry (a quarter of the lifetime for short-lived
// tokens), so that a token is never sent stale.
const REFRESH_MARGIN_MS = 60_000;
const margin = (s) => Math.min(REFRESH_MARGIN_MS, (s.ttlMs ?? Infinity) / 4);

/** A failed request: `status` and the problem+json body, when there is one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.problem = problem;
  }
}

let session = load();
let refreshing = null;
let refreshTimer = null;
const listeners = new Set();

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY)) ?? null;
  } catch {
    return null;
  }
}

function save(next) {
  session = next;
  if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(STORAGE_KEY);
  scheduleRefresh();
  for (const fn of listeners) fn(next);
}

function fromTokens(body) {
  return {
    user: body.user,
    access: body.access_token,
    refresh: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
    ttlMs: body.expires_in * 1000,
  };
}

const RETRY_REFRESH_MS = 5_000;

function scheduleRefresh(wait) {
  clearTimeout(refreshTimer);
  if (!session) return;
  wait ??= Math.max(0, session.expiresAt - margin(session) - Date.now());
  // A failed refresh (server away) is tried again; success reschedules via save().
  refreshTimer = setTimeout(() => freshToken().catch(() => scheduleRefresh(RETRY_REFRESH_MS)), wait);
}
scheduleRefresh();

/** The signed-in user's session ({user, access, ...}) or null. */
export const currentSession = () => session;

/** Calls `fn(session)` whenever the user logs in or out (null). */
export function onSessionChange(fn) {
  listeners.add(fn);
}

async function send(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  return { res, data };
}

/**
 * A usable access token. `stale` is a token the server just refused: it is
 * replaced unless another caller already did so.
 */
export async function freshToken({ stale } = {}) {
  if (!session) throw new ApiError(401, { detail: 'not logged in' });
  const expiring = session.expiresAt - Date.now() < margin(session);
  if (!expiring && (stale === undefined || stale !== session.access)) return session.access;
  refreshing ??= refresh().finally(() => {
    refreshing = null;
  });
  await refreshing;
  return session.access;
}

async function refresh() {
  const { res, data } = await send('POST', '/auth/refresh', { refresh_token: session.refresh });
  if (!res.ok) {
    // Spent or revoked: the user must log in again. Other failures may pass.
    if (res.status === 400 || res.status === 401) save(null);
    throw new ApiError(res.status, data);
  }
  save(fromTokens(data));
}

/** An authenticated JSON request; retried once with a new token on 401. */
export async function request(method, path, body) {
  let token = await freshToken();
  let { res, data } = await send(method, path, body, token);
  if (res.status === 401) {
    token = await freshToken({ stale: token });
    ({ res, data } = await send(method, path, body, token));
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

async function authenticate(path, body) {
  const { res, data } = await send('POST', path, body);
  if (!res.ok) throw new ApiError(res.status, data);
  save(fromTokens(data));
  return session;
}

export const register = (username, email, password) =>
  authenticate('/auth/register', { username, email, password });

export const login = (username, password) => authenticate('/auth/login', { username, password });

export async function logout() {
  const current = session;
  save(null);
  if (!current) return;
  await send('POST', '/auth/logout', { refresh_token: current.refresh }, current.access).catch(
    () => {},
  );
}

/**
 * Ends every session of this account (contract 1.1, 6.2): every device's
 * refresh token and access token stop working, and open sockets close.
 * This tab logs out too, whether or not the server answered.
 */
export async function logoutAll() {
  try {
    await request('POST', '/auth/logout-all');
  } finally {
    save(null);
  }
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

/** Web Push (docs/push.md). */
export const vapidPublicKey = () => request('GET', '/push/vapid-public-key');
export const subscribePush = (subscription) => request('POST', '/push/subscriptions', subscription);
export const unsubscribePush = (id) => request('DELETE', `/push/subscriptions/${id}`);

/** A single-use ticket for `GET /ws?ticket=`, valid for 30 s. */
export const wsTicket = async () => (await request('POST', '/ws-ticket')).ticket;
export const listRooms = () => request('GET', '/rooms?limit=200');
export const createRoom = (name, kind) => request('POST', '/rooms', { name, kind });
export const getRoom = (id) => request('GET', `/rooms/${id}`);
/** People whose username or display name starts with `q` (2+ characters). */
export const searchUsers = (q, limit = 10) => request('GET', `/users${query({ q, limit })}`);
export const addMember = (room, userId) =>
  request('POST', `/rooms/${room}/members`, { user_id: userId });
/** Bans and mutes (owner or admin); `until` is an ISO instant or absent. */
export const banUser = (room, userId, reason) =>
  request('POST', `/rooms/${room}/bans`, { user_id: userId, reason });
export const muteUser = (room, userId) => request('POST', `/rooms/${room}/mutes`, { user_id: userId });
export const unmuteUser = (room, userId) => request('DELETE', `/rooms/${room}/mutes/${userId}`);
export const mutes = (room) => request('GET', `/rooms/${room}/mutes?limit=200`);
export const blockUser = (userId) => request('POST', `/users/${userId}/block`);
export const unblockUser = (userId) => request('DELETE', `/users/${userId}/block`);
export const blocks = () => request('GET', '/users/me/blocks?limit=200');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `s` is a user (or room) id rather than a name. */
export const isId = (s) => UUID.test(s);

/** The user someone typed: `{id, username}` from an id or an exact username. */
export async function findUser(typed) {
  if (isId(typed)) return { id: typed, username: typed };
  const name = typed.replace(/^@/, '').toLowerCase();
  const page = await searchUsers(name, 50);
  const user = page.items.find((u) => u.username.toLowerCase() === name);
  if (!user) throw new Error(`nobody is called ${typed}`);
  return user;
}

/** A page of history: `{before_seq}` pages back, `{after_seq}` forward. */
export const history = (room, params) =>
  request('GET', `/rooms/${room}/messages${query({ limit: 50, ...params })}`);
export const postMessage = (room, body, clientId) =>
  request('POST', `/rooms/${room}/messages`, { body, client_id: clientId });
/** Message events (1.1); the WebSocket frames are used while connected. */
export const editMessage = (room, seq, body, clientId) =>
  request('PATCH', `/rooms/${room}/messages/${seq}`, { body, client_id: clientId });
export const deleteMessage = (room, seq) => request('DELETE', `/rooms/${room}/messages/${seq}`);
export const react = (room, seq, emoji, on) =>
  request(on ? 'PUT' : 'DELETE', `/rooms/${room}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`);
/** Moves the read cursor forward; answers `{room, seq}` with the cursor after the call. */
export const markRoomRead = (room, seq) => request('POST', `/rooms/${room}/read`, { seq });
/** `{total, items: [{room, unread, read_seq, last_seq}]}`, rooms with unread > 0 only. */
export const roomsUnread = () => request('GET', '/rooms/unread');
export const notifications = () => request('GET', '/notifications?limit=30');
export const unreadCount = () => request('GET', '/notifications/unread-count');
export const markRead = (id) => request('POST', `/notifications/${id}/read`);
export const markAllRead = () => request('POST', '/notifications/read-all');

const names = new Map();
/** A user's name, fetched once per id. */
export function userName(id) {
  if (session?.user?.id === id) return Promise.resolve(session.user.username);
  if (!names.has(id)) {
    const lookup = request('GET', `/users/${id}`).then(
      (u) => u.username,
      () => {
        names.delete(id); // try again next time
        return id.slice(0, 8);
      },
    );
    names.set(id, lookup);
  }
  return names.get(id);
}
