// What an operator sees, on a real server's /metrics, of failures the server handles by itself:
// each is counted where the shipped alerts and docs/observability.md say it is.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../fixtures/free-port.ts';
import { sampleOf, scrapeSample } from '../fixtures/metrics-scrape.ts';
import { startTestServer } from '../fixtures/server.ts';

test('a token refused 503 because the identity provider is unreachable counts in maos_errors_total', async (t) => {
  // A port just let go: nothing listens, so discovery fails at once.
  const issuer = `http://127.0.0.1:${await freePort()}`;
  const server = await startTestServer({
    config: {
      auth: { mode: 'both', oidc: { issuer, audience: 'https://maos.test' } },
      metrics: { public: true },
    },
  });
  t.after(() => server.close());
  // MaosAuthProviderUnavailable reads this series.
  const series = 'maos_errors_total{code="AUTH_PROVIDER_UNAVAILABLE"}';
  // Exported at 0 before the first such answer (scrapeSample reads an absent series as 0 too).
  const before = await (await fetch(`${server.url}/metrics`)).text();
  assert.equal(sampleOf(before, series), 0);
  for (let i = 0; i < 3; i += 1) {
    const response = await fetch(`${server.url}/v1/roles`, {
      headers: { authorization: 'Bearer aaa.bbb.ccc' },
    });
    assert.equal(response.status, 503);
    assert.equal(((await response.json()) as { code: string }).code, 'AUTH_PROVIDER_UNAVAILABLE');
    assert.match(response.headers.get('retry-after') ?? '', /^[1-5]$/);
  }
  assert.equal(await scrapeSample(server.url, series), 3);
});
