// The served OpenAPI document is a valid OpenAPI 3.x document in every auth mode: checked against the
// specification's own JSON schema, and every $ref resolves (@seriousme/openapi-schema-validator), so
// code generators and Swagger UI can read what the server declares.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { fetchOpenApiDocument } from '../fixtures/openapi-conformance.ts';
import { startTestServer } from '../fixtures/server.ts';

/** Every `auth.mode` of the config: each declares other security schemes. */
const AUTH_MODES = ['none', 'apikey', 'oidc', 'both'] as const;

for (const mode of AUTH_MODES) {
  test(`GET /openapi.json is a valid OpenAPI 3.x document (auth mode ${mode})`, async (t) => {
    // The issuer is never asked: the document does not depend on the provider's answers.
    const auth =
      mode === 'oidc' || mode === 'both'
        ? { mode, oidc: { issuer: 'https://idp.example.com', audience: 'maos-api' } }
        : { mode };
    const server = await startTestServer({ config: { workers: { concurrency: 0 }, auth } });
    t.after(() => server.close());
    const doc = await fetchOpenApiDocument(server.url);

    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    assert.equal(
      result.valid,
      true,
      `the document of mode ${mode} is not valid OpenAPI: ${JSON.stringify(result.errors, null, 2)?.slice(0, 4000)}`,
    );
    assert.match(validator.version, /^3\.\d+$/);
    // Not an empty shell that passes any schema: the API's operations are there.
    assert.ok(Object.keys(doc.paths).filter((path) => path.startsWith('/v1/')).length >= 20);
  });
}
