// Ctrl-C while `maos run` asks whether to approve a plan: the command ends at once with exit 130 and
// says the session keeps waiting, instead of ignoring the signal and waiting for an answer on stdin
// (which stays open here, as a terminal's does).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

const BIN = new URL('../../bin/maos.js', import.meta.url).pathname;

/** Runs `maos run … --ask` with stdin left open; sends SIGINT once the question is printed. */
function interruptAtQuestion(
  args: string[],
  server: string,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('MAOS_')) env[key] = value;
  }
  const child = spawn(process.execPath, [BIN, 'run', ...args, '--ask'], {
    env: { ...env, MAOS_SERVER: server },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const asked = !stdout.includes('Approve this');
    stdout += chunk;
    if (asked && stdout.includes('Approve this')) child.kill('SIGINT');
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // Before the fix the command never ended: killed here, the test fails on the missing exit code.
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The orchestrator's first plan: one task. */
function answer(request: RecordedLlmRequest): ScriptedReply {
  if (request.body.response_format !== undefined) {
    return {
      object: {
        rationale: 'r',
        phases: [{ name: 'explore', tasks: [plannedTask('explore', 'researcher')] }],
      },
    };
  }
  return { text: 'output' };
}

test('Ctrl-C at the approval question of maos run', { timeout: 90_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, { handler: answer });
  const cases: Array<[string, string[], RegExp]> = [
    [
      'explicit agents, --follow',
      ['Needs a go', '--agent', 'first=qa:say hi:echo', '--require-approval', '--follow'],
      /^stopped following; session (\S+) keeps running/m,
    ],
    [
      // The wait for the orchestrator's plan had taken over Ctrl-C, so the question ignored it.
      'a plan the orchestrator made, without --follow',
      ['Compare hosting options', '--strategy', 'adaptive', '--require-approval'],
      /^stopped asking; session (\S+) keeps waiting for approval \(maos approve \1/m,
    ],
  ];
  for (const [name, args, note] of cases) {
    await t.test(`${name}: exit 130, the plan still waits`, async () => {
      const result = await interruptAtQuestion(args, server.url);
      assert.equal(result.code, 130, `${result.signal ?? ''}\n${result.stdout}${result.stderr}`);
      const id = /session (\S+) is waiting for plan approval/.exec(result.stdout)?.[1];
      assert.ok(id, result.stdout);
      assert.equal(note.exec(result.stderr)?.[1], id, result.stderr);
      assert.doesNotMatch(result.stderr, /^error /m);
      const session = (await (await fetch(`${server.url}/v1/sessions/${id}`)).json()) as { status: string };
      assert.equal(session.status, 'awaiting_approval');
    });
  }
});
