// OWASP API9 (improper inventory): the OpenAPI document of the real server states, for every route
// of the route table, how to authenticate and which permission it needs; public routes need nothing.
// The declared security schemes follow `auth.mode`, so the document never promises a credential
// type the server refuses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { requestJson, startTestServer } from '../fixtures/server.ts';

interface Operation {
  security?: Array<Record<string, string[]>>;
  'x-permission'?: string;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes?: Record<string, { type: string; scheme?: string; bearerFormat?: string }> };
}

// Routes left out of the document on purpose (transport endpoints, the document itself, the console's
// static files); each is still protected or public in the route table (security-route-table.test.ts).
const HIDDEN = /^\/(mcp|metrics|openapi\.json|\.well-known\/.*|console(\/.*)?)$/;

async function loadDocument(mode: 'apikey' | 'oidc' | 'both') {
  const auth =
    mode === 'apikey'
      ? { mode }
      : { mode, oidc: { issuer: 'https://idp.example.com', audience: 'maos-api' } };
  const server = await startTestServer({ config: { workers: { concurrency: 0 }, auth } });
  try {
    const { status, body } = await requestJson<OpenApiDoc>(`${server.url}/openapi.json`);
    assert.equal(status, 200);
    return { doc: body, routes: server.app.http.listRegisteredRoutes() };
  } finally {
    await server.close();
  }
}

describe('OpenAPI security requirements', () => {
  test('every non-public route has a security requirement and its permission in the document', async () => {
    const { doc, routes } = await loadDocument('apikey');
    let checked = 0;
    for (const route of routes) {
      if (route.url.startsWith('/docs')) continue;
      const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
      for (const method of route.methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS')) {
        const operation = doc.paths[path]?.[method.toLowerCase()];
        if (!operation) {
          assert.ok(route.hidden, `${method} ${route.url} is missing from the document`);
          assert.match(route.url, HIDDEN, `${method} ${route.url} is hidden from the document`);
          continue;
        }
        checked += 1;
        if (route.public) {
          assert.deepEqual(operation.security, [], `${method} ${path} is public`);
          assert.equal(operation['x-permission'], undefined);
          continue;
        }
        assert.deepEqual(
          operation.security,
          [{ apiKeyBearer: [] }, { apiKeyHeader: [] }],
          `${method} ${path} requires credentials`,
        );
        assert.equal(operation['x-permission'], route.permission, `${method} ${path} states its permission`);
      }
    }
    assert.ok(checked >= 10, `checked ${checked} operations`);
  });

  test('the declared schemes are the credentials the auth mode accepts', async () => {
    const apikey = await loadDocument('apikey');
    assert.deepEqual(Object.keys(apikey.doc.components.securitySchemes ?? {}), [
      'apiKeyBearer',
      'apiKeyHeader',
    ]);
    assert.deepEqual(apikey.doc.components.securitySchemes?.apiKeyHeader, {
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
      description: 'An API key (`maos_…`).',
    });

    const oidc = await loadDocument('oidc');
    assert.deepEqual(Object.keys(oidc.doc.components.securitySchemes ?? {}), ['oidcBearer']);
    assert.equal(oidc.doc.components.securitySchemes?.oidcBearer?.bearerFormat, 'JWT');
    assert.deepEqual(oidc.doc.paths['/v1/sessions']?.post?.security, [{ oidcBearer: [] }]);
    assert.equal(oidc.doc.paths['/v1/sessions']?.post?.['x-permission'], 'sessions:create');

    const both = await loadDocument('both');
    assert.deepEqual(both.doc.paths['/v1/audit']?.get?.security, [
      { oidcBearer: [] },
      { apiKeyBearer: [] },
      { apiKeyHeader: [] },
    ]);
    assert.deepEqual(both.doc.paths['/healthz']?.get?.security, []);
  });
});
