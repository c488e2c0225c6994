// /mcp behind the real security layer (API keys, RBAC, tenancy, audit): the same checks as the
// REST routes, plus each tool's own permission and MCP sessions bound to their principal.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { initializeRequest, postMcp } from '../fixtures/mcp-wire.ts';
import {
  CLIENT_ID,
  CLIENT_SECRET,
  startTestOidcProvider,
  TEST_AUDIENCE,
  type TestOidcProvider,
} from '../fixtures/oidc-provider.ts';

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function codeOf(result: CallToolResult): string | undefined {
  assert.equal(result.isError, true, JSON.stringify(result.structuredContent));
  return toolErrorOf(result)?.code;
}

const SIMPLE_SESSION = {
  objective: 'tenant check',
  agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
};

describe('MCP security', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  const clients: ConnectedClient[] = [];
  async function connectAs(key: string): Promise<ConnectedClient> {
    const connected = await connectHttpClient(server.url, { authorization: `Bearer ${key}` });
    clients.push(connected);
    return connected;
  }

  before(async () => {
    server = await startMcpTestServer({ secure: true });
  });
  after(async () => {
    for (const connected of clients) await connected.close();
    await server?.close();
  });

  test('/mcp without credentials is 401 with a Bearer challenge', async () => {
    const response = await postMcp(server.url, initializeRequest('x'));
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer realm="maos"/);
    assert.equal(((await response.json()) as { code: string }).code, 'UNAUTHENTICATED');
  });

  test('a viewer may read but not orchestrate', async () => {
    const viewer = await connectAs(await server.createKey('acme', ['viewer']));
    const { tools } = await viewer.client.listTools();
    assert.ok(tools.length >= 4);
    assert.equal(codeOf(await call(viewer.client, 'orchestrate', SIMPLE_SESSION)), 'PERMISSION_DENIED');
    assert.equal(
      codeOf(await call(viewer.client, 'cancel_session', { session_id: randomUUID() })),
      'PERMISSION_DENIED',
    );
    const roles = await call(viewer.client, 'list_roles', {});
    assert.notEqual(roles.isError, true);
  });

  test("another tenant's session is not found through MCP", async () => {
    const acme = await connectAs(await server.createKey('acme', ['developer']));
    const globex = await connectAs(await server.createKey('globex', ['developer']));
    const started = await call(acme.client, 'orchestrate', SIMPLE_SESSION);
    assert.notEqual(started.isError, true, JSON.stringify(started.content));
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;

    assert.notEqual((await call(acme.client, 'session_status', { session_id: sessionId })).isError, true);
    assert.equal(
      codeOf(await call(globex.client, 'session_status', { session_id: sessionId })),
      'SESSION_NOT_FOUND',
    );
    assert.equal(
      codeOf(await call(globex.client, 'cancel_session', { session_id: sessionId })),
      'SESSION_NOT_FOUND',
    );
    await assert.rejects(
      globex.client.readResource({ uri: `maos://sessions/${sessionId}` }),
      /SESSION_NOT_FOUND/,
    );
    const listed = await globex.client.listResources();
    assert.ok(!listed.resources.some((resource) => resource.uri.includes(sessionId)));
  });

  test('an MCP session id is useless to another principal', async () => {
    const owner = await connectAs(await server.createKey('acme', ['developer']));
    const intruderKey = await server.createKey('acme', ['developer']);
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${intruderKey}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': owner.transport.sessionId ?? '',
        'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });

  test('tool calls are audited: state changes and denials, with the tool and session', async () => {
    const developer = await connectAs(await server.createKey('acme', ['developer']));
    const started = await call(developer.client, 'orchestrate', SIMPLE_SESSION);
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;
    const viewer = await connectAs(await server.createKey('acme', ['viewer']));
    await call(viewer.client, 'cancel_session', { session_id: sessionId });
    await call(viewer.client, 'session_status', { session_id: sessionId });

    const records = await server.listAudit();
    const created = records.find((r) => r.reason === 'mcp tool orchestrate' && r.targetId === sessionId);
    assert.equal(created?.action, 'sessions:create');
    assert.equal(created?.outcome, 'success');
    const denied = records.find(
      (r) => r.reason === 'mcp tool cancel_session: PERMISSION_DENIED' && r.targetId === sessionId,
    );
    assert.equal(denied?.action, 'sessions:cancel');
    assert.equal(denied?.outcome, 'failure');
    // Reads that succeed are not state changes: no tool record for them.
    assert.ok(!records.some((r) => r.reason?.startsWith('mcp tool session_status')));
  });
});

describe('MCP with OIDC', { timeout: 120_000 }, () => {
  let idp: TestOidcProvider;
  let server: McpTestServer;
  before(async () => {
    idp = await startTestOidcProvider();
    server = await startMcpTestServer({
      secure: true,
      auth: { mode: 'oidc', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE } },
    });
  });
  after(async () => {
    await server?.close();
    await idp?.close();
  });

  test('publishes RFC 9728 metadata and points to it from the 401 challenge', async () => {
    const metadataUrl = `${server.url}/.well-known/oauth-protected-resource/mcp`;
    const metadata = await fetch(metadataUrl);
    assert.equal(metadata.status, 200);
    assert.deepEqual(await metadata.json(), {
      resource: `${server.url}/mcp`,
      authorization_servers: [idp.issuer],
      bearer_methods_supported: ['header'],
      resource_name: 'MAOS MCP server',
    });
    const denied = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{}',
    });
    assert.equal(denied.status, 401);
    const challenge = denied.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="maos"/);
    assert.ok(challenge.includes(`resource_metadata="${metadataUrl}"`), challenge);
    // Only the MCP-specific document: the security layer leaves the attribute to the route.
    assert.equal(challenge.match(/resource_metadata=/g)?.length, 1, challenge);
    await denied.body?.cancel();
  });

  test('a forged Host header adds no attribute to the challenge of /mcp', async () => {
    const { port } = new URL(server.url);
    const forged = 'evil.example", error="injected';
    const answer = await new Promise<{ status: number; challenge: string }>((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port: Number(port),
          method: 'POST',
          path: '/mcp',
          headers: { host: forged, 'content-type': 'application/json' },
        },
        (response) => {
          response.resume();
          resolve({
            status: response.statusCode ?? 0,
            challenge: String(response.headers['www-authenticate'] ?? ''),
          });
        },
      );
      request.once('error', reject);
      request.end('{}');
    });
    assert.equal(answer.status, 401);
    assert.match(answer.challenge, /^Bearer realm="maos"/);
    assert.ok(!answer.challenge.includes('injected'), answer.challenge);
    assert.equal(answer.challenge.match(/error=/g), null, answer.challenge);
  });

  test('an SDK client with an access token uses the tools', async () => {
    const token = await idp.getToken({ claims: { tenant_id: 'default', roles: ['developer'] } });
    const connected = await connectHttpClient(server.url, { authorization: `Bearer ${token}` });
    try {
      const started = await call(connected.client, 'orchestrate', SIMPLE_SESSION);
      assert.notEqual(started.isError, true, JSON.stringify(started.content));
    } finally {
      await connected.close();
    }
  });
});

test('without OIDC there is no protected-resource metadata', async (t) => {
  const server = await startMcpTestServer({ secure: true });
  t.after(() => server.close());
  const response = await fetch(`${server.url}/.well-known/oauth-protected-resource/mcp`);
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

test('an SDK client doing MCP authorization gets a token for /mcp that MAOS accepts', async (t) => {
  // The audience must be the server's URL, known before it starts: a relay on a port of its own
  // stands in for the public address, forwarding to the server once it listens.
  let targetPort = 0;
  const sockets = new Set<Socket>();
  const relay = createServer((socket) => {
    const upstream = netConnect(targetPort, '127.0.0.1');
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy()).on('close', () => sockets.delete(s));
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const closers: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
  });
  const publicUrl = `http://127.0.0.1:${(relay.address() as { port: number }).port}`;
  const idp = await startTestOidcProvider();
  closers.push(() => idp.close());
  const server = await startMcpTestServer({
    secure: true,
    auth: { mode: 'oidc', oidc: { issuer: idp.issuer, audience: publicUrl, defaultTenant: 'default' } },
  });
  closers.push(() => server.close());
  targetPort = Number(new URL(server.url).port);
  // The client-credentials principal is the client id (`sub`); it gets its role by a binding.
  await (server.app.database.db as unknown as SecurityDb)
    .insertInto('role_bindings')
    .values({
      tenant_id: 'default',
      principal_id: CLIENT_ID,
      role: 'developer',
      created_at: new Date().toISOString(),
      created_by: 'test',
    })
    .execute();

  // 401 → resource_metadata → authorization server → token for `resource` = <url>/mcp (RFC 8707).
  const provider = new ClientCredentialsProvider({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    expectedIssuer: idp.issuer,
  });
  const client = new Client({ name: 'maos-oauth-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', publicUrl), { authProvider: provider });
  closers.push(() => client.close());
  await client.connect(transport);
  const token = provider.tokens()?.access_token ?? '';
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
    aud: unknown;
  };
  assert.equal(claims.aud, `${publicUrl}/mcp`, 'the token was issued for the MCP endpoint');
  const roles = await call(client, 'list_roles', {});
  assert.notEqual(roles.isError, true, JSON.stringify(roles.content));
  // The same token for another server's MCP endpoint is still refused.
  const foreign = await idp.getToken({ resource: 'https://other.example/mcp' });
  const refused = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${foreign}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
});

test('a token without the permission of /mcp gets a scope challenge, and a token with that scope gets in', async (t) => {
  const idp = await startTestOidcProvider();
  t.after(() => idp.close());
  // Roles come from the token's scopes: `sessions:read` is the IdP's name for a viewer.
  const server = await startMcpTestServer({
    secure: true,
    auth: {
      mode: 'oidc',
      oidc: {
        issuer: idp.issuer,
        audience: TEST_AUDIENCE,
        defaultTenant: 'default',
        rolesClaim: 'scope',
        roleMapping: { 'sessions:read': ['viewer'], 'sessions:write': ['developer'] },
      },
    },
  });
  t.after(() => server.close());
  const initialize = (token: string) =>
    postMcp(server.url, initializeRequest('x'), { authorization: `Bearer ${token}` });

  // A token with no scope holds no role: /mcp (sessions:read) answers 403 with the scope to ask
  // for and, as on its 401, where the protected-resource metadata is (MCP scope challenge).
  const denied = await initialize(await idp.getToken({ scope: '' }));
  assert.equal(denied.status, 403);
  const challenge = denied.headers.get('www-authenticate') ?? '';
  assert.equal(
    challenge,
    `Bearer realm="maos", error="insufficient_scope", error_description="requires sessions:read", scope="sessions:read", resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`,
  );
  await denied.body?.cancel();

  // Step-up as an MCP client does it: ask the IdP for the challenged scope, send the request again.
  const scope = /, scope="([^"]*)"/.exec(challenge)?.[1] ?? '';
  const admitted = await initialize(await idp.getToken({ scope }));
  assert.equal(admitted.status, 200, await admitted.clone().text());
  await admitted.body?.cancel();

  // Other 403s of /mcp (a refused Origin) are no scope problem and carry no challenge.
  const foreignOrigin = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await idp.getToken({ scope })}`,
      origin: 'https://elsewhere.example',
      'content-type': 'application/json',
    },
    body: '{}',
  });
  assert.equal(foreignOrigin.status, 403);
  assert.equal(foreignOrigin.headers.get('www-authenticate'), null);
  await foreignOrigin.body?.cancel();
});
