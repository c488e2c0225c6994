// Server side of bench/api.ts, run in its own process so the load generator does not share its event
// loop: a bare Fastify hello-world or a real MAOS server (SQLite, one finished 3-task session).
// As a process it prints one JSON line {url, headers} when ready and stops on SIGTERM/SIGINT or a
// closed stdin; bench/api.ts --in-process imports startTarget instead.
//   node bench/api-target.ts bare | maos-apikey | maos-none
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Fastify from 'fastify';
import { createApp, LISTEN_BACKLOG } from '../src/app.ts';
import { loadConfig } from '../src/config/load.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createApiKey } from '../src/security/api-keys.ts';
import type { SecurityDb } from '../src/security/security-tables.ts';

/** What the load generator needs: where to send requests and with which headers. */
export interface TargetInfo {
  url: string;
  headers: Record<string, string>;
}

/** Stops the target and removes its data. */
export type Stop = () => Promise<void>;

async function startBare(): Promise<[TargetInfo, Stop]> {
  const server = Fastify({ logger: false });
  server.get('/', async () => ({ hello: 'world' }));
  // Same accept queue as MAOS, so only the request handling differs between the two.
  const url = await server.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG });
  return [{ url, headers: {} }, () => server.close()];
}

async function startMaos(authMode: 'apikey' | 'none'): Promise<[TargetInfo, Stop]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-bench-api-'));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      auth: { mode: authMode },
      // Limits stay on (their hook and headers are part of every request) but are set so high that
      // one key at full speed is never throttled: the bench measures serving, not rejecting.
      rateLimit: {
        enabled: authMode === 'apikey',
        principal: { points: 1e9, windowSeconds: 60 },
        tenant: { points: 1e9, windowSeconds: 60 },
      },
      runners: { ok: { command: ['true'] } },
    },
  });
  const app = await createApp(config, { logger: createLogger({ level: 'silent' }) });
  const url = await app.start();
  const headers: Record<string, string> = {};
  if (authMode === 'apikey') {
    const created = await createApiKey(app.database.db as unknown as SecurityDb, {
      tenantId: 'default',
      name: 'bench',
      roles: ['operator'],
      createdBy: 'bench',
    });
    headers.authorization = `Bearer ${created.key}`;
  }
  const created = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({
      objective: 'benchmark target',
      strategy: 'sequential',
      agents: ['architect', 'engineer', 'qa'].map((role) => ({ role, task: `${role} step`, runner: 'ok' })),
    }),
  });
  if (created.status !== 201) throw new Error(`submit failed: ${created.status} ${await created.text()}`);
  const session = (await created.json()) as { id: string };
  const sessionUrl = `${url}/v1/sessions/${session.id}`;
  for (let i = 0; ; i++) {
    const current = (await (await fetch(sessionUrl, { headers })).json()) as { status: string };
    if (current.status === 'completed') break;
    if (i === 200) throw new Error(`session did not complete: ${current.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stop = async () => {
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return [{ url: sessionUrl, headers }, stop];
}

/** Starts one target: `bare`, `maos-apikey` or `maos-none`. Returns where to load it and how to stop it. */
export async function startTarget(kind: string): Promise<[TargetInfo, Stop]> {
  if (kind === 'bare') return startBare();
  if (kind === 'maos-apikey') return startMaos('apikey');
  if (kind === 'maos-none') return startMaos('none');
  throw new Error(`unknown target ${kind}`);
}

// Run as a process: report readiness on stdout; answer stdin commands with one JSON line each:
// `cpu` (CPU time used so far), `profile-start`, `profile-stop FILE` (V8 CPU profile of the load).
if (import.meta.main) {
  const [info, stop] = await startTarget(process.argv[2] ?? 'bare');
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    // process.exit (not a natural exit) so that `--cpu-prof` still writes its profile.
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  const profiler = new Session();
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, argument] = line.trim().split(' ');
    if (command === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.stdout.write(`${JSON.stringify({ cpuMicros: user + system })}\n`);
    } else if (command === 'profile-start') {
      profiler.connect();
      profiler
        .post('Profiler.enable')
        // 100 µs instead of the default 1 ms: a request takes about that long.
        .then(() => profiler.post('Profiler.setSamplingInterval', { interval: 100 }))
        .then(() => profiler.post('Profiler.start'))
        .then(() => process.stdout.write('{}\n'));
    } else if (command === 'profile-stop' && argument) {
      profiler.post('Profiler.stop').then(({ profile }) => {
        writeFileSync(argument, JSON.stringify(profile));
        profiler.disconnect();
        process.stdout.write('{}\n');
      });
    }
  });
  process.stdin.on('end', shutdown);
  process.stdout.write(`${JSON.stringify(info)}\n`);
}
