// "Stop the runs of session X" across replicas: a cancel or an expired deadline committed on one
// replica aborts that session's runs on every replica at once, instead of at their next lease renewal.
import type { AgentRuntime, RuntimeRegistry } from '../agents/runtimes/runtime.ts';
import type { Notifier } from './notifier.ts';

/** Channel on which "session X ended: stop its runs" is announced (PostgreSQL: to every replica). */
export function sessionStopChannel(sessionId: string): string {
  return `session-stop:${sessionId}`;
}

/**
 * Wraps the registry so that every run listens on its session's stop channel while it runs and,
 * when that channel fires, `abortSession` stops this process's runs of the session. Runs are
 * subscribed through the runtime (not the scheduler) because the runtime call is where a run starts
 * and ends; the scheduler's abort (the run's AbortSignal) does the stopping, as for a local cancel.
 */
export function withSessionStops(
  runtimes: RuntimeRegistry,
  notifier: Notifier,
  abortSession: (sessionId: string) => void,
): RuntimeRegistry {
  const wrapped = new WeakMap<AgentRuntime, AgentRuntime>();
  const wrap = (runtime: AgentRuntime): AgentRuntime => {
    let stoppable = wrapped.get(runtime);
    if (!stoppable) {
      stoppable = {
        kind: runtime.kind,
        ...(runtime.hasRunner ? { hasRunner: (runner: string) => runtime.hasRunner!(runner) } : {}),
        async run(task, ctx) {
          const off = notifier.subscribe(sessionStopChannel(task.sessionId), () =>
            abortSession(task.sessionId),
          );
          try {
            return await runtime.run(task, ctx);
          } finally {
            off();
          }
        },
      };
      wrapped.set(runtime, stoppable);
    }
    return stoppable;
  };
  return {
    registerCommand: (runtime) => runtimes.registerCommand(runtime),
    registerLlm: (runtime) => runtimes.registerLlm(runtime),
    hasLlm: () => runtimes.hasLlm(),
    hasRunner: (runner) => runtimes.hasRunner(runner),
    resolve: (task) => wrap(runtimes.resolve(task)),
  };
}
