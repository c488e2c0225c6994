// Runs one claimed task: resolves its runtime, streams its output into events in batches,
// and turns the runtime's result or error into an outcome. Knows nothing about slots or leases.
import type { AgentRuntime, RuntimeRegistry, RuntimeTask } from '../agents/runtimes/runtime.ts';
import { headOf } from '../domain/text-cut.ts';
import { isSameUsage, type ModelUsage, maxUsage, type Usage } from '../domain/types.ts';
import { AppError, coerceError } from '../errors/app-error.ts';
import { type GenAiTracer, MAOS_PROVIDER } from '../observability/genai-spans.ts';
import type { Logger } from '../observability/logger.ts';
import { runInSessionTrace } from '../observability/session-trace.ts';
import { logTaskAttemptFailed } from '../observability/task-attempt-log.ts';
import type { StoredTraceContext } from '../observability/tracing.ts';
import { createFlushClock } from './flush-clock.ts';
import { createOutputBuffer } from './output-buffer.ts';
import type { RecordProgress } from './progress-recorder.ts';
import { createRunLogger } from './run-logger.ts';
import type { Claim, RunOutcome } from './task-outcome.ts';

/**
 * How often gathered output lines are written (the flushes of all runs of a tick in one write
 * operation, engine/progress-recorder.ts; not one per line); an unfinished line is written in
 * pieces once it has waited a whole interval (see output-buffer.ts).
 */
const OUTPUT_FLUSH_MS = 100;
const outputFlushClock = createFlushClock(OUTPUT_FLUSH_MS);
/** Least time between two writes of a run's spend record (engine/run-spend.ts). */
const SPEND_RECORD_MS = 1000;
/** Longest error message kept on a task. */
const MAX_ERROR_CHARS = 4000;

export interface TaskRunInput {
  claim: Claim;
  task: RuntimeTask;
  signal: AbortSignal;
  runtimes: RuntimeRegistry;
  /** Writes the run's output flushes (together with those of the other runs of the same tick). */
  recordProgress: RecordProgress;
  logger: Logger;
  now(): number;
  /** Called after output lines were committed (wake event watchers). */
  onOutputStored(): void;
  /** A write of the run found its claim gone (RuntimeContext.claimLost): stop the run. */
  onClaimLost?(): void;
  /** Tracing on: the attempt runs in an `invoke_agent`/`plan` span of the session's stored trace. */
  genAi?: GenAiTracer;
  /** The session's stored trace context, which the attempt's span continues. */
  trace?: StoredTraceContext | undefined;
}

/** The stored trace context of a session row (migration 0005 columns), if it has one. */
export function toStoredTrace(row: {
  trace_parent?: string | null;
  trace_state?: string | null;
}): StoredTraceContext | undefined {
  if (!row.trace_parent) return undefined;
  return row.trace_state
    ? { traceparent: row.trace_parent, tracestate: row.trace_state }
    : { traceparent: row.trace_parent };
}

function toUsage(partial: Partial<Usage> | undefined): Usage {
  return {
    inputTokens: partial?.inputTokens ?? 0,
    outputTokens: partial?.outputTokens ?? 0,
    cacheReadTokens: partial?.cacheReadTokens ?? 0,
    costUsd: partial?.costUsd ?? 0,
  };
}

/** Resolves the runtime kind for metrics without throwing. */
export function describeRuntime(runtimes: RuntimeRegistry, runner: string | null): string {
  try {
    return runtimes.resolve({ runner }).kind;
  } catch {
    return runner === null ? 'llm' : 'command';
  }
}

/**
 * Runs the task to an outcome. Never throws. Lines flushed while the task ran are committed before
 * this resolves, so they precede the result in the log (finishes are coalesced into operations that
 * may have been queued earlier than a late output write); the lines still buffered at the end are
 * returned in `outcome.lines` for the finish to write in its own transaction.
 */
export async function runClaimedTask(input: TaskRunInput): Promise<RunOutcome> {
  const { claim } = input;
  const buffer = createOutputBuffer();
  // Whether this run's flush waits for the clock's next tick.
  let waiting = false;
  const writes: Array<Promise<void>> = [];
  const logger = createRunLogger(input.logger, {
    tenantId: claim.tenantId,
    sessionId: claim.sessionId,
    taskId: claim.taskId,
  });

  // The run's spend as the runtime last reported it, as last queued for writing, and as last
  // committed on the task (engine/run-spend.ts): recorded with the output flushes, with its split
  // per provider and model when the runtime gives one.
  let spend: Usage | undefined;
  let spendModels: ModelUsage[] | undefined;
  let spendQueued: Usage | undefined;
  let spendQueuedAt = Number.NEGATIVE_INFINITY;
  let spendOnRecord: Usage | undefined;
  let modelsOnRecord: ModelUsage[] | undefined;

  /** The next tick of the flush clock writes what is gathered by then. */
  function scheduleFlush(): void {
    if (waiting) return;
    waiting = true;
    outputFlushClock.join(flush);
  }

  const flush = (): void => {
    waiting = false;
    const lines = buffer.take(false);
    // The unfinished lines held now are written at the next tick, after a whole interval.
    buffer.startInterval();
    if (buffer.pending > 0) scheduleFlush();
    // The spend is recorded at most once a SPEND_RECORD_MS: a streaming estimate changes at every
    // flush, and a killed run loses at most that much of it.
    const spendChanged = !isSameUsage(spend, spendQueued);
    const spendDue = spendChanged && input.now() - spendQueuedAt >= SPEND_RECORD_MS;
    if (spendChanged && !spendDue) scheduleFlush();
    const newSpend = spendDue ? spend : undefined;
    const newModels = spendDue ? spendModels : undefined;
    if (lines.length === 0 && newSpend === undefined) return;
    if (newSpend) {
      spendQueued = newSpend;
      spendQueuedAt = input.now();
    }
    const write = input.recordProgress({ claim, lines, spend: newSpend, models: newModels }).then(
      (stored) => {
        if (!stored) return;
        if (newSpend) {
          spendOnRecord = newSpend;
          modelsOnRecord = newModels;
        }
        if (lines.length > 0) input.onOutputStored();
      },
      (error: unknown) => {
        logger.warn({ err: coerceError(error) }, 'could not store task output');
      },
    );
    writes.push(write);
  };

  const outcome = await runToOutcome(input, logger, buffer, scheduleFlush, (usage, models) => {
    spend = usage;
    spendModels = models;
    scheduleFlush();
  });
  if (waiting) outputFlushClock.leave(flush);
  const lines = buffer.take(true);
  await Promise.all(writes);
  // A run that succeeded reports its usage as the provider counted it. One that failed may report
  // less than it spent (a planner aborted mid-round reports nothing of its finished rounds): it is
  // charged at least what it last said it had spent, which is also at least its record.
  const usage = outcome.ok ? outcome.usage : maxUsage(outcome.usage, spend);
  // A stopped run may be released and run again under the same attempt (engine/stopped-run.ts).
  const openStreams = input.signal.aborted ? buffer.openStreams() : [];
  if (lines.length === 0 && !spendOnRecord && usage === outcome.usage && openStreams.length === 0) {
    return outcome;
  }
  return {
    ...outcome,
    usage,
    ...(lines.length > 0 ? { lines } : {}),
    ...(spendOnRecord ? { spendOnRecord } : {}),
    ...(modelsOnRecord ? { modelsOnRecord } : {}),
    ...(openStreams.length > 0 ? { openStreams } : {}),
  };
}

async function runToOutcome(
  input: TaskRunInput,
  logger: Logger,
  buffer: ReturnType<typeof createOutputBuffer>,
  scheduleFlush: () => void,
  reportSpend: (usage: Usage, models?: ModelUsage[]) => void,
): Promise<RunOutcome> {
  // What the runtime says the run spent before it failed (see RuntimeContext.reportFailedRunUsage).
  let spentBeforeFailure: Usage | undefined;
  // What it spent per provider and model (see RuntimeContext.reportModelUsage), answered or failed.
  let modelUsage: ModelUsage[] | undefined;
  const withModels = () => (modelUsage ? { modelUsage } : {});
  try {
    let runtime: AgentRuntime;
    try {
      runtime = input.runtimes.resolve({ runner: input.task.runner });
    } catch (error) {
      return { ok: false, error: coerceError(error).message, usage: toUsage(undefined) };
    }
    const execute = async () => {
      try {
        return await runtime.run(input.task, {
          signal: input.signal,
          logger,
          reportFailedRunUsage(usage) {
            spentBeforeFailure = usage;
          },
          reportModelUsage(models) {
            modelUsage = models;
          },
          reportSpend,
          leaseOwner: input.claim.owner,
          claimLost() {
            input.onClaimLost?.();
          },
          emitOutput(stream, chunk) {
            buffer.push(stream, chunk);
            if (buffer.pending > 0) scheduleFlush();
          },
        });
      } catch (error) {
        // Still inside the attempt's span: the line carries the session's trace.id and span.id.
        logTaskAttemptFailed(logger, error, {
          attempt: input.claim.attempt,
          stopped: input.signal.aborted,
        });
        throw error;
      }
    };
    const { genAi, task } = input;
    const result = genAi
      ? await runInSessionTrace(
          genAi,
          input.trace,
          {
            sessionId: task.sessionId,
            role: task.role,
            kind: task.kind,
            // The LLM runtime names the provider and model that served the call once it is known.
            provider: MAOS_PROVIDER,
            taskId: task.taskId,
          },
          execute,
        )
      : await execute();
    return {
      ok: true,
      output: result.output,
      usage: toUsage(result.usage),
      ...(result.deliveredMessageIds?.length ? { deliveredMessageIds: result.deliveredMessageIds } : {}),
      ...withModels(),
    };
  } catch (error) {
    const message = coerceError(error).message || 'the task failed without a message';
    return {
      ok: false,
      error: headOf(message, MAX_ERROR_CHARS),
      usage: toUsage(spentBeforeFailure),
      ...withModels(),
      // The code, not the text, tells the engine why (a runner's stderr could say anything).
      ...(error instanceof AppError ? { code: error.code } : {}),
    };
  }
}
