// Turns claimed task rows into runs: the session's objective and trace and the outputs of the
// task's dependencies, read in the claiming (or handing-off) transaction. Used by the scheduler.
import type { Kysely } from 'kysely';
import type { DependencyOutput, RuntimeTask } from '../agents/runtimes/runtime.ts';
import type { StoredTraceContext } from '../observability/tracing.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import type { Database, SessionsTable, TasksTable } from '../store/schema.ts';
import { loadDependencyOutputs } from '../store/task-graph.ts';
import { toStoredTrace } from './task-runner.ts';

const RUN_SESSION_COLUMNS = ['id', 'objective', 'trace_parent', 'trace_state'] as const;

/** What a run needs of its session (one session: precompiled, no query building per step). */
const selectRunSession = precompileQuery<Database, Pick<SessionsTable, (typeof RUN_SESSION_COLUMNS)[number]>>(
  1,
  (db, [sessionId]) =>
    db
      .selectFrom('sessions')
      .select(RUN_SESSION_COLUMNS)
      .where('id', '=', sessionId as string),
);

/**
 * What a run needs of its session besides the task: the objective and the stored trace context,
 * neither of which changes once the session is stored.
 */
export interface RunSession {
  objective: string;
  trace: StoredTraceContext | undefined;
}

/** A claimed task with what its run needs, before the run starts. */
export interface PreparedRun {
  task: RuntimeTask;
  readyAt: number;
  /** The session's stored trace context (tracing on), continued by the attempt's span. */
  trace: StoredTraceContext | undefined;
}

/**
 * What a run needs besides the task row: its session's objective and trace, dependency outputs.
 * `knownDependencies`: rows whose dependency outputs the caller already holds (a hand-off whose
 * dependencies all finished in the same transaction); only the others are read. `knownSessions`:
 * sessions whose RunSession the caller holds (the hand-off's, from the runs that just finished);
 * only the others are read.
 */
export async function prepareRuns(
  trx: Kysely<Database>,
  rows: readonly TasksTable[],
  knownDependencies?: ReadonlyMap<string, DependencyOutput[]>,
  knownSessions?: ReadonlyMap<string, RunSession>,
): Promise<PreparedRun[]> {
  const sessions = new Map<string, RunSession>();
  const unknown: string[] = [];
  for (const id of new Set(rows.map((row) => row.session_id))) {
    const known = knownSessions?.get(id);
    if (known) sessions.set(id, known);
    else unknown.push(id);
  }
  const read =
    unknown.length === 0
      ? []
      : unknown.length === 1
        ? (await selectRunSession(trx, unknown[0]!)).rows
        : await trx.selectFrom('sessions').select(RUN_SESSION_COLUMNS).where('id', 'in', unknown).execute();
  for (const session of read) {
    sessions.set(session.id, { objective: session.objective, trace: toStoredTrace(session) });
  }
  const outputs = await loadDependencyOutputs(
    trx,
    rows.filter((row) => !knownDependencies?.has(row.id)).map((row) => row.id),
  );
  return rows.map((row) => ({
    readyAt: Number(row.ready_at ?? row.created_at),
    trace: sessions.get(row.session_id)?.trace,
    task: {
      sessionId: row.session_id,
      tenantId: row.tenant_id,
      objective: sessions.get(row.session_id)?.objective ?? '',
      taskId: row.id,
      name: row.name,
      role: row.role,
      instructions: row.instructions,
      runner: row.runner,
      agentId: row.agent_id,
      attempt: Number(row.attempts),
      dependencies: knownDependencies?.get(row.id) ?? outputs.get(row.id) ?? [],
      kind: row.kind,
    } satisfies RuntimeTask,
  }));
}
