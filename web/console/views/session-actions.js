// What a person can do to a session, as the API offers it: approve the waiting plan as planned or
// edited (JSON), reject it with a reason, steer with a message, cancel, delete once finished. Each
// control is enabled only in the states where the API accepts it; a refusal is shown with its
// problem code.
import { api } from '../api.js';
import { countOf, field, h, replaceChildren } from '../dom.js';
import { draftsSent, takeDraft } from '../drafts.js';
import { confirmInline } from '../inline-confirm.js';
import { showSessionActionFailed } from '../page-notice.js';
import { renderProblem, showFormMistake } from '../problem.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Whether this sign-in was refused `sessions:delete` (403): like a section's link after a 403, the
 * Delete action is not offered again until the next sign-in (the console never probes a route).
 */
let deleteRefused = false;

/** Offers the Delete action again: a new sign-in may hold the permission. */
export function forgetDeleteRefusal() {
  deleteRefused = false;
}

/** What the console adds to a refused deletion, by HTTP status: what to do about it. */
const DELETE_REFUSALS = {
  403: 'Deleting a session needs the permission sessions:delete (roles operator and admin).',
  404: 'The session is gone already: deleted elsewhere, or by retention.',
  409: 'Only a finished session can be deleted: cancel it first, then delete it.',
};

/** The session's plan in the shape POST /approve takes (`depends_on`, no empty optionals). */
export function toEditablePlan(plan) {
  if (!plan) return { phases: [] };
  return {
    phases: plan.phases.map((phase) => ({
      name: phase.name,
      tasks: phase.tasks.map((task) => ({
        name: task.name,
        role: task.role,
        instructions: task.instructions,
        depends_on: task.dependsOn ?? [],
        ...(task.runner ? { runner: task.runner } : {}),
        ...(task.agent ? { agent: task.agent } : {}),
      })),
    })),
  };
}

/**
 * Runs `action` with `button` disabled; shows a notice or the problem in `output`, then `onChanged`.
 * The button's enabled state is restored by the next `update` from the refreshed session. Returns
 * whether the API accepted it. A problem answered after the person left the page goes to
 * `failedAway(error)` (said on the page open now).
 */
async function runAction(button, output, context, action, notice, onChanged, failedAway, refused = null) {
  button.disabled = true;
  replaceChildren(output);
  let ok = false;
  let failure = null;
  try {
    const result = await action();
    replaceChildren(output, h('p', { className: 'notice', attrs: { role: 'status' } }, notice(result)));
    ok = true;
  } catch (error) {
    failure = error;
    replaceChildren(output, renderProblem(error, context));
    if (!output.isConnected) failedAway(error);
  } finally {
    await onChanged();
  }
  // What the page adds to the refusal once the session is read again (what waits now).
  if (failure && refused) output.append(...refused(failure));
  return ok;
}

/**
 * The version of the plan that waits now, when a decision on `sent` was refused because another plan
 * waits (409 INVALID_STATE with `details.planVersion`); otherwise null.
 */
export function planChangedTo(error, sent) {
  const waiting = error?.problem?.details?.planVersion;
  if (error?.status !== 409 || error?.code !== 'INVALID_STATE' || !Number.isInteger(waiting)) return null;
  return waiting === sent ? null : waiting;
}

/**
 * The action panel of session `id`; `update(session)` enables what its state allows. `onDeleted`
 * is called with the session once the API has deleted it. `cards` (e.g. Retry) lead the panel.
 * @param {{id: string, onChanged: () => Promise<void>, onDeleted: (session: object) => void,
 *   cards?: HTMLElement[]}} options
 */
export function createSessionActions({ id, onChanged, onDeleted, cards = [] }) {
  let session = null;
  let busy = false;
  /** The plan text is only replaced while the person has not edited it. */
  let planEdited = false;
  let planKey = '';
  /**
   * The plan version the editor's text was loaded from: an edited plan is approved as an edit of it
   * (a plan that waits meanwhile is not replaced by an edit of another one nobody looked at).
   */
  let planTextVersion;

  // The outputs are focusable from script: an action whose button stays disabled leaves the focus there.
  const approveOutput = h('div', { id: 'approve-output', tabIndex: -1 });
  const approve = h('button', { type: 'button', disabled: true }, 'Approve as planned');
  const planText = h('textarea', {
    id: 'plan-editor',
    className: 'code',
    spellcheck: false,
    disabled: true,
  });
  const approveEdited = h('button', { type: 'button', disabled: true }, 'Approve edited plan');
  const reason = h('input', { id: 'reject-reason', type: 'text', maxLength: 2000, disabled: true });
  const reject = h('button', { type: 'button', className: 'danger', disabled: true }, 'Reject plan');
  const approvalNote = h('p', { className: 'muted' });
  /** An edit refused because another plan waits by then: kept here, to copy from. */
  const keptEdit = h('div', { id: 'kept-edit' });

  // As many characters as POST /messages takes (MAX_STEERING_MESSAGE_CHARS): more would only be refused.
  const message = h('textarea', { id: 'steer-message', maxLength: 4000, disabled: true });
  const send = h('button', { type: 'button', disabled: true }, 'Send message');
  const steerOutput = h('div', { id: 'steer-output', tabIndex: -1 });
  // What the text is typed for (drafts.js): this session; the plan's, its version (update()).
  message.dataset.draftOf = id;
  reason.dataset.draftOf = id;
  // Sent from this page once, refused after the person had left it: back in its field.
  for (const control of [message, reason]) control.value = takeDraft(control) ?? '';

  /**
   * What an action answered after the person left this page calls with its problem: the page open
   * now says it (showSessionActionFailed); the text sent (`field`: the message, the reason, the
   * edited plan), kept as this page went (drafts.js), waits for it in its field (`fieldNote` says so).
   */
  const failedAway =
    (context, field = null, fieldNote = '') =>
    (error) => {
      if (error?.status === 401) return;
      showSessionActionFailed({
        context,
        objective: session?.objective ?? '',
        sessionId: id,
        error,
        more: field?.value.trim() ? [h('p', {}, fieldNote)] : [],
      });
    };

  const cancel = h('button', { type: 'button', className: 'danger', disabled: true }, 'Cancel session');
  // Focusable from script: once cancelling is answered, the focus goes to what came of it.
  const cancelOutput = h('div', { id: 'cancel-output', tabIndex: -1 });

  const remove = h('button', { type: 'button', className: 'danger' }, 'Delete session');
  // A plain div: `.row` sets `display`, which would override `hidden`.
  const deleteArea = h(
    'div',
    { hidden: true },
    h('h2', {}, 'Delete'),
    h('div', { className: 'row' }, remove),
  );
  // Focusable from script: after a refusal that hides the action, the focus goes to its reason.
  const deleteOutput = h('div', { id: 'delete-output', tabIndex: -1 });
  /** The API answered 404: there is nothing left to delete. */
  let gone = false;

  /** Where each action says what came of it. */
  const outputs = new Map([
    [approve, approveOutput],
    [approveEdited, approveOutput],
    [reject, approveOutput],
    [send, steerOutput],
  ]);
  /**
   * Runs an action with every control disabled. Disabling the button that has the focus takes it
   * away (to the start of the page): once done, the focus goes back to the button, or, when it stays
   * disabled (approved, rejected), to its output, which says what came of it.
   */
  const guarded = (run) => async () => {
    const started = document.activeElement;
    busy = true;
    try {
      await run();
    } finally {
      busy = false;
      if (session) update(session);
      const active = document.activeElement;
      if (outputs.has(started) && (active === null || active === document.body)) {
        (started.disabled ? outputs.get(started) : started).focus();
      }
    }
  };

  planText.addEventListener('input', () => {
    planEdited = true;
  });

  /**
   * What a decision on plan version `sent` refused because another plan waits adds: that the plan
   * changed, that nothing was decided, and where the new plan is (this page, read again).
   */
  const planChanged = (sent) => (error) => {
    const waiting = planChangedTo(error, sent);
    if (waiting === null) return [];
    const phase = session?.approval?.pendingPhase;
    return [
      h(
        'p',
        { className: 'plan-changed', attrs: { role: 'alert' } },
        `The plan changed: this page showed plan version ${sent}, but version ${waiting}` +
          (session?.planVersion === waiting && Number.isInteger(phase) ? ` (phase ${phase + 1})` : '') +
          ' waits for approval now. Nothing was decided. The new plan is shown on this page now; read it before you decide.',
      ),
    ];
  };

  approve.addEventListener(
    'click',
    guarded(async () => {
      const version = shownVersion();
      const approved = await runAction(
        approve,
        approveOutput,
        'Approving the plan',
        () => api.approve(id, undefined, version),
        (result) => `Approved: plan version ${result.planVersion}, ${countOf(result.readied, 'task')} ready.`,
        onChanged,
        failedAway('Approving the plan'),
        planChanged(version),
      );
      // Decided: an edit kept from an earlier refusal is of no plan waiting any more.
      if (approved) replaceChildren(keptEdit);
    }),
  );
  approveEdited.addEventListener(
    'click',
    guarded(async () => {
      let plan;
      try {
        plan = JSON.parse(planText.value);
      } catch (error) {
        replaceChildren(
          approveOutput,
          renderProblem(
            new Error(`The edited plan is not valid JSON: ${error.message}`),
            'Approving the edited plan',
          ),
        );
        return;
      }
      // The edit as typed and the version it was typed against, before the refresh replaces them.
      const editedText = planText.value;
      const editedVersion = planTextVersion;
      const approved = await runAction(
        approveEdited,
        approveOutput,
        'Approving the edited plan',
        () => api.approve(id, plan, editedVersion),
        (result) =>
          `Approved the edited plan: version ${result.planVersion}, ${countOf(result.readied, 'task')} ready.`,
        onChanged,
        failedAway(
          'Approving the edited plan',
          planText,
          'Your edited plan is back in the editor on the session’s page, while the same plan waits for approval.',
        ),
        planChanged(editedVersion),
      );
      // The editor shows the plan that waits now; the edit, made to another one, is kept beside it
      // (not in the output, which the next action's answer replaces) until a decision is taken.
      if (!approved && keptEdit.isConnected && approveOutput.querySelector('.plan-changed')) {
        keepEdit(editedText, editedVersion);
      }
      // A refused edit stays in the editor to be fixed; one approved is the plan now, no draft.
      if (approved) {
        replaceChildren(keptEdit);
        planEdited = false;
        planText.defaultValue = planText.value;
        draftsSent(planText);
      }
    }),
  );
  reject.addEventListener(
    'click',
    guarded(async () => {
      if (!reason.value.trim()) {
        showFormMistake(approveOutput, 'Rejecting', 'Give a reason for rejecting the plan.', reason);
        return;
      }
      const rejectedVersion = shownVersion();
      const rejected = await runAction(
        reject,
        approveOutput,
        'Rejecting the plan',
        () => api.reject(id, reason.value.trim(), rejectedVersion),
        () => 'Rejected: the session ends as failed.',
        onChanged,
        failedAway('Rejecting the plan', reason, 'Your reason is back in its field on the session’s page.'),
        planChanged(rejectedVersion),
      );
      // Given: the reason stays in sight beside the rejection, but is no draft any more.
      if (rejected) {
        replaceChildren(keptEdit);
        reason.defaultValue = reason.value;
        draftsSent(reason);
      }
    }),
  );
  send.addEventListener(
    'click',
    guarded(async () => {
      if (!message.value.trim()) {
        showFormMistake(steerOutput, 'Sending the message', 'Write the message first.', message);
        return;
      }
      await runAction(
        send,
        steerOutput,
        'Sending the message',
        async () => {
          const sent = await api.sendMessage(id, message.value.trim());
          message.value = '';
          draftsSent(message);
          return sent;
        },
        () => 'Message sent: the orchestrator reads it at the next phase gate or the final synthesis.',
        onChanged,
        failedAway(
          'Sending the message',
          message,
          'Your message is back in its field on the session’s page.',
        ),
      );
    }),
  );
  // Cancelling cannot be undone: the button asks first, the focus on the answer that keeps it.
  /** The question while it is asked (or was last). */
  let cancelQuestion = null;
  cancel.addEventListener('click', () => {
    cancelQuestion = confirmInline({
      cell: cancelOutput,
      opener: cancel,
      restore: null,
      question: 'Cancel this session? Its open tasks are stopped; this cannot be undone.',
      label: 'Cancel this session?',
      yes: 'Yes, cancel session',
      no: 'Keep it',
      danger: true,
      after: () => cancelOutput,
      run: async () => {
        await guarded(() =>
          runAction(
            cancel,
            cancelOutput,
            'Cancelling',
            () => api.cancel(id),
            () => 'Cancelled.',
            onChanged,
            failedAway('Cancelling the session'),
          ),
        )();
        return true;
      },
    });
  });

  // Deleting cannot be undone either: the question says what goes, the focus on keeping it.
  remove.addEventListener('click', () =>
    confirmInline({
      cell: deleteOutput,
      opener: remove,
      restore: null,
      question:
        'Delete this session? Its objective, plan, tasks and their output, events and result are erased ' +
        'for good, for everyone; this cannot be undone.',
      label: 'Delete this session?',
      yes: 'Yes, delete session',
      no: 'Keep it',
      danger: true,
      run: deleteSession,
    }),
  );
  /** Deletes the session (the question's yes); a refusal is shown in place of the question. */
  async function deleteSession() {
    busy = true;
    remove.disabled = true;
    let failure = null;
    try {
      await api.deleteSession(id);
    } catch (error) {
      failure = error;
    }
    if (!failure) {
      onDeleted(session);
      return true;
    }
    if (failure.status === 403) deleteRefused = true;
    if (failure.status === 404) gone = true;
    const advice = DELETE_REFUSALS[failure.status];
    replaceChildren(
      deleteOutput,
      renderProblem(failure, 'Deleting the session'),
      advice ? h('p', {}, advice) : null,
    );
    // Answered after the person left the page: said on the page open now.
    if (!deleteOutput.isConnected && failure.status !== 401) {
      showSessionActionFailed({
        context: 'Deleting the session',
        objective: session?.objective ?? '',
        sessionId: id,
        error: failure,
        more: advice ? [h('p', {}, advice)] : [],
      });
    }
    // Refused for good: no longer offered from the moment the refusal shows, not only once the
    // session has been read again; the focus goes to the reason with it, not lost with the button.
    if (deleteRefused || gone) {
      deleteArea.hidden = true;
      deleteOutput.focus();
    }
    // A 409 means the page shows an old status: read it again (a 404 would only repeat itself).
    if (!gone) await onChanged();
    busy = false;
    if (session) update(session);
    // Still offered: the focus returns to it; refused for good: to the reason.
    if (deleteArea.hidden) deleteOutput.focus();
    else remove.focus();
    return true;
  }

  /**
   * Keeps `text`, an edit of plan version `version` that another plan replaced in the editor, beside
   * the editor (read-only, to copy from) until a decision is taken.
   */
  function keepEdit(text, version) {
    replaceChildren(
      keptEdit,
      field(
        `Your edit (made to plan version ${version}), kept`,
        h('textarea', {
          id: 'kept-plan-edit',
          className: 'code',
          spellcheck: false,
          readOnly: true,
          value: text,
        }),
        'Nothing of it was approved. Copy what you need into the editor above, which shows the plan waiting now.',
      ),
    );
  }

  /** The plan version this page shows: what a decision on it is about. */
  function shownVersion() {
    return session?.planVersion;
  }

  /** Enables the controls the session's state allows and refreshes the plan text. */
  function update(next) {
    session = next;
    const waiting = next.status === 'awaiting_approval' && next.approval?.pending === true;
    const open = !TERMINAL.has(next.status);
    for (const control of [approve, approveEdited, planText, reason, reject])
      control.disabled = busy || !waiting;
    for (const control of [message, send]) control.disabled = busy || !open;
    cancel.disabled = busy || !open;
    // Ended meanwhile (elsewhere, or by its budget): nothing left to ask.
    if (!open && cancelQuestion?.isConnected) replaceChildren(cancelOutput);
    // Only a finished session can be deleted; a running one offers Cancel instead.
    deleteArea.hidden = open || deleteRefused || gone;
    remove.disabled = busy;
    // A session without approval never waits for one: its approval panel would only be in the way.
    approvalPanel.hidden = next.approval?.mode !== 'required';
    approvalNote.textContent = waiting
      ? `The plan (phase ${(next.approval.pendingPhase ?? 0) + 1}) waits for your approval.`
      : 'No plan is waiting for approval.';
    const key = `${next.planVersion}:${next.approval?.pendingPhase}`;
    // What an edit is typed against: a draft kept as the page went comes back only onto this plan.
    planText.dataset.draftOf = `${id}:${key}`;
    if (waiting && (!planEdited || key !== planKey)) {
      const text = JSON.stringify(toEditablePlan(next.plan), null, 2);
      // An edit of the plan shown before (another plan waits now, read from the stream): kept beside
      // the editor, as one refused for that reason is; replaced unseen, it was lost.
      if (planEdited && planText.value !== planText.defaultValue && planTextVersion !== undefined) {
        keepEdit(planText.value, planTextVersion);
      }
      // Its default too: the plan as read is no draft of the person's (drafts.js keeps only edits).
      planText.defaultValue = text;
      planText.value = text;
      planTextVersion = next.planVersion;
      planEdited = false;
      const draft = takeDraft(planText);
      if (draft !== null) {
        planText.value = draft;
        planEdited = true;
      }
    }
    planKey = key;
  }

  const approvalPanel = h(
    'section',
    { className: 'card', attrs: { 'aria-labelledby': 'approval-title' } },
    h('h2', { id: 'approval-title' }, 'Plan approval'),
    approvalNote,
    h('div', { className: 'row' }, approve),
    field(
      'Edited plan (JSON)',
      planText,
      'Phases of tasks: name, role, instructions, depends_on, runner, agent.',
    ),
    h('div', { className: 'row' }, approveEdited),
    h('div', { className: 'row' }, field('Reason for rejecting', reason), reject),
    approveOutput,
    keptEdit,
  );
  const element = h(
    'div',
    { className: 'actions' },
    ...cards,
    approvalPanel,
    h(
      'section',
      { className: 'card', attrs: { 'aria-labelledby': 'steer-title' } },
      h('h2', { id: 'steer-title' }, 'Steer'),
      field('Message to the orchestrator', message),
      h('div', { className: 'row' }, send),
      steerOutput,
      h('h2', {}, 'Stop'),
      h('div', { className: 'row' }, cancel),
      cancelOutput,
      deleteArea,
      deleteOutput,
    ),
  );
  return { element, update };
}
