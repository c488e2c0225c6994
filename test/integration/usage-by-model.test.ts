// Usage per model: a finish writes the spend its run held per provider and model (once, fenced
// like the task's UPDATE, added to across attempts) on SQLite and PostgreSQL, and GET /v1/usage
// ?groupBy=model splits the totals by model with the rest under `unattributed`. Over HTTP with
// two scripted LLM servers: a primary cut off mid-stream and its fallback split one task's spend.
// PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import type { Usage } from '../../src/domain/types.ts';
import { readUsageReport, type UsageGroup } from '../../src/engine/usage-report.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { type ModelUsage, readSessionModelUsage } from '../../src/store/task-model-usage.ts';
import { type CompletedRun, completeClaimedTasks } from '../../src/store/task-store.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { type RecordedLlmRequest, type ScriptedReply, startLlmServer } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';
import { twoModelConfig } from '../fixtures/two-model-config.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const FROM = Date.parse('2026-10-01T00:00:00Z');
const DAY = 86_400_000;
const OWNER = 'replica-a';

function spend(provider: string, model: string, inputTokens: number, costUsd: number): ModelUsage {
  return { provider, model, inputTokens, outputTokens: inputTokens * 2, cacheReadTokens: 0, costUsd };
}

function sumOf(...usages: Usage[]): Usage {
  const total: Usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };
  for (const usage of usages) {
    total.inputTokens += usage.inputTokens;
    total.outputTokens += usage.outputTokens;
    total.cacheReadTokens += usage.cacheReadTokens;
    total.costUsd = Math.round((total.costUsd + usage.costUsd) * 1e6) / 1e6;
  }
  return total;
}

/** A session with running tasks held by OWNER at attempt 1, and a runner task no model served. */
async function seedRunningSession(
  db: Kysely<Database>,
  tenant: string,
  createdAt: number,
  names: string[],
): Promise<{ sessionId: string; taskIds: string[] }> {
  const sessionId = randomUUID();
  await db
    .insertInto('sessions')
    .values(
      newSessionRow(
        {
          id: sessionId,
          tenant_id: tenant,
          objective: 'by model',
          strategy: 'parallel',
          status: 'running',
          metadata: '{}',
          started_at: createdAt,
        },
        createdAt,
      ),
    )
    .execute();
  const owner = { tenantId: tenant, sessionId, maxAttempts: 3, now: createdAt };
  const taskIds: string[] = [];
  for (const [position, name] of [...names, 'build'].entries()) {
    const id = randomUUID();
    const row = newTaskRow(owner, {
      id,
      kind: 'agent',
      name,
      role: 'engineer',
      agent_id: null,
      instructions: 'x',
      runner: name === 'build' ? 'ok' : null,
      phase: 0,
      position,
      status: name === 'build' ? 'succeeded' : 'running',
    });
    await db
      .insertInto('tasks')
      .values(
        name === 'build'
          ? row
          : { ...row, attempts: 1, lease_owner: OWNER, lease_expires_at: createdAt + DAY },
      )
      .execute();
    if (name !== 'build') taskIds.push(id);
  }
  return { sessionId, taskIds };
}

function run(taskId: string, attempt: number, models: ModelUsage[], ok = true): CompletedRun {
  return {
    taskId,
    attempt,
    ok,
    status: ok ? 'succeeded' : 'failed',
    result: ok ? 'done' : null,
    error: ok ? null : 'failed',
    usage: sumOf(...models),
    modelUsage: models,
  };
}

/** Charges the session its tasks' usage plus `extra` (spend no model was recorded for). */
async function chargeSession(db: Kysely<Database>, sessionId: string, extra: Usage): Promise<Usage> {
  const tasks = await db
    .selectFrom('tasks')
    .select(['input_tokens', 'output_tokens', 'cache_read_tokens', 'cost_usd'])
    .where('session_id', '=', sessionId)
    .execute();
  const total = sumOf(
    extra,
    ...tasks.map((row) => ({
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      cacheReadTokens: Number(row.cache_read_tokens),
      costUsd: Number(row.cost_usd),
    })),
  );
  await db
    .updateTable('sessions')
    .set({
      input_tokens: total.inputTokens,
      output_tokens: total.outputTokens,
      cache_read_tokens: total.cacheReadTokens,
      cost_usd: total.costUsd,
    })
    .where('id', '=', sessionId)
    .execute();
  return total;
}

function figuresOf(group: UsageGroup | undefined): unknown[] {
  return group ? [group.key, group.sessions, group.tasks, group.inputTokens, group.costUsd] : [];
}

for (const backend of STORE_BACKENDS) {
  describe(`spend per model at the finish and in the report (${backend.name})`, { timeout: 120_000 }, () => {
    let db: Kysely<Database>;
    let dispose: () => Promise<void>;
    const tenant = 'acme';

    before(async () => {
      const opened = await backend.open(1);
      db = opened.handles[0]!.db;
      dispose = opened.dispose;
      await db.insertInto('tenants').values({ id: tenant, name: tenant, created_at: 0 }).execute();
    });
    after(() => dispose());

    test('the finish writes what each run held per model, once; a later attempt adds to it', async () => {
      const { sessionId, taskIds } = await seedRunningSession(db, tenant, FROM + 10, ['writer', 'reader']);
      const [writer, reader] = taskIds as [string, string];
      // The writer's primary was cut off mid-stream, the fallback answered: two models, one task.
      const writerModels = [spend('local', 'm', 40, 0.04), spend('backup', 'b', 200, 0.5)];
      const readerModels = [spend('local', 'm', 10, 0.01)];
      // Two runs in one batch: PostgreSQL's multi-row UPDATE, SQLite's UPDATE per run.
      const runs = [run(writer, 1, writerModels), run(reader, 1, readerModels, false)];
      const updated = await db
        .transaction()
        .execute((trx) => completeClaimedTasks(trx, OWNER, runs, FROM + 20));
      assert.deepEqual([...updated].sort(), [writer, reader].sort());
      // A replayed finish is fenced out: nothing added twice.
      const replay = await db
        .transaction()
        .execute((trx) => completeClaimedTasks(trx, OWNER, [runs[0]!], FROM + 30));
      assert.equal(replay.size, 0);
      // The reader's second attempt, on the same model: its row is added to.
      await db
        .updateTable('tasks')
        .set({ status: 'running', attempts: 2, lease_owner: OWNER, lease_expires_at: FROM + DAY })
        .where('id', '=', reader)
        .execute();
      const secondModels = [spend('local', 'm', 5, 0.005)];
      await db
        .transaction()
        .execute((trx) => completeClaimedTasks(trx, OWNER, [run(reader, 2, secondModels)], FROM + 40));

      const byTask = await readSessionModelUsage(db, tenant, sessionId);
      assert.deepEqual(
        byTask.get(writer)?.map((u) => [u.provider, u.model, u.inputTokens, u.outputTokens, u.costUsd]),
        [
          ['backup', 'b', 200, 400, 0.5],
          ['local', 'm', 40, 80, 0.04],
        ],
      );
      assert.deepEqual(
        byTask.get(reader)?.map((u) => [u.provider, u.model, u.inputTokens, u.costUsd]),
        [['local', 'm', 15, 0.015]],
      );
      assert.equal(await readSessionModelUsage(db, 'other', sessionId).then((m) => m.size), 0);
    });

    test('groupBy=model: per provider/model, the rest unattributed, groups add up to the totals', async () => {
      // A second session: its task is charged spend that the lease reaper settled without a model.
      const first = await db
        .selectFrom('sessions')
        .select('id')
        .where('tenant_id', '=', tenant)
        .executeTakeFirstOrThrow();
      const firstTotal = await chargeSession(db, first.id, {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        costUsd: 0,
      });
      const { sessionId: second, taskIds } = await seedRunningSession(db, tenant, FROM + DAY, ['solo']);
      const soloModels = [spend('local', 'm', 100, 0.1)];
      await db
        .transaction()
        .execute((trx) => completeClaimedTasks(trx, OWNER, [run(taskIds[0]!, 1, soloModels)], FROM + DAY));
      const reaped: Usage = { inputTokens: 7, outputTokens: 3, cacheReadTokens: 0, costUsd: 0.3 };
      const secondTotal = await chargeSession(db, second, reaped);

      const report = await readUsageReport(db, {
        tenantId: tenant,
        fromMs: FROM,
        toMs: FROM + 2 * DAY,
        groupBy: 'model',
      });
      const totals = sumOf(firstTotal, secondTotal);
      assert.equal(report.totals.costUsd, totals.costUsd);
      assert.equal(report.totals.tasks, 5);
      const groups = report.groups ?? [];
      assert.deepEqual(
        groups.map((group) => group.key),
        ['backup/b', 'local/m', 'unattributed'],
      );
      const [backup, local, rest] = groups;
      assert.deepEqual(figuresOf(backup), ['backup/b', 1, 1, 200, 0.5]);
      assert.deepEqual([backup?.provider, backup?.model], ['backup', 'b']);
      // writer and reader (first session), solo (second): one task in each session counted once.
      assert.deepEqual(figuresOf(local), ['local/m', 2, 3, 40 + 15 + 100, 0.155]);
      // The two runner tasks no model served, and the reaped spend of the second session.
      assert.deepEqual(figuresOf(rest), ['unattributed', 2, 2, 7, 0.3]);
      assert.equal(rest?.provider, undefined);
      for (const field of ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const) {
        const sum = Math.round(groups.reduce((acc, group) => acc + group[field], 0) * 1e6) / 1e6;
        assert.equal(sum, report.totals[field], field);
      }
      // Another tenant sees none of it.
      const other = await readUsageReport(db, {
        tenantId: 'other',
        fromMs: FROM,
        toMs: FROM + 2 * DAY,
        groupBy: 'model',
      });
      assert.deepEqual(other.groups, []);
    });
  });
}

/** The agent task a request is for, from "Your task (<name>)" in its prompt. */
function taskNameOf(request: RecordedLlmRequest): string {
  return /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
}

interface TaskView {
  name: string;
  kind: string;
  runner: string | null;
  usage: Usage;
  models?: Array<Usage & { provider: string; model: string }>;
}

interface ReportView {
  totals: Usage & { sessions: number; tasks: number };
  groups: Array<Usage & { key: string; sessions: number; tasks: number; provider?: string; model?: string }>;
}

describe('usage by model over HTTP, with a fallback provider', { timeout: 60_000 }, () => {
  test('a primary cut off mid-stream and its fallback split the task’s spend between their models', async (t) => {
    const primary = await startLlmServer({ apiKey: 'k' });
    t.after(() => primary.close());
    const backup = await startLlmServer({ apiKey: 'k' });
    t.after(() => backup.close());
    primary.setHandler((request): ScriptedReply => {
      const kind = llmRequestKind(request);
      if (kind === 'plan') {
        return {
          object: {
            rationale: 'Write it, then review it.',
            phases: [
              {
                name: 'work',
                tasks: [
                  plannedTask('writer', 'documenter'),
                  plannedTask('reviewer', 'reviewer', { dependsOn: ['writer'] }),
                ],
              },
            ],
          },
          usage: { inputTokens: 500, outputTokens: 50 },
        };
      }
      if (kind === 'synthesis') return { text: 'All done.', usage: { inputTokens: 300, outputTokens: 30 } };
      if (taskNameOf(request) === 'writer') {
        // Streams a few frames, then the connection drops: charged what it streamed.
        return { text: 'draft '.repeat(200), chunkSize: 40, dropAfterFrames: 4 };
      }
      return { text: 'looks good', usage: { inputTokens: 100, outputTokens: 10 } };
    });
    backup.setHandler(() => ({ text: 'the full text', usage: { inputTokens: 200, outputTokens: 20 } }));
    const server = await startTestServer({
      config: twoModelConfig(primary, backup, { documenter: { provider: 'local', fallback: ['backup'] } }),
    });
    t.after(() => server.close());
    const from = new Date(Date.now() - 60_000).toISOString();
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Write and review a note' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{
      status: string;
      error: string | null;
      usage: Usage;
      tasks: TaskView[];
    }>(server.url, created.body.id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.ok(backup.requests.length > 0, 'the fallback answered');
    const writer = done.tasks.find((task) => task.name === 'writer');
    assert.ok(writer && writer.usage.costUsd > 0);
    // The session detail shows the writer's spend per model: the fallback's answer as reported,
    // the primary's cut-off call at its estimate, together the task's usage.
    assert.deepEqual(
      writer.models?.map((usage) => [usage.provider, usage.model]),
      [
        ['backup', 'b'],
        ['local', 'm'],
      ],
    );
    const [writerOnBackup, writerOnLocal] = writer.models ?? [];
    assert.deepEqual([writerOnBackup?.inputTokens, writerOnBackup?.outputTokens], [200, 20]);
    assert.ok((writerOnLocal?.outputTokens ?? 0) > 0, 'the cut-off call is charged what it streamed');
    for (const field of ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const) {
      const sum = Math.round(((writerOnBackup?.[field] ?? 0) + (writerOnLocal?.[field] ?? 0)) * 1e6) / 1e6;
      assert.equal(sum, writer.usage[field], field);
    }
    for (const task of done.tasks.filter((task) => task.name !== 'writer')) {
      assert.deepEqual(
        task.models?.map((usage) => `${usage.provider}/${usage.model}`),
        ['local/m'],
        task.name,
      );
    }

    const to = new Date(Date.now() + 60_000).toISOString();
    const answer = await requestJson<ReportView>(
      `${server.url}/v1/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&groupBy=model`,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const { totals, groups } = answer.body;
    assert.deepEqual(
      groups.map((group) => group.key),
      ['backup/b', 'local/m'],
      'every task was served by a model: nothing unattributed',
    );
    const [onBackup, onLocal] = groups as [ReportView['groups'][0], ReportView['groups'][0]];
    // The fallback served the writer only, at its own price: 200 × $0.003 + 20 × $0.03.
    assert.deepEqual(
      [onBackup.provider, onBackup.model, onBackup.tasks, onBackup.inputTokens, onBackup.outputTokens],
      ['backup', 'b', 1, 200, 20],
    );
    assert.equal(onBackup.costUsd, 1.2);
    // The primary served the plan, the writer's cut-off call, the reviewer and the synthesis.
    assert.equal(onLocal.tasks, 4);
    assert.equal(onLocal.inputTokens > 500 + 100 + 300, true, 'the cut-off call is charged its estimate');
    // The writer's spend is its two models' together, and the groups add up to the totals.
    assert.equal(Math.round((writer.usage.costUsd - onBackup.costUsd) * 1e6) > 0, true);
    for (const field of ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const) {
      const sum = Math.round((onBackup[field] + onLocal[field]) * 1e6) / 1e6;
      assert.equal(sum, totals[field], field);
    }
    assert.equal(totals.costUsd, done.usage.costUsd);
  });

  test('an unknown groupBy is a 400 problem with code VALIDATION_FAILED, and OpenAPI lists model', async (t) => {
    const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    t.after(() => server.close());
    for (const groupBy of ['provider', 'MODEL', '']) {
      const answer = await requestJson<{ code: string }>(
        `${server.url}/v1/usage?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&groupBy=${groupBy}`,
      );
      assert.equal(answer.status, 400, groupBy);
      assert.equal(answer.headers.get('content-type')?.startsWith('application/problem+json'), true, groupBy);
      assert.equal(answer.body.code, 'VALIDATION_FAILED', groupBy);
    }
    const empty = await requestJson<ReportView>(
      `${server.url}/v1/usage?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&groupBy=model`,
    );
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.groups, []);
    const spec = await requestJson<{
      paths: Record<string, { get: { parameters: Array<{ name: string; schema: { enum?: string[] } }> } }>;
    }>(`${server.url}/openapi.json`);
    const groupBy = spec.body.paths['/v1/usage']?.get.parameters.find((p) => p.name === 'groupBy');
    assert.deepEqual(groupBy?.schema.enum, ['day', 'role', 'model']);
  });
});
