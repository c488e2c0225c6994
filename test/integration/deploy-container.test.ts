// The container image and compose stack follow the operations rules: multi-stage Dockerfile on
// Node 24 slim, production dependencies only, non-root, exec-form entrypoint (tini as PID 1 reaping
// orphaned runner processes, node under it),
// HEALTHCHECK, data volume, no secrets; compose wires maos, postgres, prometheus, grafana and jaeger
// to files that exist. No Docker engine is needed: the files are parsed and checked.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { SECRET_KEY_PATTERN } from '../../src/config/schema.ts';
import { cannotRunCheckoutAs, nodeAs } from '../fixtures/run-as-user.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    let line = (lines[i] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const start = i + 1;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i += 1;
      const next = (lines[i] as string).trim();
      line = `${line.slice(0, -1).trimEnd()} ${next.startsWith('#') ? '' : next}`.trim();
    }
    const match = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(match, `Dockerfile line ${start} is not an instruction: ${line}`);
    out.push({ keyword: (match[1] as string).toUpperCase(), args: match[2] as string, line: start });
  }
  return out;
}

/** Instructions of each build stage (split at FROM). */
function stages(instructions: Instruction[]): Instruction[][] {
  const out: Instruction[][] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') out.push([]);
    out[out.length - 1]?.push(instruction);
  }
  return out;
}

/**
 * Whether the build context leaves a file out, as Docker reads .dockerignore: each pattern matches
 * a path relative to the context (`*` and `?` within a name, `**` any number of folders), a match on
 * a folder leaves out all below it, `!` takes a match back, and the last matching line decides.
 */
function dockerignoreMatcher(patterns: string[]): (file: string) => boolean {
  const rules = patterns.map((line) => {
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).trim().replace(/^\/+|\/+$/g, '');
    let source = '';
    for (let i = 0; i < pattern.length; i += 1) {
      const char = pattern[i] as string;
      if (pattern.startsWith('**/', i)) {
        source += '(?:.*/)?';
        i += 2;
      } else if (pattern.startsWith('**', i)) {
        source += '.*';
        i += 1;
      } else if (char === '*') source += '[^/]*';
      else if (char === '?') source += '[^/]';
      else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { negated, regex: new RegExp(`^${source}$`) };
  });
  return (file) => {
    const parts = file.split('/');
    const paths = parts.map((_, index) => parts.slice(0, index + 1).join('/'));
    let ignored = false;
    for (const rule of rules) if (paths.some((path) => rule.regex.test(path))) ignored = !rule.negated;
    return ignored;
  };
}

function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `not exec form: ${args}`);
  return parsed as string[];
}

/** The init of the image (Debian's tini package). */
const TINI = '/usr/bin/tini';

/** Root on Linux with unshare: a process can be run as PID 1 of a new PID namespace. */
const canUnshare =
  process.platform === 'linux' &&
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' }).status === 0;

const dockerfile = parseDockerfile(readFileSync('deploy/docker/Dockerfile', 'utf8'));
const dockerignore = readFileSync('.dockerignore', 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe('Dockerfile', () => {
  test('is multi-stage on Node.js 24 slim images of the Node.js release CI tests with', () => {
    const froms = dockerfile.filter((i) => i.keyword === 'FROM');
    assert.ok(froms.length >= 2, 'at least a dependency stage and a runtime stage');
    const nodeImage = dockerfile.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    assert.match(nodeImage?.args ?? '', /^NODE_IMAGE=node:24(\.\d+)*-[a-z]+-slim$/);
    // The whole version, not the moving `24` tag: the image runs the release the tests ran on (and
    // a rebuild of the same commit the same Node.js), which a new 24.x would otherwise change unseen.
    const tested = /^NODE_VERSION=(\S+)$/m.exec(readFileSync('.ci/run', 'utf8'))?.[1];
    assert.ok(tested, '.ci/run names its Node.js version');
    assert.match(nodeImage?.args ?? '', new RegExp(`^NODE_IMAGE=node:${tested.replaceAll('.', '\\.')}-`));
    for (const from of froms) assert.match(from.args, /^\$\{NODE_IMAGE\} AS \w+$/);
  });

  test('installs production dependencies only, with the lockfile', () => {
    const runs = dockerfile.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const installs = runs.filter((r) => /\bnpm (ci|install|i)\b/.test(r));
    assert.ok(installs.length > 0);
    for (const install of installs) {
      assert.match(install, /\bnpm ci\b/, 'npm ci (lockfile) rather than npm install');
      assert.match(install, /--omit=dev/, 'no dev dependencies');
    }
  });

  test('runtime stage: non-root user, exec-form node entrypoint, HEALTHCHECK, data volume', () => {
    const runtime = stages(dockerfile).at(-1) as Instruction[];
    const user = runtime.filter((i) => i.keyword === 'USER').at(-1);
    assert.ok(user, 'USER is set in the runtime stage');
    assert.doesNotMatch(user.args, /^(root|0)(:|$)/);
    // By number: the kubelet refuses to start a runAsNonRoot container without runAsUser whose image
    // user is a name ("image has non-numeric user, cannot verify user is non-root"). It is the node
    // image's `node` (1000:1000), who owns /data, and the chart's pod user.
    assert.match(user.args, /^[1-9]\d*:[1-9]\d*$/);
    const pod = parseYaml(readFileSync('deploy/helm/maos/values.yaml', 'utf8')).podSecurityContext;
    assert.equal(user.args, `${pod.runAsUser}:${pod.runAsGroup}`);
    const entrypoint = runtime.find((i) => i.keyword === 'ENTRYPOINT');
    assert.ok(entrypoint);
    const argv = execForm(entrypoint.args);
    // No shell (SIGTERM reaches node through tini); tini reaps what node never waits for.
    assert.deepEqual(argv.slice(0, 3), [TINI, '--', 'node'], 'tini is PID 1 and runs node');
    assert.ok(existsSync(argv[3] as string), `${argv[3]} exists`);
    const installs = runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    assert.ok(
      installs.some((r) => /apt-get install .*\btini\b/.test(r)),
      'the runtime stage installs tini',
    );
    const cmd = runtime.find((i) => i.keyword === 'CMD');
    assert.deepEqual(execForm(cmd?.args ?? ''), ['serve']);
    const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    assert.ok(healthcheck, 'HEALTHCHECK present');
    const check = execForm(healthcheck.args.replace(/^.*?\bCMD\s+/, ''));
    assert.equal(check[0], 'node');
    assert.ok(existsSync(check[1] as string));
    assert.ok(
      runtime.some((i) => i.keyword === 'RUN' && /chown node:node \/data && chmod 750 \/data/.test(i.args)),
      'the data directory is the runtime user’s, 0750 (as MAOS creates one; maos doctor warns about a looser one)',
    );
    const volume = runtime.find((i) => i.keyword === 'VOLUME');
    assert.deepEqual(execForm(volume?.args ?? ''), ['/data']);
    const env = runtime
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /MAOS_DATA_DIR=\/data/);
    assert.match(env, /NODE_ENV=production/);
    // maos_build_info{revision} reads REVISION beside package.json when there is no .git.
    const runs = runtime
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join(' ');
    assert.match(runs, /echo "\$\{MAOS_REVISION\}" > \/app\/REVISION/);
    assert.ok(runtime.some((i) => i.keyword === 'ARG' && i.args.startsWith('MAOS_REVISION')));
  });

  test('per-build values (version, revision) come after the layers every build reuses', () => {
    // Every RUN after an ARG in its stage gets the ARG in its environment: a new value (each commit's
    // revision) is a cache miss for all of them, and so for every layer built after them.
    for (const stage of stages(dockerfile)) {
      for (const [index, arg] of stage.entries()) {
        if (arg.keyword !== 'ARG' || !/^MAOS_(VERSION|REVISION)\b/.test(arg.args)) continue;
        const name = (/^(\w+)/.exec(arg.args) as RegExpExecArray)[1] as string;
        const reusable = stage
          .slice(index + 1)
          .filter(
            (i) =>
              ['RUN', 'COPY', 'ADD'].includes(i.keyword) && !/\$\{MAOS_(VERSION|REVISION)\}/.test(i.args),
          );
        assert.deepEqual(
          reusable.map((i) => `line ${i.line}: ${i.keyword} ${i.args.slice(0, 40)}`),
          [],
          `ARG ${name} (line ${arg.line}) comes after the build steps that do not use it`,
        );
      }
    }
  });

  test('holds no secrets and copies only files that exist and are not ignored', () => {
    for (const instruction of dockerfile.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const assignment of instruction.args.split(/\s+/)) {
        const name = assignment.split('=')[0] as string;
        assert.doesNotMatch(name, SECRET_KEY_PATTERN, `${name} looks like a secret baked into the image`);
      }
    }
    for (const copy of dockerfile.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(source), `COPY source ${source} exists`);
        const top = source.split('/')[0] as string;
        assert.ok(
          !dockerignore.includes(top) && !dockerignore.includes(source),
          `${source} is not in .dockerignore`,
        );
      }
    }
  });

  test('.dockerignore keeps local state, dependencies and secrets out of the build context', () => {
    for (const entry of ['.git', 'node_modules', '.toolchain', '.maos', '.env', 'test']) {
      assert.ok(dockerignore.includes(entry), `.dockerignore lists ${entry}`);
    }
  });

  test('no file of the tests reaches the image: what the COPY lines take, .dockerignore applied', () => {
    const ignored = dockerignoreMatcher(dockerignore);
    // The matcher itself: a pattern, its `**` and the folders below a matched one.
    assert.ok(ignored('test/fixtures/server.ts') && ignored('src/a/b.test.ts') && ignored('.git/HEAD'));
    assert.ok(!ignored('src/app.ts') && !ignored('web/console/latest-read.js'));
    const runtime = stages(dockerfile).at(-1) as Instruction[];
    const sources = runtime
      .filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))
      .flatMap((copy) =>
        copy.args
          .split(/\s+/)
          .filter((part) => !part.startsWith('--'))
          .slice(0, -1),
      );
    const tracked = spawnSync('git', ['ls-files', '-z', '--', ...sources], { encoding: 'utf8' });
    assert.equal(tracked.status, 0, tracked.stderr);
    const shipped = tracked.stdout.split('\0').filter((file) => file !== '' && !ignored(file));
    assert.ok(shipped.includes('src/app.ts') && shipped.includes('bin/maos.js'), 'the sources are copied');
    // Unit tests (*.test.ts) and the helpers only they import (*.test-support.ts, test-support.ts).
    const testFiles = shipped.filter((file) => /(^|[/.-])test([.-]support)?\.[cm]?[jt]s$/.test(file));
    assert.deepEqual(testFiles, []);
  });

  test('the healthcheck script exits 0 on a healthy server and 1 otherwise', async () => {
    let status = 200;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    const port = await listenOnLoopback(server);
    const runCheck = (checkPort: number) => runHealthcheck({ MAOS_PORT: String(checkPort) });
    try {
      assert.deepEqual(await runCheck(port), { code: 0, stderr: '' });
      status = 503;
      assert.deepEqual(await runCheck(port), {
        code: 1,
        stderr: `healthcheck: GET http://127.0.0.1:${port}/healthz: 503\n`,
      });
    } finally {
      await new Promise((done) => server.close(done));
    }
    const closed = await runCheck(port);
    assert.equal(closed.code, 1, 'nothing listening');
    assert.match(closed.stderr, /ECONNREFUSED/);
  });

  test('the healthcheck script probes the port the server reads: config file, MAOS_PORT over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-healthcheck-'));
    const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    const port = await listenOnLoopback(server);
    // A port nothing listens on: another server's, closed again.
    const other = createServer();
    const otherPort = await listenOnLoopback(other);
    await new Promise((done) => other.close(done));
    try {
      const config = join(dir, 'maos.yaml');
      writeFileSync(config, `port: ${port}\n`);
      assert.deepEqual(await runHealthcheck({ MAOS_CONFIG: config }), { code: 0, stderr: '' });
      // The variable wins over the file, for the server as for the check (the image sets MAOS_PORT).
      assert.equal((await runHealthcheck({ MAOS_CONFIG: config, MAOS_PORT: String(otherPort) })).code, 1);
      writeFileSync(config, `port: ${otherPort}\n`);
      assert.deepEqual(await runHealthcheck({ MAOS_CONFIG: config, MAOS_PORT: String(port) }), {
        code: 0,
        stderr: '',
      });
      // No fixed port to probe, and a configuration the server would refuse: unhealthy, saying why.
      const picked = await runHealthcheck({ MAOS_PORT: '0' });
      assert.equal(picked.code, 1);
      assert.match(picked.stderr, /^healthcheck: the server listens on port 0 /);
      const invalid = await runHealthcheck({ MAOS_PORT: 'eighty' });
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /^healthcheck: cannot read the server's configuration: /);
    } finally {
      await new Promise((done) => server.close(done));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the healthcheck script follows a server that serves HTTPS (tls.certFile)', {
    skip: skipWithoutOpenssl,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-healthcheck-'));
    const { certFile, keyFile } = createSelfSignedCert(dir);
    let status = 200;
    const server = createHttpsServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (req, res) => {
        res.writeHead(req.url === '/healthz' ? status : 404).end();
      },
    );
    const port = await listenOnLoopback(server);
    const runCheck = () =>
      runHealthcheck({
        MAOS_PORT: String(port),
        MAOS_TLS__CERT_FILE: certFile,
        MAOS_TLS__KEY_FILE: keyFile,
      });
    try {
      assert.equal((await runCheck()).code, 0, 'healthy over HTTPS');
      status = 503;
      assert.equal((await runCheck()).code, 1, 'unhealthy over HTTPS');
    } finally {
      await new Promise((done) => server.close(done));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The image's command with flags (`docker run maos:… serve --port 8080`): the check, run in the
  // container beside it, reads them from PID 1 (tini) as `maos serve` read them.
  test('the healthcheck script follows the flags of the serve command the container runs', {
    skip: canUnshare
      ? existsSync(TINI)
        ? spawnSync('nsenter', ['--version'], { stdio: 'ignore' }).status === 0
          ? false
          : 'needs nsenter (util-linux)'
        : `${TINI} not found: apt-get install -y --no-install-recommends tini`
      : 'needs Linux, root and unshare to run a process as PID 1',
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-healthcheck-pid1-'));
    const free = createServer();
    const port = await listenOnLoopback(free);
    await new Promise((done) => free.close(done));
    // The address in a config file named by --config, the port by --port, over the image's
    // MAOS_PORT=7070 (another port here: 7070 may be taken on this machine).
    const config = join(dir, 'maos.json');
    writeFileSync(config, JSON.stringify({ host: '127.0.0.2', auth: { mode: 'none' }, logLevel: 'warn' }));
    const imagePort = String(port === 65535 ? port - 1 : port + 1);
    const runtime = stages(dockerfile).at(-1) as Instruction[];
    const entrypoint = execForm(runtime.find((i) => i.keyword === 'ENTRYPOINT')?.args ?? '[]');
    const cmd = execForm(runtime.find((i) => i.keyword === 'CMD')?.args ?? '[]');
    const argv = [
      ...entrypoint.map((arg) => (arg === 'node' ? process.execPath : arg)),
      ...cmd,
      '--config',
      config,
      `--port=${port}`,
      '-d',
      join(dir, 'data'),
    ];
    const env = { ...environmentWithoutMaos(), MAOS_PORT: imagePort };
    // --kill-child: the namespace (its PID 1, and with it the server) ends with unshare.
    const container = spawn('unshare', ['--pid', '--fork', '--kill-child=SIGTERM', '--mount-proc', ...argv], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise((done) => container.on('close', done));
    let pid1 = '';
    try {
      await new Promise<void>((started, failed) => {
        container.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
          if (/MAOS listening on http:\/\/127\.0\.0\.2:\d+/.test(stderr)) started();
        });
        container.on('close', (code) => failed(new Error(`the server exited (${code}): ${stderr}`)));
      });
      assert.match(stderr, new RegExp(`listening on http://127\\.0\\.0\\.2:${port}\\b`));
      // PID 1 of the namespace as this machine numbers it: unshare's only child.
      pid1 = readFileSync(`/proc/${container.pid}/task/${container.pid}/children`, 'utf8').trim();
      assert.match(pid1, /^\d+$/);
      const check = spawnSync(
        'nsenter',
        [
          '--target',
          pid1,
          '--pid',
          '--mount',
          '--',
          process.execPath,
          resolve('deploy/docker/healthcheck.mjs'),
        ],
        { env, encoding: 'utf8', timeout: 30_000 },
      );
      assert.equal(check.status, 0, check.stderr);
      assert.equal(check.stderr, '');
    } finally {
      // tini hands SIGTERM to the server, as `docker stop` does.
      if (/^\d+$/.test(pid1)) process.kill(Number(pid1), 'SIGTERM');
      else container.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The environment of this process without MAOS_* variables (as the image starts: only its own). */
function environmentWithoutMaos(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('MAOS_')) env[key] = value;
  }
  return env;
}

/** Runs deploy/docker/healthcheck.mjs with `env` over a MAOS_-free environment. */
function runHealthcheck(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['deploy/docker/healthcheck.mjs'], {
      env: { ...environmentWithoutMaos(), ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('close', (code) => done({ code, stderr }));
  });
}

/** Listens on 127.0.0.1, a free port; returns the port. */
async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return (server.address() as { port: number }).port;
}

/** Zombie processes in the current PID namespace (state Z in /proc/<pid>/stat). */
const COUNT_ZOMBIES = `
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
// A runner as MAOS starts one: its own process group, with children of its own; then killed whole.
const child = spawn('sh', ['-c', 'sleep 60 & sleep 60 & wait'], { detached: true, stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
process.kill(-child.pid, 'SIGKILL');
await new Promise((r) => child.on('exit', r));
await new Promise((r) => setTimeout(r, 500));
const zombies = readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => {
  try { return / Z /.test(readFileSync('/proc/' + d + '/stat', 'utf8')); } catch { return false; }
});
console.log(zombies.length);
`;

/** Runs `argv` as PID 1 of a new PID namespace (Linux, root); returns its stdout. */
function runAsPid1(argv: string[]): string {
  const result = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', ...argv], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

describe('the image init (tini) as PID 1', () => {
  const skip = !canUnshare
    ? 'needs Linux, root and unshare to run a process as PID 1'
    : existsSync(TINI)
      ? false
      : `${TINI} not found: apt-get install -y --no-install-recommends tini`;

  test('reaps the processes of a killed runner group, which node as PID 1 leaves as zombies', {
    skip,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-pid1-'));
    try {
      const script = join(dir, 'runner.mjs');
      writeFileSync(script, COUNT_ZOMBIES);
      // Why the image has an init: node as PID 1 never waits for the orphaned sleeps.
      assert.equal(runAsPid1([process.execPath, script]), '2');
      assert.equal(runAsPid1([TINI, '--', process.execPath, script]), '0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the docs container commands, as the image user', () => {
  const docs = readFileSync('docs/operations.md', 'utf8');
  const section = docs.slice(docs.indexOf('### Container image'), docs.indexOf('### Docker Compose'));
  const commands = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

  test('every host file mounted into the container is handed to the image user (uid 1000) first', () => {
    const mounts = [...commands.matchAll(/-v "\$PWD\/([^:"]+):/g)].map((m) => m[1] as string);
    assert.ok(mounts.length > 0, 'the docs mount a key file');
    for (const file of mounts) {
      assert.match(commands, new RegExp(`chown 1000(:1000)? ${file.replace('.', '\\.')}\\b`), file);
    }
  });

  test('the documented key (openssl genpkey, mode 0600) is unreadable for uid 1000 until chowned', {
    skip: hasOpenssl ? cannotRunCheckoutAs(1000) : 'needs openssl',
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-keyfile-'));
    try {
      chmodSync(dir, 0o755);
      const key = join(dir, 'audit-signing-key.pem');
      const made = spawnSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
      assert.equal(made.status, 0, String(made.stderr));
      // `maos config check` as the image's user, with the variable the docs set.
      const asUser = nodeAs(1000, ['bin/maos.js', 'config', 'check']);
      const check = () =>
        spawnSync(asUser.file, asUser.args, {
          ...asUser.options,
          encoding: 'utf8',
          timeout: 60_000,
          env: {
            PATH: process.env.PATH,
            HOME: dir,
            MAOS_DATA_DIR: join(dir, 'data'),
            MAOS_AUDIT__SIGNING_KEY_FILE: key,
          },
        });
      const refused = check();
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /audit\.signingKey_FILE: cannot read .* \(EACCES\)/);
      chownSync(key, 1000, 1000);
      const accepted = check();
      assert.equal(accepted.status, 0, accepted.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('compose stack', () => {
  const composePath = 'deploy/compose/compose.yaml';
  const compose = parseYaml(readFileSync(composePath, 'utf8'), { merge: true });
  const services = compose.services as Record<string, Record<string, unknown>>;

  test('runs maos, its migration, postgres, prometheus, grafana and jaeger', () => {
    for (const name of ['maos', 'migrate', 'postgres', 'prometheus', 'grafana', 'jaeger']) {
      assert.ok(services[name], `service ${name}`);
      assert.ok(services[name]?.image || services[name]?.build, `${name} has an image or a build`);
    }
    const build = services.migrate?.build as { context: string; dockerfile: string };
    const context = resolve(dirname(composePath), build.context);
    assert.ok(statSync(join(context, build.dockerfile)).isFile(), 'the build points at the Dockerfile');
    assert.deepEqual(services.migrate?.command, ['migrate']);
    assert.deepEqual(services.maos?.command, ['serve']);
    assert.equal(
      (services.maos?.depends_on as Record<string, { condition: string }> | undefined)?.migrate?.condition,
      'service_completed_successfully',
    );
    assert.equal(
      (services.migrate?.depends_on as Record<string, { condition: string }> | undefined)?.postgres
        ?.condition,
      'service_healthy',
    );
  });

  test('maos is configured for PostgreSQL, OTLP to jaeger and a scrapeable metrics port', () => {
    const env = services.maos?.environment as Record<string, string>;
    assert.match(
      env.MAOS_STORE__URL ?? '',
      /^postgres:\/\/maos:\$\{POSTGRES_PASSWORD:-[^}]+\}@postgres:5432\/maos$/,
    );
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318');
    const prometheus = parseYaml(readFileSync('deploy/compose/prometheus.yml', 'utf8'));
    const targets = prometheus.scrape_configs.find((c: { job_name: string }) => c.job_name === 'maos')
      .static_configs[0].targets;
    assert.deepEqual(targets, [`maos:${env.MAOS_METRICS__PORT}`]);
    assert.equal(env.MAOS_METRICS__HOST, '0.0.0.0');
    assert.ok(services.maos?.healthcheck, 'maos has a healthcheck');
    assert.ok(services.postgres?.healthcheck, 'postgres has a healthcheck');
    assert.equal(services.maos?.read_only, true);
  });

  test('published ports listen on loopback only: Prometheus, Jaeger and a default-password Grafana answer anyone', () => {
    // The lifecycle API lets whoever reaches Prometheus stop it (POST /-/quit).
    assert.ok(((services.prometheus?.command ?? []) as string[]).includes('--web.enable-lifecycle'));
    assert.match(
      String(
        (services.grafana?.environment as Record<string, string> | undefined)?.GF_SECURITY_ADMIN_PASSWORD,
      ),
      /:-/,
    );
    const published = Object.entries(services).flatMap(([name, service]) =>
      ((service.ports as string[] | undefined) ?? []).map((port) => ({ name, port: String(port) })),
    );
    assert.deepEqual(published.map((p) => p.name).sort(), ['grafana', 'jaeger', 'maos', 'prometheus']);
    for (const { name, port } of published) {
      // host address : host port : container port (a port without an address binds every interface).
      assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${port} on every interface`);
    }
    // The README's URLs are the loopback ones.
    for (const [, host] of readFileSync('deploy/compose/README.md', 'utf8').matchAll(
      /https?:\/\/([^/:\s|]+)/g,
    )) {
      assert.equal(host, '127.0.0.1');
    }
  });

  test('passwords come from the environment, not from the file', () => {
    const text = readFileSync(composePath, 'utf8');
    for (const match of text.matchAll(/^\s*([A-Z_]*PASSWORD[A-Z_]*):\s*(.+)$/gm)) {
      assert.match(
        match[2] as string,
        /^\$\{[A-Z_]+(:-[^}]*)?\}$/,
        `${match[1]} is taken from the environment`,
      );
    }
  });

  test('every mounted file exists, named volumes are declared, and the rules and dashboards are loaded', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, service] of Object.entries(services)) {
      for (const volume of (service.volumes as string[] | undefined) ?? []) {
        const [source, target] = volume.split(':');
        if (source?.startsWith('.')) {
          assert.ok(existsSync(resolve(dirname(composePath), source)), `${name}: ${source} exists`);
        } else {
          assert.ok(declared.includes(source as string), `${name}: volume ${source} is declared`);
        }
        assert.ok(target?.startsWith('/'), `${name}: ${volume} mounts at an absolute path`);
      }
    }
    const prometheus = parseYaml(readFileSync('deploy/compose/prometheus.yml', 'utf8'));
    assert.deepEqual(prometheus.rule_files, ['/etc/prometheus/rules/*.yml']);
    const rules = readdirSync('deploy/prometheus/rules').filter((f) => f.endsWith('.yml'));
    assert.ok(rules.length > 0, 'alert and recording rules are shipped');
    const provider = parseYaml(readFileSync('deploy/grafana/provisioning/dashboards.yaml', 'utf8'));
    const mount = ((services.grafana?.volumes ?? []) as string[]).find((v) =>
      v.startsWith('../grafana/dashboards:'),
    );
    assert.equal(
      mount?.split(':')[1],
      provider.providers[0].options.path,
      'dashboards are mounted where the provider looks',
    );
    assert.ok(readdirSync('deploy/grafana/dashboards').some((f) => f.endsWith('.json')));
    const datasources = parseYaml(readFileSync('deploy/compose/grafana/datasources.yaml', 'utf8'));
    assert.equal(datasources.datasources[0].url, 'http://prometheus:9090');
  });
});
