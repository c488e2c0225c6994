// Unit tests for the validation of orchestrator-produced plans.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LlmPhase, LlmPlannedTask } from './planner-schema.ts';
import {
  checkGeneratedPhases,
  orderTasksOfOneAgent,
  type PlanContext,
  type TaskToCheck,
  withCatalogueRoleNames,
} from './planner-validate.ts';

function task(
  name: string,
  role: string,
  dependsOn: string[] = [],
  agent: string | null = null,
): LlmPlannedTask {
  return {
    name,
    role,
    instructions: `do ${name}`,
    depends_on: dependsOn,
    deliverables: [`${name} result`],
    agent,
  };
}

const baseContext: PlanContext = {
  isKnownRole: (role) => ['architect', 'engineer', 'qa'].includes(role),
  earlierTaskNames: [],
  previousPhaseSinks: [],
  agents: [],
  limits: { maxTasksPerPhase: 4, maxAgentsPerRole: 2 },
};

describe('checkGeneratedPhases', () => {
  test('accepts a valid plan, folds deliverables into instructions and adds the phase barrier', () => {
    const phases: LlmPhase[] = [
      { name: 'design', tasks: [task('design', 'architect')] },
      {
        name: 'build',
        tasks: [task('api', 'engineer'), task('ui', 'engineer'), task('check', 'qa', ['api', 'ui'])],
      },
    ];
    const result = checkGeneratedPhases(phases, baseContext);
    assert.ok(result.ok);
    const build = result.plan.phases[1]?.tasks ?? [];
    assert.deepEqual(
      build.map((t) => [t.name, t.dependsOn]),
      [
        ['api', ['design']],
        ['ui', ['design']],
        ['check', ['design', 'api', 'ui']],
      ],
    );
    assert.match(result.plan.phases[0]?.tasks[0]?.instructions ?? '', /Deliverables:\n- design result/);
  });

  test('reports every problem at once', () => {
    const phases: LlmPhase[] = [
      {
        name: 'p1',
        tasks: [
          task('a', 'wizard'),
          task('b', 'engineer', ['missing']),
          task('c', 'engineer', ['later']),
          task('b', 'qa'),
          task('self', 'qa', ['self']),
        ],
      },
      { name: 'p2', tasks: [task('later', 'architect')] },
    ];
    const result = checkGeneratedPhases(phases, baseContext);
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors;
    assert.ok(errors.some((e) => /phase "p1" has 5 tasks; at most 4/.test(e)));
    assert.ok(errors.some((e) => /task name "b" is used more than once/.test(e)));
    assert.ok(errors.some((e) => /unknown role "wizard"/.test(e)));
    assert.ok(errors.some((e) => /depends on unknown task "missing"/.test(e)));
    assert.ok(errors.some((e) => /depends on "later" of a later phase/.test(e)));
    assert.ok(errors.some((e) => /"self" depends on itself/.test(e)));
  });

  test('finds cycles', () => {
    const result = checkGeneratedPhases(
      [{ name: 'p', tasks: [task('x', 'qa', ['y']), task('y', 'qa', ['x'])] }],
      baseContext,
    );
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.errors.join(), /dependency cycle between tasks: x, y/);
  });

  test('finds a cycle through a task whose name is used twice, in the same round as the repeat', () => {
    // The second "x" has no dependency: read by name, it let the first one's cycle with "y" pass,
    // and the cycle cost a repair round of its own once the names were fixed.
    const result = checkGeneratedPhases(
      [{ name: 'p', tasks: [task('x', 'qa', ['y']), task('y', 'qa', ['x']), task('x', 'qa')] }],
      baseContext,
    );
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors;
    assert.ok(errors.some((e) => /task name "x" is used more than once/.test(e)));
    assert.ok(
      errors.some((e) => /dependency cycle between tasks: x, y/.test(e)),
      errors.join('; '),
    );
  });

  test('enforces the per-role agent cap, counting existing agents and reuse', () => {
    const ctx: PlanContext = { ...baseContext, agents: [{ name: 'eng-1', role: 'engineer' }] };
    const over = checkGeneratedPhases(
      [{ name: 'p', tasks: [task('e2', 'engineer'), task('e3', 'engineer')] }],
      ctx,
    );
    assert.equal(over.ok, false);
    assert.match(over.ok ? '' : over.errors.join(), /role "engineer" would have 3 agents; at most 2/);
    const reuse = checkGeneratedPhases(
      [{ name: 'p', tasks: [task('e2', 'engineer'), task('e3', 'engineer', [], 'eng-1')] }],
      ctx,
    );
    assert.ok(reuse.ok);
    assert.equal((reuse.plan.phases[0]?.tasks[1] as { agent?: string } | undefined)?.agent, 'eng-1');
  });

  test('rejects reuse of unknown agents or agents of another role, and names used in earlier phases', () => {
    const ctx: PlanContext = {
      ...baseContext,
      agents: [{ name: 'arch', role: 'architect' }],
      earlierTaskNames: ['design'],
    };
    const result = checkGeneratedPhases(
      [
        {
          name: 'p',
          tasks: [
            task('x', 'engineer', [], 'arch'),
            task('y', 'qa', [], 'ghost'),
            task('design', 'qa', ['design']),
          ],
        },
      ],
      ctx,
    );
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors;
    assert.ok(errors.some((e) => /reuses agent "arch" of role "architect"/.test(e)));
    assert.ok(errors.some((e) => /reuses unknown agent "ghost"/.test(e)));
    assert.ok(errors.some((e) => /task name "design" is used more than once/.test(e)));
  });

  test('tasks that reuse one agent run one after another, in plan order unless already ordered', () => {
    const ctx: PlanContext = {
      ...baseContext,
      agents: [
        { name: 'eng-1', role: 'engineer' },
        { name: 'rev', role: 'qa' },
      ],
      limits: { maxTasksPerPhase: 6, maxAgentsPerRole: 2 },
    };
    const result = checkGeneratedPhases(
      [
        {
          name: 'p',
          tasks: [
            // b already waits for a (through c); d waits for b (and so for a); f for e.
            task('a', 'engineer', [], 'eng-1'),
            task('c', 'architect', ['a']),
            task('b', 'engineer', ['c'], 'eng-1'),
            task('d', 'engineer', [], 'eng-1'),
            task('e', 'qa', [], 'rev'),
            task('f', 'qa', [], 'rev'),
          ],
        },
      ],
      ctx,
    );
    assert.ok(result.ok, result.ok ? '' : result.errors.join());
    assert.deepEqual(
      result.plan.phases[0]?.tasks.map((t) => [t.name, t.dependsOn]),
      [
        ['a', []],
        ['c', ['a']],
        ['b', ['c']],
        ['d', ['b']],
        ['e', []],
        ['f', ['e']],
      ],
    );
  });

  test('dependencies on earlier phases are allowed', () => {
    const ctx: PlanContext = { ...baseContext, earlierTaskNames: ['design'], previousPhaseSinks: ['design'] };
    const result = checkGeneratedPhases([{ name: 'p', tasks: [task('impl', 'engineer', ['design'])] }], ctx);
    assert.ok(result.ok);
    assert.deepEqual(result.plan.phases[0]?.tasks[0]?.dependsOn, ['design']);
  });
});

describe('orderTasksOfOneAgent', () => {
  /** The rule as its doc states it, one walk of the graph per question: the reference. */
  function orderByDefinition(tasks: readonly TaskToCheck[]): Array<[string, string[]]> {
    const deps = new Map(tasks.map((t) => [t.name, new Set(t.depends_on)]));
    const reaches = (from: string, to: string): boolean => {
      const seen = new Set<string>();
      const stack = [from];
      while (stack.length > 0) {
        const name = stack.pop()!;
        if (name === to) return true;
        if (seen.has(name)) continue;
        seen.add(name);
        stack.push(...(deps.get(name) ?? []));
      }
      return false;
    };
    const earlierOf = new Map<string, string[]>();
    for (const t of tasks) {
      if (t.agent === null) continue;
      const earlier = earlierOf.get(t.agent) ?? [];
      for (const previous of [...earlier].reverse()) {
        if (!reaches(t.name, previous) && !reaches(previous, t.name)) deps.get(t.name)!.add(previous);
      }
      earlierOf.set(t.agent, [...earlier, t.name]);
    }
    return tasks.map((t) => [t.name, [...deps.get(t.name)!].sort()]);
  }

  test('adds the edges the rule asks for, on random graphs with cycles and dependencies forward', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let run = 0; run < 500; run++) {
      const n = 1 + Math.floor(random() * 20);
      const density = random() * 0.3;
      const tasks = Array.from({ length: n }, (_, i) => ({
        ...task(`t${i}`, 'qa'),
        depends_on: Array.from({ length: n }, (_, j) => j)
          .filter((j) => j !== i && random() < density && (j < i || random() < 0.2))
          .map((j) => `t${j}`),
        agent: random() < 0.7 ? `a${Math.floor(random() * 3)}` : null,
      }));
      const ordered = orderTasksOfOneAgent(tasks).map((t): [string, string[]] => [
        t.name,
        [...t.depends_on].sort(),
      ]);
      assert.deepEqual(ordered, orderByDefinition(tasks), JSON.stringify(tasks));
    }
  });

  test("work grows with the square of a phase's tasks, not the cube (200 tasks of one agent)", () => {
    // An edited plan may give one agent 200 tasks in each of 20 phases: one walk of the graph per
    // pair of them blocked the server for seconds. Counted in membership checks, not in time.
    const n = 200;
    const tasks = Array.from({ length: n }, (_, i) => task(`t${i}`, 'qa', [], 'x'));
    const has = Set.prototype.has;
    let checks = 0;
    Set.prototype.has = function (this: Set<unknown>, value: unknown) {
      checks++;
      return has.call(this, value);
    };
    let ordered: TaskToCheck[];
    try {
      ordered = orderTasksOfOneAgent(tasks);
    } finally {
      Set.prototype.has = has;
    }
    assert.deepEqual(
      ordered.slice(0, 3).map((t) => t.depends_on),
      [[], ['t0'], ['t1']],
    );
    assert.ok(checks <= 3 * n * n, `${checks} membership checks for ${n} tasks`);
  });
});

describe('withCatalogueRoleNames', () => {
  const roles = new Set(['engineer', 'backend_engineer', 'qa']);
  const phase = (role: string) => ({
    name: 'p',
    tasks: [{ name: 'a', role, instructions: 'i', depends_on: [], deliverables: [], agent: null }],
  });
  test('case, spaces and hyphens are read as the catalogue name', () => {
    for (const [written, expected] of [
      ['Engineer', 'engineer'],
      ['Backend Engineer', 'backend_engineer'],
      ['backend-engineer', 'backend_engineer'],
      ['QA', 'qa'],
      ['qa', 'qa'],
      ['wizard', 'wizard'],
    ]) {
      assert.equal(withCatalogueRoleNames([phase(written!)], roles)[0]?.tasks[0]?.role, expected);
    }
  });
});
