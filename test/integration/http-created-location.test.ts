// The `Location` of every 201 answer can be followed: a webhook subscription, an API key and a role
// binding are each read back with GET at the address their creation names, with the permission of
// their list, without their secret, and only in their own tenant (another tenant's is 404).
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startTestServer } from '../fixtures/server.ts';

async function startServer(t: TestContext) {
  const server = await startTestServer({
    config: {
      workers: { concurrency: 0 },
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('k1') },
    },
  });
  t.after(() => server.close());
  const db = server.app.database.db as unknown as SecurityDb;
  const mint = async (tenantId: string, roles: string[]) =>
    (await createApiKey(db, { tenantId, name: `k-${roles.join('-')}`, roles, createdBy: 'test' })).key;
  const keys = {
    admin: await mint('acme', ['admin']),
    viewer: await mint('acme', ['viewer']),
    otherTenant: await mint('globex', ['admin']),
  };
  /** A request with `key`'s credential; the answer's status, headers and JSON body. */
  async function call(key: string, method: string, path: string, body?: unknown) {
    const response = await fetch(new URL(path, server.url), {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return {
      status: response.status,
      location: response.headers.get('location'),
      text,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    };
  }
  return { call, keys };
}

/** The `Location` of a 201 (or 200) answer, asserted to be a path of the API. */
function locationOf(answer: { status: number; location: string | null; text: string }): string {
  assert.ok(answer.status === 201 || answer.status === 200, `${answer.status}: ${answer.text}`);
  const location = answer.location ?? '';
  assert.ok(location.startsWith('/v1/'), `Location: ${answer.location}`);
  return location;
}

test('the Location of a new webhook subscription is its GET, without the secret', async (t) => {
  const { call, keys } = await startServer(t);
  const created = await call(keys.admin, 'POST', '/v1/webhooks', {
    url: 'https://203.0.113.10/hooks',
    events: ['session.cancelled'],
  });
  assert.equal(created.status, 201, created.text);
  const location = locationOf(created);
  const { secret, ...withoutSecret } = created.body ?? {};
  assert.equal(typeof secret, 'string');

  const read = await call(keys.admin, 'GET', location);
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.body, withoutSecret);
  assert.ok(!read.text.includes(String(secret)), 'the secret is not shown again');
  // An id in upper case names the same subscription.
  const id = String(created.body?.id);
  assert.equal((await call(keys.admin, 'GET', location.replace(id, id.toUpperCase()))).status, 200);

  const otherTenant = await call(keys.otherTenant, 'GET', location);
  assert.equal(otherTenant.status, 404, otherTenant.text);
  assert.equal(otherTenant.body?.code, 'NOT_FOUND');
  const viewer = await call(keys.viewer, 'GET', location);
  assert.equal(viewer.status, 403, viewer.text);
  assert.equal(viewer.body?.code, 'PERMISSION_DENIED');
  assert.equal((await call(keys.admin, 'GET', '/v1/webhooks/not-an-id!')).status, 400);

  assert.equal((await call(keys.admin, 'DELETE', location)).status, 204);
  const deleted = await call(keys.admin, 'GET', location);
  assert.equal(deleted.status, 404, deleted.text);
  assert.equal(deleted.body?.code, 'NOT_FOUND');
});

test('the Location of a new API key is its GET: metadata only, by id or prefix', async (t) => {
  const { call, keys } = await startServer(t);
  const created = await call(keys.admin, 'POST', '/v1/admin/keys', { name: 'ci', roles: ['developer'] });
  assert.equal(created.status, 201, created.text);
  const location = locationOf(created);
  const { key, ...metadata } = created.body ?? {};
  assert.equal(typeof key, 'string');

  const read = await call(keys.admin, 'GET', location);
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.body, metadata);
  assert.ok(!read.text.includes(String(key)), 'the key is not shown again');
  assert.ok(!read.text.includes(String(key).split('_').at(-1) ?? ''), 'nor its secret part');
  // By its prefix too, in upper case, as its revocation takes it.
  const byPrefix = await call(keys.admin, 'GET', `/v1/admin/keys/${String(metadata.prefix).toUpperCase()}`);
  assert.equal(byPrefix.status, 200, byPrefix.text);
  assert.deepEqual(byPrefix.body, metadata);

  const otherTenant = await call(keys.otherTenant, 'GET', location);
  assert.equal(otherTenant.status, 404, otherTenant.text);
  assert.equal(otherTenant.body?.code, 'NOT_FOUND');
  const viewer = await call(keys.viewer, 'GET', location);
  assert.equal(viewer.status, 403, viewer.text);
  assert.equal(viewer.body?.code, 'PERMISSION_DENIED');
  assert.equal((await call(keys.admin, 'GET', '/v1/admin/keys/bad_id!')).status, 400);

  // A revoked key is still read back, with its revocation time.
  const revoked = await call(keys.admin, 'DELETE', location);
  assert.equal(revoked.status, 200, revoked.text);
  const afterRevocation = await call(keys.admin, 'GET', location);
  assert.equal(afterRevocation.status, 200, afterRevocation.text);
  assert.equal(afterRevocation.body?.revokedAt, revoked.body?.revokedAt);
});

test('the Location of a role grant is its GET, in the path or (for . and ..) in the query', async (t) => {
  const { call, keys } = await startServer(t);
  const path = `/v1/admin/role-bindings/${encodeURIComponent('auth0|alice')}/developer`;
  const granted = await call(keys.admin, 'PUT', path);
  assert.equal(granted.status, 201, granted.text);
  const location = locationOf(granted);
  const read = await call(keys.admin, 'GET', location);
  assert.equal(read.status, 200, read.text);
  assert.deepEqual(read.body, granted.body);
  // Granted again: 200 with the same Location.
  assert.equal(locationOf(await call(keys.admin, 'PUT', path)), location);

  const otherTenant = await call(keys.otherTenant, 'GET', location);
  assert.equal(otherTenant.status, 404, otherTenant.text);
  assert.equal(otherTenant.body?.code, 'NOT_FOUND');
  const viewer = await call(keys.viewer, 'GET', location);
  assert.equal(viewer.status, 403, viewer.text);
  const otherRole = await call(keys.admin, 'GET', location.replace(/developer$/, 'viewer'));
  assert.equal(otherRole.status, 404, otherRole.text);
  assert.equal(otherRole.body?.code, 'NOT_FOUND');
  assert.equal((await call(keys.admin, 'GET', location.replace(/developer$/, 'root'))).status, 400);

  // The principal `..` cannot be a path segment: its Location names it in the query.
  const dotDot = await call(keys.admin, 'PUT', '/v1/admin/role-bindings?principal=..&role=viewer');
  assert.equal(dotDot.status, 201, dotDot.text);
  const queryLocation = locationOf(dotDot);
  assert.equal(queryLocation, '/v1/admin/role-bindings?principal=..&role=viewer');
  const page = await call(keys.admin, 'GET', queryLocation);
  assert.equal(page.status, 200, page.text);
  assert.deepEqual(page.body, { items: [dotDot.body], nextCursor: null });
  // The role alone filters too: alice's developer binding is not one of the viewers.
  const viewers = await call(keys.admin, 'GET', '/v1/admin/role-bindings?role=viewer');
  assert.deepEqual(viewers.body, { items: [dotDot.body], nextCursor: null });

  assert.equal((await call(keys.admin, 'DELETE', location)).status, 204);
  assert.equal((await call(keys.admin, 'GET', location)).status, 404);
});
