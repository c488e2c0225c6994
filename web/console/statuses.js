// The session and task statuses the console knows, and the words it shows for them. The console's
// plain modules cannot import the server's TypeScript, so the lists are kept here; a test checks
// they are the domain's (SESSION_STATUSES, TASK_STATUSES) and that each has its words.
import { h } from './dom.js';

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

/** Task statuses, as the tasks of a session's page show them. */
export const TASK_STATUSES = ['pending', 'ready', 'leased', 'running', 'succeeded', 'failed', 'cancelled'];

/** Every session and task status in words; the raw value stays in the badge's title and class. */
export const STATUS_LABELS = {
  pending: 'Pending',
  planning: 'Planning',
  awaiting_approval: 'Awaiting approval',
  running: 'Running',
  paused: 'Paused',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  ready: 'Ready',
  leased: 'Claimed',
  succeeded: 'Succeeded',
};

/** The words for `status`; a status this console does not know yet is shown as it came. */
export function statusLabel(status) {
  return Object.hasOwn(STATUS_LABELS, status) ? STATUS_LABELS[status] : String(status);
}

/**
 * A status badge: its words, the raw value as its title (what the API, the CLI and the filter's
 * value say), and a class per raw value that lets the stylesheet colour it.
 */
export function statusBadge(status) {
  return h(
    'span',
    { className: `badge status-${String(status).replace(/[^a-z_]/g, '')}`, title: String(status) },
    statusLabel(status),
  );
}
