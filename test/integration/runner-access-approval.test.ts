// runnerAccess at plan approval, on the real server: a plan that waited while the operator took a
// runner from the tenant is not started as it is, nor with an edited plan still naming that runner
// (400 INVALID_PLAN, the refusal among its problems, with the same message as at create time); an
// edit onto a runner the tenant may use starts it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface Problem {
  code: string;
  detail: string;
  details?: unknown;
}

// The approval routes come with the orchestrator, so a provider is configured; these sessions list
// their agents, so it is never called.
const providers = {
  local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', apiKey: 'k' },
};

const REFUSED =
  /Runner 'echo' \(task ship\) may not be used by your tenant \(the server's runnerAccess config\)/;

test('a plan naming a runner the tenant may no longer use is approved neither as it is nor edited', {
  timeout: 60_000,
}, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-runner-access-approval-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));

  const before = await startTestServer({ dataDir, config: { providers } });
  let id: string;
  try {
    const created = await requestJson<{ id: string; status: string }>(`${before.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'runner access at approval',
        approval: 'required',
        agents: [{ name: 'ship', role: 'engineer', task: 'go', runner: 'echo' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    id = created.body.id;
    await waitForSession<{ status: string }>(before.url, id, (s) => s.status === 'awaiting_approval');
  } finally {
    await before.close();
  }

  // The operator now gives tenant `default` (auth mode none's) the runner `ok` alone.
  const after = await startTestServer({
    dataDir,
    config: { providers, runnerAccess: { tenants: { default: ['ok'] } } },
  });
  t.after(() => after.close());

  const asIs = await requestJson<Problem>(`${after.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: {},
  });
  assert.equal(asIs.status, 400, JSON.stringify(asIs.body));
  assert.equal(asIs.body.code, 'INVALID_PLAN');
  assert.match(asIs.body.detail, REFUSED);
  assert.ok(
    Array.isArray(asIs.body.details) && asIs.body.details.some((problem) => REFUSED.test(String(problem))),
    JSON.stringify(asIs.body.details),
  );

  const plan = (runner: string) => ({
    phases: [{ name: 'main', tasks: [{ name: 'ship', role: 'engineer', instructions: 'go again', runner }] }],
  });
  const edited = await requestJson<Problem>(`${after.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: { plan: plan('echo') },
  });
  assert.equal(edited.status, 400, JSON.stringify(edited.body));
  assert.equal(edited.body.code, 'INVALID_PLAN');
  assert.match(edited.body.detail, REFUSED);

  const still = await requestJson<{ status: string }>(`${after.url}/v1/sessions/${id}`);
  assert.equal(still.body.status, 'awaiting_approval', 'a refused approval leaves the plan waiting');

  const allowed = await requestJson<{ planVersion: number }>(`${after.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: { plan: plan('ok') },
  });
  assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
  assert.equal((await waitForSession<{ status: string }>(after.url, id)).status, 'completed');
});
