// A quiet tenant beside a noisy one (docs/adr/0013-fair-claims-between-tenants.md): the noisy tenant
// keeps `noisy` five-task sessions (a → b,c,d → e) in flight, each finished one replaced at once, as a
// tenant at its rateLimit.maxConcurrentSessionsPerTenant would; the quiet tenant submits one session
// of one task at a time, the next once the last one started. Every task works `taskMs`. Prints the
// quiet task's wait from ready to running (median, p95, max) with the fair claim, and the same
// workload with the quiet sessions submitted as the noisy tenant: the claim is then oldest ready
// first across all of them, the order before fair claims (with one tenant ready, the claim and the
// SQLite hand-off are the ones of before). Also how many ready tasks were ahead of each quiet task
// in ready order when it was submitted, and the noisy tenant's tasks/s (the fair claim leaves no
// slot idle). SQLite, `store.synchronous: full`, as `maos serve` runs it.
//   node bench/tenant-fairness.ts [noisy=100] [quiet=30] [taskMs=10] [concurrency=8]

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { configSchema } from '../src/config/schema.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { FIVE_TASK_AGENTS } from './five-task-session.ts';

const NOISY_SESSIONS = Number(process.argv[2] ?? 100);
const QUIET_SESSIONS = Number(process.argv[3] ?? 30);
const TASK_MS = Number(process.argv[4] ?? 10);
const CONCURRENCY = Number(process.argv[5] ?? 8);
/** The quiet tenant's next session goes this long after its last one started. */
const QUIET_GAP_MS = 20;
/** The noisy backlog builds up this long before the first quiet session. */
const WARM_UP_MS = 500;

const NOISY = { tenantId: 'noisy', principalId: 'bench' };
const QUIET = { tenantId: 'quiet', principalId: 'bench' };

interface Result {
  waits: number[];
  ahead: number[];
  noisyTasksPerSecond: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** One run on a fresh database; `quietAs` is the tenant the quiet sessions are submitted as. */
async function run(dir: string, name: string, quietAs: typeof QUIET): Promise<Result> {
  const handle = createDatabase(
    configSchema.parse({
      dataDir: dir,
      store: { url: `sqlite:${join(dir, `${name}.db`)}`, synchronous: 'full', busyTimeoutMs: 5000 },
    }),
  );
  await migrateToLatest(handle.db);
  for (const id of [NOISY.tenantId, QUIET.tenantId]) {
    await handle.db
      .insertInto('tenants')
      .values({ id, name: id, created_at: 0 } as never)
      .execute();
  }
  let stopping = false;
  let noisyTasks = 0;
  let quietStarted: (() => void) | null = null;
  const submitNoisy = () =>
    engine.service
      .createSession(NOISY, { objective: 'noisy', strategy: 'pipeline', agents: FIVE_TASK_AGENTS })
      .catch((error: unknown) => {
        if (!stopping) throw error;
      });
  const runtimes = createRuntimeRegistry();
  runtimes.registerLlm({
    kind: 'noop',
    async run(task) {
      if (task.name === 'quiet') quietStarted?.();
      await new Promise((resolve) => setTimeout(resolve, TASK_MS));
      if (task.name !== 'quiet') noisyTasks++;
      // The noisy session's last task: another one takes its place.
      if (task.name === 'e' && !stopping) void submitNoisy();
      return { output: task.name };
    },
  });
  const engine = createEngine({
    config: {
      workers: { concurrency: CONCURRENCY, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 3 },
      runners: {},
    },
    db: handle.db,
    durability: handle.durability,
    deferCommits: true,
    logger: createLogger({ level: 'silent' }),
    runtimes,
  });
  engine.start();
  await Promise.all(Array.from({ length: NOISY_SESSIONS }, submitNoisy));
  await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
  const ahead: number[] = [];
  const quietIds: string[] = [];
  const noisyBefore = noisyTasks;
  const startedAt = performance.now();
  for (let i = 0; i < QUIET_SESSIONS; i++) {
    const started = new Promise<void>((resolve) => {
      quietStarted = resolve;
    });
    const { session } = await engine.service.createSession(quietAs, {
      objective: 'quiet',
      agents: [{ name: 'quiet', role: 'engineer', task: 'answer' }],
    });
    quietIds.push(session.id);
    // Ready tasks the oldest-first claim takes before this one (it may have started already).
    const row = await handle.db
      .selectFrom('tasks as q')
      .innerJoin('tasks as t', (join) =>
        join.on('t.status', '=', 'ready').onRef('t.ready_at', '<', 'q.ready_at'),
      )
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('q.session_id', '=', session.id)
      .executeTakeFirstOrThrow();
    ahead.push(Number(row.n));
    await started;
    await new Promise((resolve) => setTimeout(resolve, QUIET_GAP_MS));
  }
  const seconds = (performance.now() - startedAt) / 1000;
  const noisyTasksPerSecond = (noisyTasks - noisyBefore) / seconds;
  stopping = true;
  await engine.stop({ graceMs: 1000 });
  const rows = await handle.db
    .selectFrom('tasks')
    .select(['ready_at', 'started_at'])
    .where('session_id', 'in', quietIds)
    .execute();
  await handle.close();
  const waits = rows.map((row) => Number(row.started_at) - Number(row.ready_at)).sort((a, b) => a - b);
  return { waits, ahead, noisyTasksPerSecond };
}

function report(name: string, result: Result): void {
  const { waits } = result;
  console.log(
    `${name.padEnd(28)} wait ready → running: median ${percentile(waits, 50)} ms, p95 ${percentile(waits, 95)} ms, max ${waits.at(-1)} ms; ` +
      `ready tasks ahead (median) ${median(result.ahead)}; noisy ${result.noisyTasksPerSecond.toFixed(0)} tasks/s`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-'));
  try {
    console.log(
      `noisy tenant: ${NOISY_SESSIONS} five-task sessions in flight; quiet tenant: ${QUIET_SESSIONS} one-task sessions, one at a time`,
    );
    console.log(
      `${TASK_MS} ms per task, ${CONCURRENCY} slots, SQLite WAL, store.synchronous full, node ${process.version}, load average ${loadavg()[0]!.toFixed(1)}\n`,
    );
    report('fair (two tenants)', await run(dir, 'fair', QUIET));
    report('oldest first (one tenant)', await run(dir, 'oldest', NOISY));
    console.log(`\nload average ${loadavg()[0]!.toFixed(1)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
