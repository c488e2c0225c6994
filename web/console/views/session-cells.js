// What the sessions list and the usage view show alike of a session: the status filter's choices
// and the first cells of a session's row (objective as a link to its page, status, creation time).
import { formatTime, h } from '../dom.js';
import { SESSION_STATUSES, statusBadge, statusLabel } from '../statuses.js';

/** A status filter: "All" and every status in words; an option's value is the raw status. */
export function statusSelect(id) {
  return h(
    'select',
    { id, name: 'status' },
    h('option', { value: '' }, 'All'),
    ...SESSION_STATUSES.map((name) => h('option', { value: name }, statusLabel(name))),
  );
}

/** The row of `session` with its objective, status and creation time, then `cells`. */
export function sessionRow(session, ...cells) {
  return h(
    'tr',
    { dataset: { sessionId: session.id } },
    h(
      'td',
      { className: 'objective' },
      h('a', { href: `#/sessions/${session.id}` }, session.objective || '(no objective)'),
    ),
    h('td', {}, statusBadge(session.status)),
    h('td', {}, formatTime(session.createdAt)),
    ...cells,
  );
}
