// A provider error message that echoes the API key it was sent (some gateways answer 401 with
// "invalid key sk-…") loses the key, and any long run of it, before MAOS keeps it: the session's and
// tasks' errors, the session's events, the log, the spans and the metrics hold none of it, for the
// operator's configured key and for a key a tenant stored. Scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { type App, createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { MIN_REDACTED_RUN } from '../../src/security/secret-redaction.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { type RecordedLlmRequest, type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { type CapturedLog, captureLog } from '../fixtures/log-capture.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const OPERATOR_KEY = `sk-operator-${randomBytes(16).toString('hex')}`;
const TENANT_KEY = `sk-tenant-${randomBytes(16).toString('hex')}`;

/** How the scripted gateway echoes the key it was sent. */
type Echo = 'whole' | 'prefix' | 'stream' | 'stream-late';
let echo: Echo = 'whole';

/** Answers every call with the key it carried in its message, as a gateway that echoes it does. */
function echoKey(request: RecordedLlmRequest) {
  const key = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
  if (echo === 'prefix') return { error: 401, message: `invalid key ${key.slice(0, 20)}… for this gateway` };
  if (echo === 'stream' || echo === 'stream-late') {
    // Reported inside a streamed answer (the agent's call; a planning round is not streamed), before
    // any text or after some.
    const afterFrames = echo === 'stream' ? 1 : 3;
    return request.stream
      ? {
          text: 'Working on it, step by step.',
          chunkSize: 4,
          streamError: { afterFrames, status: 401, message: `invalid key ${key}` },
        }
      : { error: 401, message: `invalid key ${key}` };
  }
  return { error: 401, message: `invalid key ${key}` };
}

/** Fails when `text` holds `key` or any run of MIN_REDACTED_RUN of its characters. */
function assertNoKey(text: string, key: string, where: string): void {
  for (let start = 0; start + MIN_REDACTED_RUN <= key.length; start += 1) {
    const run = key.slice(start, start + MIN_REDACTED_RUN);
    const at = text.indexOf(run);
    assert.ok(at < 0, `${where} holds '${run}' of the key: …${text.slice(Math.max(0, at - 300), at + 100)}…`);
  }
}

interface SessionView {
  status: string;
  error: string | null;
}

describe('provider error messages that echo the API key', () => {
  let llm: ScriptedLlmServer;
  let app: App;
  let url: string;
  let dataDir: string;
  let log: CapturedLog<Record<string, unknown>>;
  const spans = new InMemorySpanExporter();
  let acme: string;
  let globex: string;

  async function call<T>(
    key: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  /** Runs a session to its end; returns its document, its events and the metrics, as text. */
  async function runSession(key: string, body: Record<string, unknown>) {
    const created = await call<{ id: string }>(key, 'POST', '/v1/sessions', body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const path = `/v1/sessions/${created.body.id}`;
    const deadline = Date.now() + 30_000;
    let session = (await call<SessionView>(key, 'GET', path)).body;
    while (!['completed', 'failed', 'cancelled'].includes(session.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      session = (await call<SessionView>(key, 'GET', path)).body;
    }
    const events = await call<{ items: unknown[] }>(key, 'GET', `${path}/events?limit=1000`);
    const metrics = await (
      await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${key}` } })
    ).text();
    return { session, text: JSON.stringify(session), events: JSON.stringify(events.body.items), metrics };
  }

  /** Everything kept about the calls that failed, but the session: log lines and spans. */
  function kept(): { log: string; spans: string } {
    const finished = spans.getFinishedSpans().map((span) => ({
      name: span.name,
      attributes: span.attributes,
      status: span.status,
      events: span.events,
    }));
    return { log: log.text(), spans: JSON.stringify(finished) };
  }

  before(async () => {
    llm = await startLlmServer({ handler: echoKey });
    dataDir = mkdtempSync(join(tmpdir(), 'maos-provider-error-redaction-'));
    const config = loadConfig({
      env: {},
      overrides: {
        logLevel: 'debug',
        auth: { mode: 'apikey' },
        rateLimit: { enabled: false },
        store: { synchronous: 'normal' },
        workers: { concurrency: 2, pollIntervalMs: 100 },
        shutdown: { graceSeconds: 1 },
        tasks: { maxAttempts: 1 },
        secrets: { kekRing: generateKekEntry('k1') },
        providers: {
          main: { type: 'openai', model: 'm1', apiKey: OPERATOR_KEY, baseURL: llm.openaiBaseURL },
        },
        llm: { defaultProvider: 'main', retry: { maxAttempts: 1 } },
        dataDir,
        host: '127.0.0.1',
        port: 0,
      },
    });
    log = captureLog();
    app = await createApp(config, {
      logger: createLogger({ level: 'debug', destination: log.destination }),
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    url = await app.start();
    const db = app.database.db as unknown as SecurityDb;
    const keyFor = async (tenantId: string) =>
      (
        await createApiKey(db, {
          tenantId,
          name: tenantId,
          roles: ['admin'],
          createdBy: 'test',
          expiresAt: null,
        })
      ).key;
    acme = await keyFor('acme');
    globex = await keyFor('globex');
    const put = await call(acme, 'PUT', '/v1/providers/main/credentials', { apiKey: TENANT_KEY });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  });
  after(async () => {
    await app?.stop();
    await llm?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const mode of ['whole', 'prefix'] as const) {
    test(`the operator's key, echoed ${mode === 'whole' ? 'whole' : 'as a long prefix'} in a 401, is nowhere`, async () => {
      echo = mode;
      llm.requests.length = 0;
      const run = await runSession(globex, { objective: 'Plan a note' });
      assert.ok(llm.requests.length > 0, 'the provider was called');
      assert.equal(run.session.status, 'failed');
      assert.match(run.session.error ?? '', /PROVIDER_ERROR|rejected the credentials \(HTTP 401\)/);
      assert.match(run.session.error ?? '', /invalid key \[REDACTED\]/, 'the rest of the message is kept');
      assertNoKey(run.text, OPERATOR_KEY, 'the session');
      assertNoKey(run.events, OPERATOR_KEY, 'the events');
      assertNoKey(run.metrics, OPERATOR_KEY, 'the metrics');
      const { log: logged, spans: traced } = kept();
      assert.match(logged, /\[REDACTED\]/, 'the log has the redacted message');
      assert.ok(
        spans.getFinishedSpans().some((span) => span.name.startsWith('chat')),
        'the model calls are traced',
      );
      assertNoKey(logged, OPERATOR_KEY, 'the log');
      assertNoKey(traced, OPERATOR_KEY, 'the spans');
    });
  }

  const tenantEchoes = {
    whole: 'in a 401',
    stream: 'in an error inside the stream, before any text',
    'stream-late': 'in an error inside the stream, after some text',
  } as const;
  for (const mode of ['whole', 'stream', 'stream-late'] as const) {
    test(`a tenant's stored key, echoed ${tenantEchoes[mode]}, is nowhere`, async () => {
      echo = mode;
      llm.requests.length = 0;
      const run = await runSession(acme, {
        objective: 'Analyse it',
        agents: [{ name: 'only', role: 'analyst', task: 'Analyse' }],
      });
      assert.ok(llm.requests.length > 0, 'the provider was called');
      for (const request of llm.requests) assert.equal(request.headers.authorization, `Bearer ${TENANT_KEY}`);
      assert.equal(run.session.status, 'failed');
      assert.match(run.session.error ?? '', /invalid key \[REDACTED\]/, 'the rest of the message is kept');
      for (const key of [TENANT_KEY, OPERATOR_KEY]) {
        assertNoKey(run.text, key, 'the session');
        assertNoKey(run.events, key, 'the events');
        assertNoKey(run.metrics, key, 'the metrics');
        const { log: logged, spans: traced } = kept();
        assertNoKey(logged, key, 'the log');
        assertNoKey(traced, key, 'the spans');
      }
    });
  }
});
