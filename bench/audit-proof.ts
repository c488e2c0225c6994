// What an audit proof costs the server (GET /v1/audit/proof/*): each one reads the first `size`
// records of the log. Builds a log of N records (the real audit log, records of the size the HTTP
// layer writes), then times an inclusion and a consistency proof over all of it as the routes make
// them (src/security/audit/audit-proof.ts: one pass in batches, PostgreSQL hashing the leaves), next
// to the plain way (every record read in one statement, hashed, the proof built from the array), and
// the longest the event loop was held during each.
//   node bench/audit-proof.ts [records=200000] [--sqlite-only]
// Uses DATABASE_URL (an admin URL) when set; otherwise starts an embedded PostgreSQL (fsync off).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { configSchema } from '../src/config/schema.ts';
import { type AuditLog, createAuditLog } from '../src/security/audit/audit-log.ts';
import { createInclusionProof, hashLeaf } from '../src/security/audit/merkle.ts';
import type { SecurityDb } from '../src/security/security-tables.ts';
import { createDatabase, type DatabaseHandle } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';

const RECORDS = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 200_000);
const SQLITE_ONLY = process.argv.includes('--sqlite-only');
const REPEATS = 3;

/** A record like one of a request with an API key (about 450 bytes of canonical JSON). */
async function fill(log: AuditLog): Promise<void> {
  const burst = 2000;
  for (let i = 0; i < RECORDS; i += burst) {
    const count = Math.min(burst, RECORDS - i);
    await Promise.all(
      Array.from({ length: count }, (_, j) =>
        log.append({
          action: 'sessions:create',
          actor: {
            type: 'service',
            id: `key:0190a0a0-0000-7000-8000-${String(i + j).padStart(12, '0')}`,
            tenant: `tenant-${(i + j) % 50}`,
            ip: '10.0.0.7',
            user_agent: 'curl/8.5.0',
            auth_method: 'apikey',
          },
          target: { type: 'sessions', id: null, tenant: `tenant-${(i + j) % 50}` },
          outcome: 'success',
          request_id: `0190a0a0-0000-7000-8000-${String(i + j).padStart(12, '0')}`,
          trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        }),
      ),
    );
  }
}

/** Median time and the longest event-loop delay of REPEATS runs of `work`. */
async function measure(work: () => Promise<unknown>): Promise<{ ms: number; stallMs: number }> {
  const times: number[] = [];
  let stall = 0;
  for (let i = 0; i < REPEATS; i++) {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    // The monitor records from its second tick on: let it tick before the work starts.
    await new Promise((resolve) => setTimeout(resolve, 25));
    const start = performance.now();
    await work();
    times.push(performance.now() - start);
    // Let the monitor see the end of the last synchronous stretch.
    await new Promise((resolve) => setTimeout(resolve, 20));
    delay.disable();
    stall = Math.max(stall, delay.max / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)] as number, stallMs: stall };
}

/** The plain way: every record in one statement, hashed, the proof built from the array. */
async function plainInclusionProof(db: SecurityDb, index: number): Promise<Buffer[]> {
  const rows = await db.selectFrom('audit_log').select('event').orderBy('seq').execute();
  const leaves = rows.map((row) => hashLeaf(Buffer.from(row.event, 'utf8')));
  return createInclusionProof(leaves, index);
}

async function run(name: string, handle: DatabaseHandle): Promise<void> {
  await migrateToLatest(handle.db);
  const db = handle.db as unknown as SecurityDb;
  const log = createAuditLog({ db, origin: 'bench/audit' });
  const filling = performance.now();
  await fill(log);
  console.log(
    `${name}: ${RECORDS} records written in ${((performance.now() - filling) / 1000).toFixed(1)} s`,
  );
  const index = Math.floor(RECORDS / 3);
  const rows: [string, { ms: number; stallMs: number }][] = [
    ['plain: one statement, proof from the array', await measure(() => plainInclusionProof(db, index))],
    ['inclusion proof as served', await measure(() => log.inclusionProof(index, RECORDS))],
    ['consistency proof as served', await measure(() => log.consistencyProof(index, RECORDS))],
  ];
  for (const [what, { ms, stallMs }] of rows) {
    console.log(
      `  ${what.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms   event loop held up to ${stallMs.toFixed(0)} ms`,
    );
  }
  await log.close();
}

console.log(
  `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
);
const dir = mkdtempSync(join(tmpdir(), 'maos-bench-audit-'));
try {
  const sqlite = createDatabase(configSchema.parse({ dataDir: dir, store: { synchronous: 'normal' } }));
  try {
    await run('SQLite', sqlite);
  } finally {
    await sqlite.close();
  }
  if (!SQLITE_ONLY) {
    const database = await createTestDatabase();
    const postgres = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
    try {
      await run('PostgreSQL', postgres);
    } finally {
      await postgres.close();
      await database.drop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
);
