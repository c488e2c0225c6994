// runnerAccess on the real server: a session naming a runner its tenant may not use is refused at
// create time (403 RUNNER_NOT_ALLOWED, problem+json), and so is a retry that would run one again; a
// task stored before the operator took the runner from the tenant fails with that code instead of
// running. Before, any principal allowed sessions:create could have any declared runner run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { readAllEvents, requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface Problem {
  code: string;
  detail: string;
  details?: { tasks?: string[] };
}

interface SessionBody {
  id: string;
  status: string;
}

interface SessionEvent {
  seq: number;
  type: string;
  data: { code?: string; error?: string; stream?: string; chunk?: string; text?: string };
}

const session = (runner: string) => ({
  objective: 'runner access',
  agents: [{ name: 'step', role: 'engineer', task: 'go', runner }],
});

test('a tenant runs only the runners runnerAccess gives it: refused at create, at retry and at run time', {
  timeout: 60_000,
}, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runner-access-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));

  // Before the restriction: one session's runner is running when the server stops, another failed.
  const before = await startTestServer({ dataDir });
  let running: string;
  let failed: string;
  try {
    const started = await requestJson<SessionBody>(`${before.url}/v1/sessions`, {
      method: 'POST',
      body: session('pid'),
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    running = started.body.id;
    await waitForSession<SessionBody & { tasks: Array<{ status: string }> }>(before.url, running, (s) =>
      s.tasks.some((task) => task.status === 'running'),
    );
    const failing = await requestJson<SessionBody>(`${before.url}/v1/sessions`, {
      method: 'POST',
      body: session('fail'),
    });
    failed = failing.body.id;
    assert.equal((await waitForSession<SessionBody>(before.url, failed)).status, 'failed');
  } finally {
    await before.close();
  }

  // The operator now gives tenant `default` (auth mode none's) the runner `ok` alone.
  const after = await startTestServer({
    dataDir,
    config: { runnerAccess: { tenants: { default: ['ok'] } } },
  });
  t.after(() => after.close());

  const refused = await requestJson<Problem>(`${after.url}/v1/sessions`, {
    method: 'POST',
    body: session('echo'),
  });
  assert.equal(refused.status, 403);
  assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(refused.body.code, 'RUNNER_NOT_ALLOWED');
  assert.match(refused.body.detail, /Runner 'echo' \(task step\) may not be used by your tenant/);
  assert.deepEqual(refused.body.details?.tasks, ['step']);

  const allowed = await requestJson<SessionBody>(`${after.url}/v1/sessions`, {
    method: 'POST',
    body: session('ok'),
  });
  assert.equal(allowed.status, 201);
  assert.equal((await waitForSession<SessionBody>(after.url, allowed.body.id)).status, 'completed');

  // The task given back at the stop runs again here: it fails saying why, its runner never starts.
  const stopped = await waitForSession<SessionBody>(after.url, running);
  assert.equal(stopped.status, 'failed');
  const events = await readAllEvents<SessionEvent>(after.url, running);
  const results = events.filter((event) => event.type === 'task.result');
  const last = results.at(-1);
  assert.equal(last?.data.code, 'RUNNER_NOT_ALLOWED', JSON.stringify(results));
  assert.match(last?.data.error ?? '', /Runner 'pid' \(task step\) may not be used by your tenant/);

  const retry = await requestJson<Problem>(`${after.url}/v1/sessions/${failed}/retry`, {
    method: 'POST',
    body: {},
  });
  assert.equal(retry.status, 403, JSON.stringify(retry.body));
  assert.equal(retry.body.code, 'RUNNER_NOT_ALLOWED');

  // What the operator sees: both refusals counted by their code, and audited as failed writes
  // naming the runner refused (not a bare `HTTP 403`).
  assert.equal(await scrapeSample(after.url, 'maos_errors_total{code="RUNNER_NOT_ALLOWED"}'), 2);
  const audit = await requestJson<{
    items: Array<{ action: string; outcome: string; reason: string | null }>;
  }>(`${after.url}/v1/audit?outcome=failure`);
  assert.equal(audit.status, 200, JSON.stringify(audit.body));
  const refusals = audit.body.items.map(({ action, outcome, reason }) => ({ action, outcome, reason }));
  assert.deepEqual(
    refusals.map(({ action, outcome }) => [action, outcome]),
    [
      ['sessions:create', 'failure'],
      ['sessions:retry', 'failure'],
    ],
  );
  assert.match(refusals[0]?.reason ?? '', /^Runner 'echo' \(task step\) may not be used by your tenant/);
  assert.match(refusals[1]?.reason ?? '', /^Runner 'fail' \(task step\) may not be used by your tenant/);
});
