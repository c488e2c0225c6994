// Webhook deliveries live in the database, not in a server's memory: a server killed (SIGKILL) while
// a delivery is in flight leaves it to the next server on the data directory, which sends it again
// once the dead server's lease has run out (at least once: the same webhook-id twice); a server
// stopped with a delivery waiting for its retry sends it after the restart; and the URL passes the
// SSRF guard again at delivery, so a host the operator no longer allows gets nothing.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { WebhookDelivery } from '../../src/webhooks/webhook-service.ts';
import {
  killServeChildren,
  startServeChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver } from '../fixtures/webhook-receiver.ts';

const deliveriesOf = async (url: string, webhookId: string) =>
  (await requestJson<{ items: WebhookDelivery[] }>(`${url}/v1/webhooks/${webhookId}/deliveries`)).body.items;

async function subscribe(url: string, receiverUrl: string): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/webhooks`, {
    method: 'POST',
    body: { url: receiverUrl, events: ['session.completed'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

async function submit(url: string): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'restart', agents: [{ role: 'qa', task: 't', runner: 'echo' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

test('a server killed mid-delivery: the next one sends it again', { timeout: 120_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-webhooks-kill-'));
  const children: ChildProcess[] = [];
  t.after(async () => {
    await killServeChildren(children);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const config = writeServeConfig(dataDir, {
    runners: { echo: { command: ['sh', '-c', 'echo hi'] } },
    secrets: { kekRing: generateKekEntry('k1') },
    ssrf: { allowedHosts: ['127.0.0.1'] },
    // A lease of 2 × 1 s + 10 s: the killed server's claim runs out soon.
    webhooks: { timeoutSeconds: 1, pollIntervalMs: 100 },
  });
  const first = await startServeChild(config);
  children.push(first.child);
  const webhookId = await subscribe(first.url, receiver.url);
  receiver.hang();
  const sessionId = await submit(first.url);
  await waitFor(() => receiver.received.length === 1, 30_000, 'the first attempt to arrive');
  first.child.kill('SIGKILL');
  await waitForExit(first.child);

  receiver.answer([204]);
  const second = await startServeChild(config);
  children.push(second.child);
  const delivered = await waitFor(
    async () => (await deliveriesOf(second.url, webhookId)).find((d) => d.status === 'delivered'),
    60_000,
    'the delivery by the restarted server',
  );
  assert.equal(delivered.sessionId, sessionId);
  assert.equal(delivered.attempts, 2, 'the attempt the killed server made counts');
  assert.equal(receiver.received.length, 2);
  assert.equal(receiver.received[0]?.headers['webhook-id'], receiver.received[1]?.headers['webhook-id']);
  assert.equal(receiver.received[0]?.body, receiver.received[1]?.body);
});

test('a delivery waiting for its retry is sent after a restart; the URL is checked again', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-webhooks-restart-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const kekRing = generateKekEntry('k1');
  const config = {
    secrets: { kekRing },
    ssrf: { allowedHosts: ['127.0.0.1'] },
    webhooks: { retryDelaysSeconds: [1], pollIntervalMs: 50 },
  };
  receiver.answer([503]);
  const first = await startTestServer({ dataDir, config });
  const webhookId = await subscribe(first.url, receiver.url);
  const waiting = await submit(first.url);
  await waitFor(
    async () => (await deliveriesOf(first.url, webhookId)).find((d) => d.lastStatus === 503),
    15_000,
    'the refused first attempt',
  );
  await first.close();

  receiver.answer([204]);
  const second = await startTestServer({ dataDir, config });
  const delivered = await waitFor(
    async () => (await deliveriesOf(second.url, webhookId)).find((d) => d.status === 'delivered'),
    15_000,
    'the delivery after the restart',
  );
  assert.equal(delivered.sessionId, waiting);
  assert.equal(delivered.attempts, 2);
  await second.close();

  // The operator no longer allows loopback: the stored URL is refused at delivery.
  const third = await startTestServer({
    dataDir,
    config: { ...config, ssrf: { allowedHosts: [] }, webhooks: { ...config.webhooks, maxAttempts: 1 } },
  });
  t.after(() => third.close());
  const before = receiver.received.length;
  const refused = await submit(third.url);
  await waitForSession(third.url, refused);
  const failed = await waitFor(
    async () =>
      (await deliveriesOf(third.url, webhookId)).find(
        (d) => d.sessionId === refused && d.status === 'failed',
      ),
    15_000,
    'the refused delivery',
  );
  // Plain http to a host no longer trusted: refused before any connection (loopback would be too).
  assert.match(failed.lastError ?? '', /must use https/);
  assert.equal(failed.lastStatus, null);
  assert.equal(receiver.received.length, before, 'nothing was sent to the refused host');
});

test('the Retry-After of a 429 replaces the retry schedule', { timeout: 60_000 }, async (t) => {
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  // An hour by the schedule: only the receiver's Retry-After of one second gets it delivered in time.
  const server = await startTestServer({
    config: {
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { retryDelaysSeconds: [3600], pollIntervalMs: 50 },
    },
  });
  t.after(() => server.close());
  receiver.answer([429, 204], { 'retry-after': '1' });
  const webhookId = await subscribe(server.url, receiver.url);
  const sessionId = await submit(server.url);
  const delivered = await waitFor(
    async () => (await deliveriesOf(server.url, webhookId)).find((d) => d.status === 'delivered'),
    20_000,
    'the delivery after Retry-After',
  );
  assert.equal(delivered.sessionId, sessionId);
  assert.equal(delivered.attempts, 2);
});
