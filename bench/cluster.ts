// Cluster throughput benchmark on PostgreSQL: tasks/s through the durable path (claim with SKIP
// LOCKED + lease, start, finish with events, dependants readied) with 1, 2 and 3 replicas on one
// database, next to pg-boss completing the same number of no-op jobs on the same server in the same
// run. Replicas are engines with their own pool and LISTEN connection in this one process (so they
// share its CPU: a lower bound for separate machines).
//   node bench/cluster.ts [sessions=400] [concurrencyPerReplica=64]
// Uses DATABASE_URL (an admin URL) when set; otherwise starts an embedded PostgreSQL.
import { PgBoss } from 'pg-boss';
import { type AgentRuntime, createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { createEngine, type EngineInternals } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../src/store/db.ts';
import { createClusterNotifier, type PostgresNotifier } from '../src/store/pg-notifier.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';

const SESSIONS = Number(process.argv[2] ?? 400);
const CONCURRENCY = Number(process.argv[3] ?? 64);
const TASKS_PER_SESSION = 5;
const ACTOR = { tenantId: 'default', principalId: 'bench' };
const AGENTS = [
  { name: 'a', role: 'engineer', task: 'design' },
  { name: 'b', role: 'engineer', task: 'build', depends_on: ['a'] },
  { name: 'c', role: 'tester', task: 'test', depends_on: ['a'] },
  { name: 'd', role: 'security', task: 'audit', depends_on: ['a'] },
  { name: 'e', role: 'reviewer', task: 'review', depends_on: ['b', 'c', 'd'] },
];
const instant: AgentRuntime = { kind: 'bench', run: async (task) => ({ output: `ok ${task.name}` }) };
const logger = createLogger({ level: 'silent' });

function storeConfig(url: string, poolSize: number) {
  return {
    dataDir: '.',
    store: { url, synchronous: 'full' as const, busyTimeoutMs: 5000, poolSize, connectTimeoutMs: 10_000 },
    workers: { concurrency: CONCURRENCY, pollIntervalMs: 1000 },
  };
}

async function runMaos(replicas: number): Promise<number> {
  const database = await createTestDatabase();
  const handles: DatabaseHandle[] = [];
  const engines: EngineInternals[] = [];
  const notifiers: PostgresNotifier[] = [];
  try {
    for (let i = 0; i < replicas; i++) {
      const config = storeConfig(database.url, 10);
      const handle = createDatabase(config);
      handles.push(handle);
      const notifier = createClusterNotifier(config, handle, logger)!;
      notifiers.push(notifier);
      const runtimes = createRuntimeRegistry();
      runtimes.registerLlm(instant);
      engines.push(
        createEngine({
          config: {
            workers: { concurrency: CONCURRENCY, pollIntervalMs: 1000 },
            tasks: { leaseSeconds: 60, maxAttempts: 3 },
            runners: {},
          },
          db: handle.db,
          dialect: handle.dialect,
          notifier,
          logger,
          runtimes,
        }),
      );
    }
    // Store the backlog first, then time execution only.
    for (let i = 0; i < SESSIONS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, SESSIONS - i) }, (_, k) =>
          engines[0]!.service.createSession(ACTOR, { objective: `bench ${i + k}`, agents: AGENTS }),
        ),
      );
    }
    for (const notifier of notifiers) await notifier.start();
    const started = performance.now();
    for (const engine of engines) engine.start();
    for (;;) {
      const counts = await engines[0]!.getQueueCounts();
      if ((counts.sessions.completed ?? 0) >= SESSIONS) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    return (SESSIONS * TASKS_PER_SESSION) / seconds;
  } finally {
    for (const engine of engines) await engine.stop({ graceMs: 1000 });
    for (const notifier of notifiers) await notifier.close();
    for (const handle of handles) await handle.close();
    await database.drop();
  }
}

async function runPgBoss(): Promise<number> {
  const database = await createTestDatabase({ empty: true });
  const jobs = SESSIONS * TASKS_PER_SESSION;
  const boss = new PgBoss({ connectionString: database.url, max: 10 });
  boss.on('error', () => undefined);
  try {
    await boss.start();
    await boss.createQueue('bench');
    for (let i = 0; i < jobs; i += 500) {
      await boss.insert(
        'bench',
        Array.from({ length: Math.min(500, jobs - i) }, (_, k) => ({ data: { n: i + k } })),
      );
    }
    let done = 0;
    let finished!: () => void;
    const all = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const started = performance.now();
    // Large fetches: with small ones pg-boss is bound by its polling interval, not by the database.
    await boss.work('bench', { batchSize: 500, pollingIntervalSeconds: 0.5 }, async (batch) => {
      done += batch.length;
      if (done >= jobs) finished();
    });
    await all;
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    await boss.stop({ graceful: false }).catch(() => undefined);
    await database.drop();
  }
}

const results: Record<string, string> = {};
for (const replicas of [1, 2, 3]) {
  results[`maos, ${replicas} replica(s)`] = `${(await runMaos(replicas)).toFixed(0)} tasks/s`;
}
results['pg-boss, same job count, no-op handler'] = `${(await runPgBoss()).toFixed(0)} jobs/s`;
console.log(`PostgreSQL cluster benchmark: ${SESSIONS} sessions × ${TASKS_PER_SESSION} tasks`);
console.table(results);
process.exit(0);
