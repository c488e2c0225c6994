// The session events a webhook can subscribe to, with the words the console shows beside each. The
// console's plain modules cannot import the server's TypeScript, so the list is kept here; a test
// checks it is the server's (WEBHOOK_EVENTS). Pure data: no DOM, so that test can import it.

/** Event names POST /v1/webhooks accepts (docs/api.md), in the server's order. */
export const WEBHOOK_EVENTS = [
  'session.awaiting_approval',
  'session.completed',
  'session.failed',
  'session.cancelled',
];

/** What each event means, said beside its checkbox. */
export const WEBHOOK_EVENT_LABELS = {
  'session.awaiting_approval': 'a plan waits for approval',
  'session.completed': 'a session completed',
  'session.failed': 'a session failed',
  'session.cancelled': 'a session was cancelled',
};

/** The events a new subscription starts with: how a session ended. */
export const DEFAULT_WEBHOOK_EVENTS = ['session.completed', 'session.failed'];
