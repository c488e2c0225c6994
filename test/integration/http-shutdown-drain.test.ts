// Graceful shutdown with a drain delay: readiness answers 503 at once while the API still serves,
// so a load balancer stops routing here before the listener closes; then the listener closes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestJson, startTestServer } from '../fixtures/server.ts';

test('during shutdown.drainDelaySeconds /readyz is 503 and the API still answers; then it closes', async (t) => {
  // Why 3 s: the checks below must all be answered before the drain ends and the listener closes,
  // which on a busy machine can take more than 1 s.
  const server = await startTestServer({ config: { shutdown: { drainDelaySeconds: 3, graceSeconds: 1 } } });
  t.after(() => server.close());
  assert.equal((await requestJson(`${server.url}/readyz`)).status, 200);
  const stopping = server.app.stop();
  const ready = await requestJson<{ checks: Record<string, { ok: boolean }> }>(`${server.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.checks.shutdown?.ok, false);
  // Requests already routed here are still served.
  assert.equal((await requestJson(`${server.url}/v1/roles`)).status, 200);
  assert.equal((await requestJson(`${server.url}/healthz`)).status, 200);
  await stopping;
  await assert.rejects(fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(5000) }));
});
