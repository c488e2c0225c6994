// Cluster throughput benchmark on PostgreSQL: tasks/s through the durable path (claim with SKIP
// LOCKED + lease, start, finish with events, dependants readied) with 1, 2 and 3 replicas on one
// database, next to pg-boss completing the same number of no-op jobs on the same server in the same
// run. Each replica is a separate process (bench/cluster-replica.ts), as in a real deployment.
// While the tasks run, PostgreSQL is sampled (pg_stat_activity wait events, ungranted pg_locks) and
// CPU is accounted (replica processes, the database's backends, the whole machine), which says what
// limits the figure.
// --llm: the tasks are LLM agents (the real AI SDK provider code) against the scripted LLM server in a
// process of its own, so every finish charges usage, as in production: the session's totals and the
// tenant's row of the day in tenant_usage_days, which all sessions (one tenant) share. pg-boss is
// not run then.
//   node bench/cluster.ts [sessions=400] [concurrencyPerReplica=64] [replicaCounts=1,2,3] [--llm]
// Uses DATABASE_URL (an admin URL) when set; otherwise starts an embedded PostgreSQL (fsync off).
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';
import { startJsonLineProcess } from './child-process.ts';
import type { ReplicaStats } from './cluster-replica.ts';
import { BENCH_ACTOR, FIVE_TASK_AGENTS, TASKS_PER_SESSION } from './five-task-session.ts';
import {
  type ActivitySummary,
  readProcessTicks,
  startActivitySampler,
  TICKS_PER_SECOND,
} from './pg-activity-sampler.ts';

const LLM = process.argv.includes('--llm');
const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const SESSIONS = Number(args[0] ?? 400);
const CONCURRENCY = Number(args[1] ?? 64);
// Optional: which replica counts to run (e.g. "3"); pg-boss runs with the full default list only.
const REPLICA_COUNTS = (args[2] ?? '1,2,3').split(',').map(Number);
const POOL_SIZE = 10;
// A run that completes no session for this long is stuck (a lost task waits for its lease, 60 s).
const STALL_MS = 30_000;
const logger = createLogger({ level: 'silent' });

interface Run {
  label: string;
  perSecond: number;
  seconds: number;
  activity: ActivitySummary;
  replicaCpuMs: number;
  batches: number;
  ops: number;
  machineBusy: number;
  /** CPU of this process (watcher + sampler) and of the sampler's backend during the run. */
  benchCpuMs: number;
  /** Input tokens in the tenant's day ledger after the run (tenant_usage_days), MAOS only. */
  ledgerTokens?: number;
  /** CPU of the scripted LLM server's process during the run (--llm). */
  providerCpuMs?: number;
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function readMachineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Stores the backlog through an engine that is never started (no worker slots in this process). */
async function storeBacklog(url: string): Promise<void> {
  const config = {
    dataDir: '.',
    store: { url, synchronous: 'full' as const, busyTimeoutMs: 5000, poolSize: 4, connectTimeoutMs: 10_000 },
  };
  const handle = createDatabase(config);
  const runtimes = createRuntimeRegistry();
  // Sessions need a runtime to be accepted; this process never runs them.
  runtimes.registerLlm({ kind: 'bench', run: async () => ({ output: '' }) });
  const engine = createEngine({
    config: {
      workers: { concurrency: 0, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 3 },
      runners: {},
    },
    db: handle.db,
    dialect: handle.dialect,
    logger,
    runtimes,
  });
  try {
    for (let i = 0; i < SESSIONS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, SESSIONS - i) }, (_, k) =>
          engine.service.createSession(BENCH_ACTOR, {
            objective: `bench ${i + k}`,
            agents: FIVE_TASK_AGENTS,
          }),
        ),
      );
    }
  } finally {
    await handle.close();
  }
}

function forkReplica(
  url: string,
  llmBaseUrl: string | undefined,
): {
  child: ChildProcess;
  ready: Promise<void>;
  stats: Promise<ReplicaStats>;
} {
  const child = fork(
    new URL('./cluster-replica.ts', import.meta.url),
    [url, String(CONCURRENCY), String(POOL_SIZE), ...(llmBaseUrl ? [llmBaseUrl] : [])],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  let onReady!: () => void;
  let onStats!: (stats: ReplicaStats) => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const stats = new Promise<ReplicaStats>((resolve, reject) => {
    onStats = resolve;
    child.once('exit', (code) => reject(new Error(`replica exited with ${code}`)));
  });
  child.on('message', (message) => {
    if (message === 'ready') onReady();
    else onStats(message as ReplicaStats);
  });
  return { child, ready, stats };
}

async function runMaos(replicas: number, provider: Provider | undefined): Promise<Run> {
  const llmBaseUrl = provider?.openaiBaseURL;
  const database = await createTestDatabase();
  const forked: Array<ReturnType<typeof forkReplica>> = [];
  const watcher = new pg.Client({ connectionString: database.url, application_name: 'bench-watch' });
  try {
    await storeBacklog(database.url);
    for (let i = 0; i < replicas; i++) forked.push(forkReplica(database.url, llmBaseUrl));
    await Promise.all(forked.map((replica) => replica.ready));
    await watcher.connect();
    const sampler = await startActivitySampler(database.url);
    const machineBefore = readMachineCpu();
    const ownBefore = process.cpuUsage();
    const providerTicksBefore = provider ? (readProcessTicks(provider.pid) ?? 0) : 0;
    const started = performance.now();
    for (const replica of forked) replica.child.send('start');
    let completed = 0;
    let progressAt = performance.now();
    for (;;) {
      const { rows } = await watcher.query<{ n: string }>(
        "select count(*) as n from sessions where status = 'completed'",
      );
      const n = Number(rows[0]!.n);
      if (n >= SESSIONS) break;
      if (n > completed) {
        completed = n;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > STALL_MS) {
        const tasks = await watcher.query('select status, count(*)::int as n from tasks group by status');
        throw new Error(
          `no session completed for ${STALL_MS / 1000} s (${n} of ${SESSIONS}); tasks: ${JSON.stringify(tasks.rows)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    const machineAfter = readMachineCpu();
    const own = process.cpuUsage(ownBefore);
    const providerTicks = provider ? (readProcessTicks(provider.pid) ?? 0) - providerTicksBefore : 0;
    const activity = await sampler.stop();
    for (const replica of forked) replica.child.send('stop');
    const stats = await Promise.all(forked.map((replica) => replica.stats));
    const ledger = await watcher.query<{ n: string }>(
      'select coalesce(sum(input_tokens), 0) as n from tenant_usage_days',
    );
    return {
      label: `maos${llmBaseUrl ? ' LLM agents' : ''}, ${replicas} replica process(es)`,
      perSecond: (SESSIONS * TASKS_PER_SESSION) / seconds,
      seconds,
      activity,
      replicaCpuMs: stats.reduce((sum, s) => sum + s.cpuMs, 0),
      batches: stats.reduce((sum, s) => sum + s.batches, 0),
      ops: stats.reduce((sum, s) => sum + s.ops, 0),
      machineBusy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
      benchCpuMs: (own.user + own.system) / 1000 + activity.samplerCpuMs,
      ledgerTokens: Number(ledger.rows[0]!.n),
      ...(provider ? { providerCpuMs: (providerTicks / TICKS_PER_SECOND) * 1000 } : {}),
    };
  } finally {
    for (const replica of forked) if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
    await watcher.end().catch(() => undefined);
    await database.drop();
  }
}

async function runPgBoss(): Promise<Run> {
  const database = await createTestDatabase({ empty: true });
  const jobs = SESSIONS * TASKS_PER_SESSION;
  const boss = new PgBoss({ connectionString: database.url, max: POOL_SIZE });
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
    const sampler = await startActivitySampler(database.url);
    const machineBefore = readMachineCpu();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    // Large fetches: with small ones pg-boss is bound by its polling interval, not by the database.
    await boss.work('bench', { batchSize: 500, pollingIntervalSeconds: 0.5 }, async (batch) => {
      done += batch.length;
      if (done >= jobs) finished();
    });
    await all;
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const machineAfter = readMachineCpu();
    const activity = await sampler.stop();
    return {
      label: 'pg-boss, same job count, no-op handler, batches of 500',
      perSecond: jobs / seconds,
      seconds,
      activity,
      // pg-boss works in this process: its CPU and the sampler's share it (not separable).
      replicaCpuMs: (cpu.user + cpu.system) / 1000,
      batches: 0,
      ops: 0,
      machineBusy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
      benchCpuMs: activity.samplerCpuMs,
    };
  } finally {
    await boss.stop({ graceful: false }).catch(() => undefined);
    await database.drop();
  }
}

interface Provider {
  openaiBaseURL: string;
  pid: number;
  stop(): Promise<void>;
}

/** The scripted LLM server in a process of its own (bench/llm-provider-process.ts), as a provider is remote. */
async function startProvider(): Promise<Provider> {
  const script = fileURLToPath(new URL('./llm-provider-process.ts', import.meta.url));
  const provider = await startJsonLineProcess(script, [], 'the scripted LLM server');
  const { openaiBaseURL } = provider.ready as { openaiBaseURL: string };
  return { openaiBaseURL, pid: provider.pid, stop: provider.stop };
}

const loadBefore = loadavg()[0]!;
const runs: Run[] = [];
const provider = LLM ? await startProvider() : undefined;
try {
  for (const replicas of REPLICA_COUNTS) runs.push(await runMaos(replicas, provider));
} finally {
  await provider?.stop();
}
if (args[2] === undefined && !LLM) runs.push(await runPgBoss());

const percent = (value: number) => `${(value * 100).toFixed(0)} %`;
console.log(
  `PostgreSQL cluster benchmark${LLM ? ' (LLM agents, scripted server)' : ''}: ${SESSIONS} sessions × ${TASKS_PER_SESSION} tasks, ${CONCURRENCY} slots and ${POOL_SIZE} connections per replica, ${cpus().length} cores`,
);
console.table(
  Object.fromEntries(
    runs.map((run) => [
      run.label,
      {
        'tasks/s': Math.round(run.perSecond),
        seconds: Number(run.seconds.toFixed(2)),
        'machine CPU busy': percent(run.machineBusy),
        'client CPU (cores)': Number((run.replicaCpuMs / 1000 / run.seconds).toFixed(2)),
        'PG backends CPU (cores)': Number((run.activity.backendCpuMs / 1000 / run.seconds).toFixed(2)),
        'tasks per CPU-second': Math.round(
          (run.perSecond * run.seconds) / ((run.replicaCpuMs + run.activity.backendCpuMs) / 1000),
        ),
        'bench own CPU (cores)': Number((run.benchCpuMs / 1000 / run.seconds).toFixed(2)),
        'ops/batch': run.batches > 0 ? Number((run.ops / run.batches).toFixed(1)) : '-',
        deadlocks: run.activity.deadlocks,
        ...(LLM
          ? {
              'LLM server CPU (cores)': Number(((run.providerCpuMs ?? 0) / 1000 / run.seconds).toFixed(2)),
              'day ledger input tokens': run.ledgerTokens ?? '-',
            }
          : {}),
      },
    ]),
  ),
);
console.log(
  'Average connections of the workers per state (sampled pg_stat_activity; "on CPU" = active, no wait event):',
);
console.table(Object.fromEntries(runs.map((run) => [run.label, run.activity.states])));
console.log('Ungranted locks per sample (pg_locks), by lock type:');
console.table(Object.fromEntries(runs.map((run) => [run.label, run.activity.waitingLocks])));
console.log('Connections waiting for a lock, by the table of their statement (average per sample):');
console.table(Object.fromEntries(runs.map((run) => [run.label, run.activity.lockWaitsByTable])));
const maos = runs.filter((run) => run.batches > 0);
const cpuPerTask = (run: Run) =>
  (run.replicaCpuMs + run.activity.backendCpuMs) / (run.perSecond * run.seconds);
/** What bounded one run, from how busy the machine was and where the connections waited. */
function describeLimit(run: Run): string {
  const locks = run.activity.states['Lock:transactionid'] ?? 0;
  if (run.activity.deadlocks > 0) return `${run.activity.deadlocks} deadlock(s), each a 1 s stall`;
  if (run.machineBusy >= 0.9) {
    return `CPU: the cores were ${percent(run.machineBusy)} busy${locks >= 0.5 ? `; ${locks} connections waiting for row locks` : ''}`;
  }
  if (run.batches === 0) return 'its own fetch/poll cycle (CPU left idle)';
  return "the replicas' serial write streams (one transaction at a time each; CPU left idle)";
}
console.log(
  [
    `Machine load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after, on ${cpus().length} cores.`,
    'Reading: "idle in transaction" = the database waits for the replica (its JavaScript or the next round trip',
    ' of a transaction); "Lock:*" = row-lock waits between replicas (sessions shared by two replicas;',
    " with --llm also the tenant's row of the day in tenant_usage_days, see the table above);",
    '"deadlocks" each stall deadlock_timeout (1 s). "tasks per CPU-second" does not depend on other load.',
    `A task costs ${maos.map((run) => cpuPerTask(run).toFixed(2)).join(' / ')} ms of CPU (replica + PostgreSQL backends) for ${maos.map((run) => run.label.replace(/\D+/g, '')).join(' / ')} replica(s).`,
    'What limited each run:',
    ...runs.map((run) => `  ${run.label}: ${describeLimit(run)}`),
    'Once the cores are full (PostgreSQL, the replicas and any other load share them), more replicas cannot',
    'add throughput; they add CPU per task (shared sessions, wake-ups, empty claims). pg-boss spends far less',
    'CPU per job: no events, no dependency graph, one fetch and one completion call per 500 jobs.',
  ].join('\n'),
);
process.exit(0);
