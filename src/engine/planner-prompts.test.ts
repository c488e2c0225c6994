// Unit tests for the orchestrator prompts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILT_IN_ROLES } from '../agents/roles/catalogue.ts';
import {
  boundSteeringMessages,
  buildInitialPlanPrompt,
  buildRepairPrompt,
  buildSynthesisPrompt,
  MAX_OUTPUTS_CHARS,
} from './planner-prompts.ts';

describe('synthesis prompt size', () => {
  test('many long outputs share a bounded budget', () => {
    const outputs = Array.from({ length: 40 }, (_, i) => ({
      name: `t${i}`,
      role: 'engineer',
      status: 'succeeded',
      output: 'x'.repeat(20_000),
    }));
    const { prompt } = buildSynthesisPrompt({ objective: 'o', outputs, outputChars: 12_000 });
    assert.ok(prompt.length < MAX_OUTPUTS_CHARS + 5_000, `prompt is ${prompt.length} characters`);
    assert.match(prompt, /### t39 \(engineer\)/);
  });
});

describe('planning prompts', () => {
  test('the initial prompt lists the roles, limits, thread summary and user messages', () => {
    const prompt = buildInitialPlanPrompt(
      {
        objective: 'Build X',
        roles: BUILT_IN_ROLES,
        limits: { maxTasksPerPhase: 4, maxAgentsPerRole: 2 },
        threadSummary: '- Earlier objective (completed): Y',
        userMessages: ['Use Go'],
      },
      true,
    );
    assert.match(prompt, /Objective:\nBuild X/);
    assert.match(prompt, /- ux_designer: /);
    assert.match(prompt, /at most 4 tasks per phase; at most 2 agents per role/);
    assert.match(prompt, /Earlier objective \(completed\): Y/);
    assert.match(prompt, /- Use Go/);
    assert.match(prompt, /Plan ONLY the first phase/);
  });

  test('the repair prompt lists every error', () => {
    assert.match(buildRepairPrompt(['a', 'b']), /- a\n- b/);
  });
});

describe('steering messages in prompts', () => {
  test('the newest that fit, oldest first, after a note counting the rest', () => {
    const newestFirst = ['m5', 'm4', 'm3', 'm2'];
    assert.deepEqual(boundSteeringMessages(newestFirst, 6, 4), [
      '(4 earlier message(s) from the user omitted; the newest follow)',
      'm4',
      'm5',
    ]);
  });

  test('all of them when they fit, and always the newest even when it alone is over', () => {
    assert.deepEqual(boundSteeringMessages(['b', 'a'], 2, 100), ['a', 'b']);
    assert.deepEqual(boundSteeringMessages(['long message'], 1, 3), ['long message']);
    assert.deepEqual(boundSteeringMessages([], 0), []);
  });
});
