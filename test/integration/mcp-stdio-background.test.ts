// `maos mcp --mode embedded` runs what `maos serve` runs besides its listeners: webhook deliveries,
// retention, the workspace sweeper, audit checkpoints and, on PostgreSQL, the LISTEN notifier. It
// used to start the engine alone, so the webhooks of the sessions it ran waited for a `maos serve`
// on the data directory, which on SQLite cannot run beside it, and retention never ran for a user
// of embedded mode only.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { isRunning, killEmbeddedMcp, readRunnerPid, startEmbeddedMcp } from '../fixtures/embedded-mcp.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import {
  killServeChildren,
  startServeChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver } from '../fixtures/webhook-receiver.ts';

test('a session run by the embedded server has its webhook delivered by it', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-mcp-background-')));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const config = writeServeConfig(dataDir, {
    runners: { echo: { command: ['sh', '-c', 'echo hi'] } },
    secrets: { kekRing: generateKekEntry('k1') },
    ssrf: { allowedHosts: ['127.0.0.1'] },
    webhooks: { pollIntervalMs: 100 },
  });
  // The subscription is made over REST, by a server that then stops: on SQLite the embedded server
  // is the data directory's only one.
  const serve = await startServeChild(config);
  t.after(() => killServeChildren([serve.child]));
  const created = await requestJson<{ id: string }>(`${serve.url}/v1/webhooks`, {
    method: 'POST',
    body: { url: receiver.url, events: ['session.completed'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  serve.child.kill('SIGTERM');
  await waitForExit(serve.child);

  const mcp = await startEmbeddedMcp(config);
  t.after(() => killEmbeddedMcp(mcp));
  mcp.send({
    id: 2,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      arguments: {
        objective: 'webhook from embedded mode',
        agents: [{ role: 'qa', task: 't', runner: 'echo' }],
        wait_seconds: 30,
      },
    },
  });
  await waitFor(() => mcp.stdout().includes('"id":2'), 60_000, 'the answer to orchestrate');
  const sessionId = /\\"sessionId\\":\s*\\"([0-9A-Za-z_-]+)\\"/.exec(mcp.stdout())?.[1];
  assert.ok(sessionId, mcp.stdout());
  await waitFor(() => receiver.received.length > 0, 30_000, 'the webhook delivery');
  const delivery = JSON.parse(receiver.received[0]?.body ?? '{}') as { type?: string; data?: unknown };
  assert.equal(delivery.type, 'session.completed');
  assert.match(JSON.stringify(delivery.data), new RegExp(sessionId));
  mcp.child.stdin.end();
  assert.deepEqual(await mcp.exited, { code: 0, signal: null });
});

test('PostgreSQL: a cancel made on another replica stops the run of the embedded server at once', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const database = await createTestDatabase();
  t.after(() => database.drop());
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-mcp-listen-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The REST replica runs no task: the embedded server runs the session, the other one cancels it.
  const restDir = join(dir, 'rest');
  mkdirSync(restDir);
  const serve = await startServeChild(
    writeServeConfig(restDir, { store: { url: database.url, poolSize: 4 }, workers: { concurrency: 0 } }),
  );
  t.after(() => killServeChildren([serve.child]));
  const config = join(dir, 'embedded.json');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir: join(dir, 'embedded'),
      logLevel: 'warn',
      store: { url: database.url, poolSize: 4 },
      // A lease renewal, the only other way the cancel reaches the run, comes long after the test's
      // bound: the run stops on the replicas' LISTEN/NOTIFY or not at all within it.
      tasks: { leaseSeconds: 900 },
      shutdown: { graceSeconds: 1 },
      runners: { long: { command: ['sh', '-c', `echo $$ > "${dir}/runner.pid"; exec sleep 300`] } },
    }),
  );
  const mcp = await startEmbeddedMcp(config);
  t.after(() => killEmbeddedMcp(mcp));
  mcp.send({
    id: 2,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      arguments: { objective: 'cancelled elsewhere', agents: [{ role: 'qa', task: 'wait', runner: 'long' }] },
    },
  });
  const runner = await readRunnerPid(join(dir, 'runner.pid'));
  t.after(() => {
    if (isRunning(runner)) process.kill(-runner, 'SIGKILL');
  });
  await waitFor(() => mcp.stdout().includes('"id":2'), 60_000, 'the answer to orchestrate');
  const sessionId = /\\"sessionId\\":\s*\\"([0-9A-Za-z_-]+)\\"/.exec(mcp.stdout())?.[1];
  assert.ok(sessionId, mcp.stdout());
  const cancelled = await requestJson(`${serve.url}/v1/sessions/${sessionId}/cancel`, { method: 'POST' });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  await waitFor(() => !isRunning(runner), 60_000, 'the runner to be stopped');
  mcp.child.stdin.end();
  assert.deepEqual(await mcp.exited, { code: 0, signal: null });
});
