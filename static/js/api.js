// REST client for /api/v1. The token pair is the SDK's `Session`
// (static/sdk/parley.js, served at /sdk/parley.js): it refreshes shortly
// before the access token expires and once more when a request is answered
// 401, one refresh at a time, as refresh tokens rotate. This module keeps
// the pair in sessionStorage (one tab, one session) and tells the page when
// the user logs in or out.

import { Session } from '../sdk/parley.js';

const STORAGE_KEY = 'parley.session';

/** The SDK session of the signed-in user, or null. */
let session = null;
const listeners = new Set();

/** A session for this page's origin, kept in sessionStorage. */
function open(tokens) {
  const opened = new Session({
    baseUrl: '',
    fetch: (...args) => fetch(...args),
    tokens,
    onTokens: (next) => {
      if (session !== opened) return;
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
      notify();
    },
    // A refresh was refused (spent or revoked): log in again.
    onUnauthorized: () => session === opened && end(),
  });
  return opened;
}

function restore() {
  try {
    const tokens = JSON.parse(sessionStorage.getItem(STORAGE_KEY));
    return tokens?.accessToken && tokens.user ? open(tokens) : null;
  } catch {
    return null;
  }
}
session = restore();

function end() {
  session?.close();
  session = null;
  sessionStorage.removeItem(STORAGE_KEY);
  notify();
}

function notify() {
  const current = currentSession();
  for (const fn of listeners) fn(current);
}

/** The signed-in user's session (`{user}`) or null. */
export const currentSession = () => (session?.user ? { user: session.user } : null);

/** Calls `fn(session)` whenever the user logs in or out (null), and on refreshes. */
export function onSessionChange(fn) {
  listeners.add(fn);
}

/** An authenticated JSON request; retried once with a new token on 401. */
export function request(method, path, body) {
  if (!session) return Promise.reject(new Error('not logged in'));
  return session.request(method, path, body);
}

/** A usable access token (refreshed first when about to expire). */
export function freshToken() {
  if (!session) return Promise.reject(new Error('not logged in'));
  return session.token();
}

async function authenticate(path, body) {
  const opened = open(null);
  await opened.signIn(path, body);
  session?.close();
  session = opened;
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(opened.tokens));
  notify();
  return currentSession();
}

export const register = (username, email, password) =>
  authenticate('/auth/register', { username, email, password });

export const login = (username, password) => authenticate('/auth/login', { username, password });

export async function logout() {
  const current = session;
  end();
  await current?.logout();
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
    end();
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
  const me = session?.user;
  if (me?.id === id) return Promise.resolve(me.username);
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
