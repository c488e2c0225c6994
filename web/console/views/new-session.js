// The "new session" form: objective, strategy, approval and an optional budget, posted to
// POST /v1/sessions with an Idempotency-Key so a double submit creates one session.
import { api } from '../api.js';
import { disableWhileRunning, field, h, isolate, replaceChildren, shorten } from '../dom.js';
import { draftsSent } from '../drafts.js';
import { showPageNotice } from '../page-notice.js';
import { renderProblem, showFormMistake } from '../problem.js';

/** Strategies the orchestrator plans itself (parallel/sequential need agents listed by the caller). */
const STRATEGIES = ['pipeline', 'adaptive'];

function numberInput(id, step) {
  return h('input', { id, name: id, type: 'number', min: '1', step, inputMode: 'decimal' });
}

/**
 * What was typed in a form whose create was refused after the person left its page (went elsewhere
 * while it was sent): put back in the next new-session form shown, with the same idempotency key
 * (sent again unchanged, it is the same session should the first try have been stored after all).
 * Null when there is none.
 * @type {null | {values: Record<string, string | boolean>, idempotencyKey: string}}
 */
let refusedDraft = null;
/** Puts `refusedDraft` into the form shown now, when that form is still as it was drawn. */
let offerRefusedDraft = () => {};

/** Forgets the draft of a refused create: a new sign-in (maybe another tenant) starts afresh. */
export function forgetRefusedDraft() {
  refusedDraft = null;
}

/**
 * The form; calls `onCreated(session)` after a 201/200.
 * @param {{onCreated: (session: {id: string}) => void}} options
 */
export function createNewSessionForm({ onCreated }) {
  const objective = h('textarea', {
    id: 'new-objective',
    name: 'objective',
    required: true,
    maxLength: 20000,
  });
  const strategy = h(
    'select',
    { id: 'new-strategy', name: 'strategy' },
    ...STRATEGIES.map((name) => h('option', { value: name }, name)),
  );
  const approval = h('input', { id: 'new-approval', name: 'approval', type: 'checkbox' });
  const maxTokens = numberInput('new-max-tokens', '1');
  // Any amount above $0 (an LLM call costs fractions of a cent): a step of cents would refuse $0.125.
  const maxCost = numberInput('new-max-cost', 'any');
  maxCost.min = '0';
  const deadline = numberInput('new-deadline', '1');
  const submit = h('button', { type: 'submit' }, 'Create session');
  const errors = h('div', { attrs: { 'aria-live': 'polite' } });
  // One key per filled-in form: a retried submit of the same form is the same session.
  let idempotencyKey = crypto.randomUUID();
  /** The controls whose values a refused create keeps (by id), and each one's value property. */
  const kept = [
    [objective, 'value'],
    [strategy, 'value'],
    [approval, 'checked'],
    [maxTokens, 'value'],
    [maxCost, 'value'],
    [deadline, 'value'],
  ];
  /** Whether nothing was typed or chosen in this form yet. */
  const untouched = () =>
    strategy.selectedIndex === 0 &&
    !approval.checked &&
    [objective, maxTokens, maxCost, deadline].every((control) => control.value === '');
  /**
   * Whether the form holds what `draft` has, and nothing else: put back as the page was shown
   * again while its create was on its way (drafts.js), not typed anew.
   */
  const holds = (draft) =>
    kept.every(([control, property]) => (draft.values[control.id] ?? '') === control[property]);

  const form = h(
    'form',
    {
      className: 'card',
      attrs: { 'aria-labelledby': 'new-session-title' },
      on: {
        input: () => {
          idempotencyKey = crypto.randomUUID();
        },
        submit: async (event) => {
          event.preventDefault();
          // Spaces pass the field's `required`; the server would refuse them in its own terms.
          if (!objective.value.trim()) {
            showFormMistake(
              errors,
              'Creating the session',
              'Write the objective: what the agents should achieve.',
              objective,
            );
            return;
          }
          // $0 passes the field's `min` (which cannot exclude it); the server would refuse it.
          if (maxCost.value !== '' && !(Number(maxCost.value) > 0)) {
            showFormMistake(
              errors,
              'Creating the session',
              'The max cost must be more than $0 (or left empty: no cost limit).',
              maxCost,
            );
            return;
          }
          const body = { objective: objective.value.trim(), strategy: strategy.value };
          if (approval.checked) body.approval = 'required';
          const budget = {};
          if (maxTokens.value) budget.maxTokens = Number(maxTokens.value);
          if (maxCost.value) budget.maxCostUsd = Number(maxCost.value);
          if (deadline.value) budget.deadlineSeconds = Number(deadline.value);
          if (Object.keys(budget).length > 0) body.budget = budget;
          const enable = disableWhileRunning(submit);
          replaceChildren(errors);
          try {
            const session = await api.createSession(body, idempotencyKey);
            form.reset();
            // Created: what was typed is no draft any more, also where it waits as one (drafts.js).
            draftsSent(form);
            idempotencyKey = crypto.randomUUID();
            // Answered after the person went to another page: they stay there (the list shows it).
            if (form.isConnected) onCreated(session);
          } catch (error) {
            replaceChildren(errors, renderProblem(error, 'Creating the session'));
            // The person went to another page meanwhile: the refusal would be told to nobody. A 401
            // is said by the sign-in form that took the page's place.
            if (!form.isConnected && error?.status !== 401) {
              reportRefusedAway(
                body.objective,
                error,
                Object.fromEntries(kept.map(([control, property]) => [control.id, control[property]])),
                idempotencyKey,
              );
            }
          } finally {
            enable();
          }
        },
      },
    },
    h('h2', { id: 'new-session-title' }, 'New session'),
    field('Objective', objective, 'What the agents should achieve; the orchestrator plans the tasks.'),
    h(
      'div',
      { className: 'row' },
      field('Strategy', strategy),
      field('Max tokens', maxTokens),
      field('Max cost (USD)', maxCost),
      field('Deadline (seconds)', deadline),
    ),
    h(
      'div',
      { className: 'check' },
      approval,
      h('label', { htmlFor: approval.id }, 'Require approval of the plan before it runs'),
    ),
    h('div', {}, submit),
    errors,
  );

  /**
   * Fills the form with the refused draft when nothing was typed in it yet, or anyway when `asked`
   * (the person asked for it); true when it did.
   */
  const fillWithRefusedDraft = (asked = false) => {
    if (refusedDraft === null || !(asked || untouched() || holds(refusedDraft))) return false;
    for (const [control, property] of kept) {
      const value = refusedDraft.values[control.id];
      if (value !== undefined) control[property] = value;
    }
    idempotencyKey = refusedDraft.idempotencyKey;
    refusedDraft = null;
    return true;
  };
  fillWithRefusedDraft();
  offerRefusedDraft = (asked = false) => form.isConnected && fillWithRefusedDraft(asked);
  return form;
}

/**
 * Says on whatever page is open that the create of `objective` was refused, with the server's
 * problem, and keeps what was typed for the next new-session form (the one shown now when the
 * person is back on the sessions page with nothing typed in it). Otherwise the notice's button
 * puts it there: on the sessions page, in place of what is typed in the form; elsewhere, it opens
 * the sessions page, whose new form takes it.
 */
function reportRefusedAway(objective, error, values, idempotencyKey) {
  const draft = { values, idempotencyKey };
  refusedDraft = draft;
  const backText = 'What you typed is back in the New session form, to fix and send again.';
  const line = h('p', {}, backText);
  if (!offerRefusedDraft()) {
    const putBack = h('button', { type: 'button', className: 'secondary' }, 'Put it back in the form');
    putBack.addEventListener('click', () => {
      // This notice's draft, not another create's refused since.
      refusedDraft = draft;
      const objectiveField = document.getElementById('new-objective');
      if (objectiveField?.isConnected) {
        offerRefusedDraft(true);
        objectiveField.focus();
      } else location.hash = '#/sessions';
      replaceChildren(line, backText);
    });
    replaceChildren(
      line,
      'What you typed is kept for the New session form, to fix and send again. ',
      putBack,
    );
  }
  showPageNotice(
    `The session “${isolate(shorten(objective, 80))}” was not created.`,
    renderProblem(error, 'Creating the session'),
    line,
  );
}
