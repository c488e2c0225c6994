// Unit tests for edited-plan validation and plan diffs.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlanBody } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import {
  type CurrentTask,
  checkEditedPlan,
  diffPlans,
  type EditedPlanRules,
  type EditedPlanSession,
  isSamePlan,
  validateEditedPlan,
} from './planner-approval.ts';
import type { GeneratedTask } from './planner-validate.ts';

const rules: EditedPlanRules = {
  isKnownRole: (role) => ['architect', 'engineer', 'qa'].includes(role),
  isKnownRunner: (runner) => runner === 'tests',
  maxAgentsPerRole: 2,
  maxTasksPerPhase: 12,
};

/**
 * A waiting plan of `count` one-task phases is taken back unchanged and with its last task's
 * instructions edited, and refused with one phase more than it has.
 */
function assertSentBackAsRead(count: number): void {
  const waiting: PlanBody = {
    phases: Array.from({ length: count }, (_, i) => ({
      name: `step-${i}`,
      tasks: [
        {
          name: `step-${i}`,
          role: 'qa',
          instructions: `do step ${i}`,
          dependsOn: i === 0 ? [] : [`step-${i - 1}`],
          runner: 'tests',
        },
      ],
    })),
  };
  const waitingSession = { tasks: new Map(), agents: [], waitingPlan: waiting };
  assert.equal(checkEditedPlan(waiting, rules, waitingSession).unchanged, true);
  const edited = structuredClone(waiting);
  edited.phases[count - 1]!.tasks[0]!.instructions = 'do the last step twice';
  assert.equal(checkEditedPlan(edited, rules, waitingSession).unchanged, false);
  const grown = structuredClone(waiting);
  grown.phases.push({
    name: 'one-more',
    tasks: [{ name: 'one-more', role: 'qa', instructions: 'more', dependsOn: [], runner: 'tests' }],
  });
  assert.match(
    failure(() => checkEditedPlan(grown, rules, waitingSession)).message,
    new RegExp(
      `the plan has ${count + 1} phases; at most ${count} are allowed \\(as many as the waiting plan has\\)`,
    ),
  );
}

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof AppError);
    return error;
  }
  assert.fail('expected a failure');
}

/** A task the session has when the edit arrives; its own agent (named after it) unless given. */
function current(
  name: string,
  role: string,
  options: { started?: boolean; agent?: string; dependsOn?: string[] } = {},
): CurrentTask {
  return {
    name,
    role,
    instructions: `do ${name}`,
    dependsOn: options.dependsOn ?? [],
    agent: options.agent ?? name,
    started: options.started ?? false,
  };
}

/** The session of `tasks`: the agents of the started ones have worked. */
function session(tasks: CurrentTask[]): EditedPlanSession {
  const agents = tasks
    .filter((task) => task.started && task.agent === task.name)
    .map((task) => ({ name: task.name, role: task.role }));
  return { tasks: new Map(tasks.map((task) => [task.name, task])), agents };
}

/** A task of a validated plan, with the agent it reuses if any. */
function taskOf(body: PlanBody, phase: number, index: number): GeneratedTask {
  const task = body.phases[phase]?.tasks[index];
  assert.ok(task, `no task ${index} in phase ${phase}`);
  return task;
}

function renamed(prefix: string) {
  return <T extends { name: string }>(task: T): T => ({ ...task, name: `${prefix}${task.name}` });
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

  test("an edited plan may not name a runner the session's tenant may not use (runnerAccess)", () => {
    const edited = {
      phases: [{ name: 'p', tasks: [{ name: 'ship', role: 'qa', instructions: 'x', runner: 'tests' }] }],
    };
    assert.doesNotThrow(() => validateEditedPlan(edited, rules));
    const error = failure(() => validateEditedPlan(edited, { ...rules, mayUseRunner: () => false }));
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(
      error.message,
      /Runner 'tests' \(task ship\) may not be used by your tenant \(the server's runnerAccess config\)/,
    );
    // A runner not declared is reported as such, not as refused too.
    const undeclared = failure(() =>
      validateEditedPlan(edited, { ...rules, isKnownRunner: () => false, mayUseRunner: () => false }),
    );
    assert.match(undeclared.message, /runner "tests" is not declared/);
    assert.doesNotMatch(undeclared.message, /may not be used/);
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
      /role "qa" would have 3 agents; at most 2 per role/,
    ]) {
      assert.match(error.message, expected);
    }
  });

  test('tasks that already started cannot be removed or changed', () => {
    const started = session([current('design', 'architect', { started: true })]);
    const removed = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: [{ name: 'x', role: 'qa', instructions: 'y' }] }] },
        rules,
        started,
      ),
    );
    assert.match(removed.message, /"design" has already started and cannot be removed/);
    const changed = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: [{ name: 'design', role: 'architect', instructions: 'Other' }] }] },
        rules,
        started,
      ),
    );
    assert.match(changed.message, /"design" has already started and cannot be changed/);
  });

  test('a phase may hold at most maxTasksPerPhase tasks', () => {
    const tasks = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        name: `t${i}`,
        role: 'qa',
        instructions: 'x',
        runner: 'tests',
      }));
    const error = failure(() =>
      validateEditedPlan(
        {
          phases: [
            { name: 'one', tasks: tasks(1) },
            { name: 'wide', tasks: tasks(4).map(renamed('w')) },
          ],
        },
        { ...rules, maxTasksPerPhase: 3 },
      ),
    );
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /phase "wide" has 4 tasks; at most 3 are allowed/);
    assert.doesNotMatch(error.message, /phase "one"/);
    validateEditedPlan({ phases: [{ name: 'p', tasks: tasks(12) }] }, rules);
    const over = failure(() => validateEditedPlan({ phases: [{ name: 'p', tasks: tasks(13) }] }, rules));
    assert.match(over.message, /phase "p" has 13 tasks; at most 12 are allowed/);
  });

  test("task names may not take the orchestrator's own prefix", () => {
    const error = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: [{ name: 'orchestrator:plan', role: 'qa', instructions: 'x' }] }] },
        rules,
      ),
    );
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /must not start with "orchestrator:"/);
  });

  test('a task may not depend on a task of a later phase', () => {
    const error = failure(() =>
      validateEditedPlan(
        {
          phases: [
            {
              name: 'one',
              tasks: [{ name: 'build', role: 'engineer', instructions: 'x', depends_on: ['design'] }],
            },
            { name: 'two', tasks: [{ name: 'design', role: 'architect', instructions: 'y' }] },
          ],
        },
        rules,
      ),
    );
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(error.message, /task "build" depends on "design" of a later phase/);
  });

  test('each phase waits for the sinks of the phase before it (phase barrier)', () => {
    const body = validateEditedPlan(
      {
        phases: [
          {
            name: 'one',
            tasks: [
              { name: 'design', role: 'architect', instructions: 'x' },
              { name: 'review', role: 'qa', instructions: 'y', depends_on: ['design'] },
              { name: 'spike', role: 'engineer', instructions: 'z' },
            ],
          },
          { name: 'two', tasks: [{ name: 'build', role: 'engineer', instructions: 'b' }] },
          { name: 'three', tasks: [{ name: 'check', role: 'qa', instructions: 'c', runner: 'tests' }] },
        ],
      },
      rules,
    );
    assert.deepEqual(
      body.phases.map((phase) => phase.tasks.map((task) => [task.name, [...task.dependsOn].sort()])),
      [
        [
          ['design', []],
          ['review', ['design']],
          ['spike', []],
        ],
        [['build', ['review', 'spike']]],
        [['check', ['build']]],
      ],
    );
    assert.equal(body.phases[2]?.tasks[0]?.runner, 'tests');
  });

  test('a task may reuse an agent that already worked, of its role', () => {
    const atGate = session([
      current('sketch', 'architect', { started: true }),
      current('survey', 'qa', { started: true }),
    ]);
    const plan = (agent: unknown, role = 'architect') => ({
      phases: [
        {
          name: 'one',
          tasks: [
            { name: 'sketch', role: 'architect', instructions: 'do sketch' },
            { name: 'survey', role: 'qa', instructions: 'do survey' },
          ],
        },
        { name: 'two', tasks: [{ name: 'refine', role, instructions: 'Refine', agent }] },
      ],
    });
    const body = validateEditedPlan(plan('sketch'), rules, atGate);
    const refine = taskOf(body, 1, 0);
    assert.equal(refine.agent, 'sketch');
    assert.deepEqual([...refine.dependsOn].sort(), ['sketch', 'survey']);
    // Started tasks keep their own agents: no `agent` on them, as in a generated plan.
    assert.equal(taskOf(body, 0, 0).agent, undefined);
    assert.match(
      failure(() => validateEditedPlan(plan('ghost'), rules, atGate)).message,
      /task "refine" reuses unknown agent "ghost"/,
    );
    assert.match(
      failure(() => validateEditedPlan(plan('sketch', 'engineer'), rules, atGate)).message,
      /task "refine" has role "engineer" but reuses agent "sketch" of role "architect"/,
    );
    // An agent that has not worked yet (its task is only planned) is no agent to reuse.
    const planned = session([current('sketch', 'architect')]);
    assert.match(
      failure(() =>
        validateEditedPlan(
          {
            phases: [
              {
                name: 'p',
                tasks: [{ name: 'refine', role: 'architect', instructions: 'x', agent: 'sketch' }],
              },
            ],
          },
          rules,
          planned,
        ),
      ).message,
      /task "refine" reuses unknown agent "sketch"/,
    );
    const runner = failure(() =>
      validateEditedPlan(
        {
          phases: [
            {
              name: 'p',
              tasks: [
                { name: 'sketch', role: 'architect', instructions: 'do sketch' },
                { name: 'survey', role: 'qa', instructions: 'do survey' },
                { name: 'check', role: 'qa', instructions: 'x', runner: 'tests', agent: 'survey' },
              ],
            },
          ],
        },
        rules,
        atGate,
      ),
    );
    assert.match(runner.message, /task "check" runs runner "tests" and cannot reuse agent "survey"/);
  });

  test('without `agent` a planned task keeps its agent; `null` gives it a new one', () => {
    const atGate = session([
      current('sketch', 'architect', { started: true }),
      current('refine', 'architect', { agent: 'sketch', dependsOn: ['sketch'] }),
    ]);
    const plan = (refine: Record<string, unknown>) => ({
      phases: [
        { name: 'one', tasks: [{ name: 'sketch', role: 'architect', instructions: 'do sketch' }] },
        {
          name: 'two',
          tasks: [{ name: 'refine', role: 'architect', instructions: 'Refine more', ...refine }],
        },
      ],
    });
    const kept = validateEditedPlan(plan({}), rules, atGate);
    assert.equal(taskOf(kept, 1, 0).agent, 'sketch');
    const renewed = validateEditedPlan(plan({ agent: null }), rules, atGate);
    assert.equal(taskOf(renewed, 1, 0).agent, undefined);
    // A started task keeps the agent it ran with: naming it (or null, its own) is no change.
    const ranTogether = session([
      current('sketch', 'architect', { started: true }),
      current('other', 'architect', { started: true }),
    ]);
    for (const agent of [undefined, null, 'other']) {
      validateEditedPlan(
        {
          phases: [
            {
              name: 'one',
              tasks: [
                { name: 'sketch', role: 'architect', instructions: 'do sketch' },
                { name: 'other', role: 'architect', instructions: 'do other', agent },
              ],
            },
          ],
        },
        rules,
        ranTogether,
      );
    }
    const changedAgent = failure(() =>
      validateEditedPlan(
        {
          phases: [
            {
              name: 'one',
              tasks: [
                { name: 'sketch', role: 'architect', instructions: 'do sketch' },
                { name: 'other', role: 'architect', instructions: 'do other', agent: 'sketch' },
              ],
            },
          ],
        },
        rules,
        ranTogether,
      ),
    );
    assert.match(changedAgent.message, /task "other" has already started and cannot be changed/);
  });

  test('the per-role cap counts the agents that already worked, not the tasks reusing them', () => {
    const atGate = session([
      current('a1', 'architect', { started: true }),
      current('a2', 'architect', { started: true }),
    ]);
    const phaseOne = {
      name: 'one',
      tasks: [
        { name: 'a1', role: 'architect', instructions: 'do a1' },
        { name: 'a2', role: 'architect', instructions: 'do a2' },
      ],
    };
    const reusing = validateEditedPlan(
      {
        phases: [
          phaseOne,
          {
            name: 'two',
            tasks: [
              { name: 'b1', role: 'architect', instructions: 'x', agent: 'a1' },
              { name: 'b2', role: 'architect', instructions: 'y', agent: 'a2' },
            ],
          },
        ],
      },
      rules,
      atGate,
    );
    assert.equal(reusing.phases.length, 2);
    const adding = failure(() =>
      validateEditedPlan(
        {
          phases: [phaseOne, { name: 'two', tasks: [{ name: 'b1', role: 'architect', instructions: 'x' }] }],
        },
        rules,
        atGate,
      ),
    );
    assert.match(adding.message, /role "architect" would have 3 agents; at most 2 per role/);
  });

  test('the waiting plan sent back, unchanged or edited, is held to the limits only beyond its own size', () => {
    // As a session submitted with its agents has it: three engineers (the cap is 2), one phase.
    const waiting: PlanBody = {
      phases: [
        {
          name: 'main',
          tasks: ['e1', 'e2', 'e3'].map((name) => ({
            name,
            role: 'engineer',
            instructions: `do ${name}`,
            dependsOn: [],
          })),
        },
      ],
    };
    const waitingSession = {
      ...session(['e1', 'e2', 'e3'].map((name) => current(name, 'engineer'))),
      waitingPlan: waiting,
    };
    const sentBack = checkEditedPlan(waiting, rules, waitingSession);
    assert.equal(sentBack.unchanged, true);
    assert.ok(isSamePlan(waiting, sentBack.plan));
    // An instruction changed: still three engineers, as accepted; the edit is a new version.
    const edited = structuredClone(waiting);
    edited.phases[0]!.tasks[0]!.instructions = 'do e1 differently';
    const changed = checkEditedPlan(edited, rules, waitingSession);
    assert.equal(changed.unchanged, false);
    assert.equal(changed.plan.phases[0]!.tasks[0]!.instructions, 'do e1 differently');
    // The same with a phase over maxTasksPerPhase: kept, not grown.
    const fewerPerPhase = { ...rules, maxTasksPerPhase: 2 };
    assert.equal(checkEditedPlan(edited, fewerPerPhase, waitingSession).unchanged, false);
    // A fourth engineer goes beyond both the cap and what the plan had.
    const grown = structuredClone(waiting);
    grown.phases[0]!.tasks.push({ name: 'e4', role: 'engineer', instructions: 'do e4', dependsOn: [] });
    const growth = failure(() => checkEditedPlan(grown, rules, waitingSession));
    assert.match(
      growth.message,
      /role "engineer" would have 4 agents; at most 3 per role \(max_agents_per_role, as many as the waiting plan has\)/,
    );
    assert.match(
      failure(() => checkEditedPlan(grown, fewerPerPhase, waitingSession)).message,
      /phase "main" has 4 tasks; at most 3 are allowed/,
    );
    // Another phase is held to the limit itself, not to the largest phase of the waiting plan.
    const added = structuredClone(waiting);
    added.phases.push({
      name: 'checks',
      tasks: ['c1', 'c2', 'c3'].map((name) => ({
        name,
        role: 'qa',
        instructions: `do ${name}`,
        dependsOn: [],
      })),
    });
    assert.match(
      failure(() => checkEditedPlan(added, fewerPerPhase, waitingSession)).message,
      /phase "checks" has 3 tasks; at most 2 are allowed/,
    );
  });

  test('a plan whose tasks wait for more than 100 tasks, phase barrier included, can be sent back as read', () => {
    // 100 tasks in the first phase (llm.planner.maxTasksPerPhase at its most): the second phase's
    // `report`, after `collect` of its own phase, also waits for all 100 (the phase barrier), so the
    // plan shows 101 dependencies for it. Sent back as read, unchanged or with one instruction
    // edited (at a phase gate the earlier phases must be resent as they ran), it was refused as a
    // list of more than 100 dependencies.
    const wide = { ...rules, maxTasksPerPhase: 100 };
    const built = validateEditedPlan(
      {
        phases: [
          {
            name: 'fan-out',
            tasks: Array.from({ length: 100 }, (_, i) => ({
              name: `part-${i}`,
              role: 'qa',
              instructions: 'check a part',
              runner: 'tests',
            })),
          },
          {
            name: 'fan-in',
            tasks: [
              { name: 'collect', role: 'qa', instructions: 'collect', runner: 'tests' },
              { name: 'report', role: 'qa', instructions: 'report', runner: 'tests', dependsOn: ['collect'] },
            ],
          },
        ],
      },
      wide,
    );
    assert.equal(taskOf(built, 1, 1).dependsOn.length, 101);
    const waiting = { tasks: new Map(), agents: [], waitingPlan: built };
    assert.equal(checkEditedPlan(built, wide, waiting).unchanged, true);
    const edited = structuredClone(built);
    edited.phases[1]!.tasks[0]!.instructions = 'collect every part';
    const changed = checkEditedPlan(edited, wide, waiting);
    assert.equal(changed.unchanged, false);
    assert.equal(taskOf(changed.plan, 1, 1).dependsOn.length, 101);
  });

  test('a plan has at most 20 phases, or as many as the waiting plan has', () => {
    // One runner task per phase (no agent counts against the per-role cap).
    const phases = (count: number) => ({
      phases: Array.from({ length: count }, (_, i) => ({
        name: `step-${i}`,
        tasks: [{ name: `step-${i}`, role: 'qa', instructions: `do step ${i}`, runner: 'tests' }],
      })),
    });
    assert.equal(validateEditedPlan(phases(20), rules).phases.length, 20);
    assert.match(
      failure(() => validateEditedPlan(phases(21), rules)).message,
      /the plan has 21 phases; at most 20 are allowed$/,
    );
    // The orchestrator's first plan of a non-adaptive session has no phase limit: one of 25 phases
    // sent back as read was refused, unchanged or with one instruction edited.
    assertSentBackAsRead(25);
  });

  test('a waiting plan of more than 200 phases can be sent back as read, and not grown', () => {
    // The orchestrator's first plan of a non-adaptive session has no phase limit at all, so no
    // fixed bound on the phases read can be above every waiting plan's: 201 were refused by the
    // parse (plan.phases: too big), before the waiting plan's size was looked at.
    assertSentBackAsRead(201);
  });

  test("a waiting task's instructions longer than 20,000 characters (its deliverables folded in) can be sent back, and not grown", () => {
    // A generated task's instructions (up to 8,000 characters) carry the deliverables the
    // orchestrator listed, at any length: the parse refused such a plan sent back as read.
    const long = `${'build it '.repeat(2_000)}\n\nDeliverables:\n${'- a part\n'.repeat(1_000)}`.trim();
    assert.ok(long.length > 20_000);
    const waiting: PlanBody = {
      phases: [
        {
          name: 'build',
          tasks: [{ name: 'build', role: 'qa', instructions: long, dependsOn: [], runner: 'tests' }],
        },
      ],
    };
    const waitingSession = { tasks: new Map(), agents: [], waitingPlan: waiting };
    assert.equal(checkEditedPlan(waiting, rules, waitingSession).unchanged, true);
    const edited = structuredClone(waiting);
    edited.phases[0]!.tasks[0]!.instructions = long.replace('build it', 'make it!');
    assert.equal(checkEditedPlan(edited, rules, waitingSession).unchanged, false);
    const grown = structuredClone(waiting);
    grown.phases[0]!.tasks[0]!.instructions = `${long}x`;
    assert.match(
      failure(() => checkEditedPlan(grown, rules, waitingSession)).message,
      new RegExp(
        `task "build": its instructions have ${long.length + 1} characters; at most ${long.length} are allowed \\(as many as the waiting task has\\)`,
      ),
    );
    // A task of another name is held to 20,000.
    const added = structuredClone(waiting);
    added.phases[0]!.tasks.push({
      name: 'other',
      role: 'qa',
      instructions: 'x'.repeat(20_001),
      dependsOn: [],
      runner: 'tests',
    });
    assert.match(
      failure(() => checkEditedPlan(added, rules, waitingSession)).message,
      /task "other": its instructions have 20001 characters; at most 20000 are allowed(;|$)/,
    );
  });

  test('instructions are counted in characters as at a submit: an emoji is one', () => {
    const plan = (instructions: string) => ({
      phases: [{ name: 'p', tasks: [{ name: 'poem', role: 'qa', instructions }] }],
    });
    // 20,000 emoji: 40,000 UTF-16 units, 20,000 characters, as the submit's schema counts them.
    assert.equal(validateEditedPlan(plan('😀'.repeat(20_000)), rules).phases.length, 1);
    assert.match(
      failure(() => validateEditedPlan(plan('😀'.repeat(20_001)), rules)).message,
      /task "poem": its instructions have 20001 characters; at most 20000 are allowed/,
    );
  });

  test("a phase's allowance is the one of the waiting plan's phase at its position, whatever its name", () => {
    const phase = (name: string, prefix: string, count: number) => ({
      name,
      tasks: Array.from({ length: count }, (_, index) => ({
        name: `${prefix}${index + 1}`,
        role: 'engineer',
        instructions: `do ${prefix}${index + 1}`,
        dependsOn: [],
      })),
    });
    // Two phases with the same name: the first had three tasks, the second one.
    const waiting: PlanBody = { phases: [phase('build', 'a', 3), phase('build', 'b', 1)] };
    const limits = { ...rules, maxTasksPerPhase: 2, maxAgentsPerRole: 10 };
    const waitingSession = { ...session([]), waitingPlan: waiting };
    const edited = structuredClone(waiting);
    edited.phases[0]!.tasks[0]!.instructions = 'do a1 differently';
    assert.equal(checkEditedPlan(edited, limits, waitingSession).unchanged, false);
    // The second phase may not grow to the first one's size.
    const grown = structuredClone(waiting);
    grown.phases[1] = phase('build', 'b', 3);
    assert.match(
      failure(() => checkEditedPlan(grown, limits, waitingSession)).message,
      /phase "build" has 3 tasks; at most 2 are allowed/,
    );
    // A renamed phase keeps its size.
    const renamedPhase = structuredClone(edited);
    renamedPhase.phases[0]!.name = 'implement';
    assert.equal(checkEditedPlan(renamedPhase, limits, waitingSession).unchanged, false);
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
      phases: { added: [{ index: 1, name: 'q' }], removed: [], renamed: [] },
    });
    assert.deepEqual(diffPlans(before, before), { added: [], removed: [], changed: [] });
  });

  test('a phase renamed, added or removed is listed by position, with no task change', () => {
    const tasks = (names: string[]) =>
      names.map((name) => ({ name, role: 'qa', instructions: name.toUpperCase(), dependsOn: [] }));
    const before: PlanBody = {
      phases: [
        { name: 'draft', tasks: tasks(['a']) },
        { name: 'review', tasks: tasks(['b']) },
      ],
    };
    const renamed: PlanBody = {
      phases: [
        { name: 'design', tasks: tasks(['a']) },
        { name: 'review', tasks: tasks(['b']) },
      ],
    };
    assert.deepEqual(diffPlans(before, renamed), {
      added: [],
      removed: [],
      changed: [],
      phases: { added: [], removed: [], renamed: [{ index: 0, before: 'draft', after: 'design' }] },
    });
    assert.equal(isSamePlan(before, renamed), false);
    const longer: PlanBody = { phases: [...before.phases, { name: 'ship', tasks: [] }] };
    assert.deepEqual(diffPlans(before, longer).phases, {
      added: [{ index: 2, name: 'ship' }],
      removed: [],
      renamed: [],
    });
    assert.deepEqual(diffPlans(longer, before).phases, {
      added: [],
      removed: [{ index: 2, name: 'ship' }],
      renamed: [],
    });
  });

  test('a task given to another existing agent is a change of its agent', () => {
    const plan = (agent?: string): PlanBody => ({
      phases: [
        {
          name: 'p',
          tasks: [
            {
              name: 'refine',
              role: 'architect',
              instructions: 'R',
              dependsOn: [],
              ...(agent ? { agent } : {}),
            },
          ],
        },
      ],
    });
    assert.deepEqual(diffPlans(plan('sketch'), plan()), {
      added: [],
      removed: [],
      changed: [{ name: 'refine', changes: [{ field: 'agent', before: 'sketch', after: null }] }],
    });
  });
});

describe('edits at a phase gate', () => {
  const ran = { name: 'explore', tasks: [{ name: 'survey', role: 'qa', instructions: 'do survey' }] };
  const atGate: EditedPlanSession = {
    ...session([current('survey', 'qa', { started: true }), current('deepen', 'qa')]),
    pendingPhase: 1,
  };
  test('an edit that leaves no task to run is refused', () => {
    const error = failure(() => validateEditedPlan({ phases: [ran] }, rules, atGate));
    assert.match(error.message, /no task left to run/);
  });
  test('a new task in a phase that already ran is refused', () => {
    const plan = {
      phases: [{ ...ran, tasks: [...ran.tasks, { name: 'x', role: 'qa', instructions: 'x' }] }],
    };
    const error = failure(() => validateEditedPlan(plan, rules, atGate));
    assert.match(error.message, /task "x" is new but in phase 0 \("explore"\), which has already run/);
  });
  test('a task that ran cannot move to another phase, even with dependencies that read the same there', () => {
    // check ran in phase 0 after scan; moved into the waiting phase it still waits for scan alone
    // (the barrier of phase 0 is scan), so only its phase tells the move.
    const ranTwo: EditedPlanSession = {
      ...session([
        { ...current('scan', 'qa', { started: true }), phase: 0 },
        { ...current('check', 'qa', { started: true, dependsOn: ['scan'] }), phase: 0 },
        { ...current('deepen', 'engineer', { dependsOn: ['check'] }), phase: 1 },
      ]),
      pendingPhase: 1,
    };
    const scan = { name: 'scan', role: 'qa', instructions: 'do scan' };
    const check = { name: 'check', role: 'qa', instructions: 'do check', dependsOn: ['scan'] };
    const deepen = { name: 'deepen', role: 'engineer', instructions: 'do deepen' };
    const moved = failure(() =>
      validateEditedPlan(
        {
          phases: [
            { name: 'explore', tasks: [scan] },
            { name: 'next', tasks: [check, deepen] },
          ],
        },
        rules,
        ranTwo,
      ),
    );
    assert.match(moved.message, /"check" has already started and cannot be changed/);
    const kept = validateEditedPlan(
      {
        phases: [
          { name: 'explore', tasks: [scan, check] },
          { name: 'next', tasks: [deepen] },
        ],
      },
      rules,
      ranTwo,
    );
    assert.deepEqual(
      kept.phases.map((phase) => phase.tasks.map((task) => task.name)),
      [['scan', 'check'], ['deepen']],
    );
  });
  test('new tasks in the waiting phase or later are accepted', () => {
    const plan = {
      phases: [
        ran,
        { name: 'next', tasks: [{ name: 'y', role: 'engineer', instructions: 'y' }] },
        { name: 'last', tasks: [{ name: 'z', role: 'architect', instructions: 'z' }] },
      ],
    };
    assert.equal(validateEditedPlan(plan, rules, atGate).phases.length, 3);
  });
});

describe('runners of tasks that already ran', () => {
  // A runner task ran in phase 0; since then the operator took the runner from the tenant (or
  // from the config). The task stays in the plan as it ran (it cannot be removed or changed): its
  // runner is not held against an edit of what is still to run.
  const ship = { ...current('ship', 'qa', { started: true }), runner: 'tests', phase: 0 };
  const atGate: EditedPlanSession = {
    ...session([ship, { ...current('deepen', 'qa'), phase: 1 }]),
    pendingPhase: 1,
  };
  const edit = (runner: string) => ({
    phases: [
      { name: 'build', tasks: [{ name: 'ship', role: 'qa', instructions: 'do ship', runner: 'tests' }] },
      { name: 'next', tasks: [{ name: 'deepen', role: 'qa', instructions: 'do deepen, better', runner }] },
    ],
  });

  test('a runner the tenant may no longer use does not refuse an edit of the tasks still to run', () => {
    const noLonger = {
      ...rules,
      isKnownRunner: () => true,
      mayUseRunner: (runner: string) => runner !== 'tests',
    };
    const plan = validateEditedPlan(edit('lint'), noLonger, atGate);
    assert.equal(taskOf(plan, 1, 0).instructions, 'do deepen, better');
    // A task still to run is held to it.
    const error = failure(() => validateEditedPlan(edit('tests'), noLonger, atGate));
    assert.match(error.message, /Runner 'tests' \(task deepen\) may not be used by your tenant/);
    assert.doesNotMatch(error.message, /task ship/);
  });

  test('a runner no longer declared does not refuse an edit of the tasks still to run', () => {
    const undeclared = { ...rules, isKnownRunner: (runner: string) => runner === 'lint' };
    const plan = validateEditedPlan(edit('lint'), undeclared, atGate);
    assert.equal(taskOf(plan, 1, 0).runner, 'lint');
    const error = failure(() => validateEditedPlan(edit('tests'), undeclared, atGate));
    assert.match(error.message, /task "deepen": runner "tests" is not declared/);
    assert.doesNotMatch(error.message, /task "ship"/);
  });
});

describe('roles of tasks that already ran', () => {
  // A custom role may be deleted once no unfinished task has it: the task of phase 0 that had it
  // ran. It stays in the plan as it ran (it cannot be removed or changed): its role is not held
  // against an edit of what is still to run.
  const atGate: EditedPlanSession = {
    ...session([
      { ...current('verse', 'poet', { started: true }), phase: 0 },
      { ...current('deepen', 'qa'), phase: 1 },
    ]),
    pendingPhase: 1,
  };
  const edit = (role: string) => ({
    phases: [
      { name: 'write', tasks: [{ name: 'verse', role: 'poet', instructions: 'do verse' }] },
      { name: 'next', tasks: [{ name: 'deepen', role, instructions: 'do deepen, better' }] },
    ],
  });

  test('a role deleted since does not refuse an edit of the tasks still to run', () => {
    const plan = validateEditedPlan(edit('qa'), rules, atGate);
    assert.equal(taskOf(plan, 1, 0).instructions, 'do deepen, better');
  });

  test('a task still to run may not take that role', () => {
    const error = failure(() => validateEditedPlan(edit('poet'), rules, atGate));
    assert.match(error.message, /task "deepen": unknown role "poet"/);
    assert.doesNotMatch(error.message, /task "verse"/);
  });
});

describe('schema problems of an edited plan', () => {
  test('name their path from `plan`, the plan itself included', () => {
    assert.match(
      failure(() => validateEditedPlan('x', rules)).message,
      /: plan: Invalid input: expected object/,
    );
    assert.match(failure(() => validateEditedPlan({}, rules)).message, /: plan\.phases: Invalid input/);
  });

  test('an edit too large to be a plan is refused by its size, not with a problem per element', () => {
    // What a 1 MiB body can hold: 340,000 empty phases, or 480,000 numbers among the dependencies.
    const phases = failure(() => validateEditedPlan({ phases: Array(340_000).fill({}) }, rules));
    assert.equal(phases.code, 'INVALID_PLAN');
    assert.deepEqual(phases.details, ['the plan has 340000 phases; at most 20 are allowed']);
    const task = (n: number) => ({
      name: `t${n}`,
      role: 'qa',
      instructions: 'x',
      dependsOn: Array(40_000).fill(1),
    });
    const numbers = failure(() =>
      validateEditedPlan(
        { phases: [{ name: 'p', tasks: Array.from({ length: 12 }, (_, n) => task(n)) }] },
        rules,
      ),
    );
    assert.equal(numbers.code, 'INVALID_PLAN');
    assert.deepEqual(numbers.details, [
      'plan.phases.0.tasks.0.dependsOn: 480000 dependencies are not task names (text of 1-200 characters)',
    ]);
    // A few are listed one by one, as every other problem.
    const few = failure(() =>
      validateEditedPlan(
        {
          phases: [{ name: 'p', tasks: [{ name: 't', role: 'qa', instructions: 'x', dependsOn: ['', 7] }] }],
        },
        rules,
      ),
    );
    assert.equal((few.details as string[]).length, 2);
  });
});

describe('checkEditedPlan', () => {
  test('tells the names written with spaces and the names used', () => {
    const { plan, renamedTasks } = checkEditedPlan(
      {
        phases: [
          {
            name: 'p',
            tasks: [
              { name: 'Design API', role: 'qa', instructions: 'x' },
              { name: 'build', role: 'qa', instructions: 'y', depends_on: ['Design API'] },
            ],
          },
        ],
      },
      rules,
    );
    assert.deepEqual(renamedTasks, { 'Design API': 'Design-API' });
    assert.deepEqual(
      plan.phases[0]?.tasks.map((task) => [task.name, task.dependsOn]),
      [
        ['Design-API', []],
        ['build', ['Design-API']],
      ],
    );
  });

  test('a name the session has already is valid as it is, the orchestrator’s prefix too; not a new one', () => {
    // A plan submitted with its agents may name one `orchestrator:…`: sent back as read, it is approved.
    const waiting: PlanBody = {
      phases: [
        {
          name: 'main',
          tasks: [
            { name: 'orchestrator:check', role: 'qa', instructions: 'do check', dependsOn: [] },
            { name: 'fix', role: 'qa', instructions: 'do fix', dependsOn: ['orchestrator:check'] },
          ],
        },
      ],
    };
    const submitted: EditedPlanSession = {
      ...session([
        current('orchestrator:check', 'qa'),
        current('fix', 'qa', { dependsOn: ['orchestrator:check'] }),
      ]),
      waitingPlan: waiting,
    };
    const asRead = checkEditedPlan(waiting, rules, submitted);
    assert.equal(asRead.unchanged, true);
    const edited = checkEditedPlan(
      {
        phases: [
          {
            name: 'main',
            tasks: [
              { name: 'orchestrator:check', role: 'qa', instructions: 'check it all' },
              { name: 'fix', role: 'qa', instructions: 'do fix', dependsOn: ['orchestrator:check'] },
            ],
          },
        ],
      },
      rules,
      submitted,
    );
    assert.equal(edited.unchanged, false);
    const added = failure(() =>
      checkEditedPlan(
        {
          phases: [
            {
              name: 'main',
              tasks: [
                ...waiting.phases[0]!.tasks,
                { name: 'orchestrator:new', role: 'qa', instructions: 'x' },
              ],
            },
          ],
        },
        rules,
        submitted,
      ),
    );
    assert.match(added.message, /task name "orchestrator:new" is not a valid name/);
  });
});

describe('the dependencies of an edited task', () => {
  const withDependencies = (extra: Record<string, unknown>) => ({
    phases: [
      {
        name: 'p',
        tasks: [
          { name: 'design', role: 'architect', instructions: 'x' },
          { name: 'build', role: 'engineer', instructions: 'y', ...extra },
        ],
      },
    ],
  });
  const dependenciesOfBuild = (input: unknown) => taskOf(validateEditedPlan(input, rules), 0, 1).dependsOn;

  test('are read as `dependsOn`, as the session and its plan versions show them', () => {
    assert.deepEqual(dependenciesOfBuild(withDependencies({ dependsOn: ['design'] })), ['design']);
  });

  test('are still read as `depends_on`, and both spellings naming the same tasks agree', () => {
    assert.deepEqual(dependenciesOfBuild(withDependencies({ depends_on: ['design'] })), ['design']);
    assert.deepEqual(
      dependenciesOfBuild(withDependencies({ dependsOn: ['design'], depends_on: ['design'] })),
      ['design'],
    );
  });

  test('given both ways with different tasks is INVALID_PLAN naming the task', () => {
    const error = failure(() =>
      validateEditedPlan(withDependencies({ dependsOn: ['design'], depends_on: [] }), rules),
    );
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(
      error.message,
      /plan\.phases\.0\.tasks\.1: dependsOn and depends_on name different tasks: give the dependencies once, as dependsOn/,
    );
  });
});

describe('isSamePlan', () => {
  const plan = (phases: Array<[string, Array<[string, string[]]>]>): PlanBody => ({
    phases: phases.map(([name, tasks]) => ({
      name,
      tasks: tasks.map(([task, dependsOn]) => ({ name: task, role: 'qa', instructions: task, dependsOn })),
    })),
  });
  const base = plan([
    ['one', [['a', []]]],
    [
      'two',
      [
        ['b', ['a']],
        ['c', ['a', 'b']],
      ],
    ],
  ]);

  test('the order of tasks in a phase or of dependencies changes nothing', () => {
    const reordered = plan([
      ['one', [['a', []]]],
      [
        'two',
        [
          ['c', ['b', 'a']],
          ['b', ['a']],
        ],
      ],
    ]);
    assert.equal(isSamePlan(base, reordered), true);
  });

  test('a renamed, added or removed phase, or a changed task, is a change', () => {
    const changed = [
      plan([
        ['one', [['a', []]]],
        [
          '2',
          [
            ['b', ['a']],
            ['c', ['a', 'b']],
          ],
        ],
      ]),
      plan([
        [
          'one',
          [
            ['a', []],
            ['b', ['a']],
            ['c', ['a', 'b']],
          ],
        ],
      ]),
      plan([
        ['one', [['a', []]]],
        [
          'two',
          [
            ['b', ['a']],
            ['c', ['a']],
          ],
        ],
      ]),
    ];
    for (const other of changed) assert.equal(isSamePlan(base, other), false, JSON.stringify(other));
  });
});
