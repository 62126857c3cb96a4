// The room list with unread badges, the total in the tab's title, and the
// new-room form.

import * as api from '../api.js';
import { byId, el } from '../dom.js';

const TITLE = document.title;

export function mountRooms(chat) {
  const list = byId('room-list');
  const form = byId('create-room-form');

  const render = () => {
    list.replaceChildren(
      ...chat.rooms.map((room) => {
        const button = el(
          'button',
          { type: 'button', 'aria-current': room.id === chat.current ? 'true' : null },
          room.name,
          el('small', {}, ` ${room.kind}`),
          el('span', { class: 'badge', dataset: { testid: 'room-unread', count: 0 }, hidden: true }),
        );
        button.addEventListener('click', () => chat.open(room.id));
        return el('li', { dataset: { testid: 'room-item', roomId: room.id } }, button);
      }),
    );
    renderUnread();
  };

  // In place: a count that moves does not rebuild the list (nor lose focus).
  const renderUnread = () => {
    for (const item of list.children) {
      const badge = item.querySelector('[data-testid="room-unread"]');
      const n = chat.unreadCount(item.dataset.roomId);
      if (badge.dataset.count === String(n) && badge.hidden === (n === 0)) continue;
      badge.dataset.count = String(n);
      badge.hidden = n === 0;
      badge.replaceChildren(String(n), el('span', { class: 'sr-only' }, ' unread'));
    }
    const total = chat.unreadTotal();
    document.title = total > 0 ? `(${total}) ${TITLE}` : TITLE;
  };

  chat.addEventListener('rooms', render);
  chat.addEventListener('room', render);
  chat.addEventListener('unread', renderUnread);

  byId('rooms-refresh').addEventListener('click', () => chat.loadRooms());

  // A direct conversation by name: a `direct` room with the two of you.
  const direct = byId('direct-form');
  const directStatus = byId('direct-status');
  direct.addEventListener('submit', async (event) => {
    event.preventDefault();
    directStatus.textContent = '';
    try {
      const user = await api.findUser(String(new FormData(direct).get('user')).trim());
      await chat.startDirect(user.id, user.username);
      direct.reset();
    } catch (e) {
      directStatus.textContent = e.message;
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await chat.createRoom(String(data.get('name')).trim(), String(data.get('kind')));
      form.reset();
    } catch (e) {
      byId('room-error').textContent = e.message;
    }
  });
}
