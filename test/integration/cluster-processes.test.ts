// The cluster as operators run it: three `maos serve` processes on one PostgreSQL database behind a
// round-robin proxy. Sessions are submitted through the proxy, one replica is killed with SIGKILL
// mid-run and restarted: every session completes, each task's completion is applied exactly once,
// SSE streams that reconnect through another replica receive every event exactly once and in
// order, and the audit hash chain verifies.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { createSseParser } from '../../src/cli/sse-reader.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { type RoundRobinProxy, startRoundRobinProxy } from '../fixtures/round-robin-proxy.ts';
import { readAllEvents, requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SESSIONS = 200;
// Streams follow sessions from the end of the backlog, so they are still open when the replica dies.
const STREAMED = 12;
const SUBMITTERS = 8;

interface Replica {
  child: ChildProcess;
  url: string;
  exited: Promise<void>;
}

interface EventDto {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

async function startReplica(configPath: string, dataDir: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['bin/maos.js', 'serve', '--config', configPath, '--port', '0', '--data-dir', dataDir],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Generous: a replica's start (type stripping of the whole app) takes 15–20 s on 2 busy cores.
  const url = await waitFor(() => /MAOS listening on (http:\/\/\S+)/.exec(stderr)?.[1], 90_000).catch(() => {
    child.kill('SIGKILL');
    throw new Error(`replica did not start:\n${stdout}\n${stderr}`);
  });
  return { child, url, exited };
}

/** Follows a session's SSE stream through the proxy, reconnecting with Last-Event-ID until session.finished. */
async function followStream(
  proxyUrl: string,
  sessionId: string,
): Promise<{ ids: number[]; reconnects: number }> {
  const ids: number[] = [];
  let reconnects = -1;
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    reconnects++;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (ids.length > 0) headers['last-event-id'] = String(ids.at(-1));
    try {
      const response = await fetch(`${proxyUrl}/v1/sessions/${sessionId}/events`, {
        headers,
        // Only the overall deadline: a reconnect then means the serving replica went away.
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      const parser = createSseParser();
      const decoder = new TextDecoder();
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        for (const frame of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (frame.id !== undefined) ids.push(Number(frame.id));
          if (frame.event === 'session.finished') return { ids, reconnects };
        }
      }
    } catch {
      // The replica serving the stream died (or the stream was cut): resume through another one.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`stream of ${sessionId} did not finish`);
}

function sessionBody(i: number) {
  const work = (name: string, dependsOn: string[] = []) => ({
    name,
    role: 'engineer',
    task: `${name} of ${i}`,
    runner: 'work',
    ...(dependsOn.length > 0 ? { depends_on: dependsOn } : {}),
  });
  // Mixed shapes: a pipeline, a fan-out/fan-in and a single task.
  const shapes = [
    [work('a'), work('b', ['a']), work('c', ['b'])],
    [work('a'), work('b', ['a']), work('c', ['a']), work('d', ['b', 'c'])],
    [work('only')],
  ];
  return { objective: `cluster ${i}`, agents: shapes[i % shapes.length] };
}

describe('cluster: three maos serve processes, one killed with SIGKILL mid-run', { timeout: 480_000 }, () => {
  let database: TestDatabase;
  let dir: string;
  let configPath: string;
  const replicas: Replica[] = [];
  let proxy: RoundRobinProxy;

  before(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'maos-cluster-'));
    configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        auth: { mode: 'none' },
        logLevel: 'warn',
        // All sessions are submitted up front: no rate limit, no cap on unfinished sessions.
        rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 0 },
        store: { url: database.url, poolSize: 5 },
        workers: { concurrency: 4, pollIntervalMs: 500 },
        // Short leases so the killed replica's tasks come back quickly; enough attempts for a kill.
        tasks: { leaseSeconds: 3, maxAttempts: 5 },
        shutdown: { graceSeconds: 1 },
        runners: { work: { command: ['sh', '-c', 'sleep 0.2; echo "did $MAOS_TASK"'] } },
      }),
    );
    // Started together (the first one migrates, the others wait on the migration lock).
    const started = await Promise.allSettled(
      [0, 1, 2].map((i) => startReplica(configPath, join(dir, `r${i}`))),
    );
    for (const result of started) if (result.status === 'fulfilled') replicas.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    proxy = await startRoundRobinProxy(replicas.map((replica) => replica.url));
  });

  after(async () => {
    await proxy?.close();
    await Promise.all(
      replicas.map(async (replica) => {
        replica.child.kill('SIGTERM');
        const timer = setTimeout(() => replica.child.kill('SIGKILL'), 10_000);
        await replica.exited;
        clearTimeout(timer);
      }),
    );
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every session completes, tasks once, streams exactly once, audit chain verifies', async (t) => {
    const started = Date.now();
    const mark = (what: string) =>
      t.diagnostic(`${what} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Submitted by a few clients at once (as a load balancer sees them); ids keep submission order.
    const ids: string[] = new Array(SESSIONS);
    let nextSession = 0;
    const submitter = async () => {
      for (let i = nextSession++; i < SESSIONS; i = nextSession++) {
        const created = await requestJson<{ id: string }>(`${proxy.url}/v1/sessions`, {
          method: 'POST',
          body: sessionBody(i),
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        ids[i] = created.body.id;
      }
    };
    await Promise.all(Array.from({ length: SUBMITTERS }, submitter));
    mark(`${SESSIONS} sessions submitted`);
    // Opened back to back, round robin spreads them over all three replicas (the victim included).
    const streamedIds = ids.slice(-STREAMED);
    const streams = streamedIds.map((id) => followStream(proxy.url, id));

    // Kill replica 1 once the cluster is busy, then bring it back on a new port.
    await waitFor(async () => {
      const page = await requestJson<{ items: Array<{ status: string }> }>(
        `${proxy.url}/v1/sessions?status=completed&limit=5`,
      );
      return page.body.items.length >= 5 ? true : undefined;
    }, 120_000);
    // … and while it holds leases (its worker id carries its pid), so that other replicas have its
    // tasks to take over: on a loaded machine it may have none at the moment the cluster is busy.
    const victim = replicas[1]!;
    const watch = createDatabase({
      dataDir: dir,
      store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000 },
    });
    try {
      await waitFor(async () => {
        const { rows } = await sql<{ held: number | string }>`
          select count(*) as held from tasks
          where status in ('leased', 'running') and lease_owner like ${`%:${victim.child.pid}:%`}`.execute(
          watch.db,
        );
        return Number(rows[0]?.held ?? 0) > 0 ? true : undefined;
      }, 60_000);
    } finally {
      await watch.close();
    }
    mark('killing replica 1');
    victim.child.kill('SIGKILL');
    await victim.exited;
    proxy.setUpstreams([replicas[0]!.url, replicas[2]!.url]);
    replicas[1] = await startReplica(configPath, join(dir, 'r1-restarted'));
    proxy.setUpstreams(replicas.map((replica) => replica.url));

    mark('replica 1 restarted');
    // The backlog is awaited with one count on the database (not by polling each session through
    // the proxy); then every session is checked through the proxy, by a few clients at once.
    const backlog = createDatabase({
      dataDir: dir,
      store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000 },
    });
    try {
      await waitFor(
        async () => {
          const { rows } = await sql<{ open: number | string }>`
            select count(*) as open from sessions
            where status not in ('completed', 'failed', 'cancelled')`.execute(backlog.db);
          return Number(rows[0]?.open ?? 1) === 0 ? true : undefined;
        },
        300_000,
        'every session to end',
      );
    } finally {
      await backlog.close();
    }
    mark('every session ended');
    let leaseExpiries = 0;
    let nextCheck = 0;
    const check = async (id: string) => {
      const done = await waitFor(async () => {
        const detail = await requestJson<{ status: string; error: string | null; tasks: unknown[] }>(
          `${proxy.url}/v1/sessions/${id}`,
        );
        return ['completed', 'failed', 'cancelled'].includes(detail.body.status) ? detail.body : undefined;
      }, 180_000);
      assert.equal(done.status, 'completed', `${id}: ${done.error}`);
      const events = await readAllEvents<EventDto>(proxy.url, id);
      assert.deepEqual(
        events.map((event) => event.seq),
        events.map((_, index) => index + 1),
      );
      leaseExpiries += events.filter(
        (event) =>
          event.type === 'task.status' && String(event.data.reason ?? '').startsWith('lease expired'),
      ).length;
      const results = events.filter((event) => event.type === 'task.result');
      assert.equal(results.length, done.tasks.length, `${id}: one completion per task`);
      assert.equal(new Set(results.map((event) => event.data.taskId)).size, done.tasks.length);
      assert.equal(events.filter((event) => event.type === 'session.finished').length, 1);
    };
    const checker = async () => {
      for (let i = nextCheck++; i < SESSIONS; i = nextCheck++) await check(ids[i]!);
    };
    await Promise.all(Array.from({ length: SUBMITTERS }, checker));

    mark('every session completed and checked');
    let reconnects = 0;
    for (const [index, stream] of streams.entries()) {
      const followed = await stream;
      reconnects += followed.reconnects;
      const stored = await readAllEvents<EventDto>(proxy.url, streamedIds[index]!);
      assert.deepEqual(
        followed.ids,
        stored.map((event) => event.seq),
        'the stream saw every event exactly once, in order, across reconnects',
      );
    }
    assert.ok(reconnects > 0, 'some streams were served by the killed replica and resumed elsewhere');
    assert.ok(leaseExpiries > 0, 'the killed replica held leases that other replicas took over');
    t.diagnostic(`stream reconnects: ${reconnects}, lease expiries: ${leaseExpiries}`);

    const handle = createDatabase({
      dataDir: dir,
      store: { url: database.url, synchronous: 'full', busyTimeoutMs: 5000 },
    });
    try {
      const db = handle.db as unknown as SecurityDb;
      const rows = await db
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
