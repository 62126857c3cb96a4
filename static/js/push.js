// Web Push on this browser (docs/push.md): the "Push notifications" switch
// of the notifications panel. On: ask for permission, register the service
// worker (/sw.js), subscribe with the server's VAPID key and post the
// subscription; off: delete it on the server and unsubscribe. The
// subscription's id is kept per user in localStorage, so the switch
// survives reloads; at each load a subscription made under another key
// (the server's was rotated) is replaced.

import * as api from './api.js';

const storageKey = (user) => `parley.push.${user}`;
let openRoom = () => {};

/** Whether this browser can do Web Push at all. */
export const supported = () =>
  'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

const saved = (user) => {
  try {
    return JSON.parse(localStorage.getItem(storageKey(user)));
  } catch {
    return null;
  }
};

/** Whether push is on in this browser for `user`. */
export const pushEnabled = (user) => Boolean(saved(user));

/** base64url → bytes, for `applicationServerKey`. */
function bytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

const sameKey = (subscription, key) => {
  const held = subscription.options?.applicationServerKey;
  if (!held) return false;
  const a = new Uint8Array(held);
  return a.length === key.length && a.every((b, i) => b === key[i]);
};

async function registration() {
  await navigator.serviceWorker.register('/sw.js');
  return navigator.serviceWorker.ready;
}

/** Subscribes this browser for `user` and tells the server. */
export async function enable(user) {
  if ((await Notification.requestPermission()) !== 'granted') {
    throw new Error('notifications are blocked for this site in the browser');
  }
  const key = bytes((await api.vapidPublicKey()).key);
  const { pushManager } = await registration();
  let subscription = await pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const { id } = await api.subscribePush(subscription.toJSON());
  localStorage.setItem(storageKey(user), JSON.stringify({ id }));
}

/** Ends `user`'s subscription on the server and in this browser. */
export async function disable(user) {
  const mine = saved(user);
  localStorage.removeItem(storageKey(user));
  if (mine?.id) {
    await api.unsubscribePush(mine.id).catch((e) => {
      if (e.status !== 404) throw e; // already gone is what we wanted
    });
  }
  const existing = await navigator.serviceWorker.getRegistration();
  const subscription = await existing?.pushManager.getSubscription();
  await subscription?.unsubscribe();
}

/** Wires the switch and its status line for the signed-in `user`. */
export function mountPush({ toggle, status, user, onOpenRoom }) {
  if (!supported()) {
    toggle.disabled = true;
    status.textContent = 'This browser cannot receive push notifications.';
    return;
  }
  if (!mountPush.listening) {
    mountPush.listening = true;
    navigator.serviceWorker.addEventListener('message', ({ data }) => {
      if (data?.type === 'open-room' && data.room) openRoom(data.room);
    });
  }
  openRoom = onOpenRoom;
  toggle.checked = Boolean(saved(user));
  const run = async (work, done) => {
    toggle.disabled = true;
    status.textContent = '';
    try {
      await work(user);
      status.textContent = done;
    } catch (e) {
      toggle.checked = Boolean(saved(user));
      status.textContent = `Push notifications: ${e.message}`;
    } finally {
      toggle.disabled = false;
    }
  };
  toggle.onchange = () =>
    toggle.checked
      ? run(enable, 'Push notifications are on for this browser.')
      : run(disable, 'Push notifications are off.');
  // Keeps an existing subscription in step with the server's key.
  if (toggle.checked && Notification.permission === 'granted') run(enable, '');
}
