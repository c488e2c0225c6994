// Container HEALTHCHECK: exits 0 when GET /healthz on the local server answers 2xx within 4 s.
// Plain node (no curl in the slim image). It probes where `maos serve` listens, resolved as the
// server resolves it: the server's own flags (--port, --host, --config; read from the container's
// command, PID 1: tini -- node bin/maos.js serve …), then the environment the check shares with
// the server (MAOS_PORT, MAOS_CONFIG …), then the config file. A server with tls.certFile serves
// only HTTPS; like a kubelet probe, the check does not verify the certificate of this connection.
// On failure it prints why on stderr (shown by `docker inspect`).
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const deadline = Date.now() + 4000;

/** The arguments after `serve` of the `maos serve` the container runs, or none. */
function serveArguments() {
  let argv;
  try {
    argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
  } catch {
    return [];
  }
  if (argv.at(-1) === '') argv.pop();
  const entry = argv.findIndex((arg) => /(^|\/)maos(\.js)?$/.test(arg));
  if (entry < 0) return [];
  // The command is the first word after the entry that is not a flag (`maos --json serve …`).
  const command = argv.findIndex((arg, i) => i > entry && !arg.startsWith('-'));
  return command >= 0 && argv[command] === 'serve' ? argv.slice(command + 1) : [];
}

/** Where to send GET /healthz: the server's port, its address (loopback for 0.0.0.0 and ::), TLS. */
async function target() {
  const { readServeArguments } = await import('../../src/cli/serve-options.ts');
  const { loadConfig } = await import('../../src/config/load.ts');
  const { configPath, overrides } = readServeArguments(serveArguments());
  const config = loadConfig({ configPath, overrides });
  // A server bound to every address answers on loopback.
  const host = config.host === '::' ? '::1' : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  return {
    host,
    port: config.port,
    tls: Boolean(config.tls.certFile),
  };
}

/** The status of GET /healthz, or the reason no HTTP answer came (refused, reset, TLS, timeout). */
function healthz({ host, port, tls }) {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        host,
        port,
        path: '/healthz',
        agent: false,
        timeout: Math.max(deadline - Date.now(), 1),
        ...(tls ? { rejectUnauthorized: false } : {}),
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
    req.on('error', (error) => resolve(error.code ?? error.message));
    req.end();
  });
}

let where;
try {
  where = await target();
} catch (error) {
  process.stderr.write(`healthcheck: cannot read the server's configuration: ${error.message}\n`);
  process.exit(1);
}
const url = `${where.tls ? 'https' : 'http'}://${where.host.includes(':') ? `[${where.host}]` : where.host}:${where.port}/healthz`;
if (where.port === 0) {
  process.stderr.write(
    'healthcheck: the server listens on port 0 (a free port picked at start): set a port\n',
  );
  process.exit(1);
}
const status = await healthz(where);
if (typeof status === 'number' && status >= 200 && status < 300) process.exitCode = 0;
else {
  process.stderr.write(`healthcheck: GET ${url}: ${status}\n`);
  process.exitCode = 1;
}
