import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createLogger } from '../observability/logger.ts';
import { createApiKey } from './api-keys.ts';
import { parseVerifierKey } from './audit/checkpoint.ts';
import { createSecurity, loadAuditSigner } from './create-security.ts';
import { createTestSecurityDb, type TestSecurityDb } from './test-support.ts';

function captureLogger() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk) => lines.push(...String(chunk).split('\n').filter(Boolean)));
  return { logger: createLogger({ level: 'info', destination: stream }), lines };
}

describe('createSecurity', () => {
  let t: TestSecurityDb;
  before(async () => {
    t = await createTestSecurityDb();
  });
  after(async () => {
    await t.cleanup();
  });

  test('refuses auth mode none off loopback, warns on loopback', async () => {
    const { logger, lines } = captureLogger();
    const config = (host: string) => configSchema.parse({ dataDir: t.dir, host, auth: { mode: 'none' } });
    assert.throws(
      () => createSecurity({ config: config('0.0.0.0'), db: t.db, logger }),
      (e: unknown) => e instanceof AppError && e.code === 'CONFIG_INVALID',
    );
    createSecurity({ config: config('127.0.0.1'), db: t.db, logger });
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(
      lines.some((line) => line.includes('auth.mode is \\"none\\"')),
      lines.join('\n'),
    );
  });

  test('without a configured key, one is generated once (0600) with its verifier key beside it', async () => {
    const config = configSchema.parse({ dataDir: join(t.dir, 'gen') });
    const first = loadAuditSigner(config);
    const keyFile = join(t.dir, 'gen', 'keys', 'audit-signing-key.pem');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const verifierFile = join(t.dir, 'gen', 'keys', 'audit-verifier-key.txt');
    const written = statSync(verifierFile).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = loadAuditSigner(config);
    // Not written again at the next start: a read-only data directory must not stop it.
    assert.equal(statSync(verifierFile).mtimeMs, written);
    assert.ok(first.publicKey.equals(second.publicKey));
    const vkey = readFileSync(join(t.dir, 'gen', 'keys', 'audit-verifier-key.txt'), 'utf8');
    assert.ok(parseVerifierKey(vkey).publicKey.equals(first.publicKey));
    assert.ok(existsSync(keyFile));
  });

  test('a key file whose write failed midway is not left behind: the next start generates a whole one', () => {
    const dataDir = join(t.dir, 'cut');
    const module = new URL('./create-security.ts', import.meta.url).href;
    const schema = new URL('../config/schema.ts', import.meta.url).href;
    // No file may grow at all (ulimit -f 0): the key's write fails with EFBIG, as on a full disk.
    const script = `import { loadAuditSigner } from ${JSON.stringify(module)};
import { configSchema } from ${JSON.stringify(schema)};
try { loadAuditSigner(configSchema.parse({ dataDir: ${JSON.stringify(dataDir)} })); }
catch (error) { console.log(error.code); process.exitCode = 3; }`;
    const run = spawnSync(
      'bash',
      ['-c', 'ulimit -f 0 && exec "$@"', 'bash', process.execPath, '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stdout, /EFBIG/);
    const signer = loadAuditSigner(configSchema.parse({ dataDir }));
    const pem = readFileSync(join(dataDir, 'keys', 'audit-signing-key.pem'), 'utf8');
    assert.match(pem, /BEGIN PRIVATE KEY/);
    assert.ok(signer.publicKey.length > 0);
  });

  test('first start hint is logged only while no API key exists, asking the database once, without a bare maos', async () => {
    /** Starts a security layer on `t.db` and resolves its first-key answer after `start`. */
    async function startAndAsk() {
      const { logger, lines } = captureLogger();
      let keyQueries = 0;
      const db = t.db.withPlugin({
        transformQuery({ node }) {
          if (node.kind === 'SelectQueryNode' && JSON.stringify(node.from).includes('"api_keys"'))
            keyQueries++;
          return node;
        },
        transformResult: async ({ result }) => result,
      });
      const security = createSecurity({ config: configSchema.parse({ dataDir: t.dir }), db, logger });
      security.start();
      // As `maos serve` does for its banner, after the start.
      const missing = await security.firstKeyMissing();
      await new Promise((resolve) => setImmediate(resolve));
      await security.close();
      const hint = lines.find((line) => line.includes('keys create --role admin --tenant default'));
      // Not a bare `maos`, which is not on the PATH under npx or in a container.
      assert.doesNotMatch(hint ?? '', /\bmaos keys create/);
      return { missing, hinted: hint !== undefined, keyQueries };
    }

    assert.deepEqual(await startAndAsk(), { missing: true, hinted: true, keyQueries: 1 });
    await createApiKey(t.db, { tenantId: 'default', name: 'a', roles: ['admin'], createdBy: 't' });
    assert.deepEqual(await startAndAsk(), { missing: false, hinted: false, keyQueries: 1 });
  });
});
