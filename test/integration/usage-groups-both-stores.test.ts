// GET /v1/usage per role and per model, summed in SQL, gives the same report on SQLite and
// PostgreSQL for the same rows, and the one a plain reading of those rows gives: sessions of two
// tenants in and out of the range, tasks of several roles, served by one or two models (a model
// repeated within a task), runner tasks no model served, and sessions charged beyond their models.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import { readUsageReport, type UsageReport } from '../../src/engine/usage-report.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const DAY = 86_400_000;
const FROM = Date.parse('2026-09-01T00:00:00Z');
const TO = FROM + 30 * DAY;
const ROLES = ['engineer', 'qa', 'researcher', 'writer'];
const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-sonnet'],
] as const;

interface Entry {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}
interface SeedTask {
  id: string;
  role: string;
  entries: Entry[] | null;
  usage: { i: number; o: number; c: number; micros: number };
}
interface SeedSession {
  id: string;
  tenant: string;
  createdAt: number;
  tasks: SeedTask[];
  usage: { i: number; o: number; c: number; micros: number };
}

/** The same rows every run: a small linear congruential generator, not Math.random. */
function createRandom(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    // The high bits: the low bits of such a generator repeat with a short period.
    return Math.floor((state / 2_147_483_648) * n);
  };
}

function seedData(): SeedSession[] {
  const random = createRandom(42);
  const sessions: SeedSession[] = [];
  for (let s = 0; s < 80; s++) {
    const tasks: SeedTask[] = [];
    for (let k = random(7); k > 0; k--) {
      const runner = random(5) === 0;
      const entries: Entry[] | null = runner
        ? null
        : Array.from({ length: 1 + random(3) }, () => {
            const [provider, model] = MODELS[random(MODELS.length)]!;
            return {
              provider,
              model,
              inputTokens: random(1000),
              outputTokens: random(500),
              cacheReadTokens: random(100),
              costUsd: random(5000) / 1e6,
            };
          });
      const usage = { i: 0, o: 0, c: 0, micros: 0 };
      for (const entry of entries ?? []) {
        usage.i += entry.inputTokens;
        usage.o += entry.outputTokens;
        usage.c += entry.cacheReadTokens;
        usage.micros += Math.round(entry.costUsd * 1e6);
      }
      tasks.push({ id: randomUUID(), role: ROLES[random(ROLES.length)]!, entries, usage });
    }
    const usage = { i: 0, o: 0, c: 0, micros: 0 };
    for (const task of tasks) {
      usage.i += task.usage.i;
      usage.o += task.usage.o;
      usage.c += task.usage.c;
      usage.micros += task.usage.micros;
    }
    // Some sessions were charged beyond what their models account for (spend from before models).
    if (random(6) === 0) {
      usage.i += 7;
      usage.micros += 30;
    }
    sessions.push({
      id: randomUUID(),
      tenant: random(4) === 0 ? 'other' : 'acme',
      createdAt: FROM - 5 * DAY + random(40) * DAY + random(1000),
      tasks,
      usage,
    });
  }
  return sessions;
}

async function insertData(db: Kysely<Database>, sessions: readonly SeedSession[]): Promise<void> {
  await db
    .insertInto('tenants')
    .values([
      { id: 'acme', name: 'acme', created_at: 0 },
      { id: 'other', name: 'other', created_at: 0 },
    ])
    .execute();
  for (const session of sessions) {
    await db
      .insertInto('sessions')
      .values({
        ...newSessionRow(
          {
            id: session.id,
            tenant_id: session.tenant,
            objective: 'usage',
            strategy: 'parallel',
            status: 'completed',
            metadata: '{}',
            started_at: session.createdAt,
          },
          session.createdAt,
        ),
        input_tokens: session.usage.i,
        output_tokens: session.usage.o,
        cache_read_tokens: session.usage.c,
        cost_usd: session.usage.micros / 1e6,
      })
      .execute();
    for (const [position, task] of session.tasks.entries()) {
      await db
        .insertInto('tasks')
        .values({
          ...newTaskRow(
            { tenantId: session.tenant, sessionId: session.id, maxAttempts: 1, now: session.createdAt },
            {
              id: task.id,
              kind: 'agent',
              name: `t${position}`,
              role: task.role,
              agent_id: null,
              instructions: 'x',
              runner: task.entries ? null : 'ok',
              phase: 0,
              position,
              status: 'succeeded',
            },
          ),
          input_tokens: task.usage.i,
          output_tokens: task.usage.o,
          cache_read_tokens: task.usage.c,
          cost_usd: task.usage.micros / 1e6,
          model_usage: task.entries ? JSON.stringify(task.entries) : null,
        })
        .execute();
    }
  }
}

interface Figures {
  sessions: Set<string>;
  tasks: Set<string>;
  i: number;
  o: number;
  c: number;
  micros: number;
}
const emptyFigures = (): Figures => ({ sessions: new Set(), tasks: new Set(), i: 0, o: 0, c: 0, micros: 0 });
const asReported = (f: Figures) => ({
  sessions: f.sessions.size,
  tasks: f.tasks.size,
  inputTokens: f.i,
  outputTokens: f.o,
  cacheReadTokens: f.c,
  costUsd: f.micros / 1e6,
});

/** What the report should say, read off the seeded rows in plain code. */
function expectedReports(sessions: readonly SeedSession[]): { role: UsageReport; model: UsageReport } {
  const inRange = sessions.filter((s) => s.tenant === 'acme' && s.createdAt >= FROM && s.createdAt < TO);
  const totals = emptyFigures();
  const roles = new Map<string, Figures>();
  const models = new Map<string, Figures & { provider: string; model: string }>();
  const rest = emptyFigures();
  for (const session of inRange) {
    totals.sessions.add(session.id);
    totals.i += session.usage.i;
    totals.o += session.usage.o;
    totals.c += session.usage.c;
    totals.micros += session.usage.micros;
    const served = { i: 0, o: 0, c: 0, micros: 0 };
    for (const task of session.tasks) {
      totals.tasks.add(task.id);
      const role = roles.get(task.role) ?? emptyFigures();
      roles.set(task.role, role);
      role.sessions.add(session.id);
      role.tasks.add(task.id);
      role.i += task.usage.i;
      role.o += task.usage.o;
      role.c += task.usage.c;
      role.micros += task.usage.micros;
      if (!task.entries) {
        rest.sessions.add(session.id);
        rest.tasks.add(task.id);
      }
      for (const entry of task.entries ?? []) {
        const key = `${entry.provider}/${entry.model}`;
        const group = models.get(key) ?? { ...emptyFigures(), provider: entry.provider, model: entry.model };
        models.set(key, group);
        const micros = Math.round(entry.costUsd * 1e6);
        group.sessions.add(session.id);
        group.tasks.add(task.id);
        group.i += entry.inputTokens;
        group.o += entry.outputTokens;
        group.c += entry.cacheReadTokens;
        group.micros += micros;
        served.i += entry.inputTokens;
        served.o += entry.outputTokens;
        served.c += entry.cacheReadTokens;
        served.micros += micros;
      }
    }
    if (session.usage.i > served.i || session.usage.micros > served.micros) rest.sessions.add(session.id);
    rest.i += session.usage.i - served.i;
    rest.o += session.usage.o - served.o;
    rest.c += session.usage.c - served.c;
    rest.micros += session.usage.micros - served.micros;
  }
  const byKey = <T>(entries: [string, T][]) => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const modelGroups = byKey([...models]).map(([key, group]) => ({
    key,
    provider: group.provider,
    model: group.model,
    ...asReported(group),
  }));
  return {
    role: {
      totals: asReported(totals),
      groups: byKey([...roles]).map(([key, group]) => ({ key, ...asReported(group) })),
    },
    model: {
      totals: asReported(totals),
      groups: [...modelGroups, { key: 'unattributed', ...asReported(rest) }],
    },
  };
}

test('usage per role and per model: the same report on SQLite and PostgreSQL, as the rows say', {
  timeout: 120_000,
}, async () => {
  const seeded = seedData();
  const expected = expectedReports(seeded);
  assert.ok((expected.model.groups?.length ?? 0) > 3 && (expected.role.groups?.length ?? 0) === ROLES.length);
  assert.ok(expected.model.groups?.at(-1)?.sessions, 'some sessions have spend no model accounts for');
  for (const backend of STORE_BACKENDS) {
    const { handles, dispose } = await backend.open(1);
    try {
      const db = handles[0]!.db;
      await insertData(db, seeded);
      for (const groupBy of ['role', 'model'] as const) {
        const report = await readUsageReport(db, { tenantId: 'acme', fromMs: FROM, toMs: TO, groupBy });
        assert.deepEqual(report, expected[groupBy], `${backend.name}, groupBy=${groupBy}`);
      }
    } finally {
      await dispose();
    }
  }
});
