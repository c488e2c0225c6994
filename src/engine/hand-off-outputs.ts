// The dependency outputs a handed-off task needs, when the finishes that readied it are in hand: a
// chain's next step gets its predecessor's answer from memory instead of reading it back.
import type { DependencyOutput } from '../agents/runtimes/runtime.ts';
import { toStorableText } from '../store/storable-text.ts';
import type { GraphTask } from '../store/task-graph.ts';
import type { Claim, RunOutcome } from './task-outcome.ts';

/**
 * The dependency outputs of handed-off tasks (`dependencies`: task id → the tasks it depends on)
 * whose dependencies all succeeded among `finished`; tasks with any other dependency are left out.
 */
export function outputsFinishedHere(
  finished: ReadonlyArray<{ claim: Claim; outcome: RunOutcome }>,
  dependencies: ReadonlyMap<string, GraphTask[]>,
): Map<string, DependencyOutput[]> {
  const outputs = new Map<string, string>();
  // As the store keeps them (U+0000 and unpaired surrogates as U+FFFD), which a task that is claimed
  // instead reads: a prompt the same either way, never holding a lone surrogate a provider refuses.
  for (const { claim, outcome } of finished) {
    if (outcome.ok) outputs.set(claim.taskId, toStorableText(outcome.output.toWellFormed()));
  }
  const known = new Map<string, DependencyOutput[]>();
  for (const [taskId, tasks] of dependencies) {
    if (!tasks.every((task) => outputs.has(task.id))) continue;
    known.set(
      taskId,
      tasks.map((task) => ({
        taskId: task.id,
        name: task.name,
        role: task.role,
        output: outputs.get(task.id)!,
      })),
    );
  }
  return known;
}
