// Orchestration overhead per agent step: LLM agents (the real AI SDK provider code) against the
// scripted LLM server answering at once, through the durable engine (SQLite WAL, synchronous=FULL).
// Overhead = wall time − time spent inside provider calls (critical path), per step.
//   node bench/orchestrator.ts [runs=5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLlmStack } from '../src/agents/providers/create-llm-stack.ts';
import { createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../src/config/llm-schema.ts';
import type { AgentSpec } from '../src/domain/session-input.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { startLlmServer } from '../test/fixtures/llm-server.ts';

const RUNS = Number(process.argv[2] ?? 5);
const STEPS = 20;
const ACTOR = { tenantId: 'default', principalId: 'bench' };
// Reference figures from ../shared/probe.md, measured on this machine class (not in this run).
const PEERS = { 'Mastra workflows + LibSQL': 0.66, 'LangGraph.js + SQLite checkpointer': 0.95 };

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface CallSpan {
  task: string;
  start: number;
  end: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-bench-orch-'));
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
        calls.push({ task: '', start, end: performance.now() });
        return value;
      },
    },
  });
  if (!stack) throw new Error('no LLM stack');
  const runtimes = createRuntimeRegistry();
  runtimes.registerLlm(stack.runtime);
  const engine = createEngine({
    config: {
      workers: { concurrency: 32, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 1 },
      runners: {},
    },
    db: handle.db,
    logger,
    runtimes,
  });
  engine.start();

  async function runSession(strategy: 'sequential' | 'pipeline', agents: AgentSpec[]) {
    calls.length = 0;
    const started = performance.now();
    const { session } = await engine.service.createSession(ACTOR, { objective: 'bench', strategy, agents });
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        engine.service
          .getSession(ACTOR, session.id)
          .then((detail) => {
            if (detail.status === 'completed') {
              stop();
              resolve();
            } else if (['failed', 'cancelled'].includes(detail.status)) {
              stop();
              reject(new Error(`session ${detail.status}: ${detail.error}`));
            }
          })
          .catch(reject);
      };
      const stop = engine.service.watchEvents(session.id, check);
      check();
    });
    return { wall: performance.now() - started, calls: [...calls].sort((a, b) => a.start - b.start) };
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

  const chainOverheads: number[] = [];
  const fanOverheads: number[] = [];
  await runSession('sequential', chain.slice(0, 3)); // warm-up: module loading, JIT, first connections
  for (let run = 0; run < RUNS; run++) {
    const sequential = await runSession('sequential', chain);
    const providerMs = sequential.calls.reduce((sum, call) => sum + (call.end - call.start), 0);
    chainOverheads.push((sequential.wall - providerMs) / STEPS);
    const fanOut = await runSession('pipeline', fan);
    // Critical path inside providers: the longest of the parallel calls, then the join's call.
    const branches = fanOut.calls.slice(0, STEPS);
    const joinCall = fanOut.calls.at(-1);
    const critical =
      Math.max(...branches.map((call) => call.end - call.start)) +
      (joinCall ? joinCall.end - joinCall.start : 0);
    fanOverheads.push((fanOut.wall - critical) / (STEPS + 1));
  }
  await engine.stop({ graceMs: 1000 });
  await handle.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });

  console.log(
    `MAOS orchestration overhead per agent step (median of ${RUNS} runs; SQLite WAL, synchronous=FULL;`,
  );
  console.log(
    `LLM agents through the AI SDK against the scripted server answering at once; node ${process.version})\n`,
  );
  console.log(`  ${STEPS}-step sequential chain:     ${median(chainOverheads).toFixed(2)} ms/step`);
  console.log(`  ${STEPS}-way fan-out with a join:   ${median(fanOverheads).toFixed(2)} ms/step`);
  console.log('\nReference figures for peers (shared/probe.md; not measured in this run):');
  for (const [name, ms] of Object.entries(PEERS)) console.log(`  ${name}: ~${ms} ms/step`);
  console.log(
    `  target: ≤ ${(Math.min(...Object.values(PEERS)) / 5).toFixed(3)} ms/step (one fifth of the better peer)`,
  );
}

await main();
