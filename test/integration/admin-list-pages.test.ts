// GET /v1/admin/keys and GET /v1/admin/role-bindings page as the other lists do (`limit`, `cursor`,
// `items`, `nextCursor`; `limit` lowered to http.maxPageSize): followed to the end, the pages hold
// every key or binding of the tenant once, in the list's order, and nothing of another tenant; a
// cursor not returned by the list is 400 INVALID_CURSOR, a bad limit 400 VALIDATION_FAILED.
// `maos access list` reads every page.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey, listApiKeys } from '../../src/security/api-keys.ts';
import { grantRole, listRoleBindingPage, MAX_PRINCIPAL_LENGTH } from '../../src/security/role-bindings.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const MAX_PAGE_SIZE = 4;

// Principals whose cursors are long: the longest principal, of characters three UTF-8 bytes each.
const LONG_PRINCIPAL = '€'.repeat(MAX_PRINCIPAL_LENGTH);
const PRINCIPALS = ['alice', 'Bob', 'ada_1', 'émile', 'quote"back\\slash', LONG_PRINCIPAL];

describe('pages of the admin lists', { timeout: 60_000 }, () => {
  let server: TestServer;
  let db: SecurityDb;
  let headers: Record<string, string>;
  let adminKey: string;

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        workers: { concurrency: 0 },
        http: { bodyLimitBytes: 65_536, maxPageSize: MAX_PAGE_SIZE, sseKeepAliveSeconds: 15 },
      },
    });
    db = server.app.database.db as unknown as SecurityDb;
    const admin = await createApiKey(db, {
      tenantId: 'acme',
      name: 'admin',
      roles: ['admin'],
      createdBy: 'test',
    });
    adminKey = admin.key;
    headers = { authorization: `Bearer ${adminKey}` };
    for (let i = 0; i < 8; i += 1) {
      await createApiKey(db, { tenantId: 'acme', name: `k${i}`, roles: ['viewer'], createdBy: 'test' });
    }
    await createApiKey(db, { tenantId: 'globex', name: 'other', roles: ['admin'], createdBy: 'test' });
    for (const principal of PRINCIPALS) {
      for (const role of ['viewer', 'operator', 'admin'] as const) {
        await grantRole(db, { tenantId: 'acme', principal, role, createdBy: 'test' });
      }
    }
    await grantRole(db, { tenantId: 'globex', principal: 'alice', role: 'viewer', createdBy: 'test' });
  });
  after(async () => server?.close());

  /** Follows `nextCursor` from `first` to the last page; every page's size and the items. */
  async function readAll<T>(first: string): Promise<{ sizes: number[]; items: T[] }> {
    const sizes: number[] = [];
    const items: T[] = [];
    let url: string | null = first;
    while (url !== null) {
      const page: { status: number; body: Page<T> } = await requestJson<Page<T>>(url, { headers });
      assert.equal(page.status, 200, JSON.stringify(page.body));
      sizes.push(page.body.items.length);
      items.push(...page.body.items);
      const cursor = page.body.nextCursor;
      url =
        cursor === null
          ? null
          : `${first}${first.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}`;
    }
    return { sizes, items };
  }

  test('API keys: newest first, in pages of `limit`, each key of the tenant once', async () => {
    const expected = (await listApiKeys(db, 'acme')).map((key) => key.id);
    assert.equal(expected.length, 9);
    const paged = await readAll<{ id: string }>(`${server.url}/v1/admin/keys?limit=2`);
    assert.deepEqual(paged.sizes, [2, 2, 2, 2, 1]);
    assert.deepEqual(
      paged.items.map((key) => key.id),
      expected,
    );
    // Without a limit: the default page (50), lowered to http.maxPageSize; a larger limit too.
    for (const query of ['', '?limit=1000']) {
      const page = await requestJson<Page<{ id: string }>>(`${server.url}/v1/admin/keys${query}`, {
        headers,
      });
      assert.equal(page.status, 200);
      assert.deepEqual(
        page.body.items.map((key) => key.id),
        expected.slice(0, MAX_PAGE_SIZE),
      );
      assert.equal(typeof page.body.nextCursor, 'string');
    }
  });

  test('role bindings: by principal then role, in pages of `limit`, also of one principal', async () => {
    const expected = (await listRoleBindingPage(db, 'acme', { limit: 1000 })).items.map(
      (b) => `${b.principal} ${b.role}`,
    );
    assert.equal(expected.length, PRINCIPALS.length * 3);
    const paged = await readAll<{ principal: string; role: string }>(
      `${server.url}/v1/admin/role-bindings?limit=4`,
    );
    assert.deepEqual(paged.sizes, [4, 4, 4, 4, 2]);
    assert.deepEqual(
      paged.items.map((b) => `${b.principal} ${b.role}`),
      expected,
    );
    const one = await readAll<{ principal: string; role: string }>(
      `${server.url}/v1/admin/role-bindings?principal=${encodeURIComponent(LONG_PRINCIPAL)}&limit=1`,
    );
    assert.deepEqual(
      one.items.map((b) => b.role),
      ['admin', 'operator', 'viewer'],
    );
    assert.ok(one.items.every((b) => b.principal === LONG_PRINCIPAL));
  });

  test('maos access list shows every page', async () => {
    const listed = await runMaos(['access', 'list', '--json'], {
      env: { MAOS_SERVER: server.url, MAOS_TOKEN: adminKey },
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { items: { principal: string; role: string }[] }).items.map(
        (b) => `${b.principal} ${b.role}`,
      ),
      (await listRoleBindingPage(db, 'acme', { limit: 1000 })).items.map((b) => `${b.principal} ${b.role}`),
    );
  });

  test('a cursor the list did not return is 400 INVALID_CURSOR; a bad limit 400 VALIDATION_FAILED', async () => {
    const keyCursor = (await requestJson<Page<unknown>>(`${server.url}/v1/admin/keys?limit=1`, { headers }))
      .body.nextCursor as string;
    const bindingCursor = (
      await requestJson<Page<unknown>>(`${server.url}/v1/admin/role-bindings?limit=1`, { headers })
    ).body.nextCursor as string;
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const [path, code] of [
      [`/v1/admin/keys?cursor=${bindingCursor}`, 'INVALID_CURSOR'],
      ['/v1/admin/keys?cursor=bm9wZQ', 'INVALID_CURSOR'],
      [`/v1/admin/role-bindings?cursor=${keyCursor}`, 'INVALID_CURSOR'],
      [`/v1/admin/role-bindings?cursor=${forged(['alice', 'root'])}`, 'INVALID_CURSOR'],
      [`/v1/admin/role-bindings?cursor=${forged({ principal: 'alice' })}`, 'INVALID_CURSOR'],
      // A character changed that base64 decoding would let pass.
      [`/v1/admin/role-bindings?cursor=${bindingCursor}A`, 'INVALID_CURSOR'],
      ['/v1/admin/keys?cursor=%27%3B--', 'VALIDATION_FAILED'],
      [`/v1/admin/role-bindings?cursor=${'a'.repeat(5000)}`, 'VALIDATION_FAILED'],
      ['/v1/admin/keys?limit=0', 'VALIDATION_FAILED'],
      ['/v1/admin/keys?limit=abc', 'VALIDATION_FAILED'],
      ['/v1/admin/role-bindings?limit=-1', 'VALIDATION_FAILED'],
      ['/v1/admin/role-bindings?limit=1e2', 'VALIDATION_FAILED'],
    ] as const) {
      const response = await requestJson<{ code: string; status: number }>(`${server.url}${path}`, {
        headers,
      });
      assert.equal(response.status, 400, `${path}: ${JSON.stringify(response.body)}`);
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/, path);
      assert.equal(response.body.code, code, path);
    }
  });
});
