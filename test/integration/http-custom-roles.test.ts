// Custom-role routes through the real HTTP server and role service on SQLite: create, list, conflict,
// validation, delete, tenant isolation via the service.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import type { LlmDb } from '../../src/agents/providers/llm-tables.ts';
import { createRoleService } from '../../src/agents/roles/role-service.ts';
import { createFakeSessionService } from '../../src/http/fake-session-service.test-support.ts';
import { createCustomRoleRoutesPlugin } from '../../src/http/routes/custom-roles.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

const role = {
  name: 'compliance_officer',
  description: 'Checks work against regulatory requirements.',
  instructions: 'You are a compliance officer. Goal: find regulatory gaps and how to close them.',
  capabilities: ['GDPR'],
};

describe('custom role routes', () => {
  let dir: string;
  let handle: DatabaseHandle;
  let app: FastifyInstance;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-roles-http-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 1000 } });
    await migrateToLatest(handle.db);
    const roles = createRoleService(handle.db as unknown as LlmDb);
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 65_536, maxPageSize: 50, sseKeepAliveSeconds: 15 } },
      service: createFakeSessionService(),
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: (actor) => roles.listRoles(actor.tenantId),
      plugins: [createCustomRoleRoutesPlugin({ roles })],
    });
  });
  after(async () => {
    await app.close();
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates a role that GET /v1/roles then lists, without its prompt', async () => {
    const created = await app.inject({ method: 'POST', url: '/v1/roles', payload: role });
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(created.json(), {
      name: role.name,
      description: role.description,
      capabilities: ['GDPR'],
      builtIn: false,
    });
    const list = await app.inject({ method: 'GET', url: '/v1/roles' });
    const names = (list.json() as { items: Array<{ name: string; builtIn: boolean }> }).items.map(
      (r) => r.name,
    );
    assert.ok(names.includes('architect'));
    assert.equal(names.at(-1), 'compliance_officer');
    assert.doesNotMatch(list.body, /regulatory gaps/);
  });

  test('a duplicate or built-in name is 409; a bad body is 400 with a problem document', async () => {
    const duplicate = await app.inject({ method: 'POST', url: '/v1/roles', payload: role });
    assert.equal(duplicate.statusCode, 409);
    assert.equal((duplicate.json() as { code: string }).code, 'CONFLICT');
    const builtIn = await app.inject({
      method: 'POST',
      url: '/v1/roles',
      payload: { ...role, name: 'architect' },
    });
    assert.equal(builtIn.statusCode, 409);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/roles',
      payload: { name: 'X', description: 'short' },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(String(bad.headers['content-type']), /problem\+json/);
    assert.doesNotMatch(bad.body, /\n\s+at /);
  });

  test('deletes a custom role; built-in and unknown ones cannot be deleted', async () => {
    assert.equal(
      (await app.inject({ method: 'DELETE', url: '/v1/roles/compliance_officer' })).statusCode,
      204,
    );
    const missing = await app.inject({ method: 'DELETE', url: '/v1/roles/compliance_officer' });
    assert.equal(missing.statusCode, 404);
    assert.equal((missing.json() as { code: string }).code, 'ROLE_NOT_FOUND');
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/roles/qa' })).statusCode, 409);
  });
});

describe('GET /v1/roles/:name', () => {
  let dir: string;
  let handle: DatabaseHandle;
  let app: FastifyInstance;
  /** Rows the role service read from custom_roles since the last reset. */
  let rowsRead = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-roles-http-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 1000 } });
    await migrateToLatest(handle.db);
    const reading = new Set<string>();
    const countRows: KyselyPlugin = {
      transformQuery({ node, queryId }) {
        if (node.kind === 'SelectQueryNode' && JSON.stringify(node.from).includes('"custom_roles"'))
          reading.add(queryId.queryId);
        return node;
      },
      async transformResult({ queryId, result }) {
        if (reading.delete(queryId.queryId)) rowsRead += result.rows.length;
        return result;
      },
    };
    const roles = createRoleService(handle.db.withPlugin(countRows) as unknown as LlmDb);
    for (let n = 1; n <= 20; n++) await roles.createRole('default', 'u', { ...role, name: `checker_${n}` });
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 65_536, maxPageSize: 50, sseKeepAliveSeconds: 15 } },
      service: createFakeSessionService(),
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: (actor) => roles.listRoles(actor.tenantId),
      findRole: (actor, name) => roles.findRole(actor.tenantId, name),
    });
  });
  after(async () => {
    await app.close();
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("reads the one role asked for, not the tenant's whole list", async () => {
    rowsRead = 0;
    const found = await app.inject({ method: 'GET', url: '/v1/roles/checker_7' });
    assert.equal(found.statusCode, 200, found.body);
    assert.equal((found.json() as { name: string }).name, 'checker_7');
    assert.equal(rowsRead, 1);
    rowsRead = 0;
    const builtIn = await app.inject({ method: 'GET', url: '/v1/roles/architect' });
    assert.equal((builtIn.json() as { builtIn: boolean }).builtIn, true);
    assert.equal(rowsRead, 0);
    const missing = await app.inject({ method: 'GET', url: '/v1/roles/checker_99' });
    assert.equal(missing.statusCode, 404);
    assert.equal((missing.json() as { code: string }).code, 'ROLE_NOT_FOUND');
    assert.equal(rowsRead, 0);
  });
});
