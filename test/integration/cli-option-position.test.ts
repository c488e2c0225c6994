// The connection options work before the command (`maos --server A sessions list`) and after it;
// given in both places (a wrapper or shell alias that puts a default before the command, and the
// user's own after it), the one nearest the command counts, as a later option overrides an
// earlier one: the command goes to the server the user named last, with the token given with it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startTestServer } from '../fixtures/server.ts';

test('--server and --token after the command override those before it', { timeout: 60_000 }, async (t) => {
  const server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const db = server.app.database.db as unknown as SecurityDb;
  const token = (
    await createApiKey(db, { tenantId: 'acme', name: 'viewer', roles: ['viewer'], createdBy: 'test' })
  ).key;
  // Nothing listens there: a command sent to it would fail with exit 3.
  const elsewhere = `http://127.0.0.1:${await freePort()}`;

  const server2 = await runMaos([
    '--server',
    elsewhere,
    '--token',
    token,
    'sessions',
    'list',
    '--server',
    server.url,
    '--json',
  ]);
  assert.equal(server2.code, 0, server2.stderr);
  assert.deepEqual(JSON.parse(server2.stdout), { items: [], nextCursor: null });

  const token2 = await runMaos([
    '--server',
    server.url,
    '--token',
    'maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'whoami',
    '--token',
    token,
    '--json',
  ]);
  assert.equal(token2.code, 0, token2.stderr);
  assert.equal((JSON.parse(token2.stdout) as { tenantId: string }).tenantId, 'acme');

  // Before the command only, they still count.
  const before = await runMaos(['--server', server.url, '--token', token, 'whoami', '--json']);
  assert.equal(before.code, 0, before.stderr);
});
