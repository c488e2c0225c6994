import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError, type ErrorCode } from '../errors/app-error.ts';
import { advanceSession } from './advance.ts';
import { buildPlan, resolveStrategy } from './plan.ts';
import { type AgentSpec, TASK_NAME_PATTERN } from './session-input.ts';

const checkers = {
  isKnownRole: (role: string) => ['engineer', 'tester', 'reviewer'].includes(role),
  isKnownRunner: (runner: string) => runner === 'ok',
};

function rejectsWith(code: ErrorCode, mentions: string[], fn: () => unknown): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof AppError, 'expected AppError');
    assert.equal(error.code, code);
    for (const word of mentions) assert.match(error.message, new RegExp(word));
    return true;
  });
}

describe('buildPlan', () => {
  const specs: AgentSpec[] = [
    { role: 'engineer', task: 'a' },
    { role: 'engineer', task: 'b' },
    { role: 'tester', task: 'c', runner: 'ok' },
  ];

  test('parallel: one phase, default names, no dependencies', () => {
    const plan = buildPlan('parallel', specs, checkers);
    assert.equal(plan.phases.length, 1);
    assert.deepEqual(
      plan.phases[0]!.tasks.map((t) => [t.name, t.dependsOn, t.runner]),
      [
        ['engineer-1', [], undefined],
        ['engineer-2', [], undefined],
        ['tester-1', [], 'ok'],
      ],
    );
  });

  test('sequential: a chain in the given order', () => {
    const plan = buildPlan('sequential', specs, checkers);
    assert.deepEqual(
      plan.phases[0]!.tasks.map((t) => t.dependsOn),
      [[], ['engineer-1'], ['engineer-2']],
    );
  });

  test('default names skip explicit ones', () => {
    const plan = buildPlan(
      'parallel',
      [
        { role: 'engineer', task: 'x', name: 'engineer-1' },
        { role: 'engineer', task: 'y' },
      ],
      checkers,
    );
    assert.deepEqual(
      plan.phases[0]!.tasks.map((t) => t.name),
      ['engineer-1', 'engineer-2'],
    );
  });

  test('default names fit the task-name form, also for the longest roles, and stay unique', () => {
    const long = `a${'b'.repeat(62)}`;
    const roles = [`${long}x`, `${long}y`, long];
    const agents: AgentSpec[] = [...roles, ...roles].map((role) => ({ role, task: 't' }));
    const { tasks } = buildPlan('parallel', agents, { ...checkers, isKnownRole: () => true }).phases[0]!;
    for (const task of tasks) assert.match(task.name, TASK_NAME_PATTERN);
    assert.equal(new Set(tasks.map((task) => task.name)).size, agents.length);
    assert.deepEqual(
      tasks.map((task) => task.name.slice(62)),
      ['-1', '-2', '-3', '-4', '-5', '-6'],
    );
  });

  test('pipeline: explicit DAG kept', () => {
    const plan = buildPlan(
      'pipeline',
      [
        { name: 'build', role: 'engineer', task: 'b' },
        { name: 'test', role: 'tester', task: 't', depends_on: ['build'] },
        { name: 'review', role: 'reviewer', task: 'r', depends_on: ['build', 'test'] },
      ],
      checkers,
    );
    assert.deepEqual(plan.phases[0]!.tasks[2]!.dependsOn, ['build', 'test']);
  });

  test('pipeline: cycle rejected naming the tasks', () => {
    rejectsWith('INVALID_PLAN', ['cycle', 'a', 'b'], () =>
      buildPlan(
        'pipeline',
        [
          { name: 'a', role: 'engineer', task: 'x', depends_on: ['b'] },
          { name: 'b', role: 'engineer', task: 'x', depends_on: ['a'] },
          { name: 'c', role: 'engineer', task: 'x' },
        ],
        checkers,
      ),
    );
  });

  test('pipeline: self dependency is a cycle', () => {
    rejectsWith('INVALID_PLAN', ['cycle', 'a'], () =>
      buildPlan('pipeline', [{ name: 'a', role: 'engineer', task: 'x', depends_on: ['a'] }], checkers),
    );
  });

  test('pipeline: unknown reference rejected', () => {
    rejectsWith('INVALID_PLAN', ['unknown', 'a → ghost'], () =>
      buildPlan('pipeline', [{ name: 'a', role: 'engineer', task: 'x', depends_on: ['ghost'] }], checkers),
    );
  });

  test('duplicate names rejected', () => {
    rejectsWith('INVALID_PLAN', ['Duplicate', 'same'], () =>
      buildPlan(
        'parallel',
        [
          { name: 'same', role: 'engineer', task: 'x' },
          { name: 'same', role: 'tester', task: 'y' },
        ],
        checkers,
      ),
    );
  });

  test('depends_on outside pipeline rejected', () => {
    rejectsWith('INVALID_PLAN', ['pipeline', 'b'], () =>
      buildPlan(
        'sequential',
        [
          { name: 'a', role: 'engineer', task: 'x' },
          { name: 'b', role: 'engineer', task: 'x', depends_on: ['a'] },
        ],
        checkers,
      ),
    );
  });

  test('a runner the tenant may not use is refused with RUNNER_NOT_ALLOWED, naming the task', () => {
    const restricted = { ...checkers, mayUseRunner: (runner: string) => runner !== 'ok' };
    rejectsWith('RUNNER_NOT_ALLOWED', ["'ok' \\(task tester-1\\)", 'may not be used by your tenant'], () =>
      buildPlan('parallel', specs, restricted),
    );
    assert.equal(buildPlan('parallel', specs, { ...checkers, mayUseRunner: () => true }).phases.length, 1);
  });

  test('unknown role and runner rejected with their codes', () => {
    rejectsWith('INVALID_ROLE', ['wizard', 'w'], () =>
      buildPlan('parallel', [{ name: 'w', role: 'wizard', task: 'x' }], checkers),
    );
    rejectsWith('UNKNOWN_RUNNER', ['nope', 'r'], () =>
      buildPlan('parallel', [{ name: 'r', role: 'engineer', task: 'x', runner: 'nope' }], checkers),
    );
  });

  test('adaptive needs a planner', () => {
    rejectsWith('INVALID_PLAN', ['adaptive'], () => buildPlan('adaptive', specs, checkers));
  });

  test('a dependency named twice is one', () => {
    const plan = buildPlan(
      'pipeline',
      [
        { name: 'a', role: 'engineer', task: 'x' },
        { name: 'b', role: 'engineer', task: 'y', depends_on: ['a', 'a'] },
      ],
      checkers,
    );
    assert.deepEqual(plan.phases[0]?.tasks[1]?.dependsOn, ['a']);
  });

  test('resolveStrategy infers pipeline from depends_on', () => {
    assert.equal(resolveStrategy(undefined, specs), 'parallel');
    assert.equal(resolveStrategy(undefined, [{ role: 'a', task: 'x', depends_on: ['b'] }]), 'pipeline');
    assert.equal(resolveStrategy('sequential', specs), 'sequential');
    // No agents: the orchestrator plans a dependency graph.
    assert.equal(resolveStrategy(undefined, []), 'pipeline');
  });
});

describe('advanceSession', () => {
  const t = (name: string, status: string, dependsOn: string[] = [], extra = {}) => ({
    id: `id-${name}`,
    name,
    status: status as never,
    dependsOn,
    ...extra,
  });

  test('readies tasks whose dependencies all succeeded', () => {
    const decision = advanceSession([
      t('a', 'succeeded'),
      t('b', 'running'),
      t('c', 'pending', ['a']),
      t('d', 'pending', ['a', 'b']),
    ]);
    assert.deepEqual(decision.ready, ['id-c']);
    assert.deepEqual(decision.cancel, []);
    assert.equal(decision.outcome, null);
  });

  test('a failed task cancels its dependants transitively and fails the session with a summary', () => {
    const decision = advanceSession([
      t('a', 'failed', [], { error: 'exit 1: boom' }),
      t('b', 'pending', ['a']),
      t('c', 'pending', ['b']),
      t('x', 'succeeded'),
    ]);
    assert.deepEqual(
      decision.cancel.map((c) => [c.id, c.reason]),
      [
        ['id-b', 'dependency a did not succeed'],
        ['id-c', 'dependency a did not succeed'],
      ],
    );
    assert.equal(decision.outcome?.status, 'failed');
    assert.match(
      (decision.outcome as { error: string }).error,
      /task a failed: exit 1: boom.*cancelled.*b, c/,
    );
  });

  test('waits for independent running tasks before finishing', () => {
    const decision = advanceSession([t('a', 'failed'), t('b', 'running')]);
    assert.equal(decision.outcome, null);
  });

  test('completes with the sink outputs as result', () => {
    const one = advanceSession([
      t('a', 'succeeded', [], { result: 'A' }),
      t('b', 'succeeded', ['a'], { result: 'B' }),
    ]);
    assert.deepEqual(one.outcome, { status: 'completed', result: 'B' });
    const two = advanceSession([
      t('a', 'succeeded', [], { result: 'A' }),
      t('b', 'succeeded', [], { result: 'B' }),
    ]);
    assert.deepEqual(two.outcome, { status: 'completed', result: '## a\nA\n\n## b\nB' });
  });
});
