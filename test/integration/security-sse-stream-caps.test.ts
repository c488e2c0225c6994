// Event streams are capped per tenant and per principal, over real SSE connections with real API
// keys: one caller (a viewer) cannot hold every stream of its tenant and lock its colleagues out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { STREAM_CAP_RETRY_AFTER_SECONDS } from '../../src/http/routes/session-events.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { createTestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('the per-principal stream cap is on by default, half the tenant cap', () => {
  const { http } = configSchema.parse({});
  assert.equal(http.maxSseStreamsPerTenant, 100);
  assert.equal(http.maxSseStreamsPerPrincipal, 50);
  assert.throws(() => configSchema.parse({ http: { maxSseStreamsPerPrincipal: 0 } }));
});

test('one principal holds at most maxSseStreamsPerPrincipal streams; the tenant cap still holds', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    http: { maxSseStreamsPerTenant: 3, maxSseStreamsPerPrincipal: 2 },
  });
  const open: AbortController[] = [];
  try {
    const key = async (name: string, roles: string[]) =>
      (await createApiKey(t.db, { tenantId: 'acme', name, roles, createdBy: 't' })).key;
    const operator = await key('operator', ['operator']);
    const alice = await key('alice', ['viewer']);
    const bob = await key('bob', ['viewer']);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const created = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
    });
    assert.equal(created.status, 201);
    const events = `${url}/v1/sessions/${((await created.json()) as { id: string }).id}/events`;

    /** Opens a stream; a 200 stays open (until aborted), anything else is read and returned. */
    const stream = async (credential: string) => {
      const controller = new AbortController();
      const response = await fetch(events, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${credential}` },
        signal: controller.signal,
      });
      if (response.status === 200) {
        open.push(controller);
        // The stream is registered before its headers are sent; read its first frame to be sure.
        await response.body?.getReader().read();
        return { status: 200, controller };
      }
      const body = (await response.json()) as { code: string; details?: { setting?: string } };
      return {
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        code: body.code,
        setting: body.details?.setting,
        controller,
      };
    };

    const a1 = await stream(alice);
    const a2 = await stream(alice);
    assert.deepEqual([a1.status, a2.status], [200, 200]);
    const a3 = await stream(alice);
    assert.deepEqual(
      [a3.status, a3.code, a3.setting, a3.retryAfter],
      [
        429,
        'RESOURCE_LIMIT_EXCEEDED',
        'http.maxSseStreamsPerPrincipal',
        String(STREAM_CAP_RETRY_AFTER_SECONDS),
      ],
    );
    // Bob, of the same tenant, still gets a stream: the one slot alice could not take.
    assert.equal((await stream(bob)).status, 200);
    // Now the tenant is full: bob, under his own cap, is refused by the tenant's, same code and Retry-After.
    const b2 = await stream(bob);
    assert.deepEqual(
      [b2.status, b2.code, b2.setting, b2.retryAfter],
      [429, 'RESOURCE_LIMIT_EXCEEDED', 'http.maxSseStreamsPerTenant', String(STREAM_CAP_RETRY_AFTER_SECONDS)],
    );
    // Alice closes one of hers: a stream of hers opens again once the server has seen the close.
    a1.controller.abort();
    const status = await waitFor(
      async () => {
        const next = (await stream(alice)).status;
        return next === 429 ? undefined : next;
      },
      10_000,
      "the server to see alice's stream closed",
    );
    assert.equal(status, 200);
  } finally {
    for (const controller of open) controller.abort();
    await app.close();
    await security.close();
    await t.cleanup();
  }
});
