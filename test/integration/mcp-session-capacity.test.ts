// Capacity of /mcp with real API keys: one tenant cannot hold more than mcp.maxSessionsPerTenant
// MCP sessions, so it cannot lock the others out, nor one key more than mcp.maxSessionsPerPrincipal,
// so it cannot lock out the rest of its tenant; a refusal names its Retry-After; ending a session
// frees its slot. (Concurrent initializes against the caps: src/mcp/http-transport.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { CAPACITY_RETRY_AFTER_SECONDS } from '../../src/mcp/capacity-slots.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeRequest, postMcp } from '../fixtures/mcp-wire.ts';

const INITIALIZE = initializeRequest('cap');

interface Problem {
  code: string;
  detail: string;
  details?: { setting?: string; limit?: number };
}

/** Sends an initialize; returns its status with the session id, or the problem of a refusal. */
async function initialize(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; sessionId: string | null; problem?: Problem; retryAfter?: string | null }> {
  const response = await postMcp(url, INITIALIZE, headers);
  const sessionId = response.headers.get('mcp-session-id');
  if (response.status === 200) {
    await response.body?.cancel();
    return { status: 200, sessionId };
  }
  return {
    status: response.status,
    sessionId,
    problem: (await response.json()) as Problem,
    retryAfter: response.headers.get('retry-after'),
  };
}

async function deleteSession(url: string, sessionId: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(`${url}/mcp`, {
    method: 'DELETE',
    headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
}

describe('MCP sessions per tenant', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let acme: Record<string, string>;
  let globex: Record<string, string>;
  before(async () => {
    server = await startMcpTestServer({
      secure: true,
      config: { mcp: { maxSessions: 10, maxSessionsPerTenant: 3 } },
    });
    acme = { authorization: `Bearer ${await server.createKey('acme', ['viewer'])}` };
    globex = { authorization: `Bearer ${await server.createKey('globex', ['viewer'])}` };
  });
  after(async () => server?.close());

  test('a tenant at mcp.maxSessionsPerTenant gets 429 naming the limit; other tenants still get in', async () => {
    const opened = await Promise.all(Array.from({ length: 8 }, () => initialize(server.url, acme)));
    const acmeSessions = opened.filter((result) => result.status === 200);
    assert.equal(acmeSessions.length, 3);
    const refused = opened.find((result) => result.status === 429);
    assert.equal(refused?.problem?.code, 'RESOURCE_LIMIT_EXCEEDED');
    assert.match(refused?.problem?.detail ?? '', /mcp\.maxSessionsPerTenant/);
    assert.deepEqual(refused?.problem?.details, { setting: 'mcp.maxSessionsPerTenant', limit: 3 });
    assert.equal(refused?.retryAfter, String(CAPACITY_RETRY_AFTER_SECONDS));

    const other = await initialize(server.url, globex);
    assert.equal(other.status, 200, JSON.stringify(other.problem));

    // Ending a session gives its slot back.
    const first = acmeSessions[0]?.sessionId;
    assert.ok(first);
    await deleteSession(server.url, first, acme);
    assert.equal((await initialize(server.url, acme)).status, 200);
    assert.equal((await initialize(server.url, acme)).status, 429);
  });
});

describe('MCP sessions per caller', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let viewer: Record<string, string>;
  let colleague: Record<string, string>;
  before(async () => {
    server = await startMcpTestServer({
      secure: true,
      config: { mcp: { maxSessions: 10, maxSessionsPerTenant: 5, maxSessionsPerPrincipal: 2 } },
    });
    viewer = { authorization: `Bearer ${await server.createKey('acme', ['viewer'])}` };
    colleague = { authorization: `Bearer ${await server.createKey('acme', ['viewer'])}` };
  });
  after(async () => server?.close());

  test('one key at mcp.maxSessionsPerPrincipal gets 429 naming the limit; the rest of its tenant still gets in', async () => {
    const opened = await Promise.all(Array.from({ length: 6 }, () => initialize(server.url, viewer)));
    const mine = opened.filter((result) => result.status === 200);
    assert.equal(mine.length, 2);
    const refused = opened.find((result) => result.status === 429);
    assert.equal(refused?.problem?.code, 'RESOURCE_LIMIT_EXCEEDED');
    assert.deepEqual(refused?.problem?.details, { setting: 'mcp.maxSessionsPerPrincipal', limit: 2 });
    assert.equal(refused?.retryAfter, String(CAPACITY_RETRY_AFTER_SECONDS));

    for (let i = 0; i < 2; i += 1) {
      const other = await initialize(server.url, colleague);
      assert.equal(other.status, 200, JSON.stringify(other.problem));
    }

    // Ending a session gives the caller its slot back.
    const first = mine[0]?.sessionId;
    assert.ok(first);
    await deleteSession(server.url, first, viewer);
    assert.equal((await initialize(server.url, viewer)).status, 200);
    assert.equal((await initialize(server.url, viewer)).status, 429);
  });
});
