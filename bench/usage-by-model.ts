// GET /v1/usage?groupBy=model at scale: how long the report (engine/usage-report.ts) takes over a
// range of many tasks with their per-model spend (`tasks.model_usage`), on SQLite and PostgreSQL;
// then again with a few of those values damaged (not JSON, not an array), which the report reads
// around (the statement fails on them, the range's values are read in JavaScript, and it is run
// again without them).
//   node bench/usage-by-model.ts [tasks=200000] [runs=5] [--sqlite-only] [--against=<module>]
// `--against`: another version of the report (a copy of engine/usage-report.ts from another
// commit, put beside it so its imports resolve), timed over the clean range in turn with this one.
// PostgreSQL: DATABASE_URL (an admin URL) when set, else an embedded PostgreSQL (fsync off).
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Kysely } from 'kysely';
import { readUsageReport } from '../src/engine/usage-report.ts';
import { newSessionRow, newTaskRow } from '../src/store/rows.ts';
import type { Database } from '../src/store/schema.ts';
import { onBothStores } from './both-stores.ts';

const numbers = process.argv.slice(2).filter((arg) => /^\d+$/.test(arg));
const TASKS = Number(numbers[0] ?? 200_000);
const RUNS = Number(numbers[1] ?? 5);
const AGAINST = process.argv.find((arg) => arg.startsWith('--against='))?.slice('--against='.length);
const TASKS_PER_SESSION = 5;
const DAY = 86_400_000;
const FROM = Date.parse('2026-01-01T00:00:00Z');
const SPAN_DAYS = 300;
const TENANT = 'acme';
const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-sonnet'],
  ['anthropic', 'claude-haiku'],
] as const;
const DAMAGED = ['{"provider":"openai","model":"gpt-4o"', 'not json', '{"provider":"openai"}'];

type Report = typeof readUsageReport;

async function seed(db: Kysely<Database>): Promise<string[]> {
  await db.insertInto('tenants').values({ id: TENANT, name: TENANT, created_at: 0 }).execute();
  const sessions = Math.ceil(TASKS / TASKS_PER_SESSION);
  const taskIds: string[] = [];
  let batchSessions: ReturnType<typeof newSessionRow>[] = [];
  let batchTasks: ReturnType<typeof newTaskRow>[] = [];
  const flush = async () => {
    if (batchSessions.length > 0) await db.insertInto('sessions').values(batchSessions).execute();
    for (let at = 0; at < batchTasks.length; at += 500) {
      await db
        .insertInto('tasks')
        .values(batchTasks.slice(at, at + 500))
        .execute();
    }
    batchSessions = [];
    batchTasks = [];
  };
  for (let s = 0; s < sessions; s++) {
    const sessionId = randomUUID();
    const createdAt = FROM + Math.floor((s / sessions) * SPAN_DAYS * DAY);
    const usage = { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cost_usd: 0 };
    for (let k = 0; k < TASKS_PER_SESSION; k++) {
      const id = randomUUID();
      taskIds.push(id);
      const runner = k === TASKS_PER_SESSION - 1 && s % 3 === 0;
      const entries = runner
        ? null
        : Array.from({ length: 1 + ((s + k) % 2) }, (_, e) => {
            const [provider, model] = MODELS[(s + k + e) % MODELS.length]!;
            return {
              provider,
              model,
              inputTokens: 100 + ((s * 7 + k) % 900),
              outputTokens: 50 + ((s * 3 + k) % 400),
              cacheReadTokens: (s + k) % 50,
              costUsd: ((s + k) % 5000) / 1e6,
            };
          });
      const row = newTaskRow(
        { tenantId: TENANT, sessionId, maxAttempts: 3, now: createdAt },
        {
          id,
          kind: 'agent',
          name: `t${k}`,
          role: k % 2 === 0 ? 'engineer' : 'qa',
          agent_id: null,
          instructions: 'x',
          runner: runner ? 'ok' : null,
          phase: 0,
          position: k,
          status: 'succeeded',
        },
      );
      const spent = { input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cost_usd: 0 };
      for (const entry of entries ?? []) {
        spent.input_tokens += entry.inputTokens;
        spent.output_tokens += entry.outputTokens;
        spent.cache_read_tokens += entry.cacheReadTokens;
        spent.cost_usd += entry.costUsd;
      }
      usage.input_tokens += spent.input_tokens;
      usage.output_tokens += spent.output_tokens;
      usage.cache_read_tokens += spent.cache_read_tokens;
      usage.cost_usd += spent.cost_usd;
      batchTasks.push({ ...row, ...spent, model_usage: entries ? JSON.stringify(entries) : null });
    }
    batchSessions.push({
      ...newSessionRow(
        {
          id: sessionId,
          tenant_id: TENANT,
          objective: 'bench',
          strategy: 'parallel',
          status: 'succeeded',
          metadata: '{}',
          started_at: createdAt,
        },
        createdAt,
      ),
      ...usage,
    });
    if (batchSessions.length >= 1000) await flush();
  }
  await flush();
  return taskIds;
}

interface Timing {
  median: number;
  all: number[];
  groups: number;
}

/** Times each of `reports` RUNS times over the whole range, in turn (after one warm-up run each). */
async function time(db: Kysely<Database>, reports: Report[]): Promise<Timing[]> {
  const query = { tenantId: TENANT, fromMs: FROM, toMs: FROM + SPAN_DAYS * DAY, groupBy: 'model' as const };
  const timings: Timing[] = [];
  for (const report of reports) {
    const groups = (await report(db, query)).groups?.length ?? 0;
    timings.push({ median: 0, all: [], groups });
  }
  for (let run = 0; run < RUNS; run++) {
    for (const [index, report] of reports.entries()) {
      const started = performance.now();
      await report(db, query);
      timings[index]!.all.push(performance.now() - started);
    }
  }
  for (const timing of timings) {
    const sorted = [...timing.all].sort((a, b) => a - b);
    timing.median = sorted[Math.floor(sorted.length / 2)]!;
  }
  return timings;
}

const format = (ms: number) => `${ms.toFixed(0)} ms`;

const against: Report | undefined = AGAINST
  ? ((await import(pathToFileURL(AGAINST).href)) as { readUsageReport: Report }).readUsageReport
  : undefined;
const line = (timing: Timing) =>
  `median ${format(timing.median)} (${timing.all.map(format).join(', ')}), ${timing.groups} groups`;

console.log(
  `usage by model over ${TASKS} tasks, ${RUNS} runs each; load average ${loadavg()[0]!.toFixed(2)}`,
);
await onBothStores('usage-by-model', async (store, handle) => {
  const seeding = performance.now();
  const taskIds = await seed(handle.db);
  console.log(`${store}: seeded in ${format(performance.now() - seeding)}`);
  const [clean, other] = await time(handle.db, against ? [readUsageReport, against] : [readUsageReport]);
  console.log(`${store}: clean range: ${line(clean!)}`);
  if (other) console.log(`${store}: clean range, --against: ${line(other)}`);
  for (const [position, text] of DAMAGED.entries()) {
    const id = taskIds[Math.floor(((position + 1) * taskIds.length) / (DAMAGED.length + 1))]!;
    await handle.db.updateTable('tasks').set({ model_usage: text }).where('id', '=', id).execute();
  }
  try {
    const [damaged] = await time(handle.db, [readUsageReport]);
    console.log(`${store}: ${DAMAGED.length} values damaged: ${line(damaged!)}`);
  } catch (error) {
    console.log(`${store}: ${DAMAGED.length} damaged: the report failed: ${(error as Error).message}`);
  }
});
