// An approve or reject that names the plan version it decides on (`planVersion`, as the session
// showed it) decides that plan only: at an adaptive session's next gate, where another plan waits,
// it is refused (409 INVALID_STATE) and the plan it never saw keeps waiting. Without it, a reviewer
// who read phase 1 approved phase 2 once someone else had approved phase 1 and the phase had run,
// and so did the answer typed at `maos run`'s question.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { twoPhaseAdaptiveHandler } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  planVersion: number;
  approval: { pendingPhase: number | null } | null;
}

test('an approval or rejection pinned to a plan version does not decide a later plan', {
  timeout: 60_000,
}, async (t) => {
  const { llm, server, submit, wait } = await startOrchestratorStack(t);
  llm.setHandler(twoPhaseAdaptiveHandler({ completeAfterTwo: true }));
  const id = await submit({ objective: 'Build it', strategy: 'adaptive', approval: 'required' });
  const first = await wait<SessionView>(id, (session) => session.status === 'awaiting_approval');
  const post = (path: string, body: unknown) =>
    requestJson<{ code?: string; details?: { status?: string; planVersion?: number } }>(
      `${server.url}/v1/sessions/${id}/${path}`,
      { method: 'POST', body },
    );

  // Two reviewers read the first plan; one approves it.
  assert.equal((await post('approve', { planVersion: first.planVersion })).status, 200);
  const gate = await wait<SessionView>(
    id,
    (session) => session.status === 'awaiting_approval' && session.approval?.pendingPhase === 1,
  );
  assert.notEqual(gate.planVersion, first.planVersion);

  // The other's decision on the plan they read arrives once phase 1 waits: refused, not applied to it.
  for (const [path, body] of [
    ['approve', { planVersion: first.planVersion }],
    ['reject', { reason: 'no', planVersion: first.planVersion }],
  ] as const) {
    const stale = await post(path, body);
    assert.equal(stale.status, 409, `${path}: ${JSON.stringify(stale.body)}`);
    assert.equal(stale.body.code, 'INVALID_STATE');
    assert.equal(stale.body.details?.status, 'awaiting_approval');
    assert.equal(stale.body.details?.planVersion, gate.planVersion);
  }
  const still = await wait<SessionView>(id, () => true);
  assert.equal(still.status, 'awaiting_approval');
  assert.equal(still.planVersion, gate.planVersion);

  // A version that is no integer is a bad request; the plan read now is approved.
  assert.equal((await post('approve', { planVersion: 'x' })).status, 400);
  assert.equal((await post('approve', { planVersion: gate.planVersion })).status, 200);
  const done = await wait<SessionView>(id);
  assert.equal(done.status, 'completed');
});

test('maos run: a "y" typed after someone else approved the plan shown does not approve the next gate', {
  timeout: 90_000,
}, async (t) => {
  const { llm, server, wait } = await startOrchestratorStack(t);
  llm.setHandler(twoPhaseAdaptiveHandler());
  const bin = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [bin, 'run', 'Build it', '--strategy', 'adaptive', '--require-approval', '--follow', '--ask'],
    { env: { ...process.env, MAOS_SERVER: server.url, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  child.stdin.on('error', () => {});
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const printed = async (pattern: RegExp): Promise<RegExpExecArray> => {
    for (let i = 0; i < 600; i += 1) {
      const found = pattern.exec(stdout);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`not printed: ${pattern}\n${stdout}\n${stderr}`);
  };

  const id = (await printed(/session (\S+) is waiting for plan approval/))[1] as string;
  await printed(/Approve this plan\?/);
  // Someone else approves the plan shown; its phase runs and the gate's phase 1 waits.
  const elsewhere = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: {},
  });
  assert.equal(elsewhere.status, 200);
  await wait<SessionView>(
    id,
    (session) => session.status === 'awaiting_approval' && session.approval?.pendingPhase === 1,
  );
  // The answer to the plan shown comes now: it decides nothing; phase 1 is shown and asked about.
  child.stdin.write('y\n');
  await printed(/not decided here: /);
  await printed(/Approve this phase 1 \(two\)\?/);
  const waiting = await wait<SessionView>(id, () => true);
  assert.equal(waiting.status, 'awaiting_approval', stdout);
  child.stdin.end('n\nnot this one\n');
  assert.equal(await exited, 1, stdout + stderr);
  const done = await wait<SessionView & { error: string | null }>(id);
  assert.equal(done.error, 'Plan rejected: not this one');
});
