// What a read of a running session without its tasks (GET /v1/sessions/:id?tasks=none) costs the
// store: every task row read with its result (what the detail reads), against only what the overview
// shows of its tasks (their agents' usage, the phase waiting for approval). A session of `tasks`
// tasks of `outputBytes` of output each (incompressible text, as model output mostly is), on SQLite
// and PostgreSQL.
//
//   node bench/session-overview-read.ts [tasks=1000] [outputBytes=13000] [rounds=30] [--sqlite-only]
import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { DEFAULT_TENANT_ID } from '../src/store/migrations/0001-foundation.ts';
import { IGNORE_DAMAGED_JSON, newSessionRow, newTaskRow } from '../src/store/rows.ts';
import { loadSessionContents, loadSessionOverviewContents } from '../src/store/session-store.ts';
import { onBothStores } from './both-stores.ts';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const tasks = Number(args[0] ?? 1000);
const outputBytes = Number(args[1] ?? 13_000);
const rounds = Number(args[2] ?? 30);
const AGENTS = 10;

console.log(`${tasks} tasks × ${outputBytes} bytes of output; load ${loadavg()[0]?.toFixed(2)}`);
await onBothStores('session-overview', async (store, { db }) => {
  const now = Date.now();
  const sessionId = randomUUID();
  await db
    .insertInto('sessions')
    .values(
      newSessionRow(
        {
          id: sessionId,
          tenant_id: DEFAULT_TENANT_ID,
          objective: 'overview bench',
          strategy: 'parallel',
          status: 'running',
          metadata: '{}',
          started_at: now,
        },
        now,
      ),
    )
    .execute();
  const agents = Array.from({ length: AGENTS }, (_, i) => ({
    id: randomUUID(),
    tenant_id: DEFAULT_TENANT_ID,
    session_id: sessionId,
    name: `agent-${i}`,
    role: 'engineer',
    runtime: 'llm',
    created_at: now,
  }));
  await db.insertInto('agents').values(agents).execute();
  for (let start = 0; start < tasks; start += 200) {
    const rows = Array.from({ length: Math.min(200, tasks - start) }, (_, i) => {
      const position = start + i;
      return {
        ...newTaskRow(
          { tenantId: DEFAULT_TENANT_ID, sessionId, maxAttempts: 1, now },
          {
            id: randomUUID(),
            kind: 'agent',
            name: `task-${position}`,
            role: 'engineer',
            agent_id: agents[position % AGENTS]!.id,
            instructions: `Do part ${position}`,
            runner: null,
            phase: 0,
            position,
            status: position < tasks - 4 ? 'succeeded' : 'running',
          },
        ),
        result: position < tasks - 4 ? randomBytes((outputBytes * 3) / 4).toString('base64') : null,
        input_tokens: 1000,
        output_tokens: 3000,
        cost_usd: 0.01,
      };
    });
    await db.insertInto('tasks').values(rows).execute();
  }
  const time = async (read: () => Promise<unknown>) => {
    await read();
    const started = performance.now();
    for (let i = 0; i < rounds; i++) await read();
    return (performance.now() - started) / rounds;
  };
  // Interleaved, twice, so that neither gains from going second.
  const figures = { all: [] as number[], overview: [] as number[] };
  for (let pass = 0; pass < 2; pass++) {
    figures.all.push(await time(() => loadSessionContents(db, sessionId, IGNORE_DAMAGED_JSON)));
    figures.overview.push(await time(() => loadSessionOverviewContents(db, sessionId, IGNORE_DAMAGED_JSON)));
  }
  const best = (values: number[]) => Math.min(...values).toFixed(2);
  console.log(
    `${store}: every task with its result ${best(figures.all)} ms; what the overview needs ${best(figures.overview)} ms (per read, best of 2 passes of ${rounds})`,
  );
});
