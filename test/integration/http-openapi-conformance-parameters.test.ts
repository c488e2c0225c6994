// Request parameters against the OpenAPI document (the recorder checks every request's path, query
// and header parameters against the operation's declarations): values outside the declared schema
// get the documented 400, never a silently read value; the parameters a client may send are all
// declared. On SQLite and PostgreSQL; the broad scenario is http-openapi-conformance.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder } from '../fixtures/openapi-recorder.ts';
import { startTestServer, waitForSession } from '../fixtures/server.ts';

for (const store of CONFORMANCE_STORES) {
  test(`request parameters match the OpenAPI document (${store})`, { timeout: 60_000 }, async (t) => {
    const database = await createConformanceStore(store);
    const server = await startTestServer({ config: { ...database.config, auth: { mode: 'apikey' } } });
    t.after(async () => {
      await server.close();
      await database.drop();
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const { key } = await createApiKey(db, { tenantId: 'acme', name: 'k', roles: ['admin'], createdBy: 't' });
    const doc = await fetchOpenApiDocument(server.url);
    const api = createOpenApiRecorder(server.url, doc, {
      authorization: `Bearer ${key}`,
    });
    const created = await api.call('POST', '/v1/sessions', {
      body: { objective: 'Parameters', agents: [{ role: 'engineer', task: 'Build', runner: 'ok' }] },
    });
    expectStatus(created, 201);
    const id = (created.body as { id: string }).id;
    await waitForSession(server.url, id, undefined, 30_000).catch(() => undefined);

    // Integers are decimal digits: no empty value read as 0, no hex, exponent or fraction; one value.
    const notIntegers = ['abc', '', '0x10', '1e1', '1.5', '%205'];
    for (const value of notIntegers)
      expectStatus(await api.call('GET', `/v1/sessions?limit=${value}`), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/sessions?limit=1&limit=2'), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/sessions?limit=2'), 200);
    // A limit above the maximum page size is lowered to it, however many digits: the document allows it.
    for (const value of ['101', '9007199254740993', '9'.repeat(30)])
      expectStatus(await api.call('GET', `/v1/sessions?limit=${value}`), 200);
    const events = `/v1/sessions/${id}/events`;
    for (const query of ['after=', 'after=-1', 'after=x', 'limit=0x10', 'order=sideways'])
      expectStatus(await api.call('GET', `${events}?${query}`), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', `${events}?after=0&limit=2`), 200);
    // Query names are case-sensitive: another spelling is an undeclared parameter.
    expectStatus(await api.call('GET', '/v1/sessions?STATUS=completed'), 400, 'VALIDATION_FAILED');
    // Enums take their declared values only.
    expectStatus(await api.call('GET', '/v1/sessions?status=bogus'), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/sessions?status=completed'), 200);
    expectStatus(await api.call('GET', '/v1/audit?outcome=maybe'), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/audit?limit=1.5'), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/audit?outcome=failure&action=sessions%3Acreate'), 200);
    const day = (offset: number) => encodeURIComponent(new Date(Date.now() + offset).toISOString());
    const range = `from=${day(-86_400_000)}&to=${day(86_400_000)}`;
    expectStatus(await api.call('GET', `/v1/usage?${range}&groupBy=week`), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', `/v1/usage?from=yesterday&to=${day(0)}`), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', `/v1/usage?${range}&groupBy=role`), 200);
    // A query is percent-encoded UTF-8, as a path is: Latin-1 `%E9`, `%ZZ` or an encoded surrogate
    // is a malformed URL, never read as its literal text (a role granted to a principal nobody has)
    // nor with U+FFFD in its place.
    for (const query of ['principal=caf%E9&role=viewer', 'principal=%ZZ&role=viewer']) {
      const malformed = await api.call('PUT', `/v1/admin/role-bindings?${query}`);
      expectStatus(malformed, 400, 'VALIDATION_FAILED');
      assert.equal((malformed.body as { detail: string }).detail, 'The URL is malformed.');
    }
    expectStatus(await api.call('GET', '/v1/audit?action=%ED%A0%80'), 400, 'VALIDATION_FAILED');
    const bindings = await api.call('GET', '/v1/admin/role-bindings');
    expectStatus(bindings, 200);
    assert.deepEqual((bindings.body as { items: unknown[] }).items, [], 'no binding was granted');
    // A principal's length is counted in characters, as the document's maxLength counts them: 512
    // emoji (1,024 UTF-16 units) are a principal, 513 are not.
    const emoji = (count: number) =>
      `/v1/admin/role-bindings/${encodeURIComponent('😀'.repeat(count))}/viewer`;
    expectStatus(await api.call('PUT', emoji(512)), 201);
    expectStatus(await api.call('DELETE', emoji(512)), 204);
    expectStatus(await api.call('PUT', emoji(513)), 400, 'VALIDATION_FAILED');
    // A proof is of a tree of at least one record: the document says so (minimum 1). Its size may
    // be left out once a checkpoint is signed, a rule the document states in words.
    for (const [path, name] of [
      ['/v1/audit/proof/inclusion', 'size'],
      ['/v1/audit/proof/consistency', 'to'],
    ] as const) {
      const parameter = doc.paths[path]?.get?.parameters?.find((p) => p.name === name);
      assert.match(parameter?.description ?? '', /required until the server has signed one/, name);
    }
    expectStatus(await api.call('GET', '/v1/audit/proof/consistency?from=0'), 400, 'VALIDATION_FAILED');
    expectStatus(await api.call('GET', '/v1/audit/proof/inclusion?index=0&size=0'), 400, 'VALIDATION_FAILED');
    // Path parameters outside their pattern are refused before any lookup.
    const credentials = { body: { apiKey: 'sk-x' } };
    expectStatus(await api.call('PUT', '/v1/providers/Bad_Name/credentials', credentials), 400);
    expectStatus(await api.call('GET', '/v1/sessions/not-a-uuid/plans'), 400, 'VALIDATION_FAILED');

    // Texts the server trims are documented as not blank (a pattern), so a blank one is no surprise.
    expectStatus(await api.call('POST', '/v1/sessions', { body: { objective: '  ' } }), 400);
    const bulky = { body: { objective: 'x', metadata: { notes: 'n'.repeat(17_000) } } };
    const limited = await api.call('POST', '/v1/sessions', {
      ...bulky,
      ruleBeyondSchema: 'metadata ≤ 16 KiB',
    });
    expectStatus(limited, 400, 'VALIDATION_FAILED');
    const metadataSchema = JSON.stringify(doc.paths['/v1/sessions']?.post?.requestBody);
    assert.match(metadataSchema, /at most 16 KiB as JSON/, 'the limit is stated in the document');
    // Rules the document states in words: adaptive takes no agents; approval and runner-less tasks need an LLM.
    const agents = [{ role: 'engineer', task: 'Build', runner: 'ok' }];
    const submitted = JSON.stringify(doc.paths['/v1/sessions']?.post?.requestBody);
    for (const [body, rule] of [
      [{ objective: 'x', strategy: 'adaptive', agents }, 'so it takes no agents'],
      [{ objective: 'x', approval: 'required', agents }, '/reject); needs an LLM provider'],
      [{ objective: 'x', agents: [{ role: 'engineer', task: 'Build' }] }, 'the LLM, which needs a provider'],
    ] as const) {
      const call = await api.call('POST', '/v1/sessions', { body, ruleBeyondSchema: rule });
      expectStatus(call, 400, 'VALIDATION_FAILED');
      assert.ok(submitted.includes(rule), `the document says: ${rule}`);
    }
    const blankKey = { body: { name: ' ', roles: ['viewer'] } };
    expectStatus(await api.call('POST', '/v1/admin/keys', blankKey), 400, 'VALIDATION_FAILED');
    const past = { name: 'old', roles: ['viewer'], expiresAt: '2020-01-01T00:00:00Z' };
    const expired = { body: past, ruleBeyondSchema: 'expiresAt in the future' };
    expectStatus(await api.call('POST', '/v1/admin/keys', expired), 400, 'VALIDATION_FAILED');

    // Header parameters: a malformed Idempotency-Key or Last-Event-ID is a 400 too.
    const spaced = { body: { objective: 'x' }, headers: { 'idempotency-key': 'two words' } };
    expectStatus(await api.call('POST', '/v1/sessions', spaced), 400, 'VALIDATION_FAILED');
    const stream = { accept: 'text/event-stream' };
    const badResume = { headers: { ...stream, 'last-event-id': 'abc' } };
    expectStatus(await api.call('GET', events, badResume), 400, 'VALIDATION_FAILED');
    const resumed = await api.call('GET', events, { headers: { ...stream, 'last-event-id': '1' } });
    expectStatus(resumed, 200);
    assert.match(resumed.text, /^id: 2$/m, 'the stream resumes after the event named');
    // Every operation takes the caller's request id, and echoes it.
    const traced = await api.call('GET', '/v1/roles', { headers: { 'x-request-id': 'trace-42' } });
    expectStatus(traced, 200);
    assert.equal(traced.headers.get('x-request-id'), 'trace-42');
    expectStatus(await api.call('GET', '/healthz', { headers: { 'x-request-id': 'probe-1' } }), 200);

    assert.deepEqual(api.violations, [], 'requests and answers match the document');
  });
}
