// A running server with `egress.proxy` set: its provider calls (streamed) and webhook deliveries go
// through a real forward proxy with credentials; with the proxy down, the task and the delivery
// say so; `maos doctor` reports the proxy and checks providers through it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDoctor } from '../../src/cli/ops/doctor-checks.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { WebhookDelivery } from '../../src/webhooks/webhook-service.ts';
import { startForwardProxy } from '../fixtures/forward-proxy.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver } from '../fixtures/webhook-receiver.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const CREDENTIALS = { username: 'maos', password: 'proxy-pass-5e3c' };

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; result: string | null; error: string | null }>;
}

/** A server whose provider and webhook receiver have names only the proxy resolves. */
async function startProxiedServer(
  t: { after(fn: () => unknown): void },
  proxyUrl: string,
  llmBaseURL: string,
) {
  const server = await startTestServer({
    config: {
      providers: { local: { type: 'openai-compatible', baseURL: llmBaseURL, model: 'm', apiKey: 'k' } },
      llm: { retry: { maxAttempts: 1 }, agentMessaging: false, checkKeysAtStart: false },
      secrets: { kekRing: generateKekEntry('k1') },
      // The receiver is trusted by name (plain http to it is allowed); not resolvable here.
      ssrf: { allowedHosts: ['hooks.test'] },
      webhooks: { pollIntervalMs: 50, retryDelaysSeconds: [30], maxAttempts: 2 },
      egress: { proxy: { url: proxyUrl } },
    },
  });
  t.after(() => server.close());
  const subscribe = async (url: string) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      body: { url, events: ['session.completed', 'session.failed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };
  const run = async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Greet', agents: [{ name: 'writer', role: 'qa', task: 'say hi' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return { id: created.body.id, done: await waitForSession<SessionView>(server.url, created.body.id) };
  };
  return { server, subscribe, run };
}

test('provider calls and webhook deliveries go through the egress proxy, with its credentials', async (t) => {
  const llm = await startLlmServer({
    apiKey: 'k',
    handler: () => ({ text: 'hello through the proxy', chunkSize: 4 }),
  });
  t.after(() => llm.close());
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const proxy = await startForwardProxy({
    credentials: CREDENTIALS,
    hosts: { 'llm.test': '127.0.0.1', 'hooks.test': '127.0.0.1' },
  });
  t.after(() => proxy.close());

  const { subscribe, run } = await startProxiedServer(
    t,
    proxy.urlWithCredentials,
    llm.openaiBaseURL.replace('127.0.0.1', 'llm.test'),
  );
  await subscribe(receiver.url.replace('127.0.0.1', 'hooks.test'));
  const { done } = await run();
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(done.tasks.find((task) => task.name === 'writer')?.result, 'hello through the proxy');
  assert.ok(
    llm.requests.some((request) => request.stream),
    'the streamed agent call reached the provider',
  );
  await waitFor(() => receiver.received.length > 0 || undefined, 15_000, 'the session.completed delivery');
  assert.equal(JSON.parse(receiver.received[0]?.body ?? '{}').type, 'session.completed');

  const llmPort = Number(new URL(llm.openaiBaseURL).port);
  const hooksPort = Number(new URL(receiver.url).port);
  assert.ok(
    proxy.seen.some((seen) => seen.hostname === 'llm.test' && seen.port === llmPort && seen.isHttp),
    JSON.stringify(proxy.seen),
  );
  assert.ok(proxy.seen.some((seen) => seen.hostname === 'hooks.test' && seen.port === hooksPort));
  assert.ok(proxy.seen.every((seen) => seen.username === CREDENTIALS.username));
});

test('with the egress proxy down, the task and the delivery name the proxy', async (t) => {
  const downPort = await freePort();
  const { server, subscribe, run } = await startProxiedServer(
    t,
    `http://maos:${CREDENTIALS.password}@127.0.0.1:${downPort}`,
    'https://llm.test/v1',
  );
  const webhookId = await subscribe('https://hooks.test/hooks');
  const { done } = await run();
  assert.equal(done.status, 'failed');
  const reason = `egress proxy 127.0.0.1:${downPort} cannot be reached (ECONNREFUSED)`;
  const writer = done.tasks.find((task) => task.name === 'writer');
  assert.ok(writer?.error?.includes(reason), JSON.stringify(done.tasks));

  const delivery = await waitFor(
    async () => {
      const listed = await requestJson<{ items: WebhookDelivery[] }>(
        `${server.url}/v1/webhooks/${webhookId}/deliveries`,
      );
      return listed.body.items.find((item) => item.lastError !== null);
    },
    15_000,
    'a failed delivery attempt',
  );
  assert.equal(delivery.lastError, `${reason}: EGRESS_PROXY_UNREACHABLE`);
  assert.ok(!JSON.stringify(done).includes(CREDENTIALS.password), 'the proxy password is not shown');
});

test('maos doctor reports the proxy and checks the providers through it', async (t) => {
  const llm = await startLlmServer({ apiKey: 'k', handler: () => ({ text: 'ok' }) });
  t.after(() => llm.close());
  const proxy = await startForwardProxy({ credentials: CREDENTIALS, hosts: { 'llm.test': '127.0.0.1' } });
  t.after(() => proxy.close());
  const dir = mkdtempSync(join(tmpdir(), 'maos-egress-doctor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      providers: {
        local: {
          type: 'openai-compatible',
          baseURL: llm.openaiBaseURL.replace('127.0.0.1', 'llm.test'),
          model: 'm',
          apiKey: 'k',
        },
      },
      egress: { proxy: { url: proxy.urlWithCredentials, noProxy: ['corp.example'] } },
    }),
  );
  const report = await runDoctor({ configPath, env: {} });
  const egress = report.checks.find((check) => check.name === 'egress');
  assert.deepEqual(egress, {
    name: 'egress',
    status: 'pass',
    message: `outbound calls through the proxy at 127.0.0.1:${proxy.port}, direct to corp.example and loopback`,
  });
  assert.ok(!JSON.stringify(report).includes(CREDENTIALS.password));
  const provider = report.checks.find((check) => check.name === 'provider:local');
  assert.equal(provider?.status, 'pass', provider?.message);
  assert.ok(proxy.seen.some((seen) => seen.hostname === 'llm.test'));
});

test('maos doctor with the egress proxy down says the proxy is at fault, not the provider', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-egress-doctor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      providers: { local: { type: 'openai-compatible', baseURL: 'http://llm.test:11434/v1', model: 'm' } },
      egress: { proxy: { url: `http://127.0.0.1:${port}` } },
    }),
  );
  const report = await runDoctor({ configPath, env: {} });
  const provider = report.checks.find((check) => check.name === 'provider:local');
  assert.deepEqual(provider, {
    name: 'provider:local',
    status: 'fail',
    message: `http://llm.test:11434/v1 is not reachable: egress proxy 127.0.0.1:${port} cannot be reached (ECONNREFUSED)`,
    fix: 'Check egress.proxy.url and that the proxy runs and lets MAOS reach llm.test:11434; a host MAOS can reach directly goes in egress.proxy.noProxy.',
  });
});
