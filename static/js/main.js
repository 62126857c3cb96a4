// Entry point: shows the log-in form or the chat, and wires the views to
// one Chat (state + socket) for the signed-in user.

import * as api from './api.js';
import { Chat } from './chat.js';
import { byId } from './dom.js';
import { disable as disablePush, mountPush, pushEnabled } from './push.js';
import { mountAuth } from './views/auth.js';
import { mountNotifications } from './views/notifications.js';
import { mountRoom } from './views/room.js';
import { mountRooms } from './views/rooms.js';

const STATUS_TEXT = {
  offline: 'offline',
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
};

const chat = new Chat();
mountAuth();
mountRooms(chat);
mountRoom(chat);
mountNotifications(chat);

const status = byId('conn-status');
chat.addEventListener('status', ({ detail }) => {
  status.dataset.state = detail.status;
  status.textContent = STATUS_TEXT[detail.status] ?? detail.status;
});

// A browser logged out of an account gets no more of its pushes.
const forgetPush = async () => {
  if (signedInAs && pushEnabled(signedInAs)) await disablePush(signedInAs).catch(() => {});
};

byId('logout').addEventListener('click', async () => {
  await forgetPush();
  api.logout();
});
byId('logout-all').addEventListener('click', async () => {
  // Every device, this one included: worth a second thought.
  if (!window.confirm('Log out on every device, this one included?')) return;
  await forgetPush();
  api.logoutAll().catch(() => {});
});

function show(session) {
  const signedIn = Boolean(session);
  byId('auth-view').hidden = signedIn;
  byId('chat-view').hidden = !signedIn;
  byId('me').hidden = !signedIn;
  if (signedIn) {
    byId('my-name').textContent = session.user.username;
    byId('my-id').value = session.user.id;
    chat.start();
    mountPush({
      toggle: byId('push-toggle'),
      status: byId('push-status'),
      user: session.user.id,
      onOpenRoom: (room) => chat.open(room),
    });
    // A push notification's click opens the app at its room: /#room=<id>.
    const room = new URLSearchParams(location.hash.slice(1)).get('room');
    if (room) {
      history.replaceState(null, '', location.pathname);
      chat.open(room);
    }
  } else {
    chat.stop();
  }
}

let signedInAs = null;
api.onSessionChange((session) => {
  // Token refreshes change the session too; only log in/out re-renders.
  const user = session?.user?.id ?? null;
  if (user !== signedInAs) {
    signedInAs = user;
    show(session);
  }
});
signedInAs = api.currentSession()?.user?.id ?? null;
show(api.currentSession());
