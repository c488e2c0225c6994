// An open event stream ends when the credential it was opened with stops being valid: a key revoked
// here (at once) or by another process (at the next re-check), a key or an OIDC token that expires.
// The client's reconnect is then refused with 401, so no more of the tenant's data reaches it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { Security } from '../../src/security/create-security.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

/** Reads a stream to its end; rejects if it is still open after `limitMs` (a hang, not a timing). */
async function readToEnd(body: ReadableStream<Uint8Array>, limitMs = 20_000): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    void reader.cancel();
  }, limitMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
  }
  assert.equal(hung, false, 'the stream did not end');
  return text;
}

describe('open event streams end with their credential', { timeout: 120_000 }, () => {
  let t: TestSecurityDb;
  let idp: TestOidcProvider;
  let app: FastifyInstance;
  let security: Security;
  let url = '';
  let admin = '';
  let events = '';
  const clock = { offsetMs: 0 };

  before(async () => {
    t = await createTestSecurityDb();
    idp = await startTestOidcProvider();
    ({ app, security } = await buildSecurityTestApp(
      t,
      {
        auth: { mode: 'both', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE, defaultTenant: 'acme' } },
        // The re-check runs at the streams' keep-alive: short here, so a test does not wait 15 s.
        http: { sseKeepAliveSeconds: 0.2 },
      },
      clock,
    ));
    admin = (await createApiKey(t.db, { tenantId: 'acme', name: 'admin', roles: ['admin'], createdBy: 't' }))
      .key;
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    const created = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
    });
    assert.equal(created.status, 201);
    events = `${url}/v1/sessions/${((await created.json()) as { id: string }).id}/events`;
  });
  after(async () => {
    await app?.close();
    await security?.close();
    await idp?.close();
    await t?.cleanup();
  });

  const open = (credential: string) =>
    fetch(events, { headers: { accept: 'text/event-stream', authorization: `Bearer ${credential}` } });

  /** Opens a stream that must be accepted; returns its body once the stream is live. */
  async function openLive(credential: string): Promise<ReadableStream<Uint8Array>> {
    const response = await open(credential);
    assert.equal(response.status, 200, await (response.status === 200 ? '' : response.text()));
    assert.ok(response.body);
    return response.body;
  }

  const viewerKey = async (name: string, expiresAt?: string) =>
    createApiKey(t.db, {
      tenantId: 'acme',
      name,
      roles: ['viewer'],
      createdBy: 't',
      ...(expiresAt ? { expiresAt } : {}),
    });

  test('a key revoked through the API ends its streams; the reconnect gets 401', async () => {
    const { key, info } = await viewerKey('revoked-here');
    const [first, second] = [await openLive(key), await openLive(key)];
    const ends = Promise.all([readToEnd(first), readToEnd(second)]);
    const revoked = await fetch(`${url}/v1/admin/keys/${info.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(revoked.status, 200);
    for (const text of await ends) assert.match(text, /stream open/);
    const again = await open(key);
    assert.equal(again.status, 401);
    assert.match(again.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    // Another credential's stream of the same session is not concerned.
    const other = await openLive(admin);
    await other.cancel();
  });

  test('a key revoked by another process (its row changed) ends the stream at the next re-check', async () => {
    const { key, info } = await viewerKey('revoked-elsewhere');
    const body = await openLive(key);
    const ended = readToEnd(body);
    // What `maos keys revoke` does from its own process: this server is not told.
    await t.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('id', '=', info.id)
      .execute();
    await ended;
    assert.equal((await open(key)).status, 401);
  });

  test('a key that expires ends its stream at its expiry', async () => {
    const { key } = await viewerKey('expiring', new Date(Date.now() + 1500).toISOString());
    await readToEnd(await openLive(key));
    assert.equal((await open(key)).status, 401);
  });

  test("an OIDC token's stream ends at its exp (with the clock tolerance); the reconnect gets 401", async () => {
    const token = await idp.getToken({ claims: { roles: ['viewer'] } });
    const exp = (
      JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }
    ).exp;
    // The verifier's clock moved to 1 s before the token stops being accepted (exp + 30 s tolerance).
    clock.offsetMs = (exp + 30) * 1000 - Date.now() - 1000;
    try {
      await readToEnd(await openLive(token));
      const again = await open(token);
      assert.equal(again.status, 401);
      assert.match(again.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    } finally {
      clock.offsetMs = 0;
    }
  });
});
