// API latency benchmark: autocannon with many concurrent connections against GET /v1/sessions/:id
// of a real MAOS server (SQLite, one finished 3-task session), next to a bare Fastify hello-world
// measured in the same run on the same machine. Prints req/s and p50/p95/p99 latency.
//   node bench/api.ts [connections=1000] [seconds=10] [--auth=apikey|none|both] [--separate]
//                     [--profile=DIR]
// MAOS runs as a user runs it by default: auth mode `apikey` (the config default) with rate limits
// on. By default the servers run in this process, sharing one event loop with the load generator
// (as in the figures recorded so far); `--separate` starts each server in its own process
// (bench/api-target.ts) and adds its CPU time per request (steadier than req/s on a shared
// machine); `--profile=DIR` (implies --separate) writes a V8 CPU profile of each server's load.
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startTarget, type TargetInfo } from './api-target.ts';
import { startJsonLineProcess } from './child-process.ts';

const args = process.argv.slice(2);
const positional = args.filter((arg) => !arg.startsWith('--'));
const CONNECTIONS = Number(positional[0] ?? 1000);
const SECONDS = Number(positional[1] ?? 10);
const flag = (name: string) =>
  args
    .find((arg) => arg.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=');
const AUTH = flag('auth') ?? 'apikey';
if (!['apikey', 'none', 'both'].includes(AUTH)) throw new Error('--auth must be apikey, none or both');
// Writes a V8 CPU profile of each server during the measured load (not start-up) to this folder.
const PROFILE_DIR = flag('profile');
// Why in-process by default: comparable with earlier runs; --separate is the deployment-like shape.
const IN_PROCESS = !args.includes('--separate') && PROFILE_DIR === undefined;
const TARGET_SCRIPT = fileURLToPath(new URL('./api-target.ts', import.meta.url));

interface Figures {
  name: string;
  requestsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Server CPU (user + system) per answered request; null in-process (shared with autocannon). */
  cpuMicrosPerRequest: number | null;
}

/** A running target: its address and a reading of the CPU time it has used so far. */
interface Running {
  info: TargetInfo;
  readCpuMicros: (() => Promise<number>) | null;
  /** Sends a command to the target process and waits for its answer line. */
  command: ((line: string) => Promise<unknown>) | null;
  stop(): Promise<void>;
}

async function load(name: string, kind: string, target: Running): Promise<Figures> {
  const options = { url: target.info.url, headers: target.info.headers, timeout: 30 };
  // Warm-up so JIT and caches are settled before measuring.
  await autocannon({ ...options, connections: 50, duration: 2 });
  if (PROFILE_DIR) await target.command?.('profile-start');
  const cpuBefore = await target.readCpuMicros?.();
  const result = await autocannon({ ...options, connections: CONNECTIONS, duration: SECONDS });
  const cpuAfter = await target.readCpuMicros?.();
  if (PROFILE_DIR) await target.command?.(`profile-stop ${join(resolve(PROFILE_DIR), `${kind}.cpuprofile`)}`);
  return {
    name,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    // autocannon reports p90 and p97_5 but not p95: interpolate between them.
    p95: result.latency.p90 + ((result.latency.p97_5 - result.latency.p90) * (95 - 90)) / (97.5 - 90),
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    cpuMicrosPerRequest:
      cpuBefore === undefined || cpuAfter === undefined
        ? null
        : (cpuAfter - cpuBefore) / result.requests.total,
  };
}

/** Starts the target in a child process and waits for its ready line. */
async function startChild(kind: string): Promise<Running> {
  const target = await startJsonLineProcess(TARGET_SCRIPT, [kind], `${kind} server`);
  return {
    info: target.ready as TargetInfo,
    readCpuMicros: async () => ((await target.request('cpu')) as { cpuMicros: number }).cpuMicros,
    command: target.request,
    stop: target.stop,
  };
}

async function startInProcess(kind: string): Promise<Running> {
  const [info, stop] = await startTarget(kind);
  return { info, readCpuMicros: null, command: null, stop };
}

/** Starts a target, measures it and stops it. */
async function measure(name: string, kind: string): Promise<Figures> {
  const target = IN_PROCESS ? await startInProcess(kind) : await startChild(kind);
  try {
    return await load(name, kind, target);
  } finally {
    await target.stop();
  }
}

function row(figures: Figures): string {
  return [
    figures.name.padEnd(34),
    `${figures.requestsPerSecond.toFixed(0).padStart(7)} req/s`,
    `p50 ${figures.p50.toFixed(0).padStart(4)} ms`,
    `p95 ${figures.p95.toFixed(0).padStart(4)} ms`,
    `p99 ${figures.p99.toFixed(0).padStart(4)} ms`,
    figures.cpuMicrosPerRequest === null ? '' : `server CPU ${figures.cpuMicrosPerRequest.toFixed(0)} µs/req`,
    `errors ${figures.errors}`,
    `non-2xx ${figures.non2xx}`,
  ]
    .filter(Boolean)
    .join('  ');
}

if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
// Figures from a shared machine mean little without its load: printed for the start and the end.
const formatLoad = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
const loadAtStart = formatLoad();
const bare = await measure('bare Fastify hello-world', 'bare');
const results: Figures[] = [];
if (AUTH === 'apikey' || AUTH === 'both') {
  results.push(await measure('MAOS GET /v1/sessions/:id (apikey)', 'maos-apikey'));
}
if (AUTH === 'none' || AUTH === 'both') {
  results.push(await measure('MAOS GET /v1/sessions/:id (none)', 'maos-none'));
}
console.log(
  `\n${CONNECTIONS} connections, ${SECONDS} s each, ${IN_PROCESS ? 'servers in the load generator process' : 'each server in its own process'}, same machine`,
);
console.log('apikey = the default auth mode: one API key, rate limits on (set high enough never to reject)');
console.log(`load average (1, 5, 15 min): ${loadAtStart} at the start, ${formatLoad()} at the end`);
console.log(row(bare));
for (const figures of results) console.log(row(figures));
console.log('');
for (const figures of results) {
  const ratio = figures.requestsPerSecond / bare.requestsPerSecond;
  const cpuRatio =
    figures.cpuMicrosPerRequest && bare.cpuMicrosPerRequest
      ? `; bare/MAOS server CPU per request ${((bare.cpuMicrosPerRequest / figures.cpuMicrosPerRequest) * 100).toFixed(0)} %`
      : '';
  console.log(
    `${figures.name}: ${(ratio * 100).toFixed(0)} % of bare req/s (target ≥ 50 %)${cpuRatio}, p95 ${figures.p95.toFixed(0)} ms (target < 250 ms; SLO < 1000 ms)`,
  );
}
