// One message of the open room as a list item: the message it replies to,
// author and time, "edited", the body (or the tombstone of a deleted one),
// reactions and the actions the caller may take. The item is built once
// and updated in place as events fold in, so an open editor keeps its
// draft and focus while reactions arrive. Buttons carry `data-action`; the
// room view handles clicks for the whole list.

import * as api from '../api.js';
import { el, formatTime, userLabel } from '../dom.js';
import { quoteText } from '../timeline.js';

/** The reactions every message offers; others' emoji show up after these. */
export const PALETTE = ['👍', '❤️', '😂', '🎉'];

const action = (name, label, attrs = {}) =>
  el('button', { type: 'button', dataset: { action: name, testid: `${name}-button` }, ...attrs }, label);

/** An empty item for message `view`; fill it with renderMessage. */
export function messageItem(view) {
  const quote = el('blockquote', { class: 'quote', dataset: { testid: 'reply-preview' }, hidden: true });
  const edited = el('span', { class: 'edited', dataset: { testid: 'edited-marker' }, hidden: true }, ' (edited)');
  const meta = el('span', { class: 'meta' }, userLabel(view.author, api.userName), ' ',
    el('time', { datetime: view.ts }, formatTime(view.ts)), edited);
  const body = el('span', { class: 'body', dataset: { testid: 'message-body' } });
  const input = el('input', { name: 'body', maxlength: '4000', 'aria-label': 'Edit message',
    autocomplete: 'off', dataset: { testid: 'edit-input' } });
  const editor = el('form', { class: 'editor', dataset: { testid: 'edit-form' }, hidden: true }, input,
    el('button', { type: 'submit', dataset: { testid: 'edit-save' } }, 'Save'),
    el('button', { type: 'button', dataset: { action: 'edit-cancel', testid: 'edit-cancel' } }, 'Cancel'));
  const reactions = el('div', { class: 'reactions', dataset: { testid: 'reactions' }, role: 'group',
    'aria-label': 'Reactions' });
  const actions = el('div', { class: 'actions' });
  const li = el('li', { dataset: { testid: 'message', seq: view.seq, author: view.author } },
    quote, meta, body, editor, el('div', { class: 'foot' }, reactions, actions));
  li.parts = { quote, edited, body, editor, input, reactions, actions };
  return li;
}

/**
 * Shows `view` (the folded message) in `li`. `ui` is the view's own state:
 * `editing` and `confirming` (sets of seqs), `quote(seq)` (chat.quote for
 * the open room), `canEdit`, `canDelete`. Skips the work when nothing shown
 * changed, so unrelated updates keep the focus where it is.
 */
export function renderMessage(li, view, ui) {
  if (view.deleted) {
    ui.editing.delete(view.seq);
    ui.confirming.delete(view.seq);
  }
  const target = view.reply_to === null ? null : ui.quote(view.reply_to);
  const state = {
    view,
    target: target && { author: target.author, text: quoteText(target) },
    gone: target === null,
    editing: ui.editing.has(view.seq),
    confirming: ui.confirming.has(view.seq),
    canEdit: ui.canEdit(view),
    canDelete: ui.canDelete(view),
  };
  const signature = JSON.stringify(state);
  if (li.signature === signature) return;
  li.signature = signature;

  const { quote, edited, body, editor, input, reactions, actions } = li.parts;
  li.dataset.deleted = String(view.deleted);
  li.dataset.edited = String(view.edited_at !== null);
  if (view.reply_to === null) delete li.dataset.replyTo;
  else li.dataset.replyTo = String(view.reply_to);

  quote.hidden = view.reply_to === null;
  if (!quote.hidden) {
    if (target === undefined) quote.replaceChildren('…');
    else if (target === null || target.deleted) quote.replaceChildren('deleted message');
    else quote.replaceChildren(userLabel(target.author, api.userName), ': ', quoteText(target));
    quote.dataset.target = String(view.reply_to);
  }

  edited.hidden = view.deleted || view.edited_at === null;
  if (view.edited_at) edited.title = `edited ${new Date(view.edited_at).toLocaleString()}`;
  body.textContent = view.deleted ? 'message deleted' : view.body;
  body.classList.toggle('tombstone', view.deleted);

  const wasEditing = !editor.hidden;
  editor.hidden = !state.editing;
  body.hidden = state.editing;
  if (state.editing && !wasEditing) input.value = view.body;

  reactions.hidden = view.deleted;
  reactions.replaceChildren(...(view.deleted ? [] : reactionButtons(view.reactions)));

  actions.replaceChildren();
  if (view.deleted || state.editing) return;
  if (state.confirming) {
    actions.append(el('span', {}, 'Delete this message? '),
      action('delete-confirm', 'Delete'), ' ', action('delete-cancel', 'Keep'));
    return;
  }
  actions.append(action('reply', 'Reply'));
  if (state.canEdit) actions.append(' ', action('edit', 'Edit'));
  if (state.canDelete) actions.append(' ', action('delete', 'Delete'));
}

function reactionButtons(reactions) {
  const byEmoji = new Map(reactions.map((r) => [r.emoji, r]));
  const emojis = [...PALETTE, ...reactions.map((r) => r.emoji).filter((e) => !PALETTE.includes(e))];
  return emojis.map((emoji) => {
    const r = byEmoji.get(emoji) ?? { count: 0, me: false };
    return el('button', {
      type: 'button',
      class: r.count ? 'reaction' : 'reaction unused',
      'aria-pressed': String(r.me),
      'aria-label': `${emoji} ${r.count}${r.me ? ', yours' : ''}`,
      dataset: { action: 'react', testid: 'reaction', emoji, count: r.count },
    }, emoji, r.count ? el('span', { class: 'count' }, String(r.count)) : null);
  });
}
