// "Retried as …" on the page of an ended session: its retries (GET /v1/sessions?retryOf=), read once
// as the page opens, the newest first, each a link to its page.
import { api } from '../api.js';
import { h } from '../dom.js';

/** The statuses the API retries from without tasks named to run again (`rerun`). */
export const RETRYABLE = new Set(['failed', 'cancelled']);
/** The statuses a session can have retries in: a completed one is retried with `rerun`. */
export const ENDED = new Set([...RETRYABLE, 'completed']);

/**
 * How many retries are read and linked: the newest and a few earlier ones, a few lines at phone
 * width. More are rare (the same session retried again and again) and are said to exist.
 */
const SHOWN_RETRIES = 4;

/**
 * The newest retries of session `id`: `{items, more}`, or `{error}` when they could not be read.
 * @param {string} id
 * @returns {Promise<{items: Array<{id: string}>, more: boolean} | {error: Error}>}
 */
export async function readRetries(id) {
  try {
    const page = await api.listSessions({ retryOf: id, limit: SHOWN_RETRIES });
    return { items: page.items, more: page.nextCursor !== null };
  } catch (error) {
    return { error };
  }
}

function retryLink(retry) {
  return h('a', { href: `#/sessions/${retry.id}` }, retry.id);
}

/**
 * The value of the "Retried as" fact: the newest retry, then "and 2 earlier: <id>, <id>"; null
 * when there is none (or nothing was read).
 * @param {{items: Array<{id: string}>, more: boolean} | {error: Error} | null} retries
 */
export function renderRetriedAs(retries) {
  if (!retries) return null;
  if ('error' in retries) {
    // Not nothing: that would say it was never retried.
    return h(
      'span',
      { id: 'retried-as', className: 'muted' },
      `unknown: its retries could not be read (${retries.error?.message ?? retries.error})`,
    );
  }
  const [newest, ...earlier] = retries.items;
  if (!newest) return null;
  const value = h('span', { id: 'retried-as' }, retryLink(newest));
  if (earlier.length === 0) return value;
  value.append(`, and ${retries.more ? 'more than ' : ''}${earlier.length} earlier: `);
  earlier.forEach((retry, index) => {
    if (index > 0) value.append(', ');
    value.append(retryLink(retry));
  });
  if (retries.more) value.append(', …');
  return value;
}
