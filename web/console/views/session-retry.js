// The Retry action of a failed, cancelled or completed session (POST /v1/sessions/{id}/retry), with
// an optional token budget and succeeded tasks picked to run again (`rerun`; a completed session is
// retried only so): asks first, saying which tasks are kept and which run again, then opens the new
// session's page. Offered only to a caller holding sessions:create (GET /v1/me).
import { api } from '../api.js';
import { callerMay } from '../caller.js';
import { countOf, field, h, isolate, replaceChildren } from '../dom.js';
import { draftsSent } from '../drafts.js';
import { confirmInline } from '../inline-confirm.js';
import { showSessionActionFailed } from '../page-notice.js';
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

/**
 * The succeeded tasks that can be picked to run again: not the orchestrator's planning nor its phase
 * gates (kind `plan`), which decided the tasks the session has; the API refuses those.
 */
function pickableTasks(tasks) {
  return tasks.filter((task) => task.status === 'succeeded' && task.kind !== 'plan');
}

/** The names of the tasks that depend on one of `picked`, directly or not (they run again too). */
function dependantsOf(tasks, picked) {
  const again = new Set(picked);
  for (let grew = true; grew; ) {
    grew = false;
    for (const task of tasks) {
      if (again.has(task.name) || !task.dependsOn.some((name) => again.has(name))) continue;
      again.add(task.name);
      grew = true;
    }
  }
  for (const name of picked) again.delete(name);
  return again;
}

/**
 * "2 succeeded tasks are kept …; 1 other task runs again.": what the retry does with the tasks, the
 * succeeded ones `picked` to run again (and those depending on them) counted as running again.
 */
function describeTasks(tasks, picked) {
  const dependants = dependantsOf(tasks, picked);
  const runsAgain = (task) => picked.includes(task.name) || dependants.has(task.name);
  const kept = tasks.filter((task) => task.status === 'succeeded' && !runsAgain(task)).length;
  const again = tasks.length - kept;
  const redone = [...dependants].filter((name) =>
    tasks.some((task) => task.name === name && task.status === 'succeeded'),
  ).length;
  const pickedPart =
    picked.length === 0
      ? ''
      : ` (picked: ${picked.map(isolate).join(', ')}${redone === 0 ? '' : `, and ${countOf(redone, 'succeeded task')} depending on ${picked.length === 1 ? 'it' : 'them'}`})`;
  if (kept === 0) {
    if (picked.length > 0) return `All its tasks run again${pickedPart}.`;
    return again === 1
      ? 'No task succeeded: its task runs again.'
      : 'No task succeeded: all its tasks run again.';
  }
  const keptPart = `${countOf(kept, 'succeeded task')} ${kept === 1 ? 'is kept with its result' : 'are kept with their results'} (not run or charged again)`;
  if (again === 0) return `Its ${keptPart}, and it goes on from there.`;
  return `Its ${keptPart}; ${countOf(again, 'other task')} ${again === 1 ? 'runs' : 'run'} again${pickedPart}.`;
}

/**
 * The body of the retry: without a token budget, none (the original's budget applies again); with
 * one, the original's budget with that token limit, so its cost limit and deadline still apply; the
 * tasks `picked` to run again as `rerun`.
 */
function retryBody(session, maxTokens, picked) {
  const body = picked.length > 0 ? { rerun: picked } : {};
  if (maxTokens === null) return body;
  const budget = { maxTokens };
  if (session?.budget?.maxCostUsd != null) budget.maxCostUsd = session.budget.maxCostUsd;
  if (session?.budget?.deadlineSeconds != null) budget.deadlineSeconds = session.budget.deadlineSeconds;
  return { budget, ...body };
}

/** The hint under the budget field: what an empty one means, and which other limits stay. */
function budgetHint(session) {
  const budget = session?.budget;
  const original = budget?.maxTokens == null ? 'no token limit' : countOf(budget.maxTokens, 'token');
  const others = [
    budget?.maxCostUsd != null ? 'cost limit' : null,
    budget?.deadlineSeconds != null ? 'deadline' : null,
  ].filter(Boolean);
  const stay =
    others.length === 0 ? '' : `; its ${others.join(' and ')} ${others.length === 1 ? 'stays' : 'stay'}`;
  return `Input + output tokens. Empty: the original's (${original})${stay}.`;
}

/**
 * The Retry card of session `id`: `update(session)` shows it for a failed or cancelled session, or a
 * completed one with a succeeded task to pick, when the caller may create sessions;
 * `onRetried(session)` is called with the new session.
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
  const explanation = h('p', { className: 'muted' });
  /** One checkbox per succeeded task that can run again, by task name; kept across refreshes. */
  let rerunBoxes = new Map();
  const rerunList = h('div', { className: 'check-list' });
  const rerunHint = h('small', { id: 'retry-rerun-hint', className: 'hint' });
  const rerunField = h(
    'fieldset',
    { id: 'retry-rerun', className: 'checks', hidden: true, attrs: { 'aria-describedby': rerunHint.id } },
    h('legend', {}, 'Run again although they succeeded'),
    rerunList,
    rerunHint,
  );
  const offer = h(
    'div',
    { hidden: true },
    explanation,
    rerunField,
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
    const picked = [...rerunBoxes].filter(([, box]) => box.checked).map(([name]) => name);
    // The API retries a completed session only with tasks to run again: said here, not as its 409.
    const [firstBox] = rerunBoxes.values();
    if (session?.status === 'completed' && picked.length === 0 && firstBox) {
      showFormMistake(
        output,
        'Retrying the session',
        'Pick the tasks to run again: a completed session is retried only to run some again.',
        firstBox,
      );
      return;
    }
    const tokens = maxTokens.value === '' ? null : Number(maxTokens.value);
    // A value the API refuses (0, 1.5) is sent as typed: its 400 names the field and the rule.
    const body = retryBody(session, tokens, picked);
    const budgetPart = tokens === null ? '' : ` It gets a budget of ${countOf(tokens, 'token')}.`;
    confirmInline({
      cell: output,
      opener: retry,
      restore: null,
      question: `Retry this session? ${describeTasks(session?.tasks ?? [], picked)}${budgetPart} This session stays as it ended.`,
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
      // Retried with it: the budget typed is no draft to find on this page again (drafts.js).
      maxTokens.value = '';
      draftsSent(maxTokens);
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
    // Answered after the person left the page: said on the page open now.
    if (!output.isConnected && failure.status !== 401) {
      showSessionActionFailed({
        context: 'Retrying the session',
        objective: session?.objective ?? '',
        sessionId: id,
        error: failure,
        more: advice ? [h('p', {}, advice)] : [],
      });
    }
    retry.disabled = false;
    if (session) update(session);
    if (offer.hidden) output.focus();
    else retry.focus();
    return true;
  }

  /** The checkboxes of the tasks that can be picked, those already picked staying picked. */
  function showPickable(tasks) {
    const names = pickableTasks(tasks).map((task) => task.name);
    if (names.join('\n') === [...rerunBoxes.keys()].join('\n')) return;
    const boxes = new Map();
    names.forEach((name, index) => {
      const box = h('input', { id: `retry-rerun-${index}`, type: 'checkbox', value: name });
      box.checked = rerunBoxes.get(name)?.checked ?? false;
      boxes.set(name, box);
    });
    rerunBoxes = boxes;
    replaceChildren(
      rerunList,
      ...[...boxes].map(([name, box]) => h('label', { className: 'check', htmlFor: box.id }, box, name)),
    );
    rerunField.hidden = boxes.size === 0;
  }

  /** Shows the card for a session the API would retry, to a caller who may. */
  function update(next) {
    session = next;
    hint.textContent = budgetHint(next);
    showPickable(next.tasks ?? []);
    const completed = next.status === 'completed';
    explanation.textContent = completed
      ? 'Starts a new session with the same objective and settings that runs the tasks picked below again, keeping the other results.'
      : 'Starts a new session with the same objective and settings that goes on where this one stopped.';
    // A completed session is retried only with a pick: "none picked" is no choice there.
    rerunHint.textContent = completed
      ? 'The tasks that depend on a picked one run again too.'
      : 'The tasks that depend on a picked one run again too. None picked: the succeeded tasks are kept.';
    const retryable = RETRYABLE.has(next.status) || (next.status === 'completed' && rerunBoxes.size > 0);
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
