// The Retry action of a failed or cancelled session (POST /v1/sessions/{id}/retry), with an
// optional token budget for the retry: asks first, saying which tasks are kept and which run again,
// then opens the new session's page. Offered only to a caller holding sessions:create (GET /v1/me).
import { api } from '../api.js';
import { callerMay } from '../caller.js';
import { countOf, field, h, replaceChildren } from '../dom.js';
import { confirmInline } from '../inline-confirm.js';
import { renderProblem, showFormMistake } from '../problem.js';
import { RETRYABLE } from './session-retries.js';

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
 * The body of the retry: without a token budget, none (the original's budget applies again); with
 * one, the original's budget with that token limit, so its cost limit and deadline still apply.
 */
function retryBody(session, maxTokens) {
  if (maxTokens === null) return {};
  const budget = { maxTokens };
  if (session?.budget?.maxCostUsd != null) budget.maxCostUsd = session.budget.maxCostUsd;
  if (session?.budget?.deadlineSeconds != null) budget.deadlineSeconds = session.budget.deadlineSeconds;
  return { budget };
}

/** The hint under the budget field: what an empty one means, and which other limits stay. */
function budgetHint(session) {
  const budget = session?.budget;
  const original =
    budget?.maxTokens == null ? 'no token limit' : `${budget.maxTokens.toLocaleString()} tokens`;
  const others = [
    budget?.maxCostUsd != null ? 'cost limit' : null,
    budget?.deadlineSeconds != null ? 'deadline' : null,
  ].filter(Boolean);
  const stay =
    others.length === 0 ? '' : `; its ${others.join(' and ')} ${others.length === 1 ? 'stays' : 'stay'}`;
  return `Input + output tokens. Empty: the original's (${original})${stay}.`;
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
  // One key per body on this page: a retry whose answer was lost (the connection dropped), asked
  // again, is answered with the session it created instead of creating a second one; another budget
  // is another request (the same key with another body would be refused as reused).
  const idempotencyKeys = new Map();

  const retry = h('button', { type: 'button' }, 'Retry session');
  const maxTokens = h('input', {
    id: 'retry-max-tokens',
    type: 'number',
    min: '1',
    step: '1',
    inputMode: 'numeric',
  });
  const budgetField = field('Token budget for the retry', maxTokens, budgetHint(null));
  const hint = budgetField.querySelector('.hint');
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
    h('div', { className: 'row' }, budgetField, retry),
  );
  const element = h(
    'section',
    { className: 'card', hidden: true, attrs: { 'aria-labelledby': 'retry-title' } },
    h('h2', { id: 'retry-title' }, 'Retry'),
    offer,
    output,
  );

  retry.addEventListener('click', () => {
    // Text the field cannot read as a number ("1e"): not sent as "no budget" behind the person's back.
    if (maxTokens.validity.badInput) {
      showFormMistake(
        output,
        'Retrying the session',
        'Write the token budget as a whole number, or leave it empty for the original’s.',
        maxTokens,
      );
      return;
    }
    const tokens = maxTokens.value === '' ? null : Number(maxTokens.value);
    // A value the API refuses (0, 1.5) is sent as typed: its 400 names the field and the rule.
    const body = retryBody(session, tokens);
    const budgetPart = tokens === null ? '' : ` It gets a budget of ${tokens.toLocaleString()} tokens.`;
    confirmInline({
      cell: output,
      opener: retry,
      restore: null,
      question: `Retry this session? ${describeTasks(session?.tasks ?? [])}${budgetPart} This session stays as it ended.`,
      label: 'Retry this session?',
      yes: 'Yes, retry session',
      no: 'Not now',
      run: () => retrySession(body),
    });
  });

  /** Starts the retry with `body` (the question's yes); a refusal is shown in place of the question. */
  async function retrySession(body) {
    retry.disabled = true;
    let failure = null;
    let created = null;
    const bodyKey = JSON.stringify(body);
    if (!idempotencyKeys.has(bodyKey)) idempotencyKeys.set(bodyKey, crypto.randomUUID());
    try {
      created = await api.retry(id, body, idempotencyKeys.get(bodyKey));
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
    hint.textContent = budgetHint(next);
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
