// The container health check (deploy/docker/healthcheck.mjs) runs every 15 s, so it reads the
// server's address, port and TLS itself, without the config loader or commander, and hands what it
// cannot settle for certain to them. That quick reading must never disagree with the server's own:
// for each set of flags, environment and config file, it finds what the loader finds, or leaves the
// answer to the loader.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { createProgram } from '../../src/cli/program.ts';

interface Target {
  host: string;
  port: number;
  tls: boolean;
}
type Env = Record<string, string | undefined>;
interface HealthcheckModule {
  serveArgumentsOf(argv: readonly string[]): string[];
  readTargetQuickly(args: readonly string[], env: Env): Promise<Target | undefined>;
  readTarget(args: readonly string[], env: Env): Promise<Target>;
}

const HEALTHCHECK = resolve('deploy/docker/healthcheck.mjs');
const healthcheck = (await import(pathToFileURL(HEALTHCHECK).href)) as HealthcheckModule;

/** What the loader makes of it: the target, or the error's message. */
async function full(args: readonly string[], env: Env): Promise<Target | string> {
  try {
    return await healthcheck.readTarget(args, env);
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  }
}

describe('the health check reads host, port and TLS as the server does', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-healthcheck-target-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** [what, args after `serve`, environment] the quick reading settles itself. */
  function settled(): Array<[string, string[], Env]> {
    const yaml = file(
      'maos.yaml',
      'host: 0.0.0.0\nport: 8443\ntls:\n  certFile: /c.pem\n  keyFile: /k.pem\n',
    );
    const json = file('maos.json', '\uFEFF{"host": "127.0.0.3", "port": 9300, "logLevel": "warn"}');
    const empty = file('empty.yaml', '');
    return [
      ['defaults', [], {}],
      ['MAOS_PORT and MAOS_HOST (the image)', [], { MAOS_PORT: '7070', MAOS_HOST: '0.0.0.0' }],
      ['a port with blanks around it', [], { MAOS_PORT: ' 8081 ' }],
      ['a name in lower case', [], { MAOS_port: '8082', MAOS_h_o_s_t: '127.0.0.4' }],
      ['IPv6 wildcard', [], { MAOS_HOST: '::', MAOS_PORT: '9000' }],
      ['IPv6 loopback', [], { MAOS_HOST: '::1' }],
      [
        'Kubernetes service links of a Service named maos',
        [],
        { MAOS_PORT: 'tcp://10.0.0.7:80', MAOS_SERVICE_HOST: '10.0.0.7', MAOS_PORT_80_TCP_ADDR: '10.0.0.7' },
      ],
      ['a YAML file', [], { MAOS_CONFIG: yaml }],
      ['a JSON file with a byte order mark', [], { MAOS_CONFIG: json }],
      [
        'a JSON file naming port and host in another section too',
        [],
        {
          MAOS_CONFIG: file(
            'metrics.json',
            '{"port": 9301, "metrics": {"port": 9302, "host": "127.0.0.1"}, "host": "127.0.0.7"}',
          ),
        },
      ],
      ['an empty file', [], { MAOS_CONFIG: empty }],
      ['the environment over the file', [], { MAOS_CONFIG: yaml, MAOS_PORT: '8444', MAOS_HOST: '127.0.0.5' }],
      [
        'other MAOS_ variables',
        [],
        { MAOS_LOG_LEVEL: 'warn', MAOS_SERVER: 'http://x', MAOS_TLS__KEY_FILE: '/k' },
      ],
      [
        'TLS from the environment',
        [],
        { MAOS_TLS__CERT_FILE: '/c.pem', MAOS_TLS__KEY_FILE: '/k.pem', MAOS_PORT: '8445' },
      ],
      ['TLS, spelt CERTFILE', [], { MAOS_TLS__CERTFILE: '/c.pem', MAOS_TLS__KEY_FILE: '/k.pem' }],
      ['--port over the environment', ['--port', '9100'], { MAOS_PORT: '8080' }],
      ['--port=', ['--port=9101', '--host=127.0.0.6'], {}],
      ['-p, -c, -d and --json', ['--json', '-p', '9102', '-c', json, '-d', '/data'], {}],
      ['--config over MAOS_CONFIG', [`--config=${yaml}`], { MAOS_CONFIG: json }],
      ['--host over the file', ['--host', '::'], { MAOS_CONFIG: json }],
    ];
  }

  /** [what, args, environment] only the loader settles (or refuses). */
  function forTheLoader(): Array<[string, string[], Env]> {
    const portFile = file('port.txt', '8083\n');
    const certPath = file('cert-path.txt', '/c.pem\n');
    return [
      ['MAOS_PORT_FILE', [], { MAOS_PORT_FILE: portFile }],
      ['MAOS_TLS as JSON', [], { MAOS_TLS: '{"certFile":"/c.pem","keyFile":"/k.pem"}' }],
      ['MAOS_TLS__CERT_FILE_FILE', [], { MAOS_TLS__CERT_FILE_FILE: certPath, MAOS_TLS__KEY_FILE: '/k' }],
      ['a port the server refuses', [], { MAOS_PORT: 'eighty' }],
      ['a port with a leading zero', [], { MAOS_PORT: '08080' }],
      ['a port out of range', [], { MAOS_PORT: '70000' }],
      ['an empty host', [], { MAOS_HOST: '' }],
      ['one key, two spellings', [], { MAOS_PORT: '8080', MAOS_Port: '8081' }],
      ['an empty MAOS_CONFIG', [], { MAOS_CONFIG: '' }],
      ['a missing file', [], { MAOS_CONFIG: join(dir, 'missing.yaml') }],
      ['a file that is no YAML', [], { MAOS_CONFIG: file('bad.yaml', 'port: [1,\n') }],
      ['a port that is text', [], { MAOS_CONFIG: file('text-port.yaml', 'port: "8080"\n') }],
      ['port_FILE in the file', [], { MAOS_CONFIG: file('port-file.yaml', `port_FILE: ${portFile}\n`) }],
      ['tls that is not a map', [], { MAOS_CONFIG: file('tls.yaml', 'tls: on\n') }],
      ['a key twice in a JSON file', [], { MAOS_CONFIG: file('twice.json', '{"port": 8080, "port": 8081}') }],
      // The same key, its name written with an escape: JSON.parse keeps the last, the loader refuses.
      [
        'a key twice in a JSON file, once escaped',
        [],
        { MAOS_CONFIG: file('twice-escaped.json', '{"port": 8080, "p\\u006frt": 8081}') },
      ],
      ['-p8080', ['-p8080'], {}],
      ['a port flag the server refuses', ['--port', '-1'], {}],
      ['a flag it does not know', ['--verbose'], {}],
    ];
  }

  test('what it settles, it settles as the loader does', async () => {
    for (const [what, args, env] of settled()) {
      const quick = await healthcheck.readTargetQuickly(args, env);
      assert.ok(quick !== undefined, `${what}: settled without the loader`);
      assert.deepEqual(quick, await full(args, env), what);
    }
  });

  test('the rest it leaves to the loader', async () => {
    for (const [what, args, env] of forTheLoader()) {
      assert.equal(await healthcheck.readTargetQuickly(args, env), undefined, what);
    }
    // The loader's own answers, for the record: the file and JSON forms are read, the rest refused.
    assert.deepEqual(await full([], { MAOS_PORT_FILE: join(dir, 'port.txt') }), {
      host: '127.0.0.1',
      port: 8083,
      tls: false,
    });
    assert.match(String(await full([], { MAOS_PORT: 'eighty' })), /^refused: /);
  });

  test('a wildcard bind of either family is probed on 127.0.0.1', async () => {
    for (const host of ['0.0.0.0', '::']) {
      assert.equal((await healthcheck.readTargetQuickly([], { MAOS_HOST: host }))?.host, '127.0.0.1');
      assert.equal(((await full([], { MAOS_HOST: host })) as Target).host, '127.0.0.1');
    }
  });
});

function quietIo() {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  return { stdout: sink, stderr: sink, env: { noColor: true } };
}

/** The command the real `maos` program runs for `words` (after `maos`) and its options. */
async function parsedByTheCli(
  words: readonly string[],
): Promise<{ name: string; options: object } | undefined> {
  let ran: Command | undefined;
  const record = async (...args: unknown[]) => {
    ran = args[args.length - 1] as Command;
  };
  const program = await createProgram(quietIo(), () => record);
  for (const command of [program, ...program.commands]) {
    command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (command.commands.length === 0) command.action(record);
  }
  try {
    await program.parseAsync([...words], { from: 'user' });
  } catch {
    return undefined;
  }
  return ran && { name: ran.name(), options: ran.opts() };
}

// The container's command is `tini -- node bin/maos.js <root options> serve <serve options>`: the
// check finds `serve` past every root option, also one that takes a value (`--server URL`), where
// it took the value for the command and probed the default port.
test('the health check finds serve after the root options, as the CLI does', async () => {
  const image = ['/usr/bin/tini', '--', 'node', '/app/bin/maos.js'];
  const root = await createProgram(quietIo(), () => async () => {}, null);
  const withValue = root.options.filter((option) => option.required || option.optional);
  assert.ok(withValue.length > 0, 'maos has root options that take a value');
  const lines: string[][] = [
    ...withValue.map((option) => [option.long as string, 'http://x', 'serve', '--port', '9200']),
    ...withValue.map((option) => [`${option.long}=http://x`, 'serve', '--port', '9200']),
    ['--json', '--server', 'http://x', '--token', 't', 'serve', '--port', '9200'],
    ['serve', '--port', '9200'],
  ];
  for (const words of lines) {
    const cli = await parsedByTheCli(words);
    assert.deepEqual(cli, { name: 'serve', options: { port: '9200' } }, `the CLI: maos ${words.join(' ')}`);
    const args = healthcheck.serveArgumentsOf([...image, ...words]);
    assert.deepEqual(args, ['--port', '9200'], `the check: maos ${words.join(' ')}`);
    assert.equal((await healthcheck.readTargetQuickly(args, {}))?.port, 9200, words.join(' '));
  }
  // Another command, or a value where the command would be: no serve, nothing read from it.
  for (const words of [
    ['--server', 'serve'],
    ['--server', 'http://x', 'run', 'serve'],
    ['mcp', 'serve'],
  ]) {
    assert.notEqual((await parsedByTheCli(words))?.name, 'serve', words.join(' '));
    assert.deepEqual(healthcheck.serveArgumentsOf([...image, ...words]), [], words.join(' '));
  }
  assert.deepEqual(healthcheck.serveArgumentsOf(['node', 'server.js', 'serve', '--port', '1']), []);
});

// What makes the check light: with the image's settings it loads no TypeScript (type stripping
// alone costs ~17 MB and tens of ms a run), no config loader, no zod, no commander.
test('the health check loads no TypeScript, config loader or commander on the common path', async () => {
  const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  const hook = `import { registerHooks } from 'node:module';
registerHooks({ load(url, context, next) { if (url.startsWith('file:')) process.stderr.write('loaded ' + url + '\\n'); return next(url, context); } });`;
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(
        process.execPath,
        ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, HEALTHCHECK],
        { env: { PATH: process.env.PATH, MAOS_HOST: '0.0.0.0', MAOS_PORT: String(port) }, stdio: 'pipe' },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      child.on('close', (code) => done({ code, stderr }));
    });
    assert.equal(code, 0, stderr);
    const loaded = stderr.split('\n').filter((line) => line.startsWith('loaded '));
    assert.ok(
      loaded.some((line) => line.endsWith('/healthcheck.mjs')),
      stderr,
    );
    assert.deepEqual(
      loaded.filter((line) => /\.ts$|\/node_modules\/|\/src\/config\//.test(line)),
      [],
      'modules loaded on the common path',
    );
  } finally {
    await new Promise((done) => server.close(done));
  }
});

/** A server bound to `::` in a network namespace whose IPv6 is disabled, probed by the check. */
const IPV6_DISABLED_PROBE = `
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
await new Promise((done) => server.listen(0, '::', done));
const env = { PATH: process.env.PATH, MAOS_HOST: '::', MAOS_PORT: String(server.address().port) };
const check = spawn(process.execPath, [process.argv[2]], { env, stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
check.stderr.on('data', (chunk) => { stderr += chunk; });
check.on('close', (code) => { console.log(JSON.stringify({ code, stderr })); server.close(); });
`;

const canUseNetworkNamespace =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--net', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' }).status === 0;

// Docker disables IPv6 in a container on a network without it: a server still binds `::` there
// (dual-stack, it takes IPv4), but ::1 does not exist. The check probed ::1 for `::` and failed
// (EADDRNOTAVAIL) on a healthy server started with MAOS_HOST=::.
test('a server bound to :: where IPv6 is disabled (a Docker network without IPv6) is healthy', {
  skip: canUseNetworkNamespace ? false : 'needs Linux, root, unshare and ip (iproute2)',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-healthcheck-ipv6-'));
  try {
    const script = join(dir, 'probe.mjs');
    writeFileSync(script, IPV6_DISABLED_PROBE);
    const result = spawnSync(
      'unshare',
      [
        '--net',
        'sh',
        '-c',
        'ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 && exec "$0" "$1" "$2"',
        process.execPath,
        script,
        HEALTHCHECK,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { code: 0, stderr: '' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
