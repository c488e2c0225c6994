// Runs one claimed task: resolves its runtime, streams its output into events in batches,
// and turns the runtime's result or error into an outcome. Knows nothing about slots or leases.
import type { AgentRuntime, RuntimeRegistry, RuntimeTask } from '../agents/runtimes/runtime.ts';
import type { Usage } from '../domain/types.ts';
import { coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import type { WriteQueue } from '../store/write-queue.ts';
import { createOutputBuffer } from './output-buffer.ts';
import { appendTaskOutput, type Claim, type RunOutcome } from './task-ops.ts';

/** How long output lines gather before they are written (one transaction per flush, not per line). */
const OUTPUT_FLUSH_MS = 100;
/** Longest error message kept on a task. */
const MAX_ERROR_CHARS = 4000;

export interface TaskRunInput {
  claim: Claim;
  task: RuntimeTask;
  signal: AbortSignal;
  runtimes: RuntimeRegistry;
  queue: WriteQueue;
  logger: Logger;
  now(): number;
  /** Called after output lines were committed (wake event watchers). */
  onOutputStored(): void;
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
  const { claim, queue } = input;
  const buffer = createOutputBuffer();
  let timer: NodeJS.Timeout | null = null;
  const writes: Array<Promise<void>> = [];
  const logger = input.logger.child({ sessionId: claim.sessionId, taskId: claim.taskId });

  const flush = (): void => {
    timer = null;
    const lines = buffer.take(false);
    if (lines.length === 0) return;
    const write = queue
      .run((trx) => appendTaskOutput(trx, claim, lines, input.now()))
      .then(
        (stored) => {
          if (stored) input.onOutputStored();
        },
        (error: unknown) => {
          logger.warn({ err: coerceError(error) }, 'could not store task output');
        },
      );
    writes.push(write);
  };

  const outcome = await runToOutcome(input, logger, buffer, () => {
    if (timer === null) timer = setTimeout(flush, OUTPUT_FLUSH_MS);
  });
  if (timer) clearTimeout(timer);
  const lines = buffer.take(true);
  await Promise.all(writes);
  return lines.length > 0 ? { ...outcome, lines } : outcome;
}

async function runToOutcome(
  input: TaskRunInput,
  logger: Logger,
  buffer: ReturnType<typeof createOutputBuffer>,
  scheduleFlush: () => void,
): Promise<RunOutcome> {
  try {
    let runtime: AgentRuntime;
    try {
      runtime = input.runtimes.resolve({ runner: input.task.runner });
    } catch (error) {
      return { ok: false, error: coerceError(error).message, usage: toUsage(undefined) };
    }
    const result = await runtime.run(input.task, {
      signal: input.signal,
      logger,
      emitOutput(stream, chunk) {
        buffer.push(stream, chunk);
        if (buffer.pending > 0) scheduleFlush();
      },
    });
    return { ok: true, output: result.output, usage: toUsage(result.usage) };
  } catch (error) {
    const message = coerceError(error).message || 'the task failed without a message';
    return { ok: false, error: message.slice(0, MAX_ERROR_CHARS), usage: toUsage(undefined) };
  }
}
