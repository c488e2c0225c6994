import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseModelUsage, takeRunModelUsage } from '../../store/task-model-usage.ts';
import type { AgentRuntime, RuntimeTask } from '../runtimes/runtime.ts';
import { recordFailedAttemptSpend, recordModelSpend, withModelSpendLedger } from './model-spend.ts';

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

const ctx = { signal: new AbortController().signal, emitOutput() {}, logger: {} as never };

describe('a run’s spend per model', () => {
  test('each attempt counts under its provider and model; the run holds the sum for its finish', async () => {
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
    assert.deepEqual(await runtime.run(task('a'), ctx), { output: 'ok' });
    assert.deepEqual(parseModelUsage(takeRunModelUsage('a', 1)), [
      { provider: 'backup', model: 'b', ...usage(200, 0.5) },
      { provider: 'local', model: 'm', inputTokens: 50, outputTokens: 2, cacheReadTokens: 0, costUsd: 0.05 },
    ]);
  });

  test('a run that throws holds what it spent too; spend outside a run is ignored', async () => {
    const failing: AgentRuntime = {
      kind: 'llm',
      async run() {
        recordModelSpend({ provider: 'local', model: 'm' }, usage(7, 0.07));
        throw new Error('provider down');
      },
    };
    await assert.rejects(withModelSpendLedger(failing).run(task('b'), ctx), /provider down/);
    assert.deepEqual(parseModelUsage(takeRunModelUsage('b', 1)), [
      { provider: 'local', model: 'm', ...usage(7, 0.07) },
    ]);
    recordModelSpend({ provider: 'local', model: 'm' }, usage(1, 1));
    assert.equal(takeRunModelUsage('c', 1), null);
  });

  test('concurrent runs keep their ledgers apart', async () => {
    const runtime = withModelSpendLedger({
      kind: 'llm',
      async run(t) {
        await new Promise((resolve) => setTimeout(resolve, t.taskId === 'd' ? 20 : 1));
        recordModelSpend({ provider: t.taskId, model: 'm' }, usage(1, 0));
        return { output: t.taskId };
      },
    });
    await Promise.all([runtime.run(task('d'), ctx), runtime.run(task('e'), ctx)]);
    assert.deepEqual(
      parseModelUsage(takeRunModelUsage('d', 1)).map((entry) => entry.provider),
      ['d'],
    );
    assert.deepEqual(
      parseModelUsage(takeRunModelUsage('e', 1)).map((entry) => entry.provider),
      ['e'],
    );
  });
});
