// Role bindings over the real server (auth mode `both`, API keys and a real OpenID provider):
// an admin grants a built-in role to an OIDC subject, which holds it from its next request (GET
// /v1/me, a route it was refused before) and loses it with the revocation; grants are idempotent,
// reserved principals and unknown roles are refused, other tenants see and get nothing, only
// `keys:manage` may manage them, each change is an audit record naming the binding, and
// `maos access` does the same from the CLI.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

interface Binding {
  principal: string;
  role: string;
  createdAt: string;
  createdBy: string;
}

// An IdP subject with characters a path must carry encoded.
const SUBJECT = 'auth0|alice@example.com/eu';

describe('role bindings', { timeout: 60_000 }, () => {
  let idp: TestOidcProvider;
  let server: TestServer;
  let admin: string;
  let adminId: string;
  let viewer: string;
  let otherAdmin: string;

  before(async () => {
    idp = await startTestOidcProvider();
    server = await startTestServer({
      config: { auth: { mode: 'both', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE } } },
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const mint = (tenantId: string, role: 'admin' | 'viewer') =>
      createApiKey(db, { tenantId, name: `rb-${tenantId}-${role}`, roles: [role], createdBy: 'test' });
    const created = await mint('acme', 'admin');
    admin = created.key;
    adminId = created.info.id;
    viewer = (await mint('acme', 'viewer')).key;
    otherAdmin = (await mint('globex', 'admin')).key;
  });
  after(async () => {
    await server?.close();
    await idp?.close();
  });

  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const bindingUrl = (principal: string, role: string) =>
    `${server.url}/v1/admin/role-bindings/${encodeURIComponent(principal)}/${role}`;
  const aliceToken = (tenant = 'acme') => idp.getToken({ subject: SUBJECT, claims: { tenant_id: tenant } });
  const rolesOf = async (token: string) =>
    (await requestJson<{ roles: string[] }>(`${server.url}/v1/me`, { headers: as(token) })).body.roles;
  const listSessions = async (token: string) =>
    (await requestJson(`${server.url}/v1/sessions`, { headers: as(token) })).status;

  test('a granted role holds from the next request and goes with the revocation', async () => {
    const token = await aliceToken();
    assert.deepEqual(await rolesOf(token), []);
    assert.equal(await listSessions(token), 403);

    const granted = await requestJson<Binding>(bindingUrl(SUBJECT, 'viewer'), {
      method: 'PUT',
      headers: as(admin),
    });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    assert.deepEqual(
      { ...granted.body, createdAt: '' },
      { principal: SUBJECT, role: 'viewer', createdAt: '', createdBy: `key:${adminId}` },
    );
    assert.deepEqual(await rolesOf(token), ['viewer']);
    assert.equal(await listSessions(token), 200);

    // Idempotent: the same binding, with its first grant's time.
    const again = await requestJson<Binding>(bindingUrl(SUBJECT, 'viewer'), {
      method: 'PUT',
      headers: as(admin),
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.createdAt, granted.body.createdAt);
    const listed = await requestJson<{ items: Binding[] }>(
      `${server.url}/v1/admin/role-bindings?principal=${encodeURIComponent(SUBJECT)}`,
      { headers: as(admin) },
    );
    assert.deepEqual(listed.body.items, [granted.body]);

    const revoked = await requestJson(bindingUrl(SUBJECT, 'viewer'), {
      method: 'DELETE',
      headers: as(admin),
    });
    assert.equal(revoked.status, 204);
    assert.deepEqual(await rolesOf(token), []);
    assert.equal(await listSessions(token), 403);
    const gone = await requestJson<{ code: string }>(bindingUrl(SUBJECT, 'viewer'), {
      method: 'DELETE',
      headers: as(admin),
    });
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'NOT_FOUND');

    // Each change is an audit record that names the binding.
    const audit = await requestJson<{
      items: Array<{ action: string; target: { type: string; id: string } }>;
    }>(`${server.url}/v1/audit?limit=100`, { headers: as(admin) });
    const changes = audit.body.items
      .filter((record) => record.target.type === 'role_binding')
      .map((record) => [record.action, record.target.id]);
    assert.deepEqual(changes, [
      ['role_bindings:grant', `viewer:${SUBJECT}`],
      ['role_bindings:grant', `viewer:${SUBJECT}`],
      ['role_bindings:revoke', `viewer:${SUBJECT}`],
      ['role_bindings:revoke', `viewer:${SUBJECT}`],
    ]);
  });

  test('a principal of up to 512 characters can be granted and revoked, a longer one is refused', async () => {
    // A URL as subject: its encoded path segment is far longer than the id itself.
    const long = `https://idp.example.com/users/${'ü|'.repeat(241)}`;
    assert.equal(long.length, 512);
    const granted = await requestJson<Binding>(bindingUrl(long, 'viewer'), {
      method: 'PUT',
      headers: as(admin),
    });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    assert.equal(granted.body.principal, long);
    const revoked = await requestJson(bindingUrl(long, 'viewer'), { method: 'DELETE', headers: as(admin) });
    assert.equal(revoked.status, 204);
    const tooLong = await requestJson<{ code: string }>(bindingUrl(`${long}x`, 'viewer'), {
      method: 'PUT',
      headers: as(admin),
    });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.code, 'VALIDATION_FAILED');
  });

  test('reserved principals, padded ids and unknown roles are refused', async () => {
    for (const principal of [
      'key:0190abc',
      'KEY:0190abc',
      'ｋｅｙ：0190abc',
      'Local',
      ' alice',
      'cli:root',
      // C1 controls and bidirectional overrides, which `maos access list` would print as a
      // terminal escape or in another order than stored.
      'red\u009b31mbob',
      'next\u0085line',
      '\u202eecila',
      'a\u2066b',
    ]) {
      const answer = await requestJson<{ code: string }>(bindingUrl(principal, 'admin'), {
        method: 'PUT',
        headers: as(admin),
      });
      assert.equal(answer.status, 400, principal);
      assert.equal(answer.body.code, 'VALIDATION_FAILED', principal);
    }
    const unknownRole = await requestJson<{ code: string }>(bindingUrl('alice', 'root'), {
      method: 'PUT',
      headers: as(admin),
    });
    assert.equal(unknownRole.status, 400);
    assert.equal(unknownRole.body.code, 'VALIDATION_FAILED');
  });

  test('another tenant sees none of them and its subject of the same name gets nothing', async () => {
    await requestJson(bindingUrl(SUBJECT, 'operator'), { method: 'PUT', headers: as(admin) });
    const theirs = await requestJson<{ items: Binding[] }>(`${server.url}/v1/admin/role-bindings`, {
      headers: as(otherAdmin),
    });
    assert.deepEqual(theirs.body.items, []);
    assert.deepEqual(await rolesOf(await aliceToken('globex')), []);
    const notTheirs = await requestJson(bindingUrl(SUBJECT, 'operator'), {
      method: 'DELETE',
      headers: as(otherAdmin),
    });
    assert.equal(notTheirs.status, 404);
    assert.deepEqual(await rolesOf(await aliceToken()), ['operator']);
  });

  test('only keys:manage may list, grant or revoke', async () => {
    for (const [method, url] of [
      ['GET', `${server.url}/v1/admin/role-bindings`],
      ['PUT', bindingUrl('mallory', 'admin')],
      ['DELETE', bindingUrl(SUBJECT, 'operator')],
    ] as const) {
      const answer = await requestJson<{ code: string }>(url, { method, headers: as(viewer) });
      assert.equal(answer.status, 403, `${method} ${url}`);
      assert.equal(answer.body.code, 'PERMISSION_DENIED');
    }
    assert.deepEqual(await rolesOf(await aliceToken()), ['operator']);
  });

  test('principals a path cannot carry (`.`, `..`) are named in the query, by the API and by maos access', async () => {
    const queryUrl = (principal: string, role: string) =>
      `${server.url}/v1/admin/role-bindings?${new URLSearchParams({ principal, role })}`;
    // In a path, `.` and `..` (also as %2e) are dot segments: fetch resolves them away.
    const inPath = await requestJson(bindingUrl('..', 'viewer'), { method: 'PUT', headers: as(admin) });
    assert.equal(inPath.status, 404);

    // `+` and a space: a query carries both (URLSearchParams writes the space as `+`).
    const principals = ['.', '..', 'a+b c'];
    for (const principal of principals) {
      const granted = await requestJson<Binding>(queryUrl(principal, 'viewer'), {
        method: 'PUT',
        headers: as(admin),
      });
      assert.equal(granted.status, 201, JSON.stringify(granted.body));
      assert.equal(granted.body.principal, principal);
      // The binding can be read back where the answer says.
      const location = granted.headers.get('location') ?? '';
      const again = await requestJson<Binding>(`${server.url}${location}`, {
        method: 'PUT',
        headers: as(admin),
      });
      assert.equal(again.status, 200, location);
      assert.equal(again.body.principal, principal, location);
    }
    const listed = await requestJson<{ items: Binding[] }>(`${server.url}/v1/admin/role-bindings`, {
      headers: as(admin),
    });
    assert.deepEqual(
      listed.body.items.filter((binding) => principals.includes(binding.principal)).map((b) => b.principal),
      ['.', '..', 'a+b c'],
    );
    for (const principal of principals) {
      const revoked = await requestJson(queryUrl(principal, 'viewer'), {
        method: 'DELETE',
        headers: as(admin),
      });
      assert.equal(revoked.status, 204, principal);
    }
    const audit = await requestJson<{ items: Array<{ action: string; target: { id: string } }> }>(
      `${server.url}/v1/audit?action=role_bindings:revoke&limit=100`,
      { headers: as(admin) },
    );
    const revokedIds = audit.body.items.map((record) => record.target.id);
    for (const principal of principals) assert.ok(revokedIds.includes(`viewer:${principal}`), principal);
    // A query that does not name both is refused, and its record names no binding.
    const incomplete = await requestJson(`${server.url}/v1/admin/role-bindings?principal=..`, {
      method: 'DELETE',
      headers: as(admin),
    });
    assert.equal(incomplete.status, 400);
    const refused = await requestJson<{ items: Array<{ outcome: string; target: { id: string | null } }> }>(
      `${server.url}/v1/audit?action=role_bindings:revoke&outcome=failure&order=desc&limit=1`,
      { headers: as(admin) },
    );
    assert.deepEqual(
      refused.body.items.map((record) => record.target.id),
      [null],
    );

    const env = { MAOS_SERVER: server.url, MAOS_TOKEN: admin };
    for (const principal of ['.', '..']) {
      const granted = await runMaos(['access', 'grant', principal, 'developer'], { env });
      assert.equal(granted.code, 0, granted.stderr);
      assert.equal(granted.stdout, `granted developer to ${principal}: it holds it from its next request\n`);
      const listedByCli = await runMaos(['access', 'list', '--principal', principal, '--json'], { env });
      assert.deepEqual(
        (JSON.parse(listedByCli.stdout) as { items: Binding[] }).items.map((b) => [b.principal, b.role]),
        [[principal, 'developer']],
      );
      const revoked = await runMaos(['access', 'revoke', principal, 'developer'], { env });
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal(revoked.stdout, `revoked developer from ${principal}\n`);
    }
  });

  test('maos access grant, list and revoke', async () => {
    const env = { MAOS_SERVER: server.url, MAOS_TOKEN: admin };
    const granted = await runMaos(['access', 'grant', 'bob', 'developer'], { env });
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /^granted developer to bob/m);
    const again = await runMaos(['access', 'grant', 'bob', 'developer'], { env });
    assert.match(again.stdout, /^bob already holds developer/m);
    const listed = await runMaos(['access', 'list', '--principal', 'bob'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^PRINCIPAL\s+ROLE\s+GRANTED\s+BY/m);
    assert.match(listed.stdout, new RegExp(`^bob\\s+developer\\s+.+\\s+key:${adminId}$`, 'm'));
    // A binding stored before such principals were refused: listed with its characters escaped.
    const db = server.app.database.db as unknown as SecurityDb;
    await db
      .insertInto('role_bindings')
      .values({
        tenant_id: 'acme',
        // A line break would start a row of its own: one that passes for another binding.
        principal_id: 'eve\u009b2J\u202eelo\nmallory',
        role: 'viewer',
        created_at: new Date().toISOString(),
        created_by: 'old\u001b[31mversion',
      })
      .execute();
    const escaped = await runMaos(['access', 'list'], { env });
    assert.equal(escaped.code, 0, escaped.stderr);
    assert.match(escaped.stdout, /^eve\\x9b2J\\u202eelo\\x0amallory\s+viewer\s+.+\s+old\\x1b\[31mversion$/m);
    assert.doesNotMatch(escaped.stdout, /^mallory/m);
    for (const raw of ['\u001b', '\u009b', '\u202e']) assert.ok(!escaped.stdout.includes(raw), 'sent raw');
    await db
      .deleteFrom('role_bindings')
      .where('principal_id', '=', 'eve\u009b2J\u202eelo\nmallory')
      .execute();
    const typo = await runMaos(['access', 'grant', 'bob', 'developper'], { env });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown role 'developper'/);
    const revoked = await runMaos(['access', 'revoke', 'bob', 'developer'], { env });
    assert.equal(revoked.code, 0, revoked.stderr);
    const missing = await runMaos(['access', 'revoke', 'bob', 'developer'], { env });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /NOT_FOUND/);
  });
});
