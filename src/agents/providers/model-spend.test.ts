import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelUsage } from '../../domain/types.ts';
import type { AgentRuntime, RuntimeContext, RuntimeTask } from '../runtimes/runtime.ts';
import {
  recordFailedAttemptSpend,
  recordModelSpend,
  startModelAttempt,
  withModelSpendLedger,
} from './model-spend.ts';

const usage = (inputTokens: number, costUsd: number) => ({
  inputTokens,
  outputTokens: 1,
  cacheReadTokens: 0,
  costUsd,
});

function task(taskId: string): RuntimeTask {
  return {
    sessionId: 's',
    tenantId: 't',
    objective: 'o',
    taskId,
    name: 'n',
    role: 'r',
    instructions: 'i',
    runner: null,
    agentId: null,
    attempt: 1,
    dependencies: [],
    kind: 'agent',
  };
}

/** A run context that keeps what the run reports per model, by task id. */
function reporting(): { reported: Map<string, ModelUsage[]>; ctx: (taskId: string) => RuntimeContext } {
  const reported = new Map<string, ModelUsage[]>();
  return {
    reported,
    ctx: (taskId) => ({
      signal: new AbortController().signal,
      emitOutput() {},
      logger: {} as never,
      reportModelUsage: (models) => reported.set(taskId, models),
    }),
  };
}

describe('a run’s spend per model', () => {
  test('each attempt counts under its provider and model; the run reports the sum for its finish', async () => {
    const { reported, ctx } = reporting();
    const runtime = withModelSpendLedger({
      kind: 'llm',
      async run() {
        recordFailedAttemptSpend({ provider: 'local', model: 'm' }, usage(40, 0.04));
        // Refused before it answered: no spend, no entry.
        recordFailedAttemptSpend(
          { provider: 'local', model: 'x' },
          { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
        );
        recordModelSpend({ provider: 'backup', model: 'b' }, usage(200, 0.5));
        recordModelSpend({ provider: 'local', model: 'm' }, usage(10, 0.01));
        return { output: 'ok' };
      },
    });
    assert.deepEqual(await runtime.run(task('a'), ctx('a')), { output: 'ok' });
    // In the order first served; repeats of a model add up.
    assert.deepEqual(reported.get('a'), [
      { provider: 'local', model: 'm', inputTokens: 50, outputTokens: 2, cacheReadTokens: 0, costUsd: 0.05 },
      { provider: 'backup', model: 'b', ...usage(200, 0.5) },
    ]);
  });

  test('a run that throws reports what it spent too; spend outside a run is ignored', async () => {
    const { reported, ctx } = reporting();
    const failing: AgentRuntime = {
      kind: 'llm',
      async run() {
        recordModelSpend({ provider: 'local', model: 'm' }, usage(7, 0.07));
        throw new Error('provider down');
      },
    };
    await assert.rejects(withModelSpendLedger(failing).run(task('b'), ctx('b')), /provider down/);
    assert.deepEqual(reported.get('b'), [{ provider: 'local', model: 'm', ...usage(7, 0.07) }]);
    recordModelSpend({ provider: 'local', model: 'm' }, usage(1, 1));
    assert.equal(reported.size, 1);
    // A run no model served reports nothing.
    await withModelSpendLedger({ kind: 'llm', run: async () => ({ output: '' }) }).run(task('c'), ctx('c'));
    assert.equal(reported.has('c'), false);
  });

  test('concurrent runs keep their ledgers apart', async () => {
    const { reported, ctx } = reporting();
    const runtime = withModelSpendLedger({
      kind: 'llm',
      async run(t) {
        await new Promise((resolve) => setTimeout(resolve, t.taskId === 'd' ? 20 : 1));
        recordModelSpend({ provider: t.taskId, model: 'm' }, usage(1, 0));
        return { output: t.taskId };
      },
    });
    await Promise.all([runtime.run(task('d'), ctx('d')), runtime.run(task('e'), ctx('e'))]);
    assert.deepEqual(
      reported.get('d')?.map((entry) => entry.provider),
      ['d'],
    );
    assert.deepEqual(
      reported.get('e')?.map((entry) => entry.provider),
      ['e'],
    );
  });

  test('the spend reported while the run goes comes split by model, the part streaming under the attempt in progress', async () => {
    const splits: Array<ModelUsage[] | undefined> = [];
    const runtime = withModelSpendLedger({
      kind: 'llm',
      async run(_task, ctx) {
        startModelAttempt({ provider: 'local', model: 'm' });
        ctx.reportSpend?.(usage(30, 0.03));
        // Cut off mid-stream, charged 40 in all; the fallback streams 20 so far.
        recordFailedAttemptSpend({ provider: 'local', model: 'm' }, usage(40, 0.04));
        startModelAttempt({ provider: 'backup', model: 'b' });
        ctx.reportSpend?.({ inputTokens: 60, outputTokens: 2, cacheReadTokens: 0, costUsd: 0.1 });
        // Less than the attempts that ended: no split that could not add up to it.
        ctx.reportSpend?.(usage(10, 0.01));
        return { output: 'ok' };
      },
    });
    await runtime.run(task('f'), {
      signal: new AbortController().signal,
      emitOutput() {},
      logger: {} as never,
      reportSpend: (_usage, models) => splits.push(models),
    });
    assert.deepEqual(splits, [
      [{ provider: 'local', model: 'm', ...usage(30, 0.03) }],
      [
        { provider: 'local', model: 'm', ...usage(40, 0.04) },
        {
          provider: 'backup',
          model: 'b',
          inputTokens: 20,
          outputTokens: 1,
          cacheReadTokens: 0,
          costUsd: 0.06,
        },
      ],
      [],
    ]);
  });
});
