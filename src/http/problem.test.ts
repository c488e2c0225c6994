import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { createProblem, MAX_PROBLEM_DETAIL_CHARS, MAX_PROBLEM_DETAILS } from './problem.ts';

describe('problem documents', () => {
  test('a long list of mistakes is cut to its first entries and the rest counted', () => {
    const mistakes = Array.from({ length: 250 }, (_, i) => `task "t${i}": unknown role "nope"`);
    const problem = createProblem(
      new AppError('INVALID_PLAN', `The edited plan is not valid: ${mistakes.join('; ')}`, {
        details: mistakes,
      }),
    );
    assert.deepEqual(problem.details, mistakes.slice(0, MAX_PROBLEM_DETAILS));
    assert.equal(problem.omittedDetails, 150);
    assert.ok(problem.detail.length < MAX_PROBLEM_DETAIL_CHARS + 100);
    assert.match(problem.detail, /^The edited plan is not valid: task "t0"/);
    assert.match(problem.detail, / … \(\d+ more characters\)$/);
  });

  test('a detail cut before an emoji (kept whole for the rest) counts every character left out', () => {
    const message = `${'a'.repeat(MAX_PROBLEM_DETAIL_CHARS - 1)}😀${'b'.repeat(100)}`;
    const problem = createProblem(new AppError('INVALID_PLAN', message));
    // The emoji's two UTF-16 units straddle the limit: it goes with the rest, 2 + 100 left out.
    assert.ok(problem.detail.startsWith(`${'a'.repeat(MAX_PROBLEM_DETAIL_CHARS - 1)} … `));
    assert.equal(problem.detail.slice(MAX_PROBLEM_DETAIL_CHARS - 1), ' … (102 more characters)');
  });

  test('short ones are sent whole', () => {
    const problem = createProblem(new AppError('INVALID_PLAN', 'bad', { details: ['one'] }));
    assert.deepEqual(
      { detail: problem.detail, details: problem.details },
      { detail: 'bad', details: ['one'] },
    );
    assert.equal('omittedDetails' in problem, false);
  });
});
