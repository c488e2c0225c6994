// `maos support-bundle` writes a .tar.gz (read back with the system tar) holding version, redacted
// config, doctor report, log tail, metrics snapshot and database stats, and no secret from the config.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

const CLI = new URL('../../bin/maos.js', import.meta.url).pathname;
const RUNNER_SECRET = 'sk-test-6f1d2c9a7e4b4e0fa1b2';
const FILE_SECRET = 'file-held-secret-93b7d1e2';
const LOG_SECRET_LINE = `{"message":"provider call","apiToken":"${RUNNER_SECRET}"}`;
// A secret a JSON log line holds escaped: `"` and `\` do not appear in it as written in the config.
const QUOTED_SECRET = 'pass"word\\with-quote-4c1e';
// Two secrets, one the start of the other (a token and the same token with a suffix, say).
const SHORT_SECRET = 'shared-start-7d2a';
const LONG_SECRET = `${SHORT_SECRET}-private-tail-91fe`;
const QUOTED_LOG_LINE = JSON.stringify({ message: 'runner started', env: { QUOTED: QUOTED_SECRET } });
// The shortest secret redacted (4 characters), and a base64 key a URL holds encoded (`%2B`, `%2F`).
const SHORT_PIN = 'k7Qz';
const BASE64_SECRET = 'Zm9v+YmFy/YmF6-5e3b==';
const ENCODED_LOG_LINE = `{"message":"GET /hook?pin=${SHORT_PIN}&key=${encodeURIComponent(BASE64_SECRET)}"}`;
// Names that are no secrets though their tenant's or group's name reads like one.
const RUNNER_LOG_LINE = '{"message":"task ran on runner tests for a member of admin"}';

function run(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('support-bundle timed out'));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

describe('maos support-bundle', { timeout: 240_000 }, () => {
  let dir: string;
  let metricsServer: Server;
  let port = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-ops-bundle-'));
    const dataDir = join(dir, 'data');
    const handle = createDatabase({ dataDir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    await handle.close();
    // A stand-in for the running server: /metrics answers only with the right token.
    metricsServer = createServer((req, res) => {
      if (req.url === '/metrics' && req.headers.authorization === 'Bearer cli-token-abc') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end('# HELP maos_build_info x\nmaos_build_info 1\n');
      } else {
        res.writeHead(401).end();
      }
    });
    await new Promise<void>((resolve) => metricsServer.listen(0, '127.0.0.1', resolve));
    port = (metricsServer.address() as { port: number }).port;
    writeFileSync(join(dir, 'secret.txt'), `${FILE_SECRET}\n`);
    writeFileSync(
      join(dir, 'config.yaml'),
      [
        `dataDir: ${dataDir}`,
        'host: 127.0.0.1',
        `port: ${port}`,
        'runners:',
        '  tests:',
        '    command: ["npm", "test"]',
        '    env:',
        `      API_TOKEN: ${RUNNER_SECRET}`,
        `      DB_PASSWORD_FILE: ${join(dir, 'secret.txt')}`,
        '      PLAIN: visible-value',
        `      QUOTED: '${QUOTED_SECRET}'`,
        `      SHORT: ${SHORT_SECRET}`,
        `      LONG: ${LONG_SECRET}`,
        `      PIN: ${SHORT_PIN}`,
        `      BASE64: '${BASE64_SECRET}'`,
        // Tenant ids and IdP groups named like secrets: their runner and role names are none.
        'runnerAccess:',
        '  tenants:',
        '    token-team: [tests]',
        'auth:',
        '  oidc:',
        '    roleMapping:',
        '      secret-admins: [admin]',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'maos.log'),
      `${'{"message":"old line"}\n'.repeat(10)}${LOG_SECRET_LINE}\n${QUOTED_LOG_LINE}\n{"message":"key ${LONG_SECRET}"}\n${ENCODED_LOG_LINE}\n${RUNNER_LOG_LINE}\n`,
    );
  });

  after(async () => {
    await new Promise((resolve) => metricsServer.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('contains the expected files and no secret value from the config', async () => {
    const output = join(dir, 'bundle.tar.gz');
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            CLI,
            'support-bundle',
            '-o',
            output,
            '-c',
            join(dir, 'config.yaml'),
            '--log-file',
            join(dir, 'maos.log'),
          ],
          {
            cwd: dir,
            env: { ...process.env, MAOS_TOKEN: 'cli-token-abc' },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => {
          stdout += c;
        });
        child.stderr.on('data', (c) => {
          stderr += c;
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Wrote .*bundle\.tar\.gz/);

    const extracted = join(dir, 'extracted');
    mkdirSync(extracted);
    const tar = spawnSync('tar', ['-xzf', output, '-C', extracted], { encoding: 'utf8' });
    assert.equal(tar.status, 0, tar.stderr);
    const [root] = readdirSync(extracted);
    assert.match(root ?? '', /^maos-support-\d{8}T\d{6}Z$/);
    const names = readdirSync(join(extracted, root as string)).sort();
    assert.deepEqual(names, [
      'config.json',
      'database.json',
      'doctor.json',
      'doctor.txt',
      'logs.txt',
      'manifest.json',
      'metrics.txt',
      'version.json',
    ]);
    const read = (name: string) => readFileSync(join(extracted, root as string, name), 'utf8');
    assert.equal(
      JSON.parse(read('version.json')).maos,
      JSON.parse(readFileSync('package.json', 'utf8')).version,
    );
    const config = JSON.parse(read('config.json'));
    assert.equal(config.runners.tests.env.API_TOKEN, '[REDACTED]');
    assert.equal(config.runners.tests.env.DB_PASSWORD, '[REDACTED]');
    // A runner's environment is redacted whole (a name does not tell a secret); its names stay.
    assert.equal(config.runners.tests.env.PLAIN, '[REDACTED]');
    assert.equal(config.runners.tests.command[0], 'npm');
    assert.ok(Array.isArray(JSON.parse(read('doctor.json')).checks));
    assert.match(read('doctor.txt'), /config/);
    assert.match(read('metrics.txt'), /^maos_build_info 1$/m);
    assert.match(read('logs.txt'), /provider call/);
    assert.match(read('logs.txt'), /runner started/);
    assert.match(read('logs.txt'), /GET \/hook\?pin=\[REDACTED\]&key=\[REDACTED\]"/);
    assert.ok(read('logs.txt').includes(RUNNER_LOG_LINE), 'a runner or role name is no secret');
    assert.deepEqual(config.runnerAccess.tenants, { 'token-team': ['tests'] });
    assert.deepEqual(config.auth.oidc.roleMapping, { 'secret-admins': ['admin'] });
    const stats = JSON.parse(read('database.json'));
    assert.ok(stats.tables.some((t: { name: string; rows: number }) => t.name === 'tenants' && t.rows === 1));
    assert.ok(stats.files['maos.db'] > 0);

    for (const file of listFiles(extracted)) {
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(RUNNER_SECRET), `${file} holds the runner secret`);
      assert.ok(!text.includes(FILE_SECRET), `${file} holds the *_FILE secret`);
      assert.ok(!text.includes('with-quote-4c1e'), `${file} holds the secret with a quote, escaped`);
      assert.ok(!text.includes('private-tail-91fe'), `${file} holds the rest of the longer secret`);
      assert.ok(!text.includes(SHORT_PIN), `${file} holds the 4-character secret`);
      assert.ok(!text.includes('YmFy'), `${file} holds the base64 secret, URL-encoded or not`);
      assert.ok(!text.includes('cli-token-abc'), `${file} holds the CLI token`);
    }
  });

  test('takes --token, or the token `maos login` stored for the server; --json reports the archive', async () => {
    interface BundleJson {
      output: string;
      files: string[];
      notes: string[];
    }
    const config = join(dir, 'config.yaml');
    const withToken = await run(
      ['support-bundle', '--token', 'cli-token-abc', '--json', '-o', join(dir, 'token.tar.gz'), '-c', config],
      dir,
    );
    assert.equal(withToken.code, 0, withToken.stderr);
    const reported = JSON.parse(withToken.stdout) as BundleJson;
    assert.equal(reported.output, join(dir, 'token.tar.gz'));
    assert.ok(reported.files.includes('metrics.txt'), withToken.stdout);
    assert.ok(reported.notes.some((note) => note.startsWith('logs:')));

    // No token given: the one stored for the config's server address is used.
    const credentials = join(dir, 'credentials.json');
    writeFileSync(
      credentials,
      JSON.stringify({ servers: { [`http://127.0.0.1:${port}`]: { token: 'cli-token-abc' } } }),
    );
    const stored = await run(
      [
        'support-bundle',
        '--credentials',
        credentials,
        '--json',
        '-o',
        join(dir, 'stored.tar.gz'),
        '-c',
        config,
      ],
      dir,
    );
    assert.equal(stored.code, 0, stored.stderr);
    assert.ok((JSON.parse(stored.stdout) as BundleJson).files.includes('metrics.txt'), stored.stdout);

    const without = await run(
      [
        'support-bundle',
        '--credentials',
        join(dir, 'no-credentials.json'),
        '--json',
        '-o',
        join(dir, 'none.tar.gz'),
        '-c',
        config,
      ],
      dir,
    );
    const notes = (JSON.parse(without.stdout) as BundleJson).notes;
    assert.ok(
      notes.some((note) => /metrics: .* answered HTTP 401/.test(note)),
      notes.join('\n'),
    );
  });

  test('an existing output file is replaced owner-only, whatever its mode was', async () => {
    const output = join(dir, 'reused.tar.gz');
    writeFileSync(output, 'an earlier bundle', { mode: 0o644 });
    chmodSync(output, 0o644);
    const result = await run(['support-bundle', '-o', output, '-c', join(dir, 'config.yaml')], dir);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(statSync(output).mode & 0o777, 0o600);
    assert.equal(spawnSync('tar', ['-tzf', output]).status, 0, 'the new bundle replaced the old file');
  });

  test('a log file that cannot be read is a note in the bundle, not a failed command', async () => {
    // A folder given by mistake; a log file of another user (EACCES) is handled alike.
    const output = join(dir, 'unreadable-log.tar.gz');
    const result = await run(
      ['support-bundle', '--json', '-o', output, '-c', join(dir, 'config.yaml'), '--log-file', dir],
      dir,
    );
    assert.equal(result.code, 0, result.stderr);
    const { files, notes } = JSON.parse(result.stdout) as { files: string[]; notes: string[] };
    assert.ok(!files.includes('logs.txt'));
    assert.ok(files.includes('database.json'), 'the rest of the bundle is there');
    assert.ok(notes.includes(`logs: cannot read ${dir} (EISDIR)`), notes.join('\n'));
  });

  test('a metrics listener on a port fetch refuses is a note saying why, not "fetch failed"', async () => {
    writeFileSync(
      join(dir, 'blocked.yaml'),
      `dataDir: ${join(dir, 'data')}\nhost: 127.0.0.1\nmetrics:\n  port: 6000\n`,
    );
    const result = await run(
      ['support-bundle', '--json', '-o', join(dir, 'blocked.tar.gz'), '-c', join(dir, 'blocked.yaml')],
      dir,
    );
    assert.equal(result.code, 0, result.stderr);
    const notes = (JSON.parse(result.stdout) as { notes: string[] }).notes;
    assert.ok(
      notes.includes(
        `metrics: http://127.0.0.1:6000/metrics unreachable (port 6000 is one the HTTP client (Node's fetch) refuses for every request, as browsers do (a "bad port" of the fetch standard); use another port)`,
      ),
      notes.join('\n'),
    );
  });

  test('a server that serves HTTPS (tls.certFile) has its metrics read over HTTPS', {
    skip: skipWithoutOpenssl,
  }, async () => {
    // Asked over plain HTTP, its TLS listener gave no answer: the note said "unreachable".
    const certDir = join(dir, 'tls');
    mkdirSync(certDir);
    const { certFile, keyFile } = createSelfSignedCert(certDir);
    const server = createHttpsServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (req, res) => {
        if (req.url === '/metrics' && req.headers.authorization === 'Bearer cli-token-abc') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('maos_build_info 1\n');
        } else {
          res.writeHead(401).end();
        }
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const tlsPort = (server.address() as { port: number }).port;
      const config = join(dir, 'tls.yaml');
      writeFileSync(
        config,
        `dataDir: ${join(dir, 'data')}\nhost: 127.0.0.1\nport: ${tlsPort}\ntls:\n  certFile: ${certFile}\n  keyFile: ${keyFile}\n`,
      );
      const output = join(dir, 'tls.tar.gz');
      const result = await run(
        ['support-bundle', '--token', 'cli-token-abc', '--json', '-o', output, '-c', config],
        dir,
        { NODE_EXTRA_CA_CERTS: certFile },
      );
      assert.equal(result.code, 0, result.stderr);
      const { files, notes } = JSON.parse(result.stdout) as { files: string[]; notes: string[] };
      assert.ok(files.includes('metrics.txt'), notes.join('\n'));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('still writes a bundle when the config is invalid and nothing is reachable', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'port: nope\n');
    const result = await run(['support-bundle', '-c', join(dir, 'bad.yaml')], dir);
    assert.equal(result.code, 0, result.stderr);
    const archive = readdirSync(dir).find((name) => /^maos-support-.*\.tar\.gz$/.test(name));
    assert.ok(archive, 'default output name in the working directory');
    const listing = spawnSync('tar', ['-tzf', join(dir, archive)], { encoding: 'utf8' });
    assert.equal(listing.status, 0);
    const files = listing.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('/')[1]);
    assert.deepEqual(files.sort(), ['doctor.json', 'doctor.txt', 'manifest.json', 'version.json']);
  });
});
