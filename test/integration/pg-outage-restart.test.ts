// PostgreSQL stopped under a running `maos serve` and started again on the same data directory and
// port, three ways: fast shutdown (SIGINT), immediate shutdown (SIGQUIT) and SIGKILL of the
// postmaster, while clients keep submitting. While it is down requests get 503 STORE_UNAVAILABLE
// (problem+json) and /readyz fails; afterwards the same process serves again without a restart:
// every acknowledged session is there and completes, each session's events are numbered without
// gaps, each one's session.completed webhook arrives, the audit chain verifies, and the process
// never exited.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import {
  type RestartablePostgres,
  type StopMode,
  startRestartablePostgres,
} from '../fixtures/restartable-postgres.ts';
import { startServeChild, waitForExit, writeServeConfig } from '../fixtures/serve-child.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../fixtures/webhook-receiver.ts';

describe('PostgreSQL stopped and started again under a running replica', { timeout: 300_000 }, () => {
  let database: RestartablePostgres;
  let dataDir: string;
  let child: ChildProcess;
  let url: string;
  let output = '';
  let receiver: WebhookReceiver;
  before(async () => {
    database = await startRestartablePostgres();
    receiver = await startWebhookReceiver();
    dataDir = mkdtempSync(join(tmpdir(), 'maos-pg-outage-'));
    const config = writeServeConfig(dataDir, {
      store: { url: database.url, poolSize: 4, connectTimeoutMs: 1000 },
      workers: { concurrency: 2, pollIntervalMs: 200 },
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { pollIntervalMs: 200 },
      runners: { short: { command: ['sh', '-c', 'sleep 0.2; echo "done $MAOS_TASK"'] } },
    });
    ({ child, url } = await startServeChild(config));
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  });
  after(async () => {
    child?.kill('SIGTERM');
    if (child) await waitForExit(child);
    await database?.close();
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const submit = () =>
    requestJson<{ id: string; code?: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'outage',
        agents: [
          { name: 'a', role: 'engineer', task: 't', runner: 'short' },
          { name: 'b', role: 'engineer', task: 't', runner: 'short' },
        ],
      },
    });

  test('503 while down, the same process serves again after each restart and loses no acknowledged write', async (t) => {
    const webhook = await requestJson(`${url}/v1/webhooks`, {
      method: 'POST',
      body: { url: receiver.url, events: ['session.completed'] },
    });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    const acknowledged: string[] = [];
    const unexpected: string[] = [];
    for (const mode of ['fast', 'immediate', 'kill'] as StopMode[]) {
      // Clients keep submitting across the stop and the start.
      let submitting = true;
      const submitter = (async () => {
        while (submitting) {
          const answer = await submit();
          if (answer.status === 201) acknowledged.push(answer.body.id);
          else if (answer.status !== 503 || answer.body.code !== 'STORE_UNAVAILABLE') {
            unexpected.push(`${mode}: ${answer.status} ${JSON.stringify(answer.body)}`);
          }
        }
      })();
      const atStart = acknowledged.length;
      await waitFor(
        () => acknowledged.length >= atStart + 3,
        30_000,
        `${mode}: sessions accepted before the stop`,
      );
      await database.stop(mode);

      const list = await requestJson<{ code: string }>(`${url}/v1/sessions`);
      assert.equal(list.status, 503, `${mode}: ${JSON.stringify(list.body)}`);
      assert.equal(list.body.code, 'STORE_UNAVAILABLE');
      assert.match(String(list.headers.get('content-type')), /application\/problem\+json/);
      const down = await requestJson<{ checks: Record<string, { ok: boolean; detail: string }> }>(
        `${url}/readyz`,
      );
      assert.equal(down.status, 503);
      assert.equal(down.body.checks.database?.ok, false);

      await database.start();
      await waitFor(
        async () => (await requestJson(`${url}/readyz`)).status === 200,
        60_000,
        `${mode}: ready`,
      );
      const before = acknowledged.length;
      await waitFor(
        () => acknowledged.length > before,
        60_000,
        `${mode}: a session accepted after the start`,
      );
      submitting = false;
      await submitter;
    }

    t.diagnostic(`sessions acknowledged across the three restarts: ${acknowledged.length}`);
    assert.deepEqual(unexpected, [], 'every refused submit was 503 STORE_UNAVAILABLE');
    for (const id of acknowledged) {
      const session = await waitForSession<{ status: string }>(url, id, undefined, 120_000);
      assert.equal(session.status, 'completed', id);
      const seqs = (await readAllEvents<{ seq: number }>(url, id)).map((event) => event.seq);
      assert.deepEqual(
        seqs,
        seqs.map((_, index) => index + 1),
        `events of ${id} numbered without gaps`,
      );
    }
    await waitFor(
      () => acknowledged.every((id) => receiver.received.some((delivery) => delivery.body.includes(id))),
      120_000,
      'a session.completed webhook for every acknowledged session',
    );
    assert.equal(child.exitCode, null, output);
    assert.equal(child.signalCode, null, output);
    assert.doesNotMatch(output, /unhandled|uncaught/i);

    const handle = createDatabase({
      dataDir,
      store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000 },
    });
    try {
      const rows = await (handle.db as unknown as SecurityDb)
        .selectFrom('audit_log')
        .select(['seq', 'event', 'prev_hash', 'hash'])
        .orderBy('seq')
        .execute();
      const report = await verifyAuditEntries(rows.map((row) => ({ ...row, seq: Number(row.seq) })));
      assert.equal(report.ok, true, report.problems.join('; '));
    } finally {
      await handle.close();
    }
  });
});
