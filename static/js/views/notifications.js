// The unread badge and the notification list (mark one or all read).

import * as api from '../api.js';
import { byId, el, formatTime } from '../dom.js';

function describe(n) {
  const p = n.payload ?? {};
  switch (n.kind) {
    case 'mention':
      return `${p.author_username} mentioned you in ${p.room_name}: ${p.excerpt}`;
    case 'direct_message':
      return `${p.author_username} wrote to you: ${p.excerpt}`;
    case 'follow':
      return `${p.follower_username} follows you`;
    case 'new_post':
      return `${p.author_username} posted: ${p.excerpt}`;
    default:
      return n.kind;
  }
}

export function mountNotifications(chat) {
  const toggle = byId('notif-toggle');
  const badge = byId('notif-badge');
  const panel = byId('notif-panel');
  const list = byId('notif-list');

  const refreshCount = async () => {
    try {
      const { count } = await api.unreadCount();
      badge.textContent = String(count);
      badge.dataset.count = String(count);
      badge.hidden = count === 0;
      toggle.setAttribute('aria-label', `Notifications, ${count} unread`);
    } catch {
      // The badge keeps its last value; the next event refreshes it.
    }
  };

  const renderList = async () => {
    if (panel.hidden) return;
    const page = await api.notifications();
    list.replaceChildren(
      ...page.items.map((n) => {
        const item = el(
          'li',
          { dataset: { testid: 'notification', id: n.id, read: String(n.read), kind: n.kind } },
          el('span', {}, describe(n)),
          ' ',
          el('time', { datetime: n.ts }, formatTime(n.ts)),
        );
        if (!n.read) {
          const button = el('button', { type: 'button', dataset: { testid: 'notif-mark-read' } }, 'Mark read');
          button.addEventListener('click', async () => {
            await api.markRead(n.id);
            await Promise.all([refreshCount(), renderList()]);
          });
          item.append(' ', button);
        }
        return item;
      }),
    );
  };

  toggle.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggle.setAttribute('aria-expanded', String(!panel.hidden));
    renderList().catch(() => {});
  });
  byId('notif-read-all').addEventListener('click', async () => {
    await api.markAllRead();
    await Promise.all([refreshCount(), renderList()]);
  });
  chat.addEventListener('notification', () => {
    refreshCount();
    renderList().catch(() => {});
  });
  // A reconnect may have missed notification frames: recount.
  chat.addEventListener('status', ({ detail }) => detail.status === 'connected' && refreshCount());
  return { refreshCount };
}
