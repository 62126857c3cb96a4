// parley's service worker: Web Push (docs/push.md). Each push carries one
// notification, {id, kind, payload, ts, unread}, encrypted for this
// browser; it is shown as a system notification, and a click on it brings
// the app forward at the notification's room (or opens the app).

const describe = (n) => {
  const p = n.payload ?? {};
  switch (n.kind) {
    case 'mention':
      return { title: `${p.author_username} mentioned you in ${p.room_name}`, body: p.excerpt };
    case 'direct_message':
      return { title: `${p.author_username} wrote to you`, body: p.excerpt };
    case 'follow':
      return { title: `${p.follower_username} follows you`, body: '' };
    case 'new_post':
      return { title: `${p.author_username} posted`, body: p.excerpt };
    default:
      return { title: 'parley', body: n.kind };
  }
};

self.addEventListener('push', (event) => {
  let n;
  try {
    n = event.data?.json() ?? {};
  } catch {
    n = {};
  }
  const { title, body } = describe(n);
  const unread = Number.isInteger(n.unread) && n.unread > 1 ? ` (${n.unread} unread)` : '';
  event.waitUntil(
    self.registration.showNotification(title, {
      body: `${body ?? ''}${unread}`.trim(),
      // One system notification per parley notification, however often sent.
      tag: n.id,
      timestamp: n.ts ? Date.parse(n.ts) : Date.now(),
      data: { room: n.payload?.room ?? null },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const room = event.notification.data?.room;
  const url = new URL(room ? `/#room=${room}` : '/', self.location.origin).href;
  event.waitUntil(
    (async () => {
      const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const open = tabs.find((c) => new URL(c.url).origin === self.location.origin);
      if (open) {
        if (room) open.postMessage({ type: 'open-room', room });
        return open.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
