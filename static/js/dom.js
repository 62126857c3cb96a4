// Small DOM helpers: find by data-testid (the ids the browser test uses
// too, so the markup has one naming scheme) and build elements.

/** The element with `data-testid="id"` under `root`. */
export const byId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

/** `el('li', {class: 'x', dataset: {seq: 1}}, 'text', child)` */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'class') node.className = value;
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Fills a name in once api.userName resolves; shows a short id until then. */
export function userLabel(id, lookup) {
  const span = el('span', { class: 'user', dataset: { user: id } }, id.slice(0, 8));
  lookup(id).then((name) => {
    span.textContent = name;
  });
  return span;
}

export const formatTime = (ts) =>
  new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
