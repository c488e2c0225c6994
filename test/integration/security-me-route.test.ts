// GET /v1/me and `maos whoami` against the real server, API keys and a real OpenID provider (auth
// mode `both`): each caller gets its principal, tenant, roles and the permissions they grant; a
// token whose roles map to nothing still learns who it is (while the API refuses it everything
// else); without credentials 401; auth mode `none` is the local admin.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { PERMISSIONS } from '../../src/security/rbac.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import {
  CLIENT_ID,
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../fixtures/oidc-provider.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

interface Caller {
  principal: string;
  type: string;
  authMethod: string;
  clientId: string | null;
  tenantId: string;
  roles: string[];
  permissions: string[];
}

describe('GET /v1/me', { timeout: 60_000 }, () => {
  let idp: TestOidcProvider;
  let server: TestServer;
  let viewerKey: string;
  let viewerKeyId: string;
  let adminKey: string;

  before(async () => {
    idp = await startTestOidcProvider();
    server = await startTestServer({
      config: {
        auth: {
          mode: 'both',
          oidc: {
            issuer: idp.issuer,
            audience: TEST_AUDIENCE,
            roleMapping: { 'maos-operators': ['operator'] },
          },
        },
      },
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const viewer = await createApiKey(db, {
      tenantId: 'acme',
      name: 'me-viewer',
      roles: ['viewer'],
      createdBy: 'test',
    });
    viewerKey = viewer.key;
    viewerKeyId = viewer.info.id;
    adminKey = (
      await createApiKey(db, { tenantId: 'acme', name: 'me-admin', roles: ['admin'], createdBy: 'test' })
    ).key;
  });
  after(async () => {
    await server?.close();
    await idp?.close();
  });

  const me = (token?: string) =>
    requestJson<Caller & { code?: string }>(`${server.url}/v1/me`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  test('an API key: its id, tenant, roles and what they grant', async () => {
    const answer = await me(viewerKey);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, {
      principal: `key:${viewerKeyId}`,
      type: 'service',
      authMethod: 'apikey',
      clientId: viewerKeyId,
      tenantId: 'acme',
      roles: ['viewer'],
      permissions: ['sessions:read', 'roles:read'],
    });
    // admin:* grants every permission, and all are listed.
    assert.deepEqual((await me(adminKey)).body.permissions, [...PERMISSIONS]);
  });

  test('an OIDC token: its subject, client and the roles its claims map to', async () => {
    const token = await idp.getToken({
      subject: 'alice',
      claims: { tenant_id: 'acme', roles: ['maos-operators'] },
    });
    const answer = await me(token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.principal, 'alice');
    assert.equal(answer.body.authMethod, 'oidc');
    assert.equal(answer.body.clientId, CLIENT_ID);
    assert.deepEqual(answer.body.roles, ['operator']);
    assert.ok(answer.body.permissions.includes('sessions:approve'));
  });

  test('a token whose roles map to nothing learns who it is, and nothing else', async () => {
    const token = await idp.getToken({
      subject: 'bob',
      claims: { tenant_id: 'acme', roles: ['unknown-group'] },
    });
    const answer = await me(token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual([answer.body.principal, answer.body.roles, answer.body.permissions], ['bob', [], []]);
    const listing = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(listing.status, 403);
    assert.equal(listing.body.code, 'PERMISSION_DENIED');
  });

  test('without credentials or with an unknown key: 401', async () => {
    assert.equal((await me()).status, 401);
    assert.equal((await me('maos_000000000000_notakey')).status, 401);
  });

  test('maos whoami prints the caller; --json the document', async () => {
    const env = { MAOS_SERVER: server.url, MAOS_TOKEN: viewerKey };
    const printed = await runMaos(['whoami'], { env });
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(
      printed.stdout,
      new RegExp(`^principal:\\s+key:${viewerKeyId} \\(service, API key\\)$`, 'm'),
    );
    assert.match(printed.stdout, /^tenant:\s+acme$/m);
    assert.match(printed.stdout, /^roles:\s+viewer$/m);
    assert.match(printed.stdout, /^permissions:\s+sessions:read, roles:read$/m);
    const json = await runMaos(['whoami', '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as Caller).tenantId, 'acme');
    const refused = await runMaos(['whoami'], {
      env: { MAOS_SERVER: server.url, MAOS_TOKEN: 'maos_000000000000_x' },
    });
    assert.notEqual(refused.code, 0);
  });

  test('a token given with its Bearer prefix (MAOS_TOKEN, --token, maos login) is sent without it', async (t) => {
    // Copied from a curl command or a header: the CLI adds `Bearer ` itself, and `Bearer Bearer
    // maos_…` was answered 400 with no hint of why.
    const principal = new RegExp(`^principal:\\s+key:${viewerKeyId} `, 'm');
    for (const [args, env] of [
      [['whoami'], { MAOS_SERVER: server.url, MAOS_TOKEN: `Bearer ${viewerKey}` }],
      [['whoami', '--token', `bearer  ${viewerKey}`], { MAOS_SERVER: server.url }],
    ] as const) {
      const result = await runMaos([...args], { env });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, principal);
    }
    const dir = mkdtempSync(join(tmpdir(), 'maos-bearer-login-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const credentials = join(dir, 'credentials.json');
    const login = await runMaos(['login', '--server', server.url, '--credentials', credentials], {
      input: `Bearer ${viewerKey}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    const stored = JSON.parse(readFileSync(credentials, 'utf8')) as {
      servers: Record<string, { token: string }>;
    };
    assert.deepEqual(
      Object.values(stored.servers).map((entry) => entry.token),
      [viewerKey],
    );
    // Only the word: no token to send, said so (a usage error), not sent as none.
    const bare = await runMaos(['whoami'], { env: { MAOS_SERVER: server.url, MAOS_TOKEN: 'Bearer ' } });
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /the token is only the word "Bearer": give the token itself/);
  });
});

test('auth mode none: the caller is the local admin', { timeout: 60_000 }, async () => {
  const server = await startTestServer();
  try {
    const answer = await requestJson<Caller>(`${server.url}/v1/me`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.authMethod, 'none');
    assert.deepEqual(answer.body.roles, ['admin']);
  } finally {
    await server.close();
  }
});

test('GET /v1/me counts against the caller’s rate limit like any other route', {
  timeout: 60_000,
}, async () => {
  const server = await startTestServer({
    config: { auth: { mode: 'apikey' }, rateLimit: { principal: { points: 2, windowSeconds: 600 } } },
  });
  try {
    const db = server.app.database.db as unknown as SecurityDb;
    const { key } = await createApiKey(db, {
      tenantId: 'acme',
      name: 'me-limited',
      roles: ['viewer'],
      createdBy: 'test',
    });
    const me = () =>
      requestJson<{ code?: string }>(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } });
    assert.deepEqual([(await me()).status, (await me()).status], [200, 200]);
    const limited = await me();
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'RATE_LIMITED');
  } finally {
    await server.close();
  }
});
