// What the sessions list and the usage view show alike of a session: the status filter's choices
// and the first cells of a session's row (objective as a link to its page, status, creation time).
import { formatTime, h, statusBadge } from '../dom.js';

/** Session statuses the API's `status` filter accepts (docs/api.md). */
export const SESSION_STATUSES = [
  'pending',
  'planning',
  'awaiting_approval',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
];

/** A status filter: "all" and every status. */
export function statusSelect(id) {
  return h(
    'select',
    { id, name: 'status' },
    h('option', { value: '' }, 'all'),
    ...SESSION_STATUSES.map((name) => h('option', { value: name }, name)),
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
