// Plan versions of a session (GET /v1/sessions/:id/plans): each version's tasks with their
// instructions and the diff to the one before, so an edit made at approval is visible.
import { api } from '../api.js';
import { formatTime, h, isolate, replaceChildren } from '../dom.js';
import { renderProblem } from '../problem.js';

function describeChange(change) {
  // Isolated: a direction override in an instruction would reorder the words after it.
  const show = (value) => (value === undefined || value === null ? '—' : isolate(JSON.stringify(value)));
  return `${change.field}: ${show(change.before)} → ${show(change.after)}`;
}

function renderDiff(version) {
  const { diff } = version;
  // No diff: the first version, or this one or the one before cannot be read (`unreadable`).
  if (!diff && version.version === 1) return h('p', { className: 'muted' }, 'First version.');
  if (!diff) return h('p', { className: 'muted' }, 'No diff: this version or the one before cannot be read.');
  const items = [
    ...diff.added.map((name) => h('li', { className: 'diff-added' }, `+ added ${name}`)),
    ...diff.removed.map((name) => h('li', { className: 'diff-removed' }, `− removed ${name}`)),
    ...diff.changed.map((task) =>
      h('li', {}, `~ ${task.name}: ${task.changes.map(describeChange).join('; ')}`),
    ),
    // Phases by position; absent from the diff when they did not change.
    ...(diff.phases?.added ?? []).map((phase) =>
      h('li', { className: 'diff-added' }, `+ added phase ${phase.index} "${isolate(phase.name)}"`),
    ),
    ...(diff.phases?.removed ?? []).map((phase) =>
      h('li', { className: 'diff-removed' }, `− removed phase ${phase.index} "${isolate(phase.name)}"`),
    ),
    ...(diff.phases?.renamed ?? []).map((phase) =>
      h('li', {}, `~ phase ${phase.index} renamed "${isolate(phase.before)}" → "${isolate(phase.after)}"`),
    ),
  ];
  return items.length === 0
    ? h('p', { className: 'muted' }, 'No change.')
    : h('ul', { className: 'diff' }, ...items);
}

function renderTasks(plan) {
  // A stored plan that cannot be read (a hand edit of the database gone wrong): listed, not shown.
  if (!plan)
    return h('p', { className: 'muted' }, 'This version cannot be read (its stored plan is damaged).');
  return h(
    'ul',
    {},
    ...plan.phases.flatMap((phase) =>
      phase.tasks.map((task) =>
        h(
          'li',
          {},
          // The phase's name is any text a planner or a person gave: isolated, so that a direction
          // override in it does not reorder the task's name and role after it.
          `${isolate(phase.name)} / ${task.name} (${task.role})`,
          task.dependsOn.length > 0 ? ` after ${task.dependsOn.join(', ')}` : '',
          // What the task is to do: what a person approving the plan reads it for.
          h('div', { className: 'muted plan-instructions' }, task.instructions),
        ),
      ),
    ),
  );
}

/**
 * The plan-versions panel of session `id`; `reload(signal)` reads the versions again and resolves to
 * whether they could be read (the error is shown in the panel otherwise: the signal's reason when
 * it ended the read).
 */
export function createPlanVersions(id) {
  const body = h('div', { id: 'plan-versions' }, h('p', { className: 'muted' }, 'No plan yet.'));
  let shown = -1;
  async function reload(signal) {
    try {
      const { items } = await api.listPlans(id, { signal });
      if (items.length === shown) return true;
      shown = items.length;
      if (items.length === 0) {
        replaceChildren(body, h('p', { className: 'muted' }, 'No plan yet.'));
        return true;
      }
      // A version already shown keeps the state the person left it in (opened, closed), and its
      // summary the keyboard focus. Why: the list is drawn anew when a version comes (an adaptive
      // session's next phase), which closed what was being read and dropped the focus to the start
      // of the page, from where Tab would start over.
      const wasOpen = new Map();
      for (const details of body.querySelectorAll('details[data-version]'))
        wasOpen.set(details.dataset.version, details.open);
      const active = document.activeElement;
      const focused =
        active?.tagName === 'SUMMARY' && body.contains(active)
          ? active.closest('details')?.dataset.version
          : undefined;
      replaceChildren(
        body,
        ...items
          .slice()
          .reverse()
          .map((version, index) =>
            h(
              'details',
              {
                open: wasOpen.get(String(version.version)) ?? index === 0,
                dataset: { version: String(version.version) },
              },
              h('summary', {}, `Version ${version.version} · ${formatTime(version.createdAt)}`),
              renderDiff(version),
              renderTasks(version.plan),
            ),
          ),
      );
      if (focused !== undefined)
        body.querySelector(`details[data-version="${CSS.escape(focused)}"] > summary`)?.focus();
      return true;
    } catch (error) {
      shown = -1;
      replaceChildren(
        body,
        renderProblem(signal?.aborted ? signal.reason : error, 'Loading the plan versions'),
      );
      return false;
    }
  }
  return { element: body, reload };
}
