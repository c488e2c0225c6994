// The role routes of a server without an LLM provider, against its own OpenAPI document: the
// catalogue answers with the built-in roles, and creating or deleting a custom role (they are for
// LLM agents) is a documented 409 INVALID_STATE naming the missing provider, not a bare 405 or 404
// from routes that do not exist. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUILT_IN_ROLES } from '../../src/agents/roles/catalogue.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder } from '../fixtures/openapi-recorder.ts';
import { startTestServer } from '../fixtures/server.ts';

const role = {
  name: 'compliance_officer',
  description: 'Checks work against regulatory requirements.',
  instructions: 'You are a compliance officer. Goal: find regulatory gaps and how to close them.',
};

for (const store of CONFORMANCE_STORES) {
  test(`without an LLM provider, custom roles are refused as documented (${store})`, {
    timeout: 60_000,
  }, async (t) => {
    const database = await createConformanceStore(store);
    const server = await startTestServer({ config: { ...database.config, auth: { mode: 'apikey' } } });
    t.after(async () => {
      await server.close();
      await database.drop();
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const admin = await createApiKey(db, { tenantId: 'acme', name: 'a', roles: ['admin'], createdBy: 't' });
    const viewer = await createApiKey(db, { tenantId: 'acme', name: 'v', roles: ['viewer'], createdBy: 't' });
    const doc = await fetchOpenApiDocument(server.url);
    assert.ok(doc.paths['/v1/roles']?.post, 'POST /v1/roles is documented');
    assert.ok(doc.paths['/v1/roles/{name}']?.delete, 'DELETE /v1/roles/{name} is documented');
    const api = createOpenApiRecorder(server.url, doc, { authorization: `Bearer ${admin.key}` });

    const listed = await api.call('GET', '/v1/roles');
    expectStatus(listed, 200);
    const names = (listed.body as { items: { name: string }[] }).items.map((item) => item.name);
    assert.deepEqual(
      names,
      BUILT_IN_ROLES.map((builtIn) => builtIn.name),
    );
    expectStatus(await api.call('GET', '/v1/roles/engineer'), 200);

    const reason = /no LLM provider configured, and custom roles are for LLM agents: set providers/;
    const created = await api.call('POST', '/v1/roles', { body: role });
    expectStatus(created, 409, 'INVALID_STATE');
    assert.match(String((created.body as { detail?: string }).detail), reason);
    const deleted = await api.call('DELETE', `/v1/roles/${role.name}`);
    expectStatus(deleted, 409, 'INVALID_STATE');
    assert.match(String((deleted.body as { detail?: string }).detail), reason);
    // The usual checks come first: permission, then the body.
    const asViewer = { headers: { authorization: `Bearer ${viewer.key}` } };
    expectStatus(await api.call('POST', '/v1/roles', { body: role, ...asViewer }), 403);
    expectStatus(await api.call('DELETE', `/v1/roles/${role.name}`, asViewer), 403);
    expectStatus(await api.call('POST', '/v1/roles', { body: { name: 'X' } }), 400, 'VALIDATION_FAILED');

    assert.deepEqual(api.violations, [], 'requests and answers match the document');
  });
}
