// Entry point: shows the log-in form or the chat, and wires the views to
// one Chat (state + socket) for the signed-in user.

import * as api from './api.js';
import { Chat } from './chat.js';
import { byId } from './dom.js';
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

byId('logout').addEventListener('click', () => api.logout());
byId('logout-all').addEventListener('click', () => {
  // Every device, this one included: worth a second thought.
  if (window.confirm('Log out on every device, this one included?')) api.logoutAll().catch(() => {});
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
