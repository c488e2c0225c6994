// Durability under repeated kill -9 on SQLite: the server is killed with SIGKILL eight times at
// seeded moments (and three times while it starts) while sessions of every kind are submitted,
// decided, steered, cancelled, retried and deleted; after the last restart every answered write is
// there and every invariant holds (test/fixtures/crash-scenario.ts lists them).
import { test } from 'node:test';
import { KILLS, runCrashScenario } from '../fixtures/crash-scenario.ts';

test(
  `sqlite: ${KILLS} seeded kill -9 of the server lose no answered write and settle every session`,
  {
    timeout: 300_000,
  },
  (t) => runCrashScenario(t, 'sqlite'),
);
