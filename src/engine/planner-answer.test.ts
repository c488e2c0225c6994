// Unit tests for reading a JSON object out of a fenced or chatty orchestrator answer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { jsonCandidates, recoverJsonAnswer } from './planner-answer.ts';

const schema = z.object({ a: z.number() });

describe('recoverJsonAnswer', () => {
  test('a fenced object, with or without a language tag', () => {
    assert.deepEqual(recoverJsonAnswer('```json\n{"a": 1}\n```', schema), { ok: true, value: { a: 1 } });
    assert.deepEqual(recoverJsonAnswer('```\n{"a": 2}\n```', schema), { ok: true, value: { a: 2 } });
  });

  test('an object between sentences', () => {
    assert.deepEqual(recoverJsonAnswer('Here it is: {"a": 3} — enjoy.', schema), {
      ok: true,
      value: { a: 3 },
    });
  });

  test('the first fenced block that fits wins over a broken one', () => {
    const text = '```json\n{"a": \n```\nfixed:\n```json\n{"a": 4}\n```';
    assert.deepEqual(recoverJsonAnswer(text, schema), { ok: true, value: { a: 4 } });
  });

  test('JSON that breaks the schema is reported with its issues', () => {
    const recovered = recoverJsonAnswer('```json\n{"a": "x"}\n```', schema);
    assert.equal(recovered?.ok, false);
    assert.equal(recovered?.ok === false && recovered.issues[0]?.path.join('.'), 'a');
  });

  test('prose without JSON gives nothing', () => {
    assert.equal(recoverJsonAnswer('I think we are done.', schema), undefined);
    assert.deepEqual(jsonCandidates('no braces here'), []);
  });

  test('the bare answer itself is not a candidate (the parser already refused it)', () => {
    assert.deepEqual(jsonCandidates('{"a": 1'), []);
  });
});
