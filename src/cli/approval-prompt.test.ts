// What `maos run` shows of a plan waiting for approval: the task instructions and phase names come
// from a model or from another user's edit, so their control characters are shown as escapes, never
// sent to the terminal (a title change, a cleared screen, a hidden line).
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { SessionDto } from '../http/dto.ts';
import { createApprovalPrompter, describeTasks } from './approval-prompt.ts';
import type { CliContext } from './context.ts';
import { createOutput } from './output.ts';

const session = {
  id: 's1',
  status: 'awaiting_approval',
  approval: { mode: 'required' },
  plan: {
    phases: [
      { name: 'scan\u001b[2J', tasks: [] },
      { name: 'report\u202e', tasks: [] },
    ],
  },
  tasks: [
    {
      id: 't1',
      name: 'scan',
      role: 'researcher',
      phase: 0,
      status: 'pending',
      dependsOn: [],
      instructions: 'Look \u001b]0;pwned\u0007 around\nsecond line',
    },
    {
      id: 't2',
      name: 'report',
      role: 'writer',
      phase: 1,
      status: 'pending',
      dependsOn: ['scan'],
      instructions: 'Write \u001b[8mhidden',
    },
  ],
} as unknown as SessionDto;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is matched
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

test('describeTasks shows control characters of instructions and phase names as escapes', () => {
  const lines = describeTasks(session, session.tasks);
  for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL, JSON.stringify(line));
  assert.deepEqual(lines, [
    '  phase 0 (scan\\x1b[2J):',
    '    scan [researcher]: Look \\x1b]0;pwned\\x07 around',
    '  phase 1 (report\\u202e):',
    '    report [writer] (after scan): Write \\x1b[8mhidden',
  ]);
});

test('the question at a phase gate names the phase with its control characters escaped', async () => {
  const stdout = new PassThrough();
  let text = '';
  stdout.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  const out = createOutput({ json: false, color: false, stdout, stderr: new PassThrough() });
  const ctx = { out, interruptSignal: () => new AbortController().signal } as unknown as CliContext;
  const gate = { ...session, approval: { mode: 'required', pendingPhase: 1 } } as unknown as SessionDto;
  const prompter = createApprovalPrompter(ctx, { interactive: false });
  assert.equal(await prompter.decide(gate), 'later');
  prompter.close();
  assert.doesNotMatch(text, RAW_CONTROL, text);
  assert.match(text, /waiting for approval of phase 1 \(report\\u202e\)/);
});
