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

  test('1,000 outputs stay within the bound: the newest with their text, the rest by name', () => {
    const outputs = Array.from({ length: 1_000 }, (_, i) => ({
      name: `task-${i}`,
      role: 'engineer',
      agent: `agent-${i}`,
      status: 'succeeded',
      output: `## Summary\nResult ${i}.\n\n## Deliverable\n${'x'.repeat(5_000)}`,
    }));
    const head = "Objective:\no\n\nAgents' outputs:\n\n";
    const { prompt } = buildSynthesisPrompt({ objective: 'o', outputs, outputChars: 12_000 });
    assert.ok(prompt.startsWith(head));
    const section = prompt.slice(head.length);
    assert.ok(section.length <= MAX_OUTPUTS_CHARS, `the outputs take ${section.length} characters`);
    for (const { name } of outputs) assert.ok(section.includes(`${name} (engineer`), `${name} is named`);
    assert.match(section, /### task-999 \(engineer, agent agent-999\) — succeeded\n## Summary\nResult 999\./);
    assert.match(section, /\(\d+ earlier outputs? without \w+ text for lack of room\)/);
  });

  test('outputs that fit whole are shown whole', () => {
    const outputs = [{ name: 'a', role: 'engineer', status: 'succeeded', output: 'short answer' }];
    const { prompt } = buildSynthesisPrompt({ objective: 'o', outputs, outputChars: 12_000 });
    assert.match(prompt, /### a \(engineer\) — succeeded\nshort answer$/);
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
