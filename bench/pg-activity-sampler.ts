// Samples what a database's client connections are doing while a benchmark runs: pg_stat_activity
// state + wait event (averaged: "how many connections were in this state"), ungranted pg_locks by
// type, connections waiting for a lock by the table their statement works on, and the CPU time their
// backend processes used (from /proc, when the server runs locally).
import { readFileSync } from 'node:fs';
import pg from 'pg';

/** Averages over the sampling period. */
export interface ActivitySummary {
  samples: number;
  /** state (or wait event) → average number of connections in it. */
  states: Record<string, number>;
  /** lock type → average number of ungranted locks. */
  waitingLocks: Record<string, number>;
  /**
   * table → average number of connections waiting for a lock (wait event type Lock) in a statement
   * on it: the table whose rows the replicas queue on.
   */
  lockWaitsByTable: Record<string, number>;
  /** CPU time used by the sampled backends during the period (0 when /proc is not readable). */
  backendCpuMs: number;
  /** CPU time of the sampler's own backend (the measurement's cost on the database side). */
  samplerCpuMs: number;
  /** Deadlocks PostgreSQL detected in the database during the period (each stalls deadlock_timeout). */
  deadlocks: number;
  /** Transactions committed and rolled back in the database during the period. */
  commits: number;
  rollbacks: number;
}

export interface ActivitySampler {
  stop(): Promise<ActivitySummary>;
}

// Short enough to see sub-millisecond states statistically over a run of a few seconds, long enough
// that sampling (two queries) costs little of the CPU the run is measured on (reported as "bench own CPU").
const INTERVAL_MS = 20;
export const TICKS_PER_SECOND = 100;
const OWN_APPS = ['bench-sample', 'bench-watch', 'maos-listen'];

/** CPU jiffies (user + system) of a process, or undefined when it is gone or unreadable. */
export function readProcessTicks(pid: number): number | undefined {
  try {
    // Fields after the command name (which may contain spaces) start at state = field 3.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** The table a statement writes (INSERT/UPDATE/DELETE) or, for a SELECT, reads first. */
function statementTable(query: string): string {
  const match =
    /^\s*(?:insert\s+into|update|delete\s+from)\s+"?(\w+)"?/i.exec(query) ??
    /\bfrom\s+"?(\w+)"?/i.exec(query);
  return match?.[1] ?? 'other';
}

/** Starts sampling the client backends of the database `url` points at (this sampler excluded). */
export async function startActivitySampler(url: string): Promise<ActivitySampler> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-sample' });
  await client.connect();
  const states = new Map<string, number>();
  const locks = new Map<string, number>();
  const lockWaits = new Map<string, number>();
  // pid → ticks when first seen (backends opened during the run count from 0).
  const firstTicks = new Map<number, number>();
  const readCounters = async () =>
    (
      await client.query<{ deadlocks: string; xact_commit: string; xact_rollback: string }>(
        'select deadlocks, xact_commit, xact_rollback from pg_stat_database where datname = current_database()',
      )
    ).rows[0]!;
  const countersBefore = await readCounters();
  const ownPid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const ownTicksBefore = readProcessTicks(ownPid) ?? 0;
  let samples = 0;
  let running = true;
  const startedAt = Date.now();

  async function sampleOnce(): Promise<void> {
    const activity = await client.query<{
      pid: number;
      state: string | null;
      wait_event_type: string | null;
      wait_event: string | null;
      query: string;
    }>(
      `select pid, state, wait_event_type, wait_event, query from pg_stat_activity
       where datname = current_database() and backend_type = 'client backend'
         and not (application_name = any($1))`,
      [OWN_APPS],
    );
    const waiting = await client.query<{ locktype: string; n: number }>(
      `select l.locktype, count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where not l.granted and a.datname = current_database() group by l.locktype`,
    );
    samples++;
    for (const row of activity.rows) {
      if (!firstTicks.has(row.pid)) {
        // Seen right after start: it existed before, count from now; later: it was just opened.
        firstTicks.set(row.pid, Date.now() - startedAt < 50 ? (readProcessTicks(row.pid) ?? 0) : 0);
      }
      if (row.state === 'idle') continue;
      if (row.wait_event_type === 'Lock') {
        const table = statementTable(row.query);
        lockWaits.set(table, (lockWaits.get(table) ?? 0) + 1);
      }
      const key = row.wait_event
        ? `${row.state === 'active' ? '' : `${row.state}: `}${row.wait_event_type}:${row.wait_event}`
        : `${row.state === 'active' ? 'on CPU' : row.state}`;
      states.set(key, (states.get(key) ?? 0) + 1);
    }
    for (const row of waiting.rows) locks.set(row.locktype, (locks.get(row.locktype) ?? 0) + row.n);
  }

  const loop = (async () => {
    while (running) {
      await sampleOnce();
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
    }
  })();

  return {
    async stop() {
      running = false;
      await loop;
      let ticks = 0;
      for (const [pid, first] of firstTicks) {
        const now = readProcessTicks(pid);
        if (now !== undefined) ticks += now - first;
      }
      const ownTicks = (readProcessTicks(ownPid) ?? ownTicksBefore) - ownTicksBefore;
      // The statistics collector publishes with a small delay.
      await new Promise((resolve) => setTimeout(resolve, 600));
      await client.query('select pg_stat_clear_snapshot()');
      const countersAfter = await readCounters();
      await client.end();
      const average = (map: Map<string, number>) =>
        Object.fromEntries(
          [...map]
            .sort((a, b) => b[1] - a[1])
            .map(([key, count]) => [key, Number((count / Math.max(1, samples)).toFixed(2))]),
        );
      return {
        samples,
        states: average(states),
        waitingLocks: average(locks),
        lockWaitsByTable: average(lockWaits),
        backendCpuMs: (ticks / TICKS_PER_SECOND) * 1000,
        samplerCpuMs: (ownTicks / TICKS_PER_SECOND) * 1000,
        deadlocks: Number(countersAfter.deadlocks) - Number(countersBefore.deadlocks),
        commits: Number(countersAfter.xact_commit) - Number(countersBefore.xact_commit),
        rollbacks: Number(countersAfter.xact_rollback) - Number(countersBefore.xact_rollback),
      };
    },
  };
}
