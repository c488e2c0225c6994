// The "new session" form: objective, strategy, approval and an optional budget, posted to
// POST /v1/sessions with an Idempotency-Key so a double submit creates one session.
import { api } from '../api.js';
import { disableWhileRunning, field, h, replaceChildren } from '../dom.js';
import { renderProblem, showFormMistake } from '../problem.js';

/** Strategies the orchestrator plans itself (parallel/sequential need agents listed by the caller). */
const STRATEGIES = ['pipeline', 'adaptive'];

function numberInput(id, step) {
  return h('input', { id, name: id, type: 'number', min: '1', step, inputMode: 'decimal' });
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
  const maxCost = numberInput('new-max-cost', '0.01');
  maxCost.min = '0.01';
  const deadline = numberInput('new-deadline', '1');
  const submit = h('button', { type: 'submit' }, 'Create session');
  const errors = h('div', { attrs: { 'aria-live': 'polite' } });
  // One key per filled-in form: a retried submit of the same form is the same session.
  let idempotencyKey = crypto.randomUUID();

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
            idempotencyKey = crypto.randomUUID();
            // Answered after the person went to another page: they stay there (the list shows it).
            if (form.isConnected) onCreated(session);
          } catch (error) {
            replaceChildren(errors, renderProblem(error, 'Creating the session'));
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
  return form;
}
