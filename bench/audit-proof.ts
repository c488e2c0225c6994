import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { type AuditLog, createAuditLog } from '../src/security/audit/audit-log.ts';
import {
  type ProofReadCounts,
  readConsistencyProof,
  readInclusionProof,
} from '../src/security/audit/audit-proof.ts';
import { createInclusionProof, hashLeaf } from '../src/security/audit/merkle.ts';
import type { SecurityDb } from '../src/security/security-tables.ts';
import type { DatabaseHandle } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { onBothStores } from './both-stores.ts';

const RECORDS = Number(process.argv.find((arg) => /^\d+$/.test(arg)) ?? 200_000);
const REPEATS = 3;

/** Appends records `from` to `to - 1`, each like one of a request with an API key (about 450 bytes of canonical JSON). */
async function fill(log: AuditLog, from: number, to: number): Promise<void> {
  const burst = 2000;
  for (let i = from; i < to; i += burst) {
    const count = Math.min(burst, to - i);
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

interface Figures {
  ms: number;
  stallMs: number;
  counts: ProofReadCounts;
}

/** Median time, the longest event-loop delay and what the last run read, of REPEATS runs of `work`. */
async function measure(
  work: (counts: ProofReadCounts) => Promise<unknown>,
  setUp: () => Promise<unknown> = async () => undefined,
): Promise<Figures> {
  const times: number[] = [];
  let stall = 0;
  let counts: ProofReadCounts = { records: 0, storedRoots: 0, rootsStored: 0 };
  for (let i = 0; i < REPEATS; i++) {
    await setUp();
    counts = { records: 0, storedRoots: 0, rootsStored: 0 };
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    // The monitor records from its second tick on: let it tick before the work starts.
    await new Promise((resolve) => setTimeout(resolve, 25));
    const start = performance.now();
    await work(counts);
    times.push(performance.now() - start);
    // Let the monitor see the end of the last synchronous stretch.
    await new Promise((resolve) => setTimeout(resolve, 20));
    delay.disable();
    stall = Math.max(stall, delay.max / 1e6);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)] as number, stallMs: stall, counts };
}

/** The full read: every record in one statement, hashed, the proof built from the array. */
async function plainInclusionProof(db: SecurityDb, index: number, size: number, counts: ProofReadCounts) {
  const rows = await db
    .selectFrom('audit_log')
    .select('event')
    .where('seq', '<', size)
    .orderBy('seq')
    .execute();
  counts.records += rows.length;
  const leaves = rows.map((row) => hashLeaf(Buffer.from(row.event, 'utf8')));
  return createInclusionProof(leaves, index);
}

async function measureAt(db: SecurityDb, size: number): Promise<void> {
  const index = Math.floor(size / 3);
  const clear = () => db.deleteFrom('audit_subtrees').execute();
  const rows: [string, Figures][] = [
    [
      'full read, proof from the array',
      await measure((counts) => plainInclusionProof(db, index, size, counts)),
    ],
    [
      'inclusion, no block stored yet',
      await measure((counts) => readInclusionProof(db, index, size, counts), clear),
    ],
    ['inclusion, blocks stored', await measure((counts) => readInclusionProof(db, index, size, counts))],
    ['consistency, blocks stored', await measure((counts) => readConsistencyProof(db, index, size, counts))],
  ];
  console.log(`  ${size} records:`);
  for (const [what, { ms, stallMs, counts }] of rows) {
    console.log(
      `    ${what.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms  ${String(counts.records).padStart(7)} records ${String(counts.storedRoots).padStart(4)} stored roots read ${String(counts.rootsStored).padStart(4)} stored   event loop held up to ${stallMs.toFixed(0)} ms`,
    );
  }
}

async function run(name: string, handle: DatabaseHandle): Promise<void> {
  await migrateToLatest(handle.db);
  const db = handle.db as unknown as SecurityDb;
  const log = createAuditLog({ db, origin: 'bench/audit' });
  const half = Math.floor(RECORDS / 2);
  const filling = performance.now();
  await fill(log, 0, half);
  console.log(`${name}: ${half} records written in ${((performance.now() - filling) / 1000).toFixed(1)} s`);
  await measureAt(db, half);
  await fill(log, half, RECORDS);
  await measureAt(db, RECORDS);
  await log.close();
}

console.log(
  `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
);
await onBothStores('audit', run);
console.log(
  `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
);
