// Counters fed by real traffic: MCP requests by method and outcome after real MCP calls, and
// budget rejections after a real session crosses its budget (scripted LLM), worker slots after a
// cancel and after a finish the database refused, read from /metrics.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { connectHttpClient } from '../fixtures/mcp-server.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const mcp = (method: string, outcome: string) =>
  `maos_mcp_requests_total{mcp_method_name="${method}",outcome="${outcome}"}`;

test('MCP requests are counted by method and outcome, a failed tool call as an error', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'success')), 0);
  const client = await connectHttpClient(server.url);
  t.after(() => client.close());
  // connectHttpClient has sent one tools/list.
  await client.client.callTool({ name: 'list_roles', arguments: {} });
  const missing = await client.client.callTool({
    name: 'session_status',
    arguments: { session_id: '01a21400-0000-7000-8000-00000000dead' },
  });
  assert.equal(missing.isError, true);
  assert.equal(await scrapeSample(server.url, mcp('initialize', 'success')), 1);
  assert.equal(await scrapeSample(server.url, mcp('tools/list', 'success')), 1);
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'success')), 1);
  assert.equal(await scrapeSample(server.url, mcp('tools/call', 'error')), 1);
});

test('a session failed for its budget counts one budget rejection', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler(() => ({ text: 'short answer', usage: { inputTokens: 5000, outputTokens: 10 } }));
  const series = 'maos_budget_rejections_total{scope="session"}';
  assert.equal(await scrapeSample(server.url, series), 0);
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Two steps',
      strategy: 'sequential',
      agents: [
        { name: 'one', role: 'researcher', task: 'Step one' },
        { name: 'two', role: 'researcher', task: 'Step two' },
      ],
      budget: { maxTokens: 1000 },
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{ status: string; error: string | null }>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  assert.match(done.error ?? '', /^BUDGET_EXCEEDED/);
  assert.equal(await scrapeSample(server.url, series), 1);
});

test('a submit refused by the daily token cap counts one tenant budget rejection', async (t) => {
  const { server } = await startLlmAppStack(t, {
    handler: () => ({ text: 'done', usage: { inputTokens: 600, outputTokens: 10 } }),
    config: { rateLimit: { enabled: true, maxDailyTokensPerTenant: 500 } },
  });
  const series = 'maos_budget_rejections_total{scope="tenant"}';
  const submit = () =>
    requestJson<{ id: string; code?: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'One step', agents: [{ name: 'one', role: 'researcher', task: 'Step one' }] },
    });
  const first = await submit();
  assert.equal(first.status, 201, JSON.stringify(first.body));
  await waitForSession(server.url, first.body.id);
  assert.equal(await scrapeSample(server.url, series), 0);
  const refused = await submit();
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'QUOTA_EXCEEDED');
  assert.equal(await scrapeSample(server.url, series), 1);
});

test('a run stopped by its session being cancelled frees its slot and counts as cancelled', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'wait', agents: [{ name: 'w', role: 'qa', task: 'wait', runner: 'sleep' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await waitForSession<{ status: string; tasks: Array<{ status: string }> }>(
    server.url,
    created.body.id,
    (session) => session.tasks[0]?.status === 'running',
  );
  assert.equal(await scrapeSample(server.url, 'maos_worker_slots{state="busy"}'), 1);
  const cancel = await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' });
  assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
  const cancelled = 'maos_task_duration_seconds_count{runtime="command",role="qa",outcome="cancelled"}';
  for (let i = 0; i < 100 && (await scrapeSample(server.url, cancelled)) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(await scrapeSample(server.url, cancelled), 1);
  assert.equal(await scrapeSample(server.url, 'maos_worker_slots{state="busy"}'), 0);
});

test('a run whose finish cannot be stored frees its slot in the busy-slots gauge', async (t) => {
  const log = captureLog();
  const server = await startTestServer({
    // A long lease: the task is not claimed again (busy again) before the gauge is read.
    config: { logLevel: 'error', tasks: { leaseSeconds: 60, maxAttempts: 2 } },
    logDestination: log.destination,
  });
  t.after(() => server.close());
  // The database refuses to store the task's success, as a full disk or a lost connection would.
  const db = new Database(join(server.dataDir, 'maos.db'));
  t.after(() => db.close());
  db.exec(`CREATE TRIGGER refuse_finish BEFORE UPDATE OF status ON tasks WHEN NEW.status = 'succeeded'
           BEGIN SELECT RAISE(ABORT, 'finish refused by the test'); END`);
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'one step', agents: [{ name: 'o', role: 'qa', task: 'ok', runner: 'ok' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await waitFor(() => log.lines.some((line) => line.message === 'finishing a task failed'));
  assert.equal(await scrapeSample(server.url, 'maos_worker_slots{state="busy"}'), 0);
  assert.equal(await scrapeSample(server.url, 'maos_worker_slots{state="idle"}'), 4);
});

test('a session whose plan is rejected counts as finished failed', async (t) => {
  const { server } = await startLlmAppStack(t);
  const finished = 'maos_sessions_finished_total{outcome="failed"}';
  const created = await requestJson<{ id: string; status: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Needs a go',
      approval: 'required',
      agents: [{ name: 'first', role: 'qa', task: 'say hi', runner: 'echo' }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.status, 'awaiting_approval');
  assert.equal(await scrapeSample(server.url, 'maos_sessions_started_total'), 1);
  assert.equal(await scrapeSample(server.url, finished), 0);
  const rejected = await requestJson(`${server.url}/v1/sessions/${created.body.id}/reject`, {
    method: 'POST',
    body: { reason: 'wrong scope' },
  });
  assert.equal(rejected.status, 204, JSON.stringify(rejected.body));
  const done = await waitForSession<{ status: string }>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  assert.equal(await scrapeSample(server.url, finished), 1);
});
