// One replica of the cluster benchmark (bench/cluster.ts forks it): an engine with its own pool and
// LISTEN connection in its own process, running no-op tasks or, given the scripted LLM server's URL,
// LLM agents through the real AI SDK provider code (each finish then charges usage: the session's
// totals and the tenant's spend of the day). Talks to the parent over IPC:
// → 'ready' once listening; ← 'start'; ← 'stop'; → stats (CPU time, write batches) before exiting.
import { createLlmStack } from '../src/agents/providers/create-llm-stack.ts';
import { type AgentRuntime, createRuntimeRegistry } from '../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../src/config/llm-schema.ts';
import { createEngine } from '../src/engine/index.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createDatabase } from '../src/store/db.ts';
import { createClusterNotifier } from '../src/store/pg-notifier.ts';

/** What a replica reports when stopped. */
export interface ReplicaStats {
  cpuMs: number;
  batches: number;
  ops: number;
}

const [url, concurrencyArg, poolArg, llmBaseUrl] = process.argv.slice(2);
if (!url || !process.send)
  throw new Error('usage: forked by bench/cluster.ts with <url> <concurrency> <pool> [llmBaseUrl]');
const concurrency = Number(concurrencyArg ?? 64);
const poolSize = Number(poolArg ?? 10);
// Warnings (a failed heartbeat, a lost lease) say why a run stalls; a normal run logs none.
const logger = createLogger({ level: 'warn', destination: process.stderr });
const config = {
  dataDir: '.',
  store: { url, synchronous: 'full' as const, busyTimeoutMs: 5000, poolSize, connectTimeoutMs: 10_000 },
  workers: { concurrency, pollIntervalMs: 1000 },
};
const handle = createDatabase(config);
const notifier = createClusterNotifier(config, handle, logger)!;
const runtimes = createRuntimeRegistry();
runtimes.registerLlm(llmBaseUrl ? llmRuntime(llmBaseUrl) : instantRuntime());
const engine = createEngine({
  config: { workers: config.workers, tasks: { leaseSeconds: 60, maxAttempts: 3 }, runners: {} },
  db: handle.db,
  dialect: handle.dialect,
  notifier,
  logger,
  runtimes,
});
await notifier.start();
let cpuAtStart = process.cpuUsage();
let batchesAtStart = 0;
let opsAtStart = 0;

/** Tasks that return at once and charge nothing. */
function instantRuntime(): AgentRuntime {
  return { kind: 'bench', run: async (task) => ({ output: `ok ${task.name}` }) };
}

/** LLM agents against the scripted server at `baseURL` (10 input and 1 output token per call). */
function llmRuntime(baseURL: string): AgentRuntime {
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
  const stack = createLlmStack({
    config: {
      providers: providersConfigSchema.parse({
        local: { type: 'openai-compatible', baseURL, model: 'bench-model', maxConcurrency: concurrency },
      }),
      // Priced, so each finish charges a cost as well as tokens.
      llm: llmConfigSchema.parse({
        agentMessaging: false,
        prices: { 'bench-model': { inputPerMTok: 3, outputPerMTok: 15 } },
      }),
    },
    db: handle.db,
    logger,
  });
  if (!stack) throw new Error('no LLM stack');
  return stack.runtime;
}

process.on('message', async (message) => {
  if (message === 'start') {
    cpuAtStart = process.cpuUsage();
    ({ batches: batchesAtStart, ops: opsAtStart } = engine.queue.stats());
    engine.start();
  } else if (message === 'stop') {
    const cpu = process.cpuUsage(cpuAtStart);
    const { batches, ops } = engine.queue.stats();
    await engine.stop({ graceMs: 1000 });
    await notifier.close();
    await handle.close();
    const stats: ReplicaStats = {
      cpuMs: (cpu.user + cpu.system) / 1000,
      batches: batches - batchesAtStart,
      ops: ops - opsAtStart,
    };
    process.send!(stats, () => process.exit(0));
  }
});
process.send('ready');
