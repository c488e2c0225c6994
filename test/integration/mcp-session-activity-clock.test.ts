// A replica that follows a stream of an MCP session held by another replica notes the session's
// activity in the log; the holder reads how long ago, to keep the session open while it is used
// elsewhere. On PostgreSQL both are timed by the database server's clock: replicas' own clocks may
// disagree. Before, the follower timed its note by its own wall clock and the holder read it by its
// own: a follower an hour behind made a fresh note an hour old (the holder closed a session in use),
// one an hour ahead kept an idle session open an hour longer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createStreamEventLog, type McpStreamEventsDb } from '../../src/mcp/stream-event-log.ts';
import { STORE_BACKENDS, useStoreHandles } from '../fixtures/store-backends.ts';

const HOUR = 3_600_000;

describe('MCP session activity notes and replica clocks (PostgreSQL)', { timeout: 60_000 }, () => {
  const postgres = STORE_BACKENDS.find((backend) => backend.name === 'postgres')!;
  const store = useStoreHandles(postgres, 2);

  for (const [clock, offset] of [
    ['an hour behind', -HOUR],
    ['an hour ahead', HOUR],
  ] as const) {
    test(`a note by a replica whose clock is ${clock} is as fresh to the holder as it is`, async (t) => {
      const [follower, holder] = store.handles.map((handle) =>
        createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>),
      ) as [ReturnType<typeof createStreamEventLog>, ReturnType<typeof createStreamEventLog>];
      const owner = { tenantId: 'acme', principalId: 'alice', mcpSessionId: `mcp-${offset}` };
      t.mock.timers.enable({ apis: ['Date'], now: Date.now() + offset });
      await follower.recordActivity(owner);
      t.mock.timers.reset();
      const age = (await holder.activityAges([owner])).get(owner.mcpSessionId);
      assert.ok(age !== undefined && age >= 0 && age < 60_000, `noted ${age} ms ago`);
    });
  }
});
