// Sentences of the console that say a count, phrased for none, one and many ("the one session",
// not "all 1 session"). Pure functions: no DOM, so a test can import them outside a browser.
import { countOf, formatTime } from './dom.js';
import { statusLabel } from './statuses.js';

/** Says over which sessions the totals are, so nobody reads them as the tenant's whole usage. */
export function describeRange(sessions, complete, status, readAt) {
  const which = status ? `sessions with status ${statusLabel(status)}` : 'sessions';
  if (sessions.length === 0) return `No ${which}.`;
  const oldest = formatTime(sessions[sessions.length - 1].createdAt);
  const newest = formatTime(sessions[0].createdAt);
  const one = sessions.length === 1;
  const whichOne = which.replace('sessions', 'session');
  const scope = !complete
    ? `Older ${which} exist and are not counted: Load more to include them.`
    : one
      ? `It is the only ${whichOne} of your tenant.`
      : `These are all the ${which} of your tenant.`;
  const withStatus = status ? `, with status ${statusLabel(status)}, ` : ', ';
  const totals = one
    ? `Totals of the one session listed${withStatus}created ${oldest}`
    : `Totals over the ${sessions.length.toLocaleString()} sessions listed${withStatus}created ${oldest} to ${newest}`;
  return `${totals}, as read at ${formatTime(readAt)}. ${scope} Sessions still running may use more.`;
}

/**
 * Says what the date range's totals count (GET /v1/usage, docs/api.md): without a breakdown and per
 * day, what was charged on those days, whenever its session was created (what the daily token quota
 * counts); per role or model, everything the sessions created in those days were charged so far.
 */
export function describePeriod(totals, from, to, readAt, grouping = '') {
  const days = `from ${from} to ${to} (UTC days, both included)`;
  const sessions = Number(totals.sessions ?? 0);
  const server = 'Computed by the server, not limited to the sessions listed below.';
  if (grouping === 'role' || grouping === 'model') {
    if (sessions === 0) return `No sessions were created ${days}, so there is no usage to show for them.`;
    const created =
      sessions === 1
        ? `Your tenant's usage of the one session created ${days}, whatever its status`
        : `Your tenant's usage of all ${sessions.toLocaleString()} sessions created ${days}, whatever their status`;
    return `${created}, as charged at ${readAt}; sessions still running may use more. ${server}`;
  }
  const created =
    sessions === 0
      ? 'no session was created in those days'
      : sessions === 1
        ? 'one session was created in those days'
        : `${sessions.toLocaleString()} sessions were created in those days`;
  const charged =
    Number(totals.inputTokens ?? 0) + Number(totals.outputTokens ?? 0) + Number(totals.costUsd ?? 0);
  if (charged === 0) return `Nothing was charged to your tenant ${days}; ${created}.`;
  return `What your tenant was charged ${days}, whichever day its sessions were created (what the daily token quota counts), as read at ${readAt}; ${created}. Sessions still running may use more. ${server}`;
}

/** "3 keys, 2 not revoked.", "1 key, revoked.", "No keys.": the count said for one and for many. */
export function describeKeys(count, active) {
  if (count === 0) return 'No keys.';
  if (count === 1) return `1 key, ${active === 1 ? 'not revoked' : 'revoked'}.`;
  return `${countOf(count, 'key')}, ${active.toLocaleString()} not revoked.`;
}
