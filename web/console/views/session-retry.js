// The Retry action of a failed or cancelled session (POST /v1/sessions/{id}/retry): asks first,
// saying which tasks are kept and which run again, then opens the new session's page. Offered only
// to a caller holding sessions:create (GET /v1/me).
import { api } from '../api.js';
import { callerMay } from '../caller.js';
import { countOf, h, replaceChildren } from '../dom.js';
import { confirmInline } from '../inline-confirm.js';
import { renderProblem } from '../problem.js';

/** The statuses the API retries; a completed session, or one still open, gets 409. */
const RETRYABLE = new Set(['failed', 'cancelled']);

/** What the console adds to a refused retry, by HTTP status: what to do about it. */
const RETRY_REFUSALS = {
  403: 'Retrying a session needs the permission sessions:create (roles developer, operator and admin).',
  404: 'The session is gone: deleted elsewhere, or by retention.',
};
/**
 * Refusals that asking again would only repeat: no permission, no session, or (as a failed or
 * cancelled session never changes status) one the API never retries, e.g. ended waiting for plan
 * approval. Others (a quota, a role deleted since, the server out of reach) may pass later.
 */
const FINAL_REFUSALS = new Set([403, 404, 409]);

/** "2 succeeded tasks are kept …; 1 other task runs again.": what the retry does with the tasks. */
function describeTasks(tasks) {
  const kept = tasks.filter((task) => task.status === 'succeeded').length;
  const again = tasks.length - kept;
  if (kept === 0)
    return again === 1
      ? 'No task succeeded: its task runs again.'
      : 'No task succeeded: all its tasks run again.';
  const keptPart = `${countOf(kept, 'succeeded task')} ${kept === 1 ? 'is kept with its result' : 'are kept with their results'} (not run or charged again)`;
  if (again === 0) return `Its ${keptPart}, and it goes on from there.`;
  return `Its ${keptPart}; ${countOf(again, 'other task')} ${again === 1 ? 'runs' : 'run'} again.`;
}

/**
 * The Retry card of session `id`: `update(session)` shows it for a failed or cancelled session when
 * the caller may create sessions; `onRetried(session)` is called with the new session.
 * @param {{id: string, onRetried: (session: {id: string}) => void}} options
 */
export function createSessionRetry({ id, onRetried }) {
  let session = null;
  /** Whether the caller holds sessions:create: undefined until read, null when that is unknown. */
  let permitted;
  /** The API refused it for good (FINAL_REFUSALS): not offered again on this page. */
  let refused = false;
  // One key per page: a retry whose answer was lost (the connection dropped), asked again, is
  // answered with the session it created instead of creating a second one.
  const idempotencyKey = crypto.randomUUID();

  const retry = h('button', { type: 'button' }, 'Retry session');
  // Focusable from script: after a refusal that hides the action, the focus goes to its reason.
  const output = h('div', { id: 'retry-output', tabIndex: -1 });
  const offer = h(
    'div',
    { hidden: true },
    h(
      'p',
      { className: 'muted' },
      'Starts a new session with the same objective and settings that goes on where this one stopped.',
    ),
    h('div', { className: 'row' }, retry),
  );
  const element = h(
    'section',
    { className: 'card', hidden: true, attrs: { 'aria-labelledby': 'retry-title' } },
    h('h2', { id: 'retry-title' }, 'Retry'),
    offer,
    output,
  );

  retry.addEventListener('click', () =>
    confirmInline({
      cell: output,
      opener: retry,
      restore: null,
      question: `Retry this session? ${describeTasks(session?.tasks ?? [])} This session stays as it ended.`,
      label: 'Retry this session?',
      yes: 'Yes, retry session',
      no: 'Not now',
      run: retrySession,
    }),
  );

  /** Starts the retry (the question's yes); a refusal is shown in place of the question. */
  async function retrySession() {
    retry.disabled = true;
    let failure = null;
    let created = null;
    try {
      created = await api.retry(id, idempotencyKey);
    } catch (error) {
      failure = error;
    }
    if (!failure) {
      onRetried(created);
      return true;
    }
    if (FINAL_REFUSALS.has(failure.status)) refused = true;
    const advice = RETRY_REFUSALS[failure.status];
    replaceChildren(
      output,
      renderProblem(failure, 'Retrying the session'),
      advice ? h('p', {}, advice) : null,
    );
    retry.disabled = false;
    if (session) update(session);
    if (offer.hidden) output.focus();
    else retry.focus();
    return true;
  }

  /** Shows the card for a session the API would retry, to a caller who may. */
  function update(next) {
    session = next;
    const retryable = RETRYABLE.has(next.status);
    offer.hidden = !retryable || refused || permitted === undefined || permitted === false;
    // A refusal stays in view with its reason, even once the action is no longer offered.
    element.hidden = offer.hidden && !output.hasChildNodes();
  }

  callerMay('sessions:create').then((may) => {
    permitted = may;
    if (session) update(session);
  });

  return { element, update };
}
