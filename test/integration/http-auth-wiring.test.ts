// The composition root with authentication on (auth mode `apikey`, the default): protected routes
// and the SSE stream refuse anonymous callers with a problem and a Bearer challenge; probes and the
// OpenAPI document stay public; responses carry the security headers.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

/** GET with each header sent as given: an array value becomes repeated header lines. */
function getWithRawHeaders(url: string, headers: Record<string, string | string[]>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('authentication wired into the real server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
  });
  after(async () => server?.close());

  test('the app reports its auth mode', () => {
    assert.equal(server.app.authMode, 'apikey');
  });

  for (const [method, path, headers] of [
    ['GET', '/v1/sessions', {}],
    ['POST', '/v1/sessions', {}],
    ['GET', '/v1/roles', {}],
    ['GET', '/v1/sessions/0190a0a0-0000-7000-8000-000000000abc/events', { accept: 'text/event-stream' }],
  ] as const) {
    test(`${method} ${path} without credentials → 401 problem with a Bearer challenge`, async () => {
      const response = await requestJson<{ code: string }>(`${server.url}${path}`, {
        method,
        headers,
        ...(method === 'POST' ? { body: { objective: 'x' } } : {}),
      });
      assert.equal(response.status, 401);
      assert.equal(response.body.code, 'UNAUTHENTICATED');
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/);
      assert.match(String(response.headers.get('www-authenticate')), /^Bearer/);
    });
  }

  test('a forged API key is rejected', async () => {
    const response = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer maos_0123456789ab_${'A'.repeat(43)}` },
    });
    assert.equal(response.status, 401);
    assert.equal(response.body.code, 'INVALID_TOKEN');
  });

  test('a credential sent twice is refused, whichever comes first', async () => {
    const db = server.app.database.db as unknown as SecurityDb;
    const mint = async (tenantId: string, roles: string[]) =>
      (await createApiKey(db, { tenantId, name: `k-${tenantId}`, roles, createdBy: 'test' })).key;
    const viewer = await mint('default', ['viewer']);
    const admin = await mint('other', ['admin']);
    const url = `${server.url}/v1/admin/keys`;
    // Control: each alone is accepted or refused on its own merits.
    assert.equal(await getWithRawHeaders(url, { authorization: `Bearer ${admin}` }), 200);
    const pairs: Array<Record<string, string[]>> = [
      { authorization: [`Bearer ${viewer}`, `Bearer ${admin}`] },
      { authorization: [`Bearer ${admin}`, `Bearer ${viewer}`] },
      { 'x-api-key': [admin, viewer] },
    ];
    for (const pair of pairs) {
      assert.equal(await getWithRawHeaders(url, pair), 400, JSON.stringify(Object.keys(pair)));
    }
  });

  test('probes and the OpenAPI document are public and carry security headers', async () => {
    for (const path of ['/healthz', '/readyz', '/openapi.json']) {
      const response = await requestJson(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });
});
