// The MAOS contenders of bench/orchestrator.ts, in a module of their own so that other scripts
// (bench/orchestrator-ab.ts) can run them: LLM agents through the real AI SDK provider code against
// the scripted LLM server in a process of its own, or the engine alone with steps that do nothing,
// through the durable engine (SQLite WAL, `store.synchronous: full`).
import { fileURLToPath } from 'node:url';
import { createLlmStack } from '../src/agents/providers/create-llm-stack.ts';
import { type AgentRuntime, createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../src/config/llm-schema.ts';
import type { AgentSpec } from '../src/domain/session-input.ts';
import type { SessionStatus } from '../src/domain/types.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { startJsonLineProcess } from './child-process.ts';

/** Steps of each shape: a chain of this many steps, a fan-out of this many branches and a join. */
export const STEPS = 20;
const ACTOR = { tenantId: 'default', principalId: 'bench' };

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/** A framework measured per run: each call runs one session/graph and returns µs of overhead per step. */
export interface Contender {
  name: string;
  seq(): Promise<number>;
  fan(): Promise<number>;
  describe?(): Promise<string>;
  close(): Promise<void>;
}

interface CallSpan {
  start: number;
  end: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * The scripted LLM server in its own process (bench/llm-provider-process.ts), as a real provider is
 * remote: its work never runs on MAOS's event loop between steps.
 */
async function startProviderProcess(
  frames: number,
): Promise<{ openaiBaseURL: string; close(): Promise<void> }> {
  const script = fileURLToPath(new URL('./llm-provider-process.ts', import.meta.url));
  const provider = await startJsonLineProcess(script, [String(frames)], 'the scripted LLM server');
  const { openaiBaseURL } = provider.ready as { openaiBaseURL: string };
  return { openaiBaseURL, close: provider.stop };
}

/** prepareMaos takes `options.frames` (bench/orchestrator-ab.ts checks the other checkout's). */
export const STREAMED_ANSWERS = true;

/**
 * MAOS. `llm`: LLM agents through the AI SDK against the scripted server; overhead = wall − provider
 * time on the critical path. `noop`: steps that do nothing (as the peers run), overhead = wall.
 * `frames`: each answer streamed as that many network chunks (bench/llm-provider-process.ts).
 */
export async function prepareMaos(
  dir: string,
  mode: 'llm' | 'noop',
  options: { frames?: number } = {},
): Promise<Contender> {
  const handle = createDatabase({ dataDir: dir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
  await migrateToLatest(handle.db);
  const logger = createLogger({ level: 'silent' });
  const calls: CallSpan[] = [];
  // Each agent run (the runtime's run, provider call included), for the chain's breakdown below.
  const runs: CallSpan[] = [];
  const timed = (runtime: AgentRuntime): AgentRuntime => ({
    ...runtime,
    async run(task, ctx) {
      const start = performance.now();
      try {
        return await runtime.run(task, ctx);
      } finally {
        runs.push({ start, end: performance.now() });
      }
    },
  });
  const runtimes = createRuntimeRegistry();
  let server: { close(): Promise<void> } | null = null;
  if (mode === 'llm') {
    const llmServer = await startProviderProcess(options.frames ?? 1);
    server = llmServer;
    const stack = createLlmStack({
      config: {
        providers: providersConfigSchema.parse({
          local: {
            type: 'openai-compatible',
            baseURL: llmServer.openaiBaseURL,
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
    runtimes.registerLlm(timed(stack.runtime));
  } else {
    runtimes.registerLlm(timed({ kind: 'noop', run: async () => ({ output: 'done' }) }));
  }
  // The bench runs one session at a time: the engine's "session finished" hook ends a run.
  let onFinished: ((status: SessionStatus) => void) | null = null;
  const engine = createEngine({
    config: {
      workers: { concurrency: 32, pollIntervalMs: 1000 },
      tasks: { leaseSeconds: 60, maxAttempts: 1 },
      runners: {},
    },
    db: handle.db,
    // As `maos serve` runs SQLite with `store.synchronous: full` (src/app.ts).
    durability: handle.durability,
    deferCommits: true,
    logger,
    runtimes,
    observer: { sessionFinished: (status) => onFinished?.(status) },
  });
  engine.start();

  async function runSession(strategy: 'sequential' | 'pipeline', agents: AgentSpec[]) {
    calls.length = 0;
    runs.length = 0;
    const before = engine.queue.stats();
    const started = performance.now();
    const finished = new Promise<SessionStatus>((resolve) => {
      onFinished = resolve;
    });
    const { session } = await engine.service.createSession(ACTOR, { objective: 'bench', strategy, agents });
    const submitted = performance.now();
    await finished;
    // The answer as a client reads it: committed before the hook runs, and the read waits until it
    // is on disk (engine/durable-reads.ts), so each run ends durable.
    const reading = performance.now();
    const detail = await engine.service.getSession(ACTOR, session.id);
    const ended = performance.now();
    const wall = ended - started;
    sessionEnds.submitMs.push(submitted - started);
    sessionEnds.readMs.push(ended - reading);
    if (detail.status !== 'completed') throw new Error(`session ${detail.status}: ${detail.error}`);
    return {
      wall,
      started,
      ended,
      runs: [...runs].sort((a, b) => a.start - b.start),
      calls: [...calls].sort((a, b) => a.start - b.start),
      batches: engine.queue.stats().batches - before.batches,
      walFlushes: engine.queue.stats().walFlushes - before.walFlushes,
    };
  }

  /** The chain's breakdown of one session (see chainParts). */
  function recordChainParts(session: Awaited<ReturnType<typeof runSession>>): void {
    const { runs: steps, calls: providerCalls } = session;
    const first = steps[0];
    const last = steps.at(-1);
    if (!first || !last) return;
    const perStep = (part: (index: number) => number | undefined) =>
      median(steps.map((_, index) => part(index)).filter((value): value is number => value !== undefined));
    chainParts.handOff.push(
      perStep((i) => (i === 0 ? undefined : (steps[i]!.start - steps[i - 1]!.end) * 1000)),
    );
    if (providerCalls.length === steps.length) {
      chainParts.toCall.push(perStep((i) => (providerCalls[i]!.start - steps[i]!.start) * 1000));
      chainParts.afterCall.push(perStep((i) => (steps[i]!.end - providerCalls[i]!.end) * 1000));
    }
    chainParts.firstRunMs.push(first.start - session.started);
    chainParts.lastRunToReadMs.push(session.ended - last.end);
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

  // The two ends of a session every step shares: the submit's answer (stored on disk; its first
  // tasks start before it) and the final read (which waits for the last commit's flush).
  const sessionEnds = { submitMs: [] as number[], readMs: [] as number[] };
  const commits = { seq: [] as number[], fan: [] as number[] };
  // Where the chain's time outside the provider goes, per run: medians over its steps (µs) and the
  // two session ends (ms).
  const chainParts = {
    handOff: [] as number[],
    toCall: [] as number[],
    afterCall: [] as number[],
    firstRunMs: [] as number[],
    lastRunToReadMs: [] as number[],
  };
  const flushes = { seq: [] as number[], fan: [] as number[] };
  return {
    name:
      mode === 'llm' ? 'MAOS (LLM agents, AI SDK, scripted server)' : 'MAOS engine alone (steps do nothing)',
    async seq() {
      const sequential = await runSession('sequential', chain);
      const providerMs = sequential.calls.reduce((sum, call) => sum + (call.end - call.start), 0);
      recordChainParts(sequential);
      commits.seq.push(sequential.batches / STEPS);
      flushes.seq.push(sequential.walFlushes / STEPS);
      return ((sequential.wall - providerMs) * 1000) / STEPS;
    },
    async fan() {
      const fanOut = await runSession('pipeline', fan);
      // Critical path inside providers: the longest of the parallel calls, then the join's call.
      const branches = fanOut.calls.slice(0, STEPS);
      const joinCall = fanOut.calls.at(-1);
      const critical =
        branches.length === 0
          ? 0
          : Math.max(...branches.map((call) => call.end - call.start)) +
            (joinCall ? joinCall.end - joinCall.start : 0);
      commits.fan.push(fanOut.batches / (STEPS + 1));
      flushes.fan.push(fanOut.walFlushes / (STEPS + 1));
      return ((fanOut.wall - critical) * 1000) / (STEPS + 1);
    },
    async describe() {
      const us = (values: number[]) => Math.round(median(values)).toLocaleString('en-US');
      const chainSteps =
        `chain step outside the provider, median µs: finish → next agent's run ${us(chainParts.handOff)}` +
        (mode === 'llm'
          ? `, run → provider call ${us(chainParts.toCall)}, provider answer → run end ${us(chainParts.afterCall)}`
          : '') +
        `; per session: submit → first run ${median(chainParts.firstRunMs).toFixed(2)} ms, last run → answer read ` +
        `${median(chainParts.lastRunToReadMs).toFixed(2)} ms`;
      return (
        `${chainSteps}\n    ` +
        `SQLite WAL, store.synchronous full (each commit flushed off the event loop); write transactions per step ${median(commits.seq).toFixed(2)} (chain), ` +
        `${median(commits.fan).toFixed(2)} (fan-out); background WAL flushes per step ` +
        `${median(flushes.seq).toFixed(2)} / ${median(flushes.fan).toFixed(2)} (engine progress, off the critical path); ` +
        `per session, submit answered after ${median(sessionEnds.submitMs).toFixed(2)} ms, final read ` +
        `${median(sessionEnds.readMs).toFixed(2)} ms`
      );
    },
    async close() {
      await engine.stop({ graceMs: 1000 });
      await handle.close();
      await server?.close();
    },
  };
}

/** Runs `run` and also returns the CPU µs per step this thread spent meanwhile. */
export async function withThreadCpu(
  run: () => Promise<number>,
  steps: number,
): Promise<{ value: number; cpuUs: number }> {
  const before = process.threadCpuUsage();
  const value = await run();
  const used = process.threadCpuUsage(before);
  // A shape the contender does not run (NaN) has no CPU figure either.
  return { value, cpuUs: Number.isNaN(value) ? Number.NaN : (used.user + used.system) / steps };
}
