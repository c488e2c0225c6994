// Orchestration overhead per agent step, MAOS next to its peers, measured in the same run.
// MAOS: LLM agents (the real AI SDK provider code) against the scripted LLM server answering at once,
// through the durable engine (SQLite WAL, synchronous=FULL); overhead = wall time − time spent inside
// provider calls (critical path), per step. Peers (bench/orchestrator-peers.ts): LangGraph.js with its
// SQLite checkpointer and Mastra workflows with LibSQL, steps that do nothing, synchronous=FULL.
// Shapes: a 20-step sequential chain and a 20-way fan-out with a join. See bench/README.md.
//   npm install --prefix bench        # once, for the peers (MAOS alone is measured without them)
//   node bench/orchestrator.ts [runs=20]
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { createLlmStack } from '../src/agents/providers/create-llm-stack.ts';
import { createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../src/config/llm-schema.ts';
import type { AgentSpec } from '../src/domain/session-input.ts';
import type { SessionStatus } from '../src/domain/types.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { startLlmServer } from '../test/fixtures/llm-server.ts';
import { measurePeers, type PeerReport, type ShapeFigures } from './orchestrator-peers.ts';

const RUNS = Number(process.argv[2] ?? 20);
const STEPS = 20;
const ACTOR = { tenantId: 'default', principalId: 'bench' };

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface CallSpan {
  start: number;
  end: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** MAOS: median µs of orchestration overhead per step for both shapes. */
async function measureMaos(dir: string): Promise<ShapeFigures & { commitsPerStep: ShapeFigures }> {
  const server = await startLlmServer({
    handler: () => ({ text: 'done', usage: { inputTokens: 10, outputTokens: 1 } }),
  });
  const handle = createDatabase({ dataDir: dir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
  await migrateToLatest(handle.db);
  const logger = createLogger({ level: 'silent' });
  const calls: CallSpan[] = [];
  const stack = createLlmStack({
    config: {
      providers: providersConfigSchema.parse({
        local: {
          type: 'openai-compatible',
          baseURL: server.openaiBaseURL,
          model: 'bench-model',
          maxConcurrency: 64,
        },
      }),
      llm: llmConfigSchema.parse({ agentMessaging: false }),
    },
    db: handle.db,
    logger,
    telemetry: {
      async observeCall(_target, run) {
        const start = performance.now();
        const value = await run();
        calls.push({ start, end: performance.now() });
        return value;
      },
    },
  });
  if (!stack) throw new Error('no LLM stack');
  const runtimes = createRuntimeRegistry();
  runtimes.registerLlm(stack.runtime);
  // The bench runs one session at a time: the engine's "session finished" hook ends a run.
  let onFinished: ((status: SessionStatus) => void) | null = null;
  const engine = createEngine({
    config: {
      workers: { concurrency: 32, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 1 },
      runners: {},
    },
    db: handle.db,
    logger,
    runtimes,
    observer: { sessionFinished: (status) => onFinished?.(status) },
  });
  engine.start();

  async function runSession(strategy: 'sequential' | 'pipeline', agents: AgentSpec[]) {
    calls.length = 0;
    const batches = engine.queue.stats().batches;
    const started = performance.now();
    const finished = new Promise<SessionStatus>((resolve) => {
      onFinished = resolve;
    });
    const { session } = await engine.service.createSession(ACTOR, { objective: 'bench', strategy, agents });
    await finished;
    // The answer as a client reads it (the finish is committed before the hook runs).
    const detail = await engine.service.getSession(ACTOR, session.id);
    const wall = performance.now() - started;
    if (detail.status !== 'completed') throw new Error(`session ${detail.status}: ${detail.error}`);
    return {
      wall,
      calls: [...calls].sort((a, b) => a.start - b.start),
      batches: engine.queue.stats().batches - batches,
    };
  }

  const chain: AgentSpec[] = Array.from({ length: STEPS }, (_, i) => ({
    name: `s${i}`,
    role: 'engineer',
    task: `step ${i}`,
  }));
  const fan: AgentSpec[] = [
    ...Array.from({ length: STEPS }, (_, i) => ({ name: `f${i}`, role: 'engineer', task: `branch ${i}` })),
    {
      name: 'join',
      role: 'reviewer',
      task: 'join',
      depends_on: Array.from({ length: STEPS }, (_, i) => `f${i}`),
    },
  ];

  const chainUs: number[] = [];
  const fanUs: number[] = [];
  const chainCommits: number[] = [];
  const fanCommits: number[] = [];
  // Warm-up: module loading, JIT, first connections.
  for (let i = 0; i < 3; i++) {
    await runSession('sequential', chain);
    await runSession('pipeline', fan);
  }
  for (let run = 0; run < RUNS; run++) {
    const sequential = await runSession('sequential', chain);
    const providerMs = sequential.calls.reduce((sum, call) => sum + (call.end - call.start), 0);
    chainUs.push(((sequential.wall - providerMs) * 1000) / STEPS);
    chainCommits.push(sequential.batches / STEPS);
    const fanOut = await runSession('pipeline', fan);
    // Critical path inside providers: the longest of the parallel calls, then the join's call.
    const branches = fanOut.calls.slice(0, STEPS);
    const joinCall = fanOut.calls.at(-1);
    const critical =
      Math.max(...branches.map((call) => call.end - call.start)) +
      (joinCall ? joinCall.end - joinCall.start : 0);
    fanUs.push(((fanOut.wall - critical) * 1000) / (STEPS + 1));
    fanCommits.push(fanOut.batches / (STEPS + 1));
  }
  await engine.stop({ graceMs: 1000 });
  await handle.close();
  await server.close();
  return {
    seq: median(chainUs),
    fan: median(fanUs),
    commitsPerStep: { seq: median(chainCommits), fan: median(fanCommits) },
  };
}

/** The durability floor of this disk: one bare better-sqlite3 commit (one insert, WAL, FULL). */
function measureBareCommit(dir: string): number {
  const sqlite = new SqliteDatabase(join(dir, 'bare.db'));
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.exec('create table steps (id integer primary key, data text)');
  const insert = sqlite.prepare('insert into steps (data) values (?)');
  const commit = sqlite.transaction((data: string) => insert.run(data));
  const perRun: number[] = [];
  for (let run = 0; run < RUNS + 3; run++) {
    const started = performance.now();
    for (let step = 0; step < STEPS; step++) commit(`step ${step}`);
    if (run >= 3) perRun.push(((performance.now() - started) * 1000) / STEPS);
  }
  sqlite.close();
  return median(perRun);
}

function formatUs(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')} µs` : 'n/a';
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-orch-'));
  const loadBefore = loadavg();
  try {
    const maos = await measureMaos(join(dir, 'maos'));
    const peers: PeerReport[] = await measurePeers({ runs: RUNS, steps: STEPS, dir });
    const bare = measureBareCommit(dir);
    const loadAfter = loadavg();

    const rows: Array<[string, string, string]> = [
      ['MAOS (LLM agents, AI SDK, scripted server)', formatUs(maos.seq), formatUs(maos.fan)],
    ];
    for (const peer of peers) {
      rows.push(
        peer.figures
          ? [peer.name, formatUs(peer.figures.seq), formatUs(peer.figures.fan)]
          : [peer.name, 'not measured', 'not measured'],
      );
    }
    rows.push(['one bare SQLite commit (fsync) per step', formatUs(bare), '']);
    const width = Math.max(...rows.map((row) => row[0].length));
    console.log(
      `Orchestration overhead per agent step, median of ${RUNS} runs (node ${process.version};` +
        ` load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before,` +
        ` ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after)\n`,
    );
    console.log(`  ${''.padEnd(width)}  ${STEPS}-step chain   ${STEPS}-way fan-out + join`);
    for (const [name, seq, fan] of rows)
      console.log(`  ${name.padEnd(width)}  ${seq.padStart(12)}   ${fan.padStart(12)}`);
    console.log(
      `\n  MAOS write transactions per step: ${maos.commitsPerStep.seq.toFixed(2)} (chain), ` +
        `${maos.commitsPerStep.fan.toFixed(2)} (fan-out)`,
    );
    for (const peer of peers) {
      if (peer.skipped) console.log(`  ${peer.name}: ${peer.skipped}`);
      else if (peer.storage) console.log(`  ${peer.name}: ${peer.storage}`);
    }
    const measured = peers.filter((peer) => peer.figures).map((peer) => peer.figures!);
    if (measured.length === 0) {
      console.log(
        '\n  Peers not measured: install them with `npm install --prefix bench` (see bench/README.md).',
      );
      return;
    }
    const best = {
      seq: Math.min(...measured.map((f) => f.seq)),
      fan: Math.min(...measured.map((f) => f.fan)),
    };
    for (const shape of ['seq', 'fan'] as const) {
      const target = best[shape] / 5;
      const verdict = maos[shape] <= target ? 'met' : 'NOT met';
      console.log(
        `  target (${shape === 'seq' ? 'chain' : 'fan-out'}): ≤ ${formatUs(target)} (one fifth of the better peer): ` +
          `MAOS ${formatUs(maos[shape])}, ${verdict} (${(best[shape] / maos[shape]).toFixed(1)}× faster than the better peer)`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
