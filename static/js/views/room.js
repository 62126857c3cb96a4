// The open room: messages in seq order (each seq rendered once, inserted
// where it belongs whatever order it arrives in, and updated in place as
// edits, deletes and reactions fold in), older pages, messages being sent,
// members with presence, typing, the composer and the reply it is writing.
// Messages that scroll into view mark the room read.

import * as api from '../api.js';
import { byId, el, userLabel } from '../dom.js';
import { quoteText } from '../timeline.js';
import { messageItem, renderMessage } from './message.js';

// The newest message in view is sent as the read cursor once scrolling
// has settled for this long: one `read` frame per glance, not per pixel.
const READ_DEBOUNCE_MS = 300;

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
  const replyBanner = byId('reply-banner');
  const replyText = byId('reply-banner-text');
  const memberForm = byId('add-member-form');
  const memberStatus = byId('member-status');

  const isCurrent = (room) => room === chat.current;
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const timeline = () => chat.state(chat.current).timeline;
  const itemOf = (seq) => list.querySelector(`li[data-seq="${seq}"]`);

  // The per-message state of this view, for the open room.
  const ui = {
    editing: new Set(),
    confirming: new Set(),
    quote: (seq) => chat.quote(chat.current, seq),
    canEdit: (view) => chat.canEdit(view),
    canDelete: (view) => chat.canDelete(chat.current, view),
  };

  // Which messages are in view (at least half of one, or half the list
  // for a message taller than that).
  const visible = new Set();
  let readTimer = null;
  let shownRoom = null; // the room `visible` is about
  const inView = (entry) =>
    entry.isIntersecting &&
    (entry.intersectionRatio >= 0.5 || entry.intersectionRect.height >= (entry.rootBounds?.height ?? Infinity) / 2);
  const flushRead = () => {
    clearTimeout(readTimer);
    if (shownRoom && visible.size) chat.markRead(shownRoom, Math.max(...visible));
  };
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const seq = Number(entry.target.dataset.seq);
      if (inView(entry)) visible.add(seq);
      else visible.delete(seq);
    }
    clearTimeout(readTimer);
    readTimer = setTimeout(flushRead, READ_DEBOUNCE_MS);
  }, { root: list, threshold: [0, 0.5, 1] });

  const render = (li) => {
    const view = timeline().view(Number(li.dataset.seq));
    if (view) renderMessage(li, view, ui);
  };

  /** Puts a message in seq order (scanning from the end, where new ones go), or updates it. */
  const upsert = (seq) => {
    const existing = itemOf(seq);
    if (existing) {
      render(existing);
      return;
    }
    const view = timeline().view(seq);
    const li = messageItem(view);
    renderMessage(li, view, ui);
    let before = list.lastElementChild;
    while (before && Number(before.dataset.seq) > seq) before = before.previousElementSibling;
    list.insertBefore(li, before ? before.nextSibling : list.firstChild);
    observer.observe(li);
  };

  const renderOlder = () => {
    older.hidden = !chat.current || !chat.state(chat.current).timeline.hasOlder;
  };

  const renderPending = () => {
    const st = chat.state(chat.current);
    pending.replaceChildren(
      ...[...st.pending.values()].map((m) => el('li', { dataset: { testid: 'pending' } }, m.body)),
    );
  };

  const renderReply = () => {
    const seq = chat.state(chat.current).replyTo;
    replyBanner.hidden = seq === null;
    if (seq === null) return;
    const target = chat.quote(chat.current, seq);
    replyText.replaceChildren('Replying to ',
      ...(target && !target.deleted ? [userLabel(target.author, api.userName), ': '] : []),
      target === undefined ? '…' : quoteText(target));
  };

  /** A member's actions: block anyone else; owners and admins also mute and ban. */
  const memberActions = (st, m) => {
    if (m.user_id === chat.me?.id) return [];
    const button = (action, text, label) =>
      el('button', { type: 'button', dataset: { action, testid: `member-${action}` }, 'aria-label': label }, text);
    const name = api.userName(m.user_id) ?? 'this member';
    const blocked = chat.blocked.has(m.user_id);
    const actions = [button(blocked ? 'unblock' : 'block', blocked ? 'Unblock' : 'Block', `${blocked ? 'Unblock' : 'Block'} ${name}`)];
    if (chat.manages(st.id) && m.role !== 'owner') {
      const muted = st.muted.has(m.user_id);
      actions.push(
        button(muted ? 'unmute' : 'mute', muted ? 'Unmute' : 'Mute', `${muted ? 'Unmute' : 'Mute'} ${name}`),
        button('ban', 'Ban', `Ban ${name} from this room`),
      );
    }
    return actions;
  };

  const renderMembers = () => {
    const st = chat.state(chat.current);
    members.replaceChildren(
      ...st.members.map((m) => {
        const online = m.user_id === chat.me?.id ? chat.status === 'connected' : st.online.has(m.user_id);
        return el(
          'li',
          { dataset: { testid: 'member', user: m.user_id, state: online ? 'online' : 'offline', role: m.role } },
          el('span', { class: 'dot', 'aria-hidden': 'true' }),
          userLabel(m.user_id, api.userName),
          el('span', { class: 'sr-only' }, online ? ' (online)' : ' (offline)'),
          st.muted.has(m.user_id) ? el('small', { dataset: { testid: 'member-muted' } }, ' muted') : '',
          ...memberActions(st, m),
        );
      }),
    );
  };

  // Member actions, for the whole list.
  members.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action]');
    const li = button?.closest('li[data-user]');
    if (!li) return;
    const [room, user] = [chat.current, li.dataset.user];
    error.textContent = '';
    try {
      switch (button.dataset.action) {
        case 'block':
        case 'unblock':
          await chat.block(user, button.dataset.action === 'block');
          break;
        case 'mute':
        case 'unmute':
          await chat.mute(room, user, button.dataset.action === 'mute');
          break;
        case 'ban':
          await chat.ban(room, user);
          break;
        default:
      }
    } catch (e) {
      error.textContent = e.message;
    }
  });

  // The server ended this user's subscription (banned, removed): nothing
  // more can be written here.
  const renderAccess = () => {
    const st = chat.state(chat.current);
    composer.hidden = Boolean(st.shut);
    memberForm.hidden = Boolean(st.shut);
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
    renderAccess();
    flushRead(); // what was in view of the room left, if it was not sent yet
    observer.disconnect();
    visible.clear();
    shownRoom = detail.room;
    ui.editing.clear();
    ui.confirming.clear();
    list.replaceChildren();
    for (const view of timeline().sorted()) upsert(view.seq);
    list.scrollTop = list.scrollHeight;
    renderOlder();
    renderPending();
    renderReply();
    renderMembers();
    renderTyping();
    input.focus();
  });

  chat.addEventListener('messages', ({ detail }) => {
    if (!isCurrent(detail.room)) return;
    const stick = nearBottom();
    const firstBefore = list.firstElementChild;
    const offset = firstBefore ? firstBefore.offsetTop - list.scrollTop : 0;
    const shown = timeline();
    for (const seq of [...detail.seqs].sort((a, b) => a - b)) if (shown.shows(seq)) upsert(seq);
    // Replies show their target: a change to it (or its arrival) shows there too.
    for (const seq of detail.seqs) {
      for (const li of list.querySelectorAll(`li[data-reply-to="${seq}"]`)) render(li);
    }
    if (detail.seqs.includes(chat.state(chat.current).replyTo)) renderReply();
    if (stick) list.scrollTop = list.scrollHeight;
    else if (firstBefore) list.scrollTop = firstBefore.offsetTop - offset; // older pages above
    renderOlder();
  });
  chat.addEventListener('pending', ({ detail }) => isCurrent(detail.room) && renderPending());
  chat.addEventListener('access', ({ detail }) => isCurrent(detail.room) && renderAccess());
  chat.addEventListener('blocks', () => chat.current && renderMembers());
  chat.addEventListener('reply', ({ detail }) => isCurrent(detail.room) && renderReply());
  chat.addEventListener('members', ({ detail }) => {
    if (!isCurrent(detail.room)) return;
    renderMembers();
    // The caller's role decides who may delete what.
    for (const li of list.children) render(li);
  });
  chat.addEventListener('status', ({ detail }) => {
    if (chat.current) renderMembers();
    if (detail.status === 'connected') flushRead(); // a `read` lost with the connection
  });
  chat.addEventListener('visibility', flushRead);
  chat.addEventListener('typing', ({ detail }) => isCurrent(detail.room) && renderTyping());
  chat.addEventListener('error', ({ detail }) => {
    if (!detail.room || isCurrent(detail.room)) error.textContent = detail.message;
  });

  // Message actions, for the whole list.
  list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const li = button?.closest('li[data-seq]');
    if (!li || !list.contains(li)) return;
    const room = chat.current;
    const seq = Number(li.dataset.seq);
    switch (button.dataset.action) {
      case 'react':
        chat.react(room, seq, button.dataset.emoji, button.getAttribute('aria-pressed') !== 'true');
        return;
      case 'reply':
        chat.replyTo(room, seq);
        input.focus();
        return;
      case 'edit':
        ui.editing.add(seq);
        render(li);
        li.parts.input.focus();
        li.parts.input.select();
        return;
      case 'edit-cancel':
        ui.editing.delete(seq);
        break;
      case 'delete':
        ui.confirming.add(seq);
        break;
      case 'delete-confirm':
        ui.confirming.delete(seq);
        chat.remove(room, seq);
        break;
      case 'delete-cancel':
        ui.confirming.delete(seq);
        break;
      default:
        return;
    }
    render(li);
  });
  list.addEventListener('submit', (event) => {
    const li = event.target.closest('li[data-seq]');
    if (!li) return;
    event.preventDefault();
    const seq = Number(li.dataset.seq);
    const view = timeline().view(seq);
    const body = li.parts.input.value.trim();
    // The edited body comes back as an `edit` event; an unchanged or empty
    // one is no edit.
    if (view && body && body !== view.body) chat.edit(chat.current, seq, body);
    ui.editing.delete(seq);
    render(li);
  });
  list.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const li = event.target.closest('li[data-seq]');
    if (!li || !ui.editing.delete(Number(li.dataset.seq))) return;
    render(li);
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
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && chat.current) chat.replyTo(chat.current, null);
  });
  byId('reply-cancel').addEventListener('click', () => {
    chat.replyTo(chat.current, null);
    input.focus();
  });

  // Type a name: matching people are offered as you type (GET /users?q=).
  const memberInput = byId('add-member-id');
  const found = document.getElementById('people-found');
  let lookup = 0;
  memberInput.addEventListener('input', async () => {
    const q = memberInput.value.trim();
    const mine = ++lookup;
    if (q.length < 2 || api.isId(q)) return found.replaceChildren();
    try {
      const page = await api.searchUsers(q);
      if (mine !== lookup) return; // a later keystroke answered first
      found.replaceChildren(...page.items.map((u) => {
        const option = document.createElement('option');
        option.value = u.username;
        option.label = u.display_name ? `${u.display_name} (@${u.username})` : `@${u.username}`;
        return option;
      }));
    } catch {
      // Suggestions are a convenience; submitting still resolves the name.
    }
  });

  memberForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    memberStatus.textContent = '';
    try {
      const user = await api.findUser(memberInput.value.trim());
      await chat.addMember(chat.current, user.id);
      memberStatus.textContent = 'Added.';
      memberForm.reset();
    } catch (e) {
      memberStatus.textContent = e.message;
    }
  });
}
