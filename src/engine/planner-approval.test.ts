// Unit tests for edited-plan validation and plan diffs.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlanBody } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { diffPlans, type EditedPlanRules, validateEditedPlan } from './planner-approval.ts';

const rules: EditedPlanRules = {
  isKnownRole: (role) => ['architect', 'engineer', 'qa'].includes(role),
  isKnownRunner: (runner) => runner === 'tests',
  maxAgentsPerRole: 2,
};

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof AppError);
    return error;
  }
  assert.fail('expected a failure');
}

describe('validateEditedPlan', () => {
  test('accepts a valid edit and converts it to a plan body', () => {
    const body = validateEditedPlan(
      {
        phases: [
          { name: 'one', tasks: [{ name: 'design', role: 'architect', instructions: 'Design it' }] },
          {
            name: 'two',
            tasks: [
              { name: 'build', role: 'engineer', instructions: 'Build it', depends_on: ['design'] },
              { name: 'test', role: 'qa', instructions: 'Run tests', runner: 'tests' },
            ],
          },
        ],
      },
      rules,
    );
    assert.deepEqual(body.phases[1]?.tasks[0], {
      name: 'build',
      role: 'engineer',
      instructions: 'Build it',
      dependsOn: ['design'],
    });
    assert.equal(body.phases[1]?.tasks[1]?.runner, 'tests');
  });

  test('rejects bad shapes with paths', () => {
    const error = failure(() =>
      validateEditedPlan({ phases: [{ name: 'p', tasks: [{ name: 'x', role: 'qa' }] }], extra: true }, rules),
    );
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /plan\.phases\.0\.tasks\.0\.instructions/);
    assert.match(error.message, /extra/);
  });

  test('lists every rule broken', () => {
    const error = failure(() =>
      validateEditedPlan(
        {
          phases: [
            {
              name: 'p',
              tasks: [
                { name: 'a', role: 'wizard', instructions: 'x' },
                { name: 'b', role: 'qa', instructions: 'x', depends_on: ['c'] },
                { name: 'c', role: 'qa', instructions: 'x', depends_on: ['b'] },
                { name: 'd', role: 'qa', instructions: 'x', runner: 'nope' },
                { name: 'e', role: 'qa', instructions: 'x', depends_on: ['ghost'] },
              ],
            },
          ],
        },
        rules,
      ),
    );
    for (const expected of [
      /unknown role "wizard"/,
      /runner "nope" is not declared/,
      /unknown task "ghost"/,
      /dependency cycle between tasks: b, c/,
      /role "qa" has 3 agents; at most 2/,
    ]) {
      assert.match(error.message, expected);
    }
  });

  test('tasks that already started cannot be removed or changed', () => {
    const locked = new Map([
      ['design', { name: 'design', role: 'architect', instructions: 'Design it', dependsOn: [] }],
    ]);
    const removed = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: [{ name: 'x', role: 'qa', instructions: 'y' }] }] },
        { ...rules, lockedTasks: locked },
      ),
    );
    assert.match(removed.message, /"design" has already started and cannot be removed/);
    const changed = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: [{ name: 'design', role: 'architect', instructions: 'Other' }] }] },
        { ...rules, lockedTasks: locked },
      ),
    );
    assert.match(changed.message, /"design" has already started and cannot be changed/);
  });
});

describe('diffPlans', () => {
  test('reports added, removed and changed tasks field by field', () => {
    const before: PlanBody = {
      phases: [
        {
          name: 'p',
          tasks: [
            { name: 'a', role: 'architect', instructions: 'A', dependsOn: [] },
            { name: 'b', role: 'engineer', instructions: 'B', dependsOn: ['a'] },
            { name: 'c', role: 'qa', instructions: 'C', dependsOn: [] },
          ],
        },
      ],
    };
    const after: PlanBody = {
      phases: [
        { name: 'p', tasks: [{ name: 'a', role: 'architect', instructions: 'A', dependsOn: [] }] },
        {
          name: 'q',
          tasks: [
            { name: 'b', role: 'engineer', instructions: 'B2', dependsOn: ['a'] },
            { name: 'd', role: 'qa', instructions: 'D', dependsOn: ['b'] },
          ],
        },
      ],
    };
    assert.deepEqual(diffPlans(before, after), {
      added: ['d'],
      removed: ['c'],
      changed: [
        {
          name: 'b',
          changes: [
            { field: 'instructions', before: 'B', after: 'B2' },
            { field: 'phase', before: 0, after: 1 },
          ],
        },
      ],
    });
    assert.deepEqual(diffPlans(before, before), { added: [], removed: [], changed: [] });
  });
});
