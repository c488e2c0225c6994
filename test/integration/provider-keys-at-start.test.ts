// `maos serve` checks the providers' API keys in the background once it listens: one warning per
// rejected or missing key (name and reason, never the key), nothing when the keys are good or a
// provider is unreachable, and a provider that does not answer holds up neither the start nor the
// stop.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type App, createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { waitFor } from '../fixtures/wait-for.ts';

type LogLine = Record<string, unknown> & { message: string; 'log.level': string };

/** Starts the app with `providers`, its log lines (debug and up) collected as parsed JSON. */
async function startApp(
  t: TestContext,
  providers: Record<string, unknown>,
  llm: Record<string, unknown> = {},
): Promise<{ app: App; lines: LogLine[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-keys-'));
  const { destination, lines } = captureLog<LogLine>();
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      auth: { mode: 'none' },
      store: { synchronous: 'normal' },
      shutdown: { graceSeconds: 1 },
      providers,
      llm,
    },
  });
  const app = await createApp(config, {
    logger: createLogger({ level: 'debug', format: 'json', destination }),
  });
  t.after(async () => {
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await app.start();
  return { app, lines };
}

const keyCheckFinished = (lines: LogLine[]) =>
  waitFor(
    () => lines.find((line) => line.message === 'provider key check finished'),
    10_000,
    'the key check',
  );
/** Warnings of the LLM component (the app also warns about auth mode `none` and the audit key). */
const llmWarnings = (lines: LogLine[]) =>
  lines.filter((line) => line['log.level'] === 'warn' && line.component === 'llm');
/** The key check's warnings (the LLM component also warns, at start, about models without a price). */
const warnings = (lines: LogLine[]) => llmWarnings(lines).filter((line) => /API key/.test(line.message));

test('a rejected key is one warning with the provider and the reason, never the key', async (t) => {
  const llm = await startLlmServer({ apiKey: 'right-key' });
  t.after(() => llm.close());
  const { lines } = await startApp(t, {
    good: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'right-key' },
    bad: { type: 'openai', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'sk-wrong-key-123' },
    claude: { type: 'anthropic', baseURL: llm.anthropicBaseURL, model: 'c', apiKey: 'wrong-too' },
  });
  await keyCheckFinished(lines);
  const warned = warnings(lines);
  assert.deepEqual(warned.map((line) => line.provider).sort(), ['bad', 'claude']);
  for (const line of warned) {
    assert.match(line.message, /rejected the configured API key/);
    assert.match(String(line.reason), /\/models answered HTTP 401/);
  }
  const everything = lines.map((line) => JSON.stringify(line)).join('\n');
  assert.doesNotMatch(everything, /sk-wrong-key-123|wrong-too|right-key/);
});

test('a provider that wants a key and has none configured says so, naming the setting', async (t) => {
  const llm = await startLlmServer({ apiKey: 'right-key' });
  t.after(() => llm.close());
  // openai-compatible may go without a key (Ollama, vLLM); this server wants one.
  const { lines } = await startApp(t, {
    keyless: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm' },
  });
  await keyCheckFinished(lines);
  const [warned, ...more] = warnings(lines);
  assert.deepEqual(more, []);
  assert.equal(warned?.provider, 'keyless');
  assert.equal(
    warned?.message,
    'LLM provider requires an API key and none is configured; calls to it will fail until one is set',
  );
  assert.equal(warned?.fix, 'set a key in providers.keyless.apiKey (or apiKey_FILE)');
  assert.match(String(warned?.reason), /\/models answered HTTP 401/);
});

test('good keys and unreachable providers log no warning', async (t) => {
  const llm = await startLlmServer({ apiKey: 'right-key' });
  t.after(() => llm.close());
  const { lines } = await startApp(t, {
    good: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'right-key' },
    // Nothing listens on a port just let go: the connection is refused.
    down: { type: 'openai-compatible', baseURL: `http://127.0.0.1:${await freePort()}/v1`, model: 'm' },
  });
  const finished = await keyCheckFinished(lines);
  assert.equal(finished.rejected, 0);
  assert.deepEqual(warnings(lines), []);
});

test('a provider that does not answer holds up neither the start nor the stop', async (t) => {
  const pending: IncomingMessage[] = [];
  // Answers nothing: every request stays open until the client gives up.
  const silent = createServer((req) => {
    pending.push(req);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const { port } = silent.address() as AddressInfo;
  const { app, lines } = await startApp(t, {
    slow: { type: 'openai-compatible', baseURL: `http://127.0.0.1:${port}/v1`, model: 'm', apiKey: 'k' },
  });
  // start() has returned while the check's request is still unanswered.
  await waitFor(() => pending.at(0), 10_000, 'the model-list request');
  const health = await fetch(`http://127.0.0.1:${(app.http.server.address() as AddressInfo).port}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(
    lines.some((line) => line.message === 'provider key check finished'),
    false,
  );
  // stop() aborts the check: the unanswered request is closed by the client, and the check never
  // reports that it finished.
  const closed = new Promise<void>((resolve) => pending[0]!.socket.once('close', () => resolve()));
  await app.stop();
  await closed;
  assert.equal(
    lines.some((line) => line.message === 'provider key check finished'),
    false,
  );
  assert.deepEqual(warnings(lines), []);
});

test('llm.checkKeysAtStart: false turns the check off', async (t) => {
  let modelListRequests = 0;
  const rejecting = createServer((req, res) => {
    if (req.url?.endsWith('/models')) modelListRequests += 1;
    res.writeHead(401).end();
  });
  await new Promise<void>((resolve) => rejecting.listen(0, '127.0.0.1', resolve));
  t.after(() => rejecting.close());
  const { port } = rejecting.address() as AddressInfo;
  const bad = {
    bad: { type: 'openai', baseURL: `http://127.0.0.1:${port}/v1`, model: 'm', apiKey: 'wrong' },
  };
  const off = await startApp(t, bad, { checkKeysAtStart: false });
  // Control: an app started after it with the check on is heard from; a check of the first app,
  // started earlier, would have been heard from by then too.
  const on = await startApp(t, bad);
  await keyCheckFinished(on.lines);
  assert.equal(modelListRequests, 1);
  assert.deepEqual(warnings(off.lines), []);
});

test('each model the routes can call without a price is one warning at start; priced ones none', async (t) => {
  const providers = {
    cloud: { type: 'openai', baseURL: 'http://llm.invalid/v1', model: 'big', apiKey: 'k' },
    local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'small' },
  };
  const unpriced = (lines: LogLine[]) =>
    llmWarnings(lines)
      .filter((line) => /llm\.prices has no entry/.test(line.message))
      .map((line) => [line.provider, line.model]);
  const { lines } = await startApp(t, providers, {
    checkKeysAtStart: false,
    roles: { reviewer: { provider: 'cloud', model: 'review' } },
    prices: { big: { inputPerMTok: 3, outputPerMTok: 15 } },
  });
  assert.deepEqual(unpriced(lines), [
    ['local', 'small'],
    ['cloud', 'review'],
  ]);
  const free = { inputPerMTok: 0, outputPerMTok: 0 };
  const priced = await startApp(t, providers, {
    checkKeysAtStart: false,
    prices: { big: free, small: free },
  });
  assert.deepEqual(unpriced(priced.lines), []);
});
