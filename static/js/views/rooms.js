// The room list and the new-room form.

import { byId, el } from '../dom.js';

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
        );
        button.addEventListener('click', () => chat.open(room.id));
        return el('li', { dataset: { testid: 'room-item', roomId: room.id } }, button);
      }),
    );
  };
  chat.addEventListener('rooms', render);
  chat.addEventListener('room', render);

  byId('rooms-refresh').addEventListener('click', () => chat.loadRooms());
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
