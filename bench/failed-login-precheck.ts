// What the failed-login pre-check costs an authenticated request on PostgreSQL. Before a credential
// is verified, the HTTP security layer asks the rate limiter whether the caller's address is out of
// failed logins; on PostgreSQL that can be a read of the shared `rate_limits` table. The script
// serves one authenticated route with the real security layer (API key, rate limits on) on a
// PostgreSQL store and times requests with a valid key in three variants, interleaved round by round
// in one run:
//   clean     an address that never failed a login (as shipped)
//   suspect   an address that failed one login in the window (as shipped: its pre-check reads)
//   no-check  the pre-check answered "not exhausted" without asking the limiter (a floor)
// For each: µs per request one at a time and the CPU time this process and the PostgreSQL server
// spent per request meanwhile (steadier than wall time on a shared machine), requests/s with
// `concurrency` in flight, and the queries per request the store's pool received.
//   node bench/failed-login-precheck.ts [requests=2000] [rounds=5] [concurrency=16]
// Uses DATABASE_URL (an admin URL) when set (PostgreSQL's CPU is then not measured); otherwise
// starts an embedded PostgreSQL.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { configSchema } from '../src/config/schema.ts';
import { registerAuthentication } from '../src/http/plugins/authenticate.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createApiKey } from '../src/security/api-keys.ts';
import { createSecurity } from '../src/security/create-security.ts';
import { createHttpSecurity } from '../src/security/http-security-plugin.ts';
import { createRateLimiter, type RateLimiter } from '../src/security/rate-limit.ts';
import type { SecurityDb } from '../src/security/security-tables.ts';
import { createDatabase } from '../src/store/db.ts';
import { getPostgresPool } from '../src/store/postgres-dialect.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';

const [REQUESTS = 2000, ROUNDS = 5, CONCURRENCY = 16] = process.argv.slice(2).map(Number);
const CLEAN_IP = '198.51.100.10';
const SUSPECT_IP = '198.51.100.20';
const WRONG_KEY = `maos_000000000000_${'A'.repeat(43)}`;

type Variant = 'clean' | 'suspect' | 'no-check';
const VARIANTS: readonly Variant[] = ['clean', 'suspect', 'no-check'];

const dir = mkdtempSync(join(tmpdir(), 'maos-bench-precheck-'));
const database = await createTestDatabase();
const config = configSchema.parse({
  dataDir: dir,
  store: { url: database.url },
  auth: { mode: 'apikey' },
  // Limits no run reaches: every request is answered 200 and charged as in production.
  rateLimit: {
    enabled: true,
    principal: { points: 1e9, windowSeconds: 3600 },
    tenant: { points: 1e9, windowSeconds: 3600 },
    anonymous: { points: 1e9, windowSeconds: 3600 },
  },
});
const handle = createDatabase(config);
const pool = getPostgresPool(handle.db);
if (!pool) throw new Error('not a PostgreSQL store');
let queries = 0;
const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
(pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
  queries += 1;
  return query(...args);
};

const logger = createLogger({ level: 'silent' });
const db = handle.db as unknown as SecurityDb;
const security = createSecurity({ config, db, logger, quotas: null });
const { key } = await createApiKey(db, {
  tenantId: 'bench',
  name: 'bench',
  roles: ['viewer'],
  createdBy: 'bench',
});

/** The server with the real layer, on `rateLimiter`. */
async function serve(rateLimiter: RateLimiter): Promise<FastifyInstance> {
  const http = createHttpSecurity({
    authenticator: security.authenticator,
    rateLimiter,
    auditLog: security.auditLog,
    realm: 'maos',
    logger,
  });
  const app = Fastify();
  registerAuthentication(app, http.authenticate);
  await http.plugin(app, {});
  app.get('/x', { config: { permission: 'sessions:read' } }, async () => ({ ok: true }));
  await app.ready();
  return app;
}

const limiter = createRateLimiter(config.rateLimit, { pool });
const shipped = await serve(limiter);
const noCheck = await serve({
  consume: (subject) => limiter.consume(subject),
  consumeMore: (subject, points) => limiter.consumeMore(subject, points),
  isExhausted: async () => false,
  chargeMark: (ip) => limiter.chargeMark(ip),
  // The variant without the pre-check waits for no turn either.
  admitCheck: async () => null,
});

const request = (variant: Variant) =>
  (variant === 'no-check' ? noCheck : shipped).inject({
    method: 'GET',
    url: '/x',
    remoteAddress: variant === 'suspect' ? SUSPECT_IP : CLEAN_IP,
    headers: { authorization: `Bearer ${key}` },
  });

// The suspect address fails one login (its counter then holds one point of 1e9).
const failed = await shipped.inject({
  method: 'GET',
  url: '/x',
  remoteAddress: SUSPECT_IP,
  headers: { authorization: `Bearer ${WRONG_KEY}` },
});
if (failed.statusCode !== 401) throw new Error(`the failed login was answered ${failed.statusCode}`);

/**
 * CPU time (µs) used so far by the processes below this one: the embedded PostgreSQL server and its
 * backends (their own and that of the backends they reaped). Null off Linux.
 */
function postgresCpuMicros(): number | null {
  // A server of its own (DATABASE_URL) is not below this process.
  if (process.env.DATABASE_URL) return null;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of entries) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command (which may hold spaces): state ppid … utime(14) stime cutime cstime.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(name);
    const ppid = Number(fields[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    ticks.set(
      pid,
      fields.slice(11, 15).reduce((sum, field) => sum + Number(field), 0),
    );
  }
  let total = 0;
  const pending = [...(children.get(process.pid) ?? [])];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    total += ticks.get(pid) ?? 0;
    pending.push(...(children.get(pid) ?? []));
  }
  // Linux reports CPU time in clock ticks of 10 ms (USER_HZ 100).
  return total * 10_000;
}

/**
 * µs per request one at a time, with this process's and PostgreSQL's CPU µs per request over those
 * requests; requests/s with CONCURRENCY in flight; queries per request.
 */
async function measure(variant: Variant) {
  let before = queries;
  const cpuBefore = process.cpuUsage();
  const postgresBefore = postgresCpuMicros();
  let started = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const response = await request(variant);
    if (response.statusCode !== 200) throw new Error(`${variant}: answered ${response.statusCode}`);
  }
  const microsPerRequest = ((performance.now() - started) * 1000) / REQUESTS;
  const cpu = process.cpuUsage(cpuBefore);
  const nodeCpuPerRequest = (cpu.user + cpu.system) / REQUESTS;
  const postgresAfter = postgresCpuMicros();
  const postgresCpuPerRequest =
    postgresBefore === null || postgresAfter === null
      ? Number.NaN
      : (postgresAfter - postgresBefore) / REQUESTS;
  const queriesPerRequest = (queries - before) / REQUESTS;
  before = queries;
  started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < REQUESTS) {
        const response = await request(variant);
        if (response.statusCode !== 200) throw new Error(`${variant}: answered ${response.statusCode}`);
      }
    }),
  );
  const requestsPerSecond = REQUESTS / ((performance.now() - started) / 1000);
  return { microsPerRequest, nodeCpuPerRequest, postgresCpuPerRequest, requestsPerSecond, queriesPerRequest };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

try {
  // Warm-up: JIT, the key cache, the pool's connections.
  for (const variant of VARIANTS) await measure(variant);
  const results = new Map<Variant, ReturnType<typeof measure> extends Promise<infer R> ? R[] : never>(
    VARIANTS.map((variant) => [variant, []]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    // A different order each round, so no variant always follows the same one.
    const order = VARIANTS.map((_, index) => VARIANTS[(index + round) % VARIANTS.length] as Variant);
    for (const variant of order) results.get(variant)?.push(await measure(variant));
  }
  console.log(
    `PostgreSQL, ${REQUESTS} requests × ${ROUNDS} rounds, concurrency ${CONCURRENCY}; load average ${loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
  );
  console.log('medians over the rounds (best round in brackets); CPU over the requests sent one at a time');
  console.log(
    'variant    µs/request (1 in flight)  node CPU µs/request  PostgreSQL CPU µs/request  requests/s (concurrent)  queries/request',
  );
  for (const [variant, rows] of results) {
    const micros = rows.map((row) => row.microsPerRequest);
    const rates = rows.map((row) => row.requestsPerSecond);
    console.log(
      [
        variant.padEnd(10),
        `${median(micros).toFixed(0)} (${Math.min(...micros).toFixed(0)})`.padStart(24),
        median(rows.map((row) => row.nodeCpuPerRequest))
          .toFixed(0)
          .padStart(19),
        (process.env.DATABASE_URL
          ? 'n/a'
          : median(rows.map((row) => row.postgresCpuPerRequest)).toFixed(0)
        ).padStart(25),
        `${median(rates).toFixed(0)} (${Math.max(...rates).toFixed(0)})`.padStart(23),
        median(rows.map((row) => row.queriesPerRequest))
          .toFixed(2)
          .padStart(15),
      ].join('  '),
    );
  }
} finally {
  await shipped.close();
  await noCheck.close();
  await security.close();
  await handle.close();
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
}
