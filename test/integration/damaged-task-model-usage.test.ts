// A task whose stored spend per model cannot be read (a hand edit of tasks.model_usage gone wrong:
// JSON cut short, text that is no JSON, JSON that is no array) leaves GET /v1/usage?groupBy=model
// answering: the other tasks' models are summed as before, the damaged task's spend is read as no
// model's (the unattributed group, with the task counted there), and a warning names the session
// and the column once. The statement that reads the JSON failed on it (SQLite's json_each,
// PostgreSQL's cast to jsonb), a 500 for every report over a range that held it, while the
// session's document read the same row.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isReadableModelUsage } from '../../src/engine/usage-report.ts';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { requestJson } from '../fixtures/server.ts';

interface Group {
  key: string;
  sessions: number;
  tasks: number;
  inputTokens: number;
  costUsd: number;
}
interface Report {
  totals: Group;
  groups: Group[];
}

const ENTRY = { provider: 'openai', model: 'gpt-4o', inputTokens: 100, outputTokens: 10, cacheReadTokens: 0 };

/** A session of three runner tasks, completed; its task ids by name. */
async function completedSession(server: DamageableServer['server']): Promise<Record<string, string>> {
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'usage by model',
      agents: ['a', 'b', 'c'].map((name) => ({ name, role: 'engineer', task: 't', runner: 'ok' })),
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  for (let polls = 0; ; polls++) {
    const detail = await requestJson<{ status: string; tasks: { id: string; name: string }[] }>(
      `${server.url}/v1/sessions/${created.body.id}`,
    );
    if (detail.body.status === 'completed') {
      return Object.fromEntries(detail.body.tasks.map((task) => [task.name, task.id]));
    }
    assert.ok(polls < 600, 'the session did not complete');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function checkDamagedModelUsage({ server, execute, lines }: DamageableServer, damaged: string) {
  const tasks = await completedSession(server);
  const sessionId = (
    await requestJson<{ items: { id: string }[] }>(`${server.url}/v1/sessions`)
  ).body.items.at(0)!.id;
  // Task a was served by gpt-4o for $0.25, task b by gpt-4o too for $0.5, then its JSON was
  // damaged by hand; c ran no model. The session was charged both.
  const spend = (costUsd: number) => JSON.stringify([{ ...ENTRY, costUsd }]);
  await execute('update tasks set model_usage = $1, input_tokens = 100, cost_usd = 0.25 where id = $2', [
    spend(0.25),
    tasks.a,
  ]);
  await execute('update tasks set model_usage = $1, input_tokens = 100, cost_usd = 0.5 where id = $2', [
    damaged,
    tasks.b,
  ]);
  await execute('update sessions set input_tokens = 200, cost_usd = 0.75 where id = $1', [sessionId]);

  const now = new Date();
  const from = new Date(now.getTime() - 86_400_000).toISOString();
  const to = new Date(now.getTime() + 86_400_000).toISOString();
  for (let read = 0; read < 2; read++) {
    const report = await requestJson<Report>(`${server.url}/v1/usage?from=${from}&to=${to}&groupBy=model`);
    assert.equal(report.status, 200, JSON.stringify(report.body));
    assert.deepEqual(
      report.body.groups.map((group) => [
        group.key,
        group.sessions,
        group.tasks,
        group.inputTokens,
        group.costUsd,
      ]),
      [
        ['openai/gpt-4o', 1, 1, 100, 0.25],
        // The damaged task's spend and the task no model served.
        ['unattributed', 1, 2, 100, 0.5],
      ],
    );
    assert.equal(report.body.totals.tasks, 3);
    assert.equal(report.body.totals.costUsd, 0.75);
  }
  // The session's document reads the same row (its models as none).
  const detail = await requestJson(`${server.url}/v1/sessions/${sessionId}`);
  assert.equal(detail.status, 200);
  // Read twice: told once.
  const warnings = lines
    .filter((line) => line.sessionId === sessionId && line.column === 'tasks.model_usage')
    .map((line) => line['log.level']);
  assert.deepEqual(warnings, ['warn']);
}

for (const store of DAMAGEABLE_STORES) {
  describe(`usage per model with a task's model usage damaged (${store.name})`, { timeout: 60_000 }, () => {
    for (const [name, damaged] of [
      ['JSON cut short', `[${JSON.stringify({ ...ENTRY, costUsd: 0.5 })}`],
      ['no JSON', 'spent 0.5 on gpt-4o'],
      ['JSON that is no array', JSON.stringify({ ...ENTRY, costUsd: 0.5 })],
      // No statement fails on these: SQLite reads an object's members as entries, both stores read
      // an entry that is no object, or names no model, as one of neither provider nor model.
      ['JSON that is no array, of numbers only', JSON.stringify({ inputTokens: 100, costUsd: 0.5 })],
      ['entries that are no objects', '[100, 0.5]'],
      ['an entry naming no model', JSON.stringify([{ ...ENTRY, model: undefined, costUsd: 0.5 }])],
      // PostgreSQL's cast to bigint refuses a count written with a fraction; SQLite reads it as the
      // number it is (the task's spend then stays its model's there).
      ...(store.kind === 'postgres'
        ? ([
            [
              'a token count written 100.0',
              JSON.stringify([{ ...ENTRY, costUsd: 0.5 }]).replace('100', '100.0'),
            ],
          ] as const)
        : []),
    ] as const) {
      describe(name, () => {
        const stack = useDamageableServer(store.kind);
        test('the report answers, the damaged spend unattributed, with a warning once', async () => {
          await checkDamagedModelUsage(stack, damaged);
        });
      });
    }
  });
}

test('what the statements of both stores read as MAOS writes it', () => {
  assert.equal(isReadableModelUsage(JSON.stringify([{ ...ENTRY, costUsd: 0.5 }])), true);
  assert.equal(isReadableModelUsage('[]'), true);
  for (const text of [
    '',
    '[{"provider":"openai"',
    '{"provider":"openai","model":"gpt-4o"}',
    '"spent"',
    '["openai/gpt-4o"]',
    '[null]',
    '[{}]',
    JSON.stringify([ENTRY]).replace('100', '100.0'),
    JSON.stringify([{ ...ENTRY, provider: undefined }]),
    JSON.stringify([{ ...ENTRY, model: 5 }]),
    JSON.stringify([{ ...ENTRY, inputTokens: 1.5 }]),
    JSON.stringify([{ ...ENTRY, inputTokens: '100' }]),
    JSON.stringify([{ ...ENTRY, costUsd: 'free' }]),
    JSON.stringify([{ ...ENTRY, model: 'gpt\u00004o' }]),
    JSON.stringify([{ ...ENTRY, model: 'gpt\ud8004o' }]),
  ]) {
    assert.equal(isReadableModelUsage(text), false, text);
  }
});
