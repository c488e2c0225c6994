// Advance: the pure decision of what happens next in a session given its tasks' states —
// which pending tasks become ready, which are cancelled because a dependency did not succeed,
// and whether the session is finished (and how). Runs inside the finishing transaction.
import { findSinkTasks } from './plan.ts';
import { isTerminalTaskStatus } from './task-state.ts';
import type { TaskStatus } from './types.ts';

export interface AdvanceTask {
  id: string;
  name: string;
  status: TaskStatus;
  /** Names of the tasks it depends on. */
  dependsOn: readonly string[];
  result?: string | null;
  error?: string | null;
  /** `plan` tasks (the orchestrator's planning and phase gates) decide; their output is no result. */
  kind?: string;
}

export interface AdvanceDecision {
  /** Pending tasks whose dependencies all succeeded. */
  ready: string[];
  /** Pending tasks that can never run, with the reason. */
  cancel: Array<{ id: string; reason: string }>;
  /** Set when every task is (or is now) terminal. */
  outcome: { status: 'completed'; result: string } | { status: 'failed'; error: string } | null;
}

/** Decides the next step of a session. Pure. */
export function advanceSession(tasks: readonly AdvanceTask[]): AdvanceDecision {
  const status = new Map(tasks.map((task) => [task.name, task.status]));
  const blockers = new Map<string, string>();
  const cancel: AdvanceDecision['cancel'] = [];
  // Cancellation spreads along chains, so repeat until nothing changes (plans are small).
  let changed = true;
  while (changed) {
    changed = false;
    for (const task of tasks) {
      if (status.get(task.name) !== 'pending') continue;
      const blocker = task.dependsOn.find((dep) => {
        const depStatus = status.get(dep);
        return depStatus === 'failed' || depStatus === 'cancelled';
      });
      if (blocker === undefined) continue;
      const root = blockers.get(blocker) ?? blocker;
      blockers.set(task.name, root);
      status.set(task.name, 'cancelled');
      cancel.push({ id: task.id, reason: `dependency ${root} did not succeed` });
      changed = true;
    }
  }
  const ready = tasks
    .filter(
      (task) =>
        status.get(task.name) === 'pending' && task.dependsOn.every((dep) => status.get(dep) === 'succeeded'),
    )
    .map((task) => task.id);
  const allTerminal = tasks.every((task) => isTerminalTaskStatus(status.get(task.name)!));
  if (!allTerminal || ready.length > 0) return { ready, cancel, outcome: null };
  return { ready, cancel, outcome: decideOutcome(tasks, status) };
}

/** An error text that leads with a stable code, e.g. `INVALID_PLAN: …`. */
const CODED_ERROR = /^[A-Z][A-Z_]+: /;

function decideOutcome(
  tasks: readonly AdvanceTask[],
  status: ReadonlyMap<string, TaskStatus>,
): NonNullable<AdvanceDecision['outcome']> {
  const failed = tasks.filter((task) => status.get(task.name) === 'failed');
  const [only] = failed;
  const byOrchestrator = only?.kind === 'plan' || only?.kind === 'synthesize';
  if (failed.length === 1 && byOrchestrator && CODED_ERROR.test(only?.error ?? '')) {
    // The orchestrator's own task (plan, phase gate, synthesis) failing is the session's reason, and
    // its error leads with the code (`INVALID_PLAN: …`) that clients match on.
    return { status: 'failed', error: only!.error! };
  }
  if (failed.length > 0) {
    const cancelled = tasks.filter((task) => status.get(task.name) === 'cancelled').map((task) => task.name);
    const reasons = failed.map((task) => `task ${task.name} failed: ${task.error ?? 'unknown error'}`);
    const tail = cancelled.length > 0 ? `; cancelled as a consequence: ${cancelled.join(', ')}` : '';
    return { status: 'failed', error: `${reasons.join('; ')}${tail}` };
  }
  const notDone = tasks.filter((task) => status.get(task.name) !== 'succeeded').map((task) => task.name);
  if (notDone.length > 0) {
    return { status: 'failed', error: `tasks did not succeed: ${notDone.join(', ')}` };
  }
  const sinks = new Set(findSinkTasks(tasks.filter((task) => task.kind !== 'plan')));
  const outputs = tasks.filter((task) => sinks.has(task.name));
  const result =
    outputs.length === 1
      ? (outputs[0]!.result ?? '')
      : outputs.map((task) => `## ${task.name}\n${task.result ?? ''}`).join('\n\n');
  return { status: 'completed', result };
}
