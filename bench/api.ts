// API latency benchmark: autocannon with many concurrent connections against GET /v1/sessions/:id
// of a real MAOS server (SQLite, one finished 3-task session), next to a bare Fastify hello-world
// measured in the same run on the same machine. Prints req/s and p50/p95/p99 latency of both.
//   node bench/api.ts [connections=1000] [seconds=10]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { createApp, LISTEN_BACKLOG } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { createLogger } from '../src/observability/logger.ts';

const CONNECTIONS = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);

interface Figures {
  name: string;
  requestsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(name: string, url: string): Promise<Figures> {
  // Warm-up so JIT and caches are settled before measuring.
  await autocannon({ url, connections: 50, duration: 2 });
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, timeout: 30 });
  return {
    name,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    // autocannon reports p90 and p97_5 but not p95: interpolate between them.
    p95: result.latency.p90 + ((result.latency.p97_5 - result.latency.p90) * (95 - 90)) / (97.5 - 90),
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

async function measureBareFastify(): Promise<Figures> {
  const server = Fastify({ logger: false });
  server.get('/', async () => ({ hello: 'world' }));
  // Same accept queue as MAOS, so only the request handling differs between the two.
  const url = await server.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG });
  try {
    return await load('bare Fastify hello-world', url);
  } finally {
    await server.close();
  }
}

async function measureMaos(): Promise<Figures> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-bench-api-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      auth: { mode: 'none' },
      rateLimit: { enabled: false },
      runners: { ok: { command: ['true'] } },
    },
  });
  const app = await createApp(config, { logger: createLogger({ level: 'silent' }) });
  const url = await app.start();
  try {
    const created = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        objective: 'benchmark target',
        strategy: 'sequential',
        agents: ['architect', 'engineer', 'qa'].map((role) => ({ role, task: `${role} step`, runner: 'ok' })),
      }),
    });
    const session = (await created.json()) as { id: string };
    for (let i = 0; i < 200; i++) {
      const current = (await (await fetch(`${url}/v1/sessions/${session.id}`)).json()) as { status: string };
      if (current.status === 'completed') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return await load('MAOS GET /v1/sessions/:id', `${url}/v1/sessions/${session.id}`);
  } finally {
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function row(figures: Figures): string {
  return [
    figures.name.padEnd(28),
    `${figures.requestsPerSecond.toFixed(0).padStart(8)} req/s`,
    `p50 ${figures.p50.toFixed(0).padStart(5)} ms`,
    `p95 ${figures.p95.toFixed(0).padStart(5)} ms`,
    `p99 ${figures.p99.toFixed(0).padStart(5)} ms`,
    `errors ${figures.errors}`,
    `non-2xx ${figures.non2xx}`,
  ].join('  ');
}

const bare = await measureBareFastify();
const maos = await measureMaos();
console.log(`\n${CONNECTIONS} connections, ${SECONDS} s each, load generator on the same machine`);
console.log(row(bare));
console.log(row(maos));
const ratio = maos.requestsPerSecond / bare.requestsPerSecond;
console.log(`\nMAOS / bare throughput: ${(ratio * 100).toFixed(0)} % (target ≥ 50 %)`);
console.log(`MAOS p95: ${maos.p95.toFixed(0)} ms (target < 250 ms; operators' SLO < 1000 ms)`);
