// Memory soak: does the server's heap grow with the work it has done rather than with what is live?
// A real MAOS server (SQLite, API keys, rate limits and a tenant token quota on) runs in a child
// process; this process drives it with bounded batches of mixed work and, between batches, asks it
// for its heap after full GCs. Printed per batch: heap after GC and its growth per 1,000 sessions
// since the first batch; at the end, the least-squares slope over the later half. Bounded caches
// (bench/README.md lists them) show as growth until they are full.
//   node bench/memory-soak.ts [batches=6] [sessionsPerBatch=220] [--max-seconds=900] [--concurrency=16]
//                             [--snapshots=DIR] [--postgres] [--tracing]
// `--postgres`: the server in cluster mode on a fresh PostgreSQL database (`DATABASE_URL`'s server,
// else an embedded one), so LISTEN/NOTIFY, the shared rate limits and the replica directory run too.
// `--tracing`: tracing on, every span made and dropped (spans of HTTP, queries, agents, model calls).
// Each batch runs, `--concurrency` at a time (16), sessions of twelve kinds in turn: command agents
// (their event stream followed to the end), LLM agents with a budget, an orchestrated session steered
// while it runs, a command session whose event stream is dropped mid-way and which is then
// cancelled, an LLM agent cancelled mid-answer, a plan approved or rejected, a failing session
// retried, an MCP session (a tool call, a resource subscription, its GET stream dropped; ended with
// DELETE or abandoned until `mcp.sessionIdleSeconds`), an LLM agent stopped by its budget, an LLM
// agent whose provider fails (error status, reset, error inside the stream), and an event stream
// whose API key is revoked while it is open, and a slow LLM agent whose event stream six clients
// follow at once (two drop it after a few frames, two never read and leave, two stop reading with
// the connection open and then vanish) before it is cancelled. Around them: a webhook subscription per tenant and
// batch (a receiver here failing every fifth delivery), failed logins, API keys created, used and
// revoked, half of the finished sessions deleted. Stops by itself after the batches, or after the
// batch that crosses `--max-seconds`. Beside the heap, each batch prints the server's open file
// descriptors, its active handles by kind (sockets, timers …) and, on PostgreSQL, its pool's
// connections: what a leak of connections, timers or runner pipes shows in. `--snapshots=DIR` writes V8 heap snapshots of the server
// after the second and the last batch (compare them in Chrome DevTools: Comparison view).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { startJsonLineProcess } from './child-process.ts';

const SCRIPT = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string) =>
  args
    .find((arg) => arg.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=');

// ---------------------------------------------------------------------------------------------
// Child: the scripted LLM provider (its own process: its allocations are not the server's).
// ---------------------------------------------------------------------------------------------
async function runProvider(): Promise<void> {
  const { startLlmServer } = await import('../test/fixtures/llm-server.ts');
  const { llmRequestKind } = await import('../test/fixtures/llm-request-kind.ts');
  const { plannedTask } = await import('../test/fixtures/planned-task.ts');
  let failures = 0;
  const server = await startLlmServer({
    apiKey: 'k',
    handler: (request) => {
      // The server records every request; a soak must not grow its provider without bound.
      server.requests.length = 0;
      const usage = { inputTokens: 40, outputTokens: 8 };
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'two steps',
              phases: [
                {
                  name: 'work',
                  tasks: [
                    plannedTask('survey', 'researcher'),
                    plannedTask('build', 'engineer', { dependsOn: ['survey'] }),
                  ],
                },
              ],
            },
            usage,
          };
        case 'gate':
          return { object: { decision: 'complete', reason: 'done', next_phase: null }, usage };
        case 'synthesis':
          return { text: 'The answer, synthesised.', usage };
        default:
          // An agent whose task asks to be slow streams for seconds (it is cancelled mid-way).
          if (request.promptText.includes('SLOW')) {
            return { text: 'x'.repeat(400), chunkSize: 4, chunkDelayMs: 50, usage };
          }
          // Provider failures, in turn: an error status, a reset mid-answer, an error inside the stream.
          if (request.promptText.includes('BREAK')) {
            failures++;
            if (failures % 3 === 0) return { error: 500, message: 'scripted failure' };
            if (failures % 3 === 1) return { text: 'y'.repeat(200), chunkSize: 8, dropAfterFrames: 3 };
            return { text: 'z'.repeat(200), chunkSize: 8, streamError: { afterFrames: 2, status: 529 } };
          }
          // Many tokens: a session budget of a few hundred tokens is crossed mid-answer.
          if (request.promptText.includes('COSTLY')) {
            return {
              text: 'w'.repeat(4000),
              chunkSize: 40,
              chunkDelayMs: 5,
              usage: { inputTokens: 40, outputTokens: 1000 },
            };
          }
          return { text: `Done: ${'words '.repeat(30)}`, usage };
      }
    },
  });
  process.stdout.write(`${JSON.stringify({ openaiBaseURL: server.openaiBaseURL })}\n`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  createInterface({ input: process.stdin }).on('close', () => void stop());
  process.on('SIGTERM', () => void stop());
}

// ---------------------------------------------------------------------------------------------
// Child: the MAOS server, as `maos serve` builds it, answering `heap` and `snapshot <path>`.
// ---------------------------------------------------------------------------------------------
async function runServer(
  openaiBaseURL: string,
  webhookHost: string,
  storeUrl: string | undefined,
  tracing: boolean,
): Promise<void> {
  const { createApp } = await import('../src/app.ts');
  const { loadConfig } = await import('../src/config/load.ts');
  const { createLogger } = await import('../src/observability/logger.ts');
  const { createApiKey } = await import('../src/security/api-keys.ts');
  const { getPostgresPool } = await import('../src/store/postgres-dialect.ts');
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-soak-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      ...(storeUrl ? { store: { url: storeUrl } } : {}),
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      auth: { mode: 'apikey' },
      // On, as in production, but high enough never to refuse the driver.
      rateLimit: {
        principal: { points: 10_000_000, windowSeconds: 60 },
        tenant: { points: 10_000_000, windowSeconds: 60 },
        anonymous: { points: 10_000_000, windowSeconds: 60 },
        maxConcurrentSessionsPerTenant: 10_000,
        maxDailyTokensPerTenant: 1_000_000_000_000,
      },
      workers: { concurrency: 16, pollIntervalMs: 200 },
      tasks: { leaseSeconds: 10, maxAttempts: 1 },
      // MCP sessions a client abandons are closed after this idle time, within the pause after a batch.
      mcp: { sessionIdleSeconds: 2 },
      shutdown: { graceSeconds: 1 },
      ssrf: { allowedHosts: [webhookHost] },
      // Webhook signing secrets are stored encrypted: a key-encryption key (random, this run's).
      secrets: { kekRing: `soak:${randomBytes(32).toString('base64')}` },
      runners: {
        ok: { command: ['true'] },
        echo: { command: ['sh', '-c', 'echo "task=$MAOS_TASK"'] },
        fail: { command: ['sh', '-c', 'echo boom >&2; exit 3'] },
        sleep: { command: ['sleep', '30'] },
      },
      providers: {
        local: {
          type: 'openai-compatible',
          baseURL: openaiBaseURL,
          model: 'm',
          apiKey: 'k',
        },
      },
      // Priced: every finish charges a cost to its session and to the tenant's day.
      llm: {
        retry: { maxAttempts: 1 },
        agentMessaging: true,
        prices: { m: { inputPerMTok: 1, outputPerMTok: 2 } },
      },
    },
  });
  // --tracing: every span is made (HTTP, database, agent and model calls, MCP) and then dropped.
  const spanProcessors = tracing
    ? [
        {
          onStart: () => {},
          onEnd: () => {},
          forceFlush: async () => {},
          shutdown: async () => {},
        },
      ]
    : undefined;
  const app = await createApp(config, {
    logger: createLogger({ level: 'silent' }),
    ...(spanProcessors ? { spanProcessors } : {}),
  });
  const url = await app.start();
  const db = app.database.db as unknown as Parameters<typeof createApiKey>[0];
  const keys: string[] = [];
  for (const tenantId of ['soak-a', 'soak-b']) {
    keys.push((await createApiKey(db, { tenantId, name: 'soak', roles: ['admin'], createdBy: 'soak' })).key);
  }
  process.stdout.write(`${JSON.stringify({ url, keys })}\n`);
  const gc = (globalThis as { gc?: () => void }).gc;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [command, path] = line.split(' ');
    if (command === 'heap') {
      // Three times, apart: weak references and finalizers cleared by one run free more in the next.
      gc?.();
      setTimeout(() => gc?.(), 100);
      setTimeout(() => {
        gc?.();
        const usage = process.memoryUsage();
        const handles: Record<string, number> = {};
        for (const kind of process.getActiveResourcesInfo()) handles[kind] = (handles[kind] ?? 0) + 1;
        const pool = getPostgresPool(app.database.db);
        process.stdout.write(
          `${JSON.stringify({
            heapUsed: usage.heapUsed,
            external: usage.external,
            rss: usage.rss,
            // Linux; elsewhere none.
            fds: openFileDescriptors(),
            handles,
            pool: pool ? { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } : null,
          })}\n`,
        );
      }, 200);
    } else if (command === 'snapshot' && path) {
      gc?.();
      process.stdout.write(`${JSON.stringify({ path: writeHeapSnapshot(path) })}\n`);
    }
  });
  const stop = async () => {
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  lines.on('close', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/** The process's open file descriptors (Linux: /proc/self/fd), or null where that cannot be read. */
function openFileDescriptors(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Driver.
// ---------------------------------------------------------------------------------------------
/** Kinds of session, cycled by index; tenants alternate every KINDS sessions, so each gets every kind. */
const KINDS = 12;
const tenantOf = (i: number) => Math.floor(i / KINDS) % 2;

interface Session {
  id: string;
  status: string;
}

interface Stack {
  url: string;
  keys: string[];
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

class Driver {
  readonly errors = new Map<string, number>();
  /** Sessions seen ended, by status (a check that the kinds end as meant). */
  readonly ended = new Map<string, number>();
  readonly stack: Stack;
  constructor(stack: Stack) {
    this.stack = stack;
  }

  headers(tenant: number, extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.stack.keys[tenant]}`, ...extra };
  }

  count(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }

  async json<T>(
    tenant: number,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.stack.url}${path}`, {
      method,
      headers: this.headers(tenant, body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async submit(tenant: number, input: Record<string, unknown>): Promise<string> {
    const response = await this.json<Session>(tenant, 'POST', '/v1/sessions', input);
    if (response.status !== 201)
      throw new Error(`submit: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body.id;
  }

  /** Polls the session until `done` (by default: until it has ended, which is then counted). */
  async waitFor(tenant: number, id: string, done?: (s: Session) => boolean) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { status, body } = await this.json<Session>(tenant, 'GET', `/v1/sessions/${id}`);
      if (status !== 200) throw new Error(`GET session: ${status}`);
      if (done ? done(body) : FINAL.has(body.status)) {
        if (!done) this.ended.set(body.status, (this.ended.get(body.status) ?? 0) + 1);
        return body;
      }
      if (Date.now() > deadline) throw new Error(`session still ${body.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Opens the session's SSE stream and reads `frames` frames (all when Infinity), then drops it. */
  async follow(tenant: number, id: string, frames: number): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 60_000);
    try {
      const response = await fetch(`${this.stack.url}/v1/sessions/${id}/events`, {
        headers: this.headers(tenant, { accept: 'text/event-stream' }),
        signal: controller.signal,
      });
      if (response.status !== 200) throw new Error(`SSE: ${response.status}`);
      let seen = 0;
      const decoder = new TextDecoder();
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        seen += decoder.decode(chunk, { stream: true }).split('\n\n').length - 1;
        if (seen >= frames) break;
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  /** Opens the session's SSE stream, reads nothing, and leaves after `ms`. */
  async openAndLeave(tenant: number, id: string, ms: number): Promise<void> {
    const controller = new AbortController();
    const response = await fetch(`${this.stack.url}/v1/sessions/${id}/events`, {
      headers: this.headers(tenant, { accept: 'text/event-stream' }),
      signal: controller.signal,
    });
    if (response.status !== 200) throw new Error(`SSE: ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    controller.abort();
  }

  /** Asks for the stream on a raw connection that never reads what comes, and vanishes after `ms`. */
  stopReading(tenant: number, id: string, ms: number): Promise<void> {
    const { hostname, port } = new URL(this.stack.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          `GET /v1/sessions/${id}/events HTTP/1.1\r\nHost: ${hostname}\r\n` +
            `Authorization: Bearer ${this.stack.keys[tenant]}\r\nAccept: text/event-stream\r\n\r\n`,
        );
        socket.pause();
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, ms);
      });
      socket.on('error', reject);
    });
  }

  async mcp(tenant: number, i: number): Promise<void> {
    const post = (body: unknown, sessionId?: string) =>
      fetch(`${this.stack.url}/mcp`, {
        method: 'POST',
        headers: this.headers(tenant, {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
        }),
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    const init = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'soak', version: '1' } },
    });
    const mcpSession = init.headers.get('mcp-session-id');
    await init.text();
    if (!mcpSession) throw new Error(`MCP initialize: ${init.status}`);
    await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, mcpSession)).text();
    const started = await post(
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'orchestrate',
          arguments: {
            objective: `mcp ${i}`,
            agents: [{ name: 'a', role: 'engineer', task: 'do it', runner: 'echo' }],
          },
        },
      },
      mcpSession,
    );
    const text = await started.text();
    const sessionId = /"sessionId\\?":\s*\\?"([0-9a-f-]{36})/.exec(text)?.[1];
    if (sessionId) {
      await (
        await post(
          {
            jsonrpc: '2.0',
            id: 3,
            method: 'resources/subscribe',
            params: { uri: `maos://sessions/${sessionId}` },
          },
          mcpSession,
        )
      ).text();
    } else this.count('mcp: no session id in the orchestrate answer');
    // The standalone GET stream, dropped after its first bytes.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 5_000);
    try {
      const stream = await fetch(`${this.stack.url}/mcp`, {
        headers: this.headers(tenant, {
          accept: 'text/event-stream',
          'mcp-session-id': mcpSession,
          'mcp-protocol-version': '2025-06-18',
        }),
        signal: controller.signal,
      });
      if (stream.body && sessionId) {
        // Wait until the session's update notification arrived (or the timer), then drop it.
        for await (const chunk of stream.body as AsyncIterable<Uint8Array>) {
          if (new TextDecoder().decode(chunk).includes('notifications/resources/updated')) break;
        }
      }
    } catch {
      // Aborted by the timer: dropped all the same.
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    if (sessionId) await this.waitFor(tenant, sessionId);
    // Half the clients end their MCP session; the others just go away (closed once idle).
    if (Math.floor(i / KINDS) % 4 < 2) {
      await (
        await fetch(`${this.stack.url}/mcp`, {
          method: 'DELETE',
          headers: this.headers(tenant, {
            'mcp-session-id': mcpSession,
            'mcp-protocol-version': '2025-06-18',
          }),
          signal: AbortSignal.timeout(30_000),
        })
      ).text();
    }
  }

  /** One session of kind `i % KINDS`; returns the ids of finished sessions that may be deleted. */
  async session(i: number): Promise<string[]> {
    const tenant = tenantOf(i);
    switch (i % KINDS) {
      case 0: {
        const id = await this.submit(tenant, {
          objective: `commands ${i}`,
          agents: [
            { name: 'first', role: 'engineer', task: 'one', runner: 'ok' },
            { name: 'second', role: 'qa', task: 'two', runner: 'echo', depends_on: ['first'] },
          ],
        });
        await this.follow(tenant, id, Number.POSITIVE_INFINITY);
        await this.waitFor(tenant, id);
        return [id];
      }
      case 1: {
        const id = await this.submit(tenant, {
          objective: `llm agents ${i}`,
          budget: { maxTokens: 1_000_000, maxCostUsd: 100 },
          agents: [
            { name: 'survey', role: 'researcher', task: 'look around' },
            { name: 'write', role: 'documenter', task: 'write it up', depends_on: ['survey'] },
          ],
        });
        await this.waitFor(tenant, id);
        return [id];
      }
      case 2: {
        const id = await this.submit(tenant, {
          objective: `orchestrated ${i}`,
          thread_id: `thread-${i % 5}`,
        });
        await this.waitFor(tenant, id, (s) => s.status !== 'planning' && s.status !== 'pending');
        // Steering: accepted while an orchestrator will still read it, else 409.
        const steered = await this.json(tenant, 'POST', `/v1/sessions/${id}/messages`, { message: 'focus' });
        if (steered.status !== 202 && steered.status !== 409) this.count(`steer ${steered.status}`);
        await this.waitFor(tenant, id);
        return [id];
      }
      case 3: {
        const id = await this.submit(tenant, {
          objective: `dropped stream ${i}`,
          agents: [{ name: 'nap', role: 'engineer', task: 'sleep', runner: 'sleep' }],
        });
        await this.follow(tenant, id, 2);
        await this.json(tenant, 'POST', `/v1/sessions/${id}/cancel`, {});
        await this.waitFor(tenant, id);
        return [id];
      }
      case 4: {
        const id = await this.submit(tenant, {
          objective: `llm cancelled ${i}`,
          agents: [{ name: 'slow', role: 'researcher', task: 'SLOW answer' }],
        });
        await this.waitFor(tenant, id, (s) => s.status === 'running' || FINAL.has(s.status));
        await new Promise((resolve) => setTimeout(resolve, 300));
        await this.json(tenant, 'POST', `/v1/sessions/${id}/cancel`, {});
        await this.waitFor(tenant, id);
        return [id];
      }
      case 5: {
        const id = await this.submit(tenant, { objective: `approval ${i}`, approval: 'required' });
        await this.waitFor(tenant, id, (s) => s.status === 'awaiting_approval' || FINAL.has(s.status));
        if (Math.floor(i / KINDS) % 4 < 2) await this.json(tenant, 'POST', `/v1/sessions/${id}/approve`, {});
        else await this.json(tenant, 'POST', `/v1/sessions/${id}/reject`, { reason: 'not now' });
        await this.waitFor(tenant, id);
        return [id];
      }
      case 6: {
        const id = await this.submit(tenant, {
          objective: `failing ${i}`,
          agents: [{ name: 'bad', role: 'engineer', task: 'fail', runner: 'fail' }],
        });
        await this.waitFor(tenant, id);
        const retried = await this.json<Session>(tenant, 'POST', `/v1/sessions/${id}/retry`, {});
        if (retried.status !== 201) {
          this.count(`retry ${retried.status}`);
          return [id];
        }
        await this.waitFor(tenant, retried.body.id);
        return [id, retried.body.id];
      }
      case 7: {
        await this.mcp(tenant, i);
        return [];
      }
      case 8: {
        const id = await this.submit(tenant, {
          objective: `over budget ${i}`,
          budget: { maxTokens: 300 },
          agents: [{ name: 'costly', role: 'analyst', task: 'COSTLY answer' }],
        });
        await this.waitFor(tenant, id);
        return [id];
      }
      case 9: {
        const id = await this.submit(tenant, {
          objective: `provider failure ${i}`,
          agents: [{ name: 'broken', role: 'researcher', task: 'BREAK please' }],
        });
        await this.waitFor(tenant, id);
        return [id];
      }
      case 11: {
        // Six followers of one slow agent's stream, each leaving its own way, then a cancel.
        const id = await this.submit(tenant, {
          objective: `many followers ${i}`,
          agents: [{ name: 'slow', role: 'researcher', task: 'SLOW answer' }],
        });
        const followers: Promise<void>[] = [];
        for (let f = 0; f < 6; f++) {
          if (f < 2) followers.push(this.follow(tenant, id, 3));
          else if (f < 4) followers.push(this.openAndLeave(tenant, id, 1_500));
          else followers.push(this.stopReading(tenant, id, 2_000));
        }
        for (const result of await Promise.allSettled(followers)) {
          if (result.status === 'rejected') this.count(`follower: ${(result.reason as Error).message}`);
        }
        await this.json(tenant, 'POST', `/v1/sessions/${id}/cancel`, {});
        await this.waitFor(tenant, id);
        return [id];
      }
      default: {
        // A stream opened with a short-lived key, which is revoked while the stream is open.
        const created = await this.json<{ id: string; key: string }>(tenant, 'POST', '/v1/admin/keys', {
          name: `streamer ${i}`,
          roles: ['viewer'],
        });
        if (created.status !== 201) throw new Error(`create key: ${created.status}`);
        const id = await this.submit(tenant, {
          objective: `revoked follower ${i}`,
          agents: [{ name: 'nap', role: 'engineer', task: 'sleep', runner: 'sleep' }],
        });
        const response = await fetch(`${this.stack.url}/v1/sessions/${id}/events`, {
          headers: { authorization: `Bearer ${created.body.key}`, accept: 'text/event-stream' },
          signal: AbortSignal.timeout(30_000),
        });
        await this.json(tenant, 'DELETE', `/v1/admin/keys/${created.body.id}`);
        // The server ends the stream on the revocation: read it to its end.
        await response.text().catch(() => this.count('revoked stream did not end'));
        await this.json(tenant, 'POST', `/v1/sessions/${id}/cancel`, {});
        await this.waitFor(tenant, id);
        return [id];
      }
    }
  }

  /** Requests that fail authentication: unknown, malformed and forged keys. */
  async failedLogins(i: number): Promise<void> {
    const bad = [
      `Bearer maos_${'0'.repeat(12)}_${String(i).padStart(43, 'A')}`,
      'Bearer nonsense',
      'Basic eDp5',
    ];
    for (const authorization of bad) {
      const response = await fetch(`${this.stack.url}/v1/sessions`, {
        headers: { authorization },
        signal: AbortSignal.timeout(30_000),
      });
      await response.text();
      if (response.status !== 401 && response.status !== 400) this.count(`failed login ${response.status}`);
    }
  }

  /** An API key created, used once and revoked (and refused after). */
  async keyLifecycle(i: number): Promise<void> {
    const tenant = tenantOf(i);
    const created = await this.json<{ id: string; key: string }>(tenant, 'POST', '/v1/admin/keys', {
      name: `short-lived ${i}`,
      roles: ['viewer'],
    });
    if (created.status !== 201) throw new Error(`create key: ${created.status}`);
    const use = (key: string) =>
      fetch(`${this.stack.url}/v1/sessions?limit=1`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(30_000),
      });
    await (await use(created.body.key)).text();
    await this.json(tenant, 'DELETE', `/v1/admin/keys/${created.body.id}`);
    const refused = await use(created.body.key);
    await refused.text();
    if (refused.status !== 401) this.count(`revoked key answered ${refused.status}`);
  }

  async deleteSession(tenant: number, id: string): Promise<void> {
    const deleted = await this.json(tenant, 'DELETE', `/v1/sessions/${id}`);
    if (deleted.status !== 204) this.count(`delete ${deleted.status}`);
  }

  /** One batch of `count` sessions, from index `first`, `concurrency` at a time. */
  async batch(first: number, count: number, concurrency: number, webhookUrl: string): Promise<void> {
    const hooks: string[] = [];
    for (const tenant of [0, 1]) {
      const hook = await this.json<{ id: string }>(tenant, 'POST', '/v1/webhooks', {
        url: webhookUrl,
        events: ['session.completed', 'session.failed', 'session.cancelled', 'session.awaiting_approval'],
      });
      if (hook.status === 201) hooks.push(hook.body.id);
      else this.count(`webhook ${hook.status}`);
    }
    let next = first;
    const end = first + count;
    const work = async () => {
      while (next < end) {
        const i = next++;
        try {
          const finished = await this.session(i);
          if (i % 4 === 0) await this.failedLogins(i);
          if (i % 10 === 0) await this.keyLifecycle(i);
          // Every other finished session deleted, as retention or a user would.
          if (Math.floor(i / (2 * KINDS)) % 2 === 0) {
            for (const id of finished) await this.deleteSession(tenantOf(i), id);
          }
        } catch (error) {
          this.count(`kind ${i % KINDS}: ${(error as Error).message.slice(0, 80)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, work));
    for (const [index, id] of hooks.entries()) await this.json(index, 'DELETE', `/v1/webhooks/${id}`);
  }
}

async function main(): Promise<void> {
  const positional = args.filter((arg) => !arg.startsWith('--'));
  const batches = Math.max(2, Number(positional[0] ?? 6));
  const perBatch = Math.max(KINDS, Number(positional[1] ?? 220));
  const maxSeconds = Number(flag('max-seconds') ?? 900);
  const concurrency = Number(flag('concurrency') ?? 16);
  const snapshots = flag('snapshots');
  if (snapshots) mkdirSync(resolve(snapshots), { recursive: true });

  // A receiver that keeps nothing: deliveries answered 204.
  let delivered = 0;
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      delivered++;
      // Every fifth delivery fails: the worker's retries run too.
      response.writeHead(delivered % 5 === 0 ? 500 : 204).end();
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  // --postgres: a fresh database (DATABASE_URL's server, else an embedded PostgreSQL), cluster mode.
  const database = args.includes('--postgres')
    ? await (await import('../test/fixtures/postgres.ts')).createTestDatabase()
    : undefined;
  const provider = await startJsonLineProcess(SCRIPT, ['--provider'], 'the scripted LLM server');
  const { openaiBaseURL } = provider.ready as { openaiBaseURL: string };
  const server = await startJsonLineProcess(
    SCRIPT,
    [
      '--server',
      openaiBaseURL,
      '127.0.0.1',
      database?.url ?? '',
      ...(args.includes('--tracing') ? ['--tracing'] : []),
    ],
    'the MAOS server',
  );
  const driver = new Driver(server.ready as Stack);
  interface Probe {
    heapUsed: number;
    external: number;
    rss: number;
    fds: number | null;
    handles: Record<string, number>;
    pool: { total: number; idle: number; waiting: number } | null;
  }
  const heap = async () => (await server.request('heap')) as Probe;
  const describeHandles = (probe: Probe) =>
    `open fds ${probe.fds ?? 'n/a'}; handles ${Object.entries(probe.handles)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, count]) => `${kind} ${count}`)
      .join(
        ', ',
      )}${probe.pool ? `; pool ${probe.pool.total} connections (${probe.pool.idle} idle, ${probe.pool.waiting} waiting)` : ''}`;
  let firstProbe: Probe | undefined;
  let lastProbe: Probe | undefined;
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  const startedAt = Date.now();
  const loadAtStart = loadavg()[0]!.toFixed(2);
  console.log(
    `memory soak: ${batches} batches of ${perBatch} sessions, ${concurrency} at a time (server in its own process, ${database ? 'PostgreSQL' : 'SQLite'}${args.includes('--tracing') ? ', tracing on' : ''})`,
  );
  let baseline: { heapUsed: number; sessions: number } | undefined;
  // (sessions, heap after GC) per batch, for the least-squares slope printed at the end.
  const points: Array<[number, number]> = [];
  let sessions = 0;
  let done = 0;
  try {
    for (let b = 1; b <= batches; b++) {
      const batchStart = Date.now();
      await driver.batch(sessions, perBatch, concurrency, webhookUrl);
      sessions += perBatch;
      done = b;
      // Deliveries settle; MCP sessions left idle are closed (mcp.sessionIdleSeconds).
      // The driver's idle keep-alive connections closed, so the server's open sockets are its own.
      const used = getGlobalDispatcher();
      setGlobalDispatcher(new Agent());
      await used.close();
      await new Promise((r) => setTimeout(r, 5_000));
      const after = await heap();
      firstProbe ??= after;
      lastProbe = after;
      baseline ??= { heapUsed: after.heapUsed, sessions };
      points.push([sessions, after.heapUsed]);
      const growth =
        sessions === baseline.sessions
          ? 'baseline'
          : `${(((after.heapUsed - baseline.heapUsed) / 1024) * (1000 / (sessions - baseline.sessions))).toFixed(0)} KiB per 1,000 sessions since batch 1`;
      console.log(
        `batch ${b}: ${sessions} sessions, ${((Date.now() - batchStart) / 1000).toFixed(0)} s; heap after GC ${mb(after.heapUsed)} MiB (external ${mb(after.external)}, rss ${mb(after.rss)}); ${growth}`,
      );
      console.log(`  ${describeHandles(after)}`);
      // The last batch's snapshot also when --max-seconds ends the run before `batches`.
      const last = b === batches || (Date.now() - startedAt) / 1000 > maxSeconds;
      if (snapshots && (b === 2 || last)) {
        const written = (await server.request(
          `snapshot ${join(resolve(snapshots), `batch-${b}.heapsnapshot`)}`,
        )) as {
          path: string;
        };
        console.log(`  heap snapshot: ${written.path}`);
      }
      if (last && b < batches) {
        console.log(`stopping after batch ${b}: --max-seconds=${maxSeconds} reached`);
        break;
      }
    }
  } finally {
    await server.stop();
    await provider.stop();
    await database?.drop();
    receiver.close();
  }
  if (points.length >= 4) {
    // One batch's figure moves by a few MiB (what the last GCs could free, code flushed or not): the
    // slope over the later half of the batches, once start-up garbage is gone, is the steadier figure.
    const later = points.slice(Math.floor(points.length / 2));
    const meanX = later.reduce((sum, [x]) => sum + x, 0) / later.length;
    const meanY = later.reduce((sum, [, y]) => sum + y, 0) / later.length;
    let sxy = 0;
    let sxx = 0;
    for (const [x, y] of later) {
      sxy += (x - meanX) * (y - meanY);
      sxx += (x - meanX) ** 2;
    }
    console.log(
      `growth: ${((sxy / sxx / 1024) * 1000).toFixed(0)} KiB per 1,000 sessions (least-squares slope of heap after GC over the last ${later.length} batches)`,
    );
  }
  if (firstProbe && lastProbe && firstProbe !== lastProbe) {
    console.log(`after the first batch: ${describeHandles(firstProbe)}`);
    console.log(`after the last batch:  ${describeHandles(lastProbe)}`);
  }
  console.log(
    `sessions ended: ${[...driver.ended].map(([status, count]) => `${count} ${status}`).join(', ')}; webhook deliveries received: ${delivered}; batches run: ${done}`,
  );
  console.log(`load average (1 min): ${loadAtStart} at the start, ${loadavg()[0]!.toFixed(2)} at the end`);
  if (driver.errors.size > 0) {
    console.log('unexpected answers (count):');
    for (const [what, count] of driver.errors) console.log(`  ${count} × ${what}`);
  }
}

const hasGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
if (args[0] === '--provider') await runProvider();
else if (args[0] === '--server') {
  if (!hasGc) {
    // Heap figures after a full GC only: start again with --expose-gc.
    const child = spawn(process.execPath, ['--expose-gc', SCRIPT, ...args], { stdio: 'inherit' });
    child.on('exit', (code) => process.exit(code ?? 1));
    process.on('SIGTERM', () => child.kill('SIGTERM'));
  } else await runServer(args[1]!, args[2]!, args[3] || undefined, args.includes('--tracing'));
} else await main();
