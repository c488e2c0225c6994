// The engine while PostgreSQL is stopped and started again: the worker loop backs off its claims and
// logs the outage once when it starts and once when it ends, not at every poll.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { type RestartablePostgres, startRestartablePostgres } from '../fixtures/restartable-postgres.ts';

interface LogLine {
  'log.level': string;
  message: string;
  failedClaims?: number;
}

/** A JSON logger whose lines the test reads back. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'info', format: 'json', destination }) };
}

const instant: AgentRuntime = {
  kind: 'fake',
  run: async (task) => ({ output: `done ${task.name}`, usage: { inputTokens: 1 } }),
};

describe('the engine during a PostgreSQL outage', { timeout: 120_000 }, () => {
  let database: RestartablePostgres;
  before(async () => {
    database = await startRestartablePostgres();
  });
  after(async () => {
    await database?.close();
  });

  test('claims back off while the database is down: one error line when it starts, one info line when it ends', async () => {
    const { lines, logger } = capturedLogger();
    const h: Harness = await createHarness({
      storeUrl: database.url,
      llm: instant,
      pollIntervalMs: 20,
      logger,
    });
    try {
      await database.stop('fast');
      // Without the back-off this is some 75 polls, each logging an error.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const failures = () => lines.filter((line) => line.message.startsWith('claiming tasks failed'));
      assert.equal(
        failures().length,
        1,
        failures()
          .map((line) => line.message)
          .join('\n'),
      );
      assert.equal(failures()[0]!['log.level'], 'error');
      assert.match(failures()[0]!.message, /the database cannot be reached/);

      await database.start();
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'after the outage',
        agents: [{ name: 'only', role: 'engineer', task: 't' }],
      });
      assert.equal((await h.waitForSession(session.id, 30_000)).status, 'completed');
      assert.equal(
        failures().length,
        1,
        failures()
          .map((line) => line.message)
          .join('\n'),
      );
      const recovered = lines.filter((line) => line.message.startsWith('claiming tasks works again'));
      assert.equal(recovered.length, 1, JSON.stringify(lines));
      assert.equal(recovered[0]!['log.level'], 'info');
      assert.ok(recovered[0]!.failedClaims! > 1, JSON.stringify(recovered[0]));
    } finally {
      await h.close();
    }
  });
});
