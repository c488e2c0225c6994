// `maos doctor` passes on a good installation and fails, with a fix hint and a non-zero exit, on each
// problem it detects: invalid config, unusable data dir, low disk, bad or outdated database, clock skew,
// unreachable OIDC discovery or provider.
import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { checkOidc } from '../../src/cli/ops/doctor-checks.ts';
import { findOidcIssuer } from '../../src/cli/ops/doctor-remote.ts';
import type { Config } from '../../src/config/schema.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

const CLI = new URL('../../bin/maos.js', import.meta.url).pathname;
/** Why 10 s: a bound for answers of an in-process server, which a busy machine may delay past 2 s. */
const OIDC_CHECK_TIMEOUT_MS = 10_000;

interface Check {
  name: string;
  status: string;
  message: string;
  fix?: string;
}

interface Doctor {
  code: number | null;
  ok: boolean;
  checks: Check[];
  text: string;
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      reject(new Error('doctor timed out'));
    }, 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `maos doctor --json`; with `withText`, also the human output (and checks both exit alike). */
async function doctor(args: string[], withText = false): Promise<Doctor> {
  const json = await run(['doctor', '--json', ...args]);
  const report = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
  let text = '';
  if (withText) {
    const human = await run(['doctor', ...args]);
    assert.equal(human.code, json.code, 'text and JSON runs agree');
    text = human.stdout;
  }
  return { code: json.code, ...report, text };
}

function check(report: Doctor, name: string): Check {
  const found = report.checks.find((c) => c.name === name);
  assert.ok(found, `check ${name} is reported`);
  return found;
}

/** A server whose Date header is `offsetMs` away from now, optionally serving OIDC discovery. */
async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, base: string) => void,
): Promise<{ server: Server; base: string }> {
  let base = '';
  const server = createServer((req, res) => handler(req, res, base));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { server, base };
}

describe('maos doctor', { timeout: 400_000 }, () => {
  let dir: string;
  let dataDir: string;
  let goodConfig: string;
  let clockServer: { server: Server; base: string };
  let skewedServer: { server: Server; base: string };

  function writeConfig(body: string): string {
    const path = join(dir, `config-${readdirSync(dir).length}.yaml`);
    writeFileSync(path, body);
    return path;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-ops-doctor-'));
    dataDir = join(dir, 'data');
    mkdirSync(dataDir, { mode: 0o750 });
    const handle = createDatabase({ dataDir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    await handle.close();
    goodConfig = writeConfig(`dataDir: ${dataDir}\nport: 0\n`);
    clockServer = await startServer((_req, res) => res.writeHead(200).end('ok'));
    skewedServer = await startServer((_req, res) => {
      res.sendDate = false;
      res.writeHead(200, { date: new Date(Date.now() - 300_000).toUTCString() }).end('ok');
    });
  });

  after(async () => {
    await new Promise((resolve) => clockServer.server.close(resolve));
    await new Promise((resolve) => skewedServer.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('passes on a good installation', async () => {
    const report = await doctor(['-c', goodConfig, '--server', clockServer.base, '--min-free-mb', '1'], true);
    assert.equal(report.code, 0, report.text);
    assert.equal(report.ok, true);
    for (const name of ['config', 'data-dir', 'disk-space', 'database', 'migrations', 'clock']) {
      assert.equal(check(report, name).status, 'pass', `${name}: ${check(report, name).message}`);
    }
    assert.equal(check(report, 'oidc').status, 'skip');
    assert.match(report.text, /^PASS {2}config/m);
    assert.match(report.text, /All checks passed/);
  });

  test('fails on an invalid config and skips what needs it', async () => {
    const bad = writeConfig(`dataDir: ${dataDir}\nport: not-a-port\nnoSuchKey: 1\n`);
    const report = await doctor(['-c', bad], true);
    assert.equal(report.code, 1);
    const config = check(report, 'config');
    assert.equal(config.status, 'fail');
    assert.match(config.message, /port/);
    assert.match(config.message, /noSuchKey/);
    assert.ok(config.fix);
    assert.equal(check(report, 'database').status, 'skip');
    assert.match(report.text, /^FAIL {2}config/m);
    assert.match(report.text, /^ {6}fix: /m);
  });

  test('fails when the data dir is not a usable directory', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const report = await doctor(['-c', writeConfig(`dataDir: ${file}\nport: 0\n`), '--min-free-mb', '1']);
    assert.equal(report.code, 1);
    const dataDirCheck = check(report, 'data-dir');
    assert.equal(dataDirCheck.status, 'fail');
    assert.match(dataDirCheck.message, /not a directory/);
    assert.match(dataDirCheck.fix ?? '', /mkdir -p/);
  });

  test('warns, without failing, when the data dir or the database is more open than 0750/0600, with the chmod that fixes it', async () => {
    const openDir = join(dir, 'open');
    const handle = createDatabase({ dataDir: openDir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    await handle.close();
    const database = join(openDir, 'maos.db');
    const config = writeConfig(`dataDir: ${openDir}\nport: 0\n`);
    assert.equal(check(await doctor(['-c', config, '--min-free-mb', '1']), 'data-dir').status, 'pass');

    chmodSync(openDir, 0o755);
    chmodSync(database, 0o644);
    const report = await doctor(['-c', config, '--min-free-mb', '1'], true);
    assert.equal(report.code, 0, report.text);
    const dataDirCheck = check(report, 'data-dir');
    assert.equal(dataDirCheck.status, 'warn');
    assert.match(dataDirCheck.message, /open is 0755 \(world-readable, world-searchable\)/);
    assert.match(dataDirCheck.message, /maos\.db is 0644 \(group-readable, world-readable\)/);
    assert.match(dataDirCheck.fix ?? '', new RegExp(`^chmod 750 ${openDir} && chmod 600 ${database} `));
    assert.match(report.text, /^WARN {2}data-dir/m);

    // Only the group, and only the database: named as such.
    chmodSync(openDir, 0o750);
    chmodSync(database, 0o660);
    const groupOnly = check(await doctor(['-c', config, '--min-free-mb', '1']), 'data-dir');
    assert.equal(groupOnly.status, 'warn');
    assert.doesNotMatch(groupOnly.message, /open is/);
    assert.match(groupOnly.message, /maos\.db is 0660 \(group-readable, group-writable\)/);

    // The fix line, run as printed, closes it.
    execSync((groupOnly.fix ?? '').replace(/ \(.*\)$/, ''));
    assert.equal(check(await doctor(['-c', config, '--min-free-mb', '1']), 'data-dir').status, 'pass');
  });

  test('fails when free space is below the minimum', async () => {
    const report = await doctor(['-c', goodConfig, '--min-free-mb', String(1024 * 1024 * 1024)]);
    assert.equal(report.code, 1);
    const disk = check(report, 'disk-space');
    assert.equal(disk.status, 'fail');
    assert.match(disk.message, /below the .* minimum/);
    assert.ok(disk.fix);
  });

  test('checks the free space of every file system a configured location is on, each once', async (t) => {
    // A second file system: /dev/shm (tmpfs) where the machine has it apart from the temp directory.
    const otherFs = '/dev/shm';
    if (!existsSync(otherFs) || statSync(otherFs).dev === statSync(dir).dev) {
      t.skip('no second file system at /dev/shm');
      return;
    }
    const elsewhere = mkdtempSync(join(otherFs, 'maos-ops-doctor-'));
    try {
      const disks = (report: Doctor) => report.checks.filter((c) => c.name === 'disk-space');
      // Everything under the data directory: one check, as before.
      assert.equal(disks(await doctor(['-c', goodConfig, '--min-free-mb', '1'])).length, 1);

      const config = writeConfig(
        [
          `dataDir: ${dataDir}`,
          'port: 0',
          `store: { url: "sqlite:${join(elsewhere, 'db', 'maos.db')}" }`,
          `audit: { checkpointDir: ${join(elsewhere, 'checkpoints')} }`,
          'runners:',
          `  build: { command: ["true"], cwd: ${join(dir, 'repo')} }`,
          `  scratch: { command: ["true"], cwd: ${join(elsewhere, 'scratch')} }`,
          '',
        ].join('\n'),
      );
      const report = await doctor(['-c', config, '--min-free-mb', '1'], true);
      const [local, other, ...more] = disks(report);
      assert.deepEqual(more, [], 'one check per file system');
      assert.equal(local?.status, 'pass', local?.message);
      assert.match(
        local?.message ?? '',
        new RegExp(`at ${dataDir} \\(also runner build ${join(dir, 'repo')}\\)$`),
      );
      assert.equal(other?.status, 'pass', other?.message);
      assert.match(
        other?.message ?? '',
        new RegExp(
          `at ${join(elsewhere, 'db')} \\(SQLite database; also audit checkpoints ${join(elsewhere, 'checkpoints')}, runner scratch ${join(elsewhere, 'scratch')}\\)$`,
        ),
      );
      assert.equal(report.text.match(/^PASS {2}disk-space/gm)?.length, 2, report.text);

      // A full volume other than the data directory's fails the run too.
      const tmpfsFree = statfsSync(elsewhere).bavail * statfsSync(elsewhere).bsize;
      const localFree = statfsSync(dir).bavail * statfsSync(dir).bsize;
      if (tmpfsFree < localFree) {
        const between = Math.floor((tmpfsFree + localFree) / 2 / 1024 / 1024);
        const low = await doctor(['-c', config, '--min-free-mb', String(between)]);
        assert.equal(low.code, 1);
        assert.deepEqual(
          disks(low).map((c) => c.status),
          ['pass', 'fail'],
          disks(low)
            .map((c) => c.message)
            .join('\n'),
        );
      }

      // Session workspaces on another volume (a mount, or a symlink as here) are checked too.
      const linkedDir = join(dir, 'linked');
      mkdirSync(linkedDir, { mode: 0o750 });
      symlinkSync(elsewhere, join(linkedDir, 'workspaces'));
      const linked = await doctor([
        '-c',
        writeConfig(`dataDir: ${linkedDir}\nport: 0\n`),
        '--min-free-mb',
        '1',
      ]);
      assert.equal(disks(linked).length, 2);
      assert.match(disks(linked)[1]?.message ?? '', /\(session workspaces\)$/);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test('a --server that does not answer is named by the clock check, not asked for', async () => {
    const closed = await startServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise((resolve) => closed.server.close(resolve));
    const clock = check(
      await doctor(['-c', goodConfig, '--server', closed.base, '--min-free-mb', '1']),
      'clock',
    );
    assert.equal(clock.status, 'skip');
    assert.equal(clock.message, `no reference: ${closed.base} did not answer`);
  });

  test('fails on pending migrations, a newer database and an unreadable database', async () => {
    const olderDir = join(dir, 'older');
    const older = createDatabase({ dataDir: olderDir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
    await migrateToLatest(older.db, MIGRATIONS.slice(0, 1));
    await older.close();
    const pending = await doctor([
      '-c',
      writeConfig(`dataDir: ${olderDir}\nport: 0\n`),
      '--min-free-mb',
      '1',
    ]);
    assert.equal(pending.code, 1);
    assert.equal(check(pending, 'migrations').status, 'fail');
    assert.match(check(pending, 'migrations').fix ?? '', /maos migrate/);

    const newerDir = join(dir, 'newer');
    const newer = createDatabase({ dataDir: newerDir, store: { synchronous: 'full', busyTimeoutMs: 5000 } });
    await migrateToLatest(newer.db);
    await newer.close();
    const { default: Database } = await import('better-sqlite3');
    const raw = new Database(join(newerDir, 'maos.db'));
    raw.exec("insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01')");
    raw.close();
    const future = await doctor(['-c', writeConfig(`dataDir: ${newerDir}\nport: 0\n`), '--min-free-mb', '1']);
    assert.equal(future.code, 1);
    assert.match(check(future, 'migrations').message, /newer than this build/);

    const brokenDir = join(dir, 'broken');
    mkdirSync(brokenDir);
    writeFileSync(join(brokenDir, 'maos.db'), Buffer.alloc(4096, 0x41));
    const broken = await doctor([
      '-c',
      writeConfig(`dataDir: ${brokenDir}\nport: 0\n`),
      '--min-free-mb',
      '1',
    ]);
    assert.equal(broken.code, 1);
    assert.equal(check(broken, 'database').status, 'fail');
    // A SQLite file: the fix names the file and its permissions, not a database server's network.
    assert.match(check(broken, 'database').fix ?? '', /broken\/maos\.db and its directory are writable/);
    assert.doesNotMatch(check(broken, 'database').fix ?? '', /network/);
  });

  test('fails on clock skew against the reference server', async () => {
    const report = await doctor(['-c', goodConfig, '--server', skewedServer.base, '--min-free-mb', '1']);
    assert.equal(report.code, 1);
    const clock = check(report, 'clock');
    assert.equal(clock.status, 'fail');
    // 300 s behind, read through a one-second Date header against the request's midpoint: on a busy
    // machine a slow round trip moves the figure by up to half of it either way.
    const seconds = Number(/^(\d+\.\d) s from /.exec(clock.message)?.[1]);
    assert.ok(seconds >= 299 && seconds <= 302, clock.message);
    assert.match(clock.fix ?? '', /NTP/);
  });
});

describe('doctor OIDC and provider probes', { timeout: 240_000 }, () => {
  let idp: { server: Server; base: string };
  let claimedIssuer = '';
  let claimedJwks = '';

  before(async () => {
    idp = await startServer((req, res, base) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: claimedIssuer || base, jwks_uri: claimedJwks || `${base}/jwks` }));
      } else if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
      } else {
        res.writeHead(404).end();
      }
    });
  });

  after(async () => {
    await new Promise((resolve) => idp.server.close(resolve));
  });

  test('finds the issuer in the configuration', () => {
    const config = {
      auth: { oidc: { issuer: 'https://idp.example/realms/a' } },
      providers: {
        local: { type: 'openai-compatible', baseURL: 'http://127.0.0.1:11434/v1' },
        claude: { type: 'anthropic' },
      },
    } as unknown as Config;
    assert.equal(findOidcIssuer(config), 'https://idp.example/realms/a');
  });

  test('maos doctor with OIDC and a provider configured: probes both, clock against the issuer', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-ops-doctor-oidc-'));
    try {
      const config = join(dataDir, 'config.yaml');
      const write = (issuer: string) =>
        writeFileSync(
          config,
          [
            `dataDir: ${join(dataDir, 'data')}`,
            'port: 0',
            'auth:',
            '  mode: oidc',
            '  oidc:',
            `    issuer: ${issuer}`,
            '    audience: https://maos.test',
            'providers:',
            '  local:',
            '    type: openai-compatible',
            '    model: m',
            `    baseURL: ${idp.base}/v1`,
            '',
          ].join('\n'),
        );
      claimedIssuer = '';
      write(idp.base);
      const good = await doctor(['-c', config, '--min-free-mb', '1']);
      assert.equal(check(good, 'oidc').status, 'pass', check(good, 'oidc').message);
      // The idp answers 404 for GET /v1/models: reachable, but the key could not be verified.
      assert.equal(check(good, 'provider:local').status, 'warn');
      assert.match(check(good, 'provider:local').message, /not verified/);
      assert.equal(check(good, 'clock').status, 'pass');
      assert.match(check(good, 'clock').message, /openid-configuration/);
      assert.equal(good.code, 0, JSON.stringify(good.checks));

      const closed = await startServer(() => undefined);
      await new Promise((resolve) => closed.server.close(resolve));
      write(closed.base);
      const bad = await doctor(['-c', config, '--min-free-mb', '1'], true);
      assert.equal(bad.code, 1);
      assert.equal(check(bad, 'oidc').status, 'fail');
      assert.match(bad.text, /^FAIL {2}oidc/m);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('passes with a reachable discovery document and JWKS, and gives a clock reference', async () => {
    claimedIssuer = '';
    const { result, reference } = await checkOidc(idp.base, OIDC_CHECK_TIMEOUT_MS);
    assert.equal(result.status, 'pass', result.message);
    assert.ok(reference && Math.abs(reference.serverDate.getTime() - Date.now()) < 5000);
  });

  test('fails on an issuer mismatch, a missing document and an unreachable issuer', async () => {
    claimedIssuer = 'https://someone-else.example';
    const mismatch = await checkOidc(idp.base, OIDC_CHECK_TIMEOUT_MS);
    assert.equal(mismatch.result.status, 'fail');
    assert.match(mismatch.result.message, /issuer https:\/\/someone-else\.example/);
    claimedIssuer = '';
    const missing = await checkOidc(`${idp.base}/nope`, OIDC_CHECK_TIMEOUT_MS);
    assert.equal(missing.result.status, 'fail');
    assert.match(missing.result.message, /HTTP 404/);
    const closed = await startServer(() => undefined);
    await new Promise((resolve) => closed.server.close(resolve));
    const unreachable = await checkOidc(closed.base, OIDC_CHECK_TIMEOUT_MS);
    assert.equal(unreachable.result.status, 'fail');
    assert.match(unreachable.result.message, /ECONNREFUSED/);
    assert.ok(unreachable.result.fix);
  });

  test('a JWKS on a port fetch refuses fails saying why', async () => {
    claimedJwks = 'http://127.0.0.1:6000/jwks';
    try {
      const { result } = await checkOidc(idp.base, OIDC_CHECK_TIMEOUT_MS);
      assert.equal(result.status, 'fail');
      assert.match(
        result.message,
        /\/\.well-known\/openid-configuration: jwks_uri http:\/\/127\.0\.0\.1:6000: port 6000 is one the HTTP client .* refuses/,
      );
    } finally {
      claimedJwks = '';
    }
  });

  test('an issuer ending in two slashes is probed where the server asks, one slash stripped, not both', async () => {
    // The server asks <issuer minus one slash>/.well-known/…, here `//.well-known/…`, which this IdP
    // does not serve: the doctor probed `/.well-known/…` instead and passed an issuer the server refused.
    const issuer = `${idp.base}//`;
    claimedIssuer = issuer;
    try {
      const { result } = await checkOidc(issuer, OIDC_CHECK_TIMEOUT_MS);
      assert.equal(result.status, 'fail', result.message);
      assert.equal(
        result.message,
        `discovery at ${idp.base}//.well-known/openid-configuration failed (HTTP 404)`,
      );
    } finally {
      claimedIssuer = '';
    }
  });

  test('an https issuer whose discovery names a plain-http jwks_uri fails, as the server refuses it', {
    skip: skipWithoutOpenssl,
  }, async (t) => {
    const certDir = mkdtempSync(join(tmpdir(), 'maos-ops-doctor-tls-'));
    t.after(() => rmSync(certDir, { recursive: true, force: true }));
    const { certFile, keyFile } = createSelfSignedCert(certDir);
    let issuer = '';
    let jwksUri = '';
    const tlsIdp = createHttpsServer(
      { cert: readFileSync(certFile), key: readFileSync(keyFile) },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === '/jwks') res.end('{"keys":[]}');
        else res.end(JSON.stringify({ issuer, jwks_uri: jwksUri }));
      },
    );
    await new Promise<void>((resolve) => tlsIdp.listen(0, '127.0.0.1', resolve));
    t.after(() => tlsIdp.close());
    issuer = `https://127.0.0.1:${(tlsIdp.address() as AddressInfo).port}`;
    // This IdP's certificate is trusted for the doctor's fetches, as a CA's would be.
    const agent = new Agent({ connect: { ca: readFileSync(certFile) } });
    t.after(() => agent.close());
    const trusting: typeof fetch = (input, init) =>
      undiciFetch(input as never, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
    // The key set on plain HTTP (reachable: the IdP of the other tests serves it).
    jwksUri = `${idp.base}/jwks`;
    const plain = await checkOidc(issuer, OIDC_CHECK_TIMEOUT_MS, trusting);
    assert.equal(plain.result.status, 'fail', plain.result.message);
    assert.match(
      plain.result.message,
      /jwks_uri http:\/\/127\.0\.0\.1:\d+ is not https:\/\/ while the issuer is/,
    );
    jwksUri = `${issuer}/jwks`;
    const protectedKeys = await checkOidc(issuer, OIDC_CHECK_TIMEOUT_MS, trusting);
    assert.equal(protectedKeys.result.status, 'pass', protectedKeys.result.message);
  });
});
