// "Stop the runs of session X" across replicas: a transaction that cancels running tasks (a cancel,
// an expired deadline, a crossed budget) notifies their session's stop channel at commit
// (advance-sessions.ts cancelOpenTasks), and every replica running one aborts it at once instead of
// at its next lease renewal.
import type { AgentRuntime, RuntimeRegistry } from '../agents/runtimes/runtime.ts';
import { type Notifier, sessionStopChannel } from './notifier.ts';

export interface SessionStopDeps {
  notifier: Notifier;
  /**
   * Whether the session has ended (read from the store). A wake-up alone proves nothing: notifiers
   * may wake subscribers spuriously (the PostgreSQL one re-wakes channels after a reconnect), and a
   * run must never be stopped for a session that still runs. A deleted session (no row) has ended.
   */
  hasEnded(sessionId: string): Promise<boolean>;
  /** Stops this process's runs of the session (the scheduler's abort: the run's AbortSignal). */
  abortSession(sessionId: string): void;
  onError(error: unknown): void;
}

/**
 * Wraps the registry so that every run listens on its session's stop channel while it runs; on a
 * wake-up for a session that has ended, this process's runs of it are aborted. Runs subscribe
 * through the runtime call because that is where a run starts and ends.
 */
export function withSessionStops(runtimes: RuntimeRegistry, deps: SessionStopDeps): RuntimeRegistry {
  const checking = new Set<string>();
  const onStop = (sessionId: string) => {
    // One read per session at a time: several runs of it here share a wake-up.
    if (checking.has(sessionId)) return;
    checking.add(sessionId);
    deps
      .hasEnded(sessionId)
      .then((ended) => {
        if (ended) deps.abortSession(sessionId);
      })
      .catch(deps.onError)
      .finally(() => checking.delete(sessionId));
  };
  const wrapped = new WeakMap<AgentRuntime, AgentRuntime>();
  const wrap = (runtime: AgentRuntime): AgentRuntime => {
    let stoppable = wrapped.get(runtime);
    if (!stoppable) {
      // Everything but run() is the runtime's own (through the prototype), members added later too.
      const run: AgentRuntime['run'] = async (task, ctx) => {
        const off = deps.notifier.subscribe(sessionStopChannel(task.sessionId), () => onStop(task.sessionId));
        try {
          return await runtime.run(task, ctx);
        } finally {
          off();
        }
      };
      stoppable = Object.assign(Object.create(runtime) as AgentRuntime, { run });
      wrapped.set(runtime, stoppable);
    }
    return stoppable;
  };
  return {
    registerCommand: (runtime) => runtimes.registerCommand(runtime),
    registerLlm: (runtime) => runtimes.registerLlm(runtime),
    hasLlm: () => runtimes.hasLlm(),
    hasRunner: (runner) => runtimes.hasRunner(runner),
    mayUseRunner: (tenantId, runner) => runtimes.mayUseRunner(tenantId, runner),
    resolve: (task) => wrap(runtimes.resolve(task)),
  };
}
