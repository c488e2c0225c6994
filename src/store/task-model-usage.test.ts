import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeModelUsage, parseModelUsage } from './task-model-usage.ts';

const local = {
  provider: 'local',
  model: 'm',
  inputTokens: 10,
  outputTokens: 2,
  cacheReadTokens: 1,
  costUsd: 0.1,
};
const backup = {
  provider: 'backup',
  model: 'b',
  inputTokens: 5,
  outputTokens: 1,
  cacheReadTokens: 0,
  costUsd: 0.2,
};

describe('stored spend per model', () => {
  test('entries of the same model add up (cost to the millionth); ordered by provider, then model', () => {
    const appended = `[${encodeModelUsage([local, backup]).slice(1, -1)},${encodeModelUsage([local]).slice(1, -1)}]`;
    assert.deepEqual(parseModelUsage(appended), [
      backup,
      { ...local, inputTokens: 20, outputTokens: 4, cacheReadTokens: 2, costUsd: 0.2 },
    ]);
  });

  test('unreadable stored values read as no models, never throw', () => {
    for (const text of [null, undefined, '', 'not json', '{}', '[1, null, {"model": "m"}]']) {
      assert.deepEqual(parseModelUsage(text), [], String(text));
    }
    assert.deepEqual(parseModelUsage('[{"provider":"p","model":"m","inputTokens":"x"}]'), [
      { provider: 'p', model: 'm', inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 },
    ]);
  });
});
