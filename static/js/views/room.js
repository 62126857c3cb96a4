// The open room: messages in seq order (each seq rendered once, inserted
// where it belongs whatever order it arrives in), older pages, messages
// being sent, members with presence, typing, the composer.

import * as api from '../api.js';
import { byId, el, formatTime, userLabel } from '../dom.js';

export function mountRoom(chat) {
  const title = byId('room-title');
  const list = byId('message-list');
  const older = byId('load-older');
  const pending = byId('pending-list');
  const members = byId('member-list');
  const typing = byId('typing');
  const error = byId('room-error');
  const composer = byId('composer');
  const input = byId('composer-input');
  const memberForm = byId('add-member-form');
  const memberStatus = byId('member-status');

  const isCurrent = (room) => room === chat.current;
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40;

  const messageItem = (m) =>
    el(
      'li',
      { dataset: { testid: 'message', seq: m.seq, author: m.author } },
      el('span', { class: 'meta' }, userLabel(m.author, api.userName), ' ',
        el('time', { datetime: m.ts }, formatTime(m.ts))),
      el('span', { class: 'body', dataset: { testid: 'message-body' } }, m.body),
    );

  /** Puts a message in seq order; scans from the end, where new ones go. */
  const insert = (m) => {
    if (list.querySelector(`li[data-seq="${m.seq}"]`)) return;
    let before = list.lastElementChild;
    while (before && Number(before.dataset.seq) > m.seq) before = before.previousElementSibling;
    list.insertBefore(messageItem(m), before ? before.nextSibling : list.firstChild);
  };

  const renderOlder = () => {
    older.hidden = !chat.current || !chat.state(chat.current).timeline.hasOlder;
  };

  const renderPending = () => {
    const st = chat.state(chat.current);
    pending.replaceChildren(
      ...[...st.pending.values()].map((body) => el('li', { dataset: { testid: 'pending' } }, body)),
    );
  };

  const renderMembers = () => {
    const st = chat.state(chat.current);
    members.replaceChildren(
      ...st.members.map((m) => {
        const online = m.user_id === chat.me?.id ? chat.status === 'connected' : st.online.has(m.user_id);
        return el(
          'li',
          { dataset: { testid: 'member', user: m.user_id, state: online ? 'online' : 'offline' } },
          el('span', { class: 'dot', 'aria-hidden': 'true' }),
          userLabel(m.user_id, api.userName),
          el('span', { class: 'sr-only' }, online ? ' (online)' : ' (offline)'),
        );
      }),
    );
  };

  const renderTyping = () => {
    const who = chat.typists(chat.current);
    typing.replaceChildren();
    if (who.length === 0) return;
    who.forEach((id, i) => typing.append(i ? ', ' : '', userLabel(id, api.userName)));
    typing.append(who.length === 1 ? ' is typing…' : ' are typing…');
  };

  chat.addEventListener('room', ({ detail }) => {
    const room = chat.rooms.find((r) => r.id === detail.room);
    title.textContent = room ? room.name : 'Room';
    error.textContent = '';
    memberStatus.textContent = '';
    composer.hidden = false;
    memberForm.hidden = false;
    list.replaceChildren();
    chat.state(detail.room).timeline.sorted().forEach(insert);
    list.scrollTop = list.scrollHeight;
    renderOlder();
    renderPending();
    renderMembers();
    renderTyping();
    input.focus();
  });

  chat.addEventListener('messages', ({ detail }) => {
    if (!isCurrent(detail.room)) return;
    const stick = nearBottom();
    const firstBefore = list.firstElementChild;
    const offset = firstBefore ? firstBefore.offsetTop - list.scrollTop : 0;
    detail.messages.forEach(insert);
    if (stick) list.scrollTop = list.scrollHeight;
    else if (firstBefore) list.scrollTop = firstBefore.offsetTop - offset; // older pages above
    renderOlder();
  });
  chat.addEventListener('pending', ({ detail }) => isCurrent(detail.room) && renderPending());
  chat.addEventListener('members', ({ detail }) => isCurrent(detail.room) && renderMembers());
  chat.addEventListener('status', () => chat.current && renderMembers());
  chat.addEventListener('typing', ({ detail }) => isCurrent(detail.room) && renderTyping());
  chat.addEventListener('error', ({ detail }) => {
    if (!detail.room || isCurrent(detail.room)) error.textContent = detail.message;
  });

  older.addEventListener('click', async () => {
    older.disabled = true;
    try {
      await chat.loadOlder(chat.current);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      older.disabled = false;
      renderOlder();
    }
  });

  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body || !chat.current) return;
    chat.publish(chat.current, body);
    input.value = '';
  });
  input.addEventListener('input', () => chat.current && chat.typing(chat.current));

  memberForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const userId = byId('add-member-id').value.trim();
    memberStatus.textContent = '';
    try {
      await chat.addMember(chat.current, userId);
      memberStatus.textContent = 'Added.';
      memberForm.reset();
    } catch (e) {
      memberStatus.textContent = e.message;
    }
  });
}
