// Durability under repeated kill -9 on PostgreSQL: two replicas on one database and data directory,
// one of them killed with SIGKILL eight times at seeded moments (and while it starts) while the other
// goes on and takes its leases over; after the last restart every answered write is there and every
// invariant holds (test/fixtures/crash-scenario.ts lists them). Needs PostgreSQL: the embedded one,
// or --test-global-setup=test/fixtures/postgres-global-setup.ts.
import { test } from 'node:test';
import { KILLS, runCrashScenario } from '../fixtures/crash-scenario.ts';

test(
  `postgres: ${KILLS} seeded kill -9 of one of two replicas lose no answered write and settle every session`,
  {
    timeout: 300_000,
  },
  (t) => runCrashScenario(t, 'postgres'),
);
