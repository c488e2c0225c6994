// Streaming output of many agents at once: RUNS agents each stream CHUNKS output lines, one every
// INTERVAL ms, through the real engine and store (SQLite WAL with `store.synchronous: full` as
// `maos serve` runs it, or PostgreSQL with `--postgres`), as one session fanned out to RUNS agents
// and as RUNS sessions of one agent each. Prints, from the moment every agent is streaming until
// the last session finished: wall time, write operations and commits per second (SQLite: the write
// queue's transactions, each holding a batch of operations, and its WAL flushes; PostgreSQL: one
// transaction per operation), and the engine's CPU. Every line is checked stored once, in its run's order.
//
// With `--against=<other checkout>`, the same workload runs on the engine of that checkout too, the
// two alternated round by round in one process (each tree's own modules), and the figures are
// printed side by side: a change's effect, e.g. against the commit before it:
//   git worktree add ../maos-before <commit> && (cd ../maos-before && npm ci)
//   node bench/output-flush.ts [runs=64] [chunks=200] [--interval=10] [--rounds=2] [--postgres] [--against=../maos-before]
// `--postgres` uses DATABASE_URL (an admin URL) when set; otherwise it starts an embedded PostgreSQL
// with its default durability (fsync and synchronous_commit on), since commits are what it measures.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import {
  createTestDatabase,
  type EmbeddedServer,
  SHARED_URL_ENV,
  startEmbeddedPostgres,
} from '../test/fixtures/postgres.ts';
import { BENCH_ACTOR } from './five-task-session.ts';

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const RUNS = Number(positional[0] ?? 64);
const CHUNKS = Number(positional[1] ?? 200);
function option(name: string): string | undefined {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const INTERVAL_MS = Number(option('interval') ?? 10);
const ROUNDS = Number(option('rounds') ?? 2);
const AGAINST = option('against');
const POSTGRES = process.argv.includes('--postgres');
for (const [name, value] of Object.entries({ runs: RUNS, chunks: CHUNKS, rounds: ROUNDS })) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive integer`);
    process.exit(2);
  }
}
if (!Number.isFinite(INTERVAL_MS) || INTERVAL_MS < 0) {
  console.error('--interval must be a number of milliseconds (0 or more)');
  process.exit(2);
}

type Shape = 'fan-out' | 'sessions';
const SHAPES: Shape[] = ['fan-out', 'sessions'];

/** The modules of one checkout that the workload needs (all of them exist in older trees too). */
interface Tree {
  name: string;
  engine: typeof import('../src/engine/index.ts');
  db: typeof import('../src/store/db.ts');
  migrate: typeof import('../src/store/migrate.ts');
  runtime: typeof import('../src/agents/runtimes/runtime.ts');
  schema: typeof import('../src/config/schema.ts');
  logger: typeof import('../src/observability/logger.ts');
}

async function loadTree(name: string, root: string): Promise<Tree> {
  const load = (path: string) => import(pathToFileURL(join(resolve(root), path)).href);
  return {
    name,
    engine: await load('src/engine/index.ts'),
    db: await load('src/store/db.ts'),
    migrate: await load('src/store/migrate.ts'),
    runtime: await load('src/agents/runtimes/runtime.ts'),
    schema: await load('src/config/schema.ts'),
    logger: await load('src/observability/logger.ts'),
  };
}

interface Figures {
  seconds: number;
  ops: number;
  commits: number;
  /** SQLite: WAL flushes (fsyncs); PostgreSQL: not counted (0). */
  syncs: number;
  cpuSeconds: number;
}

/** One run of the workload on one tree; throws if a line is missing, doubled or out of order. */
async function runOnce(
  tree: Tree,
  shape: Shape,
  dir: string,
  adminUrl: string | undefined,
): Promise<Figures> {
  const database = adminUrl ? await createTestDatabase({ empty: true }) : undefined;
  const handle = tree.db.createDatabase(
    tree.schema.configSchema.parse({
      dataDir: dir,
      store: database
        ? { url: database.url, synchronous: 'full', busyTimeoutMs: 5000, poolSize: 4 }
        : {
            url: `sqlite:${join(dir, `${tree.name}-${shape}.db`)}`,
            synchronous: 'full',
            busyTimeoutMs: 5000,
          },
    }),
  );
  try {
    await tree.migrate.migrateToLatest(handle.db);
    let started = 0;
    let go!: () => void;
    const allStreaming = new Promise<void>((resolveGo) => {
      go = resolveGo;
    });
    const runtimes = tree.runtime.createRuntimeRegistry();
    runtimes.registerLlm({
      kind: 'streaming',
      async run(task, ctx) {
        if (++started === RUNS) go();
        await allStreaming;
        for (let i = 0; i < CHUNKS; i++) {
          ctx.emitOutput('text', `${task.name} ${i}\n`);
          await new Promise((resolveSleep) => setTimeout(resolveSleep, INTERVAL_MS));
        }
        return { output: `${task.name} done` };
      },
    });
    const sessions = shape === 'fan-out' ? 1 : RUNS;
    let finished = 0;
    let allFinished!: () => void;
    const done = new Promise<void>((resolveDone) => {
      allFinished = resolveDone;
    });
    const engine = tree.engine.createEngine({
      config: {
        // No poll rounds and no heartbeats while it streams: the writes counted are the runs'.
        workers: { concurrency: RUNS, pollIntervalMs: 600_000 },
        tasks: { leaseSeconds: 600, maxAttempts: 1 },
        runners: {},
      },
      db: handle.db,
      dialect: handle.dialect,
      // As `maos serve` runs SQLite (src/app.ts): engine progress acknowledged at commit.
      ...(handle.durability ? { durability: handle.durability, deferCommits: true } : {}),
      logger: tree.logger.createLogger({ level: 'silent' }),
      runtimes,
      observer: {
        sessionFinished() {
          if (++finished === sessions) allFinished();
        },
      },
    });
    engine.start();
    const ids: string[] = [];
    for (let s = 0; s < sessions; s++) {
      const agents = Array.from({ length: RUNS / sessions }, (_, i) => ({
        name: `a${s * (RUNS / sessions) + i}`,
        role: 'engineer',
        task: 'stream',
      }));
      const { session } = await engine.service.createSession(BENCH_ACTOR, {
        objective: `stream ${s}`,
        agents,
      });
      ids.push(session.id);
    }
    await allStreaming;
    const before = engine.queue.stats();
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    await done;
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    await engine.queue.drain();
    const after = engine.queue.stats();
    // Every line stored once, each run's in order.
    for (const id of ids) {
      const lines = new Map<string, number>();
      for (let afterSeq = 0; ; ) {
        const page = await engine.service.listEvents(BENCH_ACTOR, id, afterSeq, 1000);
        for (const event of page) {
          if (event.type !== 'task.output') continue;
          const [name, index] = String(event.data.line).split(' ');
          const expected = lines.get(name!) ?? 0;
          if (Number(index) !== expected) throw new Error(`${name}: line ${index} where ${expected} was due`);
          lines.set(name!, expected + 1);
        }
        if (page.length < 1000) break;
        afterSeq = page.at(-1)!.seq;
      }
      for (const [name, count] of lines) {
        if (count !== CHUNKS) throw new Error(`${name}: ${count} of ${CHUNKS} lines stored`);
      }
    }
    await engine.stop({ graceMs: 1000 });
    return {
      seconds,
      ops: after.ops - before.ops,
      // PostgreSQL: the write queue commits each operation in a transaction of its own.
      commits: database ? after.ops - before.ops : after.batches - before.batches,
      syncs: database ? 0 : after.walFlushes - before.walFlushes,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    await handle.close();
    await database?.drop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-flush-'));
  let server: EmbeddedServer | undefined;
  let adminUrl: string | undefined;
  if (POSTGRES) {
    adminUrl = process.env.DATABASE_URL;
    if (!adminUrl) {
      server = await startEmbeddedPostgres({ durable: true });
      adminUrl = server.url;
      process.env[SHARED_URL_ENV] = adminUrl;
    }
  }
  try {
    const trees = [await loadTree('this', '.')];
    if (AGAINST) trees.unshift(await loadTree('other', AGAINST));
    let settings = 'SQLite WAL, store.synchronous full';
    if (adminUrl) {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      const rows = await client.query<{ name: string; setting: string }>(
        "select name, setting from pg_settings where name in ('fsync', 'synchronous_commit', 'server_version') order by name",
      );
      await client.end();
      settings = `PostgreSQL ${rows.rows.map((row) => `${row.name}=${row.setting}`).join(', ')}`;
    }
    const loadBefore = loadavg();
    console.log(
      `Streaming output: ${RUNS} agents × ${CHUNKS} lines, one every ${INTERVAL_MS} ms; ${settings}; ` +
        `${ROUNDS} round(s)${AGAINST ? `, this tree against ${AGAINST}` : ''}; node ${process.version}`,
    );
    const results = new Map<string, Figures[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const shape of SHAPES) {
        // The first of each round alternates, so neither tree always runs on a warmer process.
        const order = round % 2 === 0 ? trees : [...trees].reverse();
        for (const tree of order) {
          const figures = await runOnce(tree, shape, dir, adminUrl);
          const key = `${shape}/${tree.name}`;
          results.set(key, [...(results.get(key) ?? []), figures]);
        }
      }
    }
    const loadAfter = loadavg();
    const lines = RUNS * CHUNKS;
    for (const shape of SHAPES) {
      console.log(
        `\n${shape === 'fan-out' ? `one session of ${RUNS} agents` : `${RUNS} sessions of one agent`} ` +
          `(${lines} lines; the least time it can take is ${((CHUNKS * INTERVAL_MS) / 1000).toFixed(1)} s), median of ${ROUNDS}:`,
      );
      for (const tree of trees) {
        const runs = results.get(`${shape}/${tree.name}`)!;
        const seconds = median(runs.map((run) => run.seconds));
        const perSecond = (pick: (run: Figures) => number) =>
          median(runs.map((run) => pick(run) / run.seconds));
        console.log(
          `  ${(tree.name === 'this' ? 'this tree' : AGAINST!).padEnd(24)} wall ${seconds.toFixed(2)} s; ` +
            `write ops ${median(runs.map((run) => run.ops)).toFixed(0)} (${perSecond((run) => run.ops).toFixed(0)}/s); ` +
            `commits ${median(runs.map((run) => run.commits)).toFixed(0)} (${perSecond((run) => run.commits).toFixed(0)}/s); ` +
            (adminUrl ? '' : `WAL flushes ${median(runs.map((run) => run.syncs)).toFixed(0)}; `) +
            `CPU ${median(runs.map((run) => run.cpuSeconds)).toFixed(2)} s`,
        );
      }
    }
    console.log(
      `\nload average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after` +
        (adminUrl
          ? '; PostgreSQL commits each write operation in a transaction of its own (store/postgres-write-batch.ts)'
          : '; SQLite commits all operations of a write-queue batch together (store/write-queue.ts)'),
    );
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
