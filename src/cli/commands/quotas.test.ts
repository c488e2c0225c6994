import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeBudget } from './quotas.ts';

test("the default budget's cost limit is a plain decimal, never exponent notation", () => {
  assert.equal(describeBudget({ maxCostUsd: 1e-7 }), '$0.0000001');
  assert.equal(
    describeBudget({ maxTokens: 500, maxCostUsd: 2.5, deadlineSeconds: 60 }),
    '500 tokens, $2.5, 60 s deadline',
  );
  assert.equal(describeBudget(undefined), 'none');
});
