// Forward-only migrations: a database created at each earlier schema version, holding real data,
// upgrades to the latest schema without losing anything, and the current code reads and runs on it.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import { createDatabase } from '../../src/store/db.ts';
import { getMigrationStatus, migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { ACTOR, createHarness, makeTempDir } from '../fixtures/engine-harness.ts';

const SESSION_ID = '01a21400-0000-7000-8000-000000000001';
const TASK_ID = '01a21400-0000-7000-8000-000000000002';
const AGENT_ID = '01a21400-0000-7000-8000-000000000003';
const NOW = Date.UTC(2026, 0, 1);

/** A finished one-task session written with the columns of the first schema version only. */
// biome-ignore lint/suspicious/noExplicitAny: rows of an older schema than the current types
async function seedFoundationData(db: Kysely<any>): Promise<void> {
  const plan = {
    phases: [
      {
        name: 'main',
        tasks: [{ name: 'build', role: 'engineer', instructions: 'do it', runner: 'ok', dependsOn: [] }],
      },
    ],
  };
  await db
    .insertInto('sessions')
    .values({
      id: SESSION_ID,
      tenant_id: 'default',
      objective: 'written before the upgrade',
      strategy: 'parallel',
      status: 'completed',
      metadata: '{"origin":"old"}',
      plan_version: 1,
      result: 'old result',
      last_seq: 2,
      created_at: NOW,
      updated_at: NOW,
      started_at: NOW,
      finished_at: NOW,
    })
    .execute();
  await db
    .insertInto('plans')
    .values({
      session_id: SESSION_ID,
      version: 1,
      tenant_id: 'default',
      body: JSON.stringify(plan),
      created_at: NOW,
    })
    .execute();
  await db
    .insertInto('agents')
    .values({
      id: AGENT_ID,
      tenant_id: 'default',
      session_id: SESSION_ID,
      name: 'build',
      role: 'engineer',
      runtime: 'command',
      created_at: NOW,
    })
    .execute();
  await db
    .insertInto('tasks')
    .values({
      id: TASK_ID,
      tenant_id: 'default',
      session_id: SESSION_ID,
      kind: 'agent',
      name: 'build',
      role: 'engineer',
      agent_id: AGENT_ID,
      instructions: 'do it',
      runner: 'ok',
      status: 'succeeded',
      attempts: 1,
      max_attempts: 3,
      result: 'built',
      created_at: NOW,
      updated_at: NOW,
      ready_at: NOW,
      started_at: NOW,
      finished_at: NOW,
    })
    .execute();
  // To the agent: one sent before its task finished (the old inbox rule counted it as received),
  // one after.
  await db
    .insertInto('messages')
    .values(
      [
        { id: `${SESSION_ID}-m1`, body: 'before the finish', created_at: NOW - 1 },
        { id: `${SESSION_ID}-m2`, body: 'after the finish', created_at: NOW + 1 },
      ].map((message) => ({
        ...message,
        tenant_id: 'default',
        session_id: SESSION_ID,
        from_agent_id: null,
        to_agent_id: AGENT_ID,
      })),
    )
    .execute();
  await db
    .insertInto('events')
    .values([
      {
        session_id: SESSION_ID,
        seq: 1,
        tenant_id: 'default',
        type: 'session.created',
        data: '{}',
        created_at: NOW,
      },
      {
        session_id: SESSION_ID,
        seq: 2,
        tenant_id: 'default',
        type: 'session.finished',
        data: '{"status":"completed"}',
        created_at: NOW,
      },
    ])
    .execute();
}

describe('schema upgrades from every earlier version', () => {
  for (let applied = 1; applied < MIGRATIONS.length; applied++) {
    const from = MIGRATIONS[applied - 1]!.name;
    test(`from ${from} to ${MIGRATIONS[MIGRATIONS.length - 1]!.name}, data intact and usable`, async () => {
      const dir = makeTempDir();
      try {
        const old = createDatabase(configSchema.parse({ dataDir: dir }));
        await migrateToLatest(old.db, MIGRATIONS.slice(0, applied));
        await seedFoundationData(old.db);
        const before = await getMigrationStatus(old.db);
        assert.equal(before.current, false);
        assert.equal(before.pending.length, MIGRATIONS.length - applied);
        assert.deepEqual(await migrateToLatest(old.db), before.pending);
        assert.equal((await getMigrationStatus(old.db)).current, true);
        // 0009: messages an earlier turn counted as received are marked with that turn's task (data
        // written after 0009 ran has no such marks to gain).
        const marked = before.pending.includes('0009_message_delivery') ? TASK_ID : null;
        const marks = await old.db
          .selectFrom('messages')
          .select(['body', 'delivered_task_id'])
          .orderBy('created_at')
          .execute();
        assert.deepEqual(marks, [
          { body: 'before the finish', delivered_task_id: marked },
          { body: 'after the finish', delivered_task_id: null },
        ]);
        await old.close();

        // The current code on the upgraded file: old data reads back, new work runs.
        const harness = await createHarness({ dir, runners: { ok: { command: ['true'] } } });
        try {
          const kept = await harness.engine.service.getSession(ACTOR, SESSION_ID);
          assert.equal(kept.status, 'completed');
          assert.equal(kept.result, 'old result');
          assert.deepEqual(kept.metadata, { origin: 'old' });
          assert.equal(kept.tasks[0]?.result, 'built');
          const events = await harness.engine.service.listEvents(ACTOR, SESSION_ID, 0, 10);
          assert.deepEqual(
            events.map((e) => e.seq),
            [1, 2],
          );
          const { session } = await harness.engine.service.createSession(ACTOR, {
            objective: 'after the upgrade',
            agents: [{ role: 'qa', task: 'check', runner: 'ok' }],
          });
          assert.equal((await harness.waitForSession(session.id)).status, 'completed');
        } finally {
          await harness.close({ keepDir: true });
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
