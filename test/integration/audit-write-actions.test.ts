// The audit record of every state-changing HTTP route names what the request did, not only the
// permission it needed: a key's creation is `keys:create` and its revocation `keys:revoke`, where
// both were `keys:manage` (as a custom role's creation and deletion were both `roles:manage`, and
// every webhook and provider-credential change `webhooks:manage` / `providers:manage`). One row per
// write route of the real application, each sent once as a tenant admin; a write route without a
// row fails the test. The console's Action filter suggests each of these names and each permission
// (what refused reads and the records written before these names carry).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { PERMISSIONS } from '../../src/security/rbac.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson } from '../fixtures/server.ts';

/** What the rows share: the objects earlier rows made, which later ones change. */
interface Made {
  /** Submitted with its agents and plan approval: waits for approval. */
  approved: string;
  rejected: string;
  /** Submitted with an objective only: steered, cancelled, retried and deleted. */
  planned: string;
  keyId: string;
  webhookId: string;
}

interface Row {
  method: string;
  /** The route as registered. */
  route: string;
  path(made: Made): string;
  body?: unknown;
  status: number;
  action: string;
  /** Keeps what the answer made, for later rows. */
  keep?(made: Made, body: unknown): void;
}

const PRINCIPAL = encodeURIComponent('auth0|carol@example.com');

const ROWS: Row[] = [
  {
    method: 'POST',
    route: '/v1/sessions',
    path: () => '/v1/sessions',
    body: {
      objective: 'Audited',
      agents: [{ role: 'qa', task: 'check', runner: 'echo' }],
      approval: 'required',
    },
    status: 201,
    action: 'sessions:create',
    keep: (made, body) => {
      made.approved = (body as { id: string }).id;
    },
  },
  {
    method: 'POST',
    route: '/v1/sessions/:id/approve',
    path: (made) => `/v1/sessions/${made.approved}/approve`,
    body: {},
    status: 200,
    action: 'sessions:approve',
  },
  {
    method: 'POST',
    route: '/v1/sessions/:id/reject',
    path: (made) => `/v1/sessions/${made.rejected}/reject`,
    body: { reason: 'not this plan' },
    status: 204,
    action: 'sessions:reject',
  },
  {
    method: 'POST',
    route: '/v1/sessions/:id/messages',
    path: (made) => `/v1/sessions/${made.planned}/messages`,
    body: { message: 'mind the budget' },
    status: 202,
    action: 'sessions:steer',
  },
  {
    method: 'POST',
    route: '/v1/sessions/:id/cancel',
    path: (made) => `/v1/sessions/${made.planned}/cancel`,
    status: 200,
    action: 'sessions:cancel',
  },
  {
    method: 'POST',
    route: '/v1/sessions/:id/retry',
    path: (made) => `/v1/sessions/${made.planned}/retry`,
    body: {},
    status: 201,
    action: 'sessions:retry',
  },
  {
    method: 'DELETE',
    route: '/v1/sessions/:id',
    path: (made) => `/v1/sessions/${made.planned}`,
    status: 204,
    action: 'sessions:delete',
  },
  {
    method: 'POST',
    route: '/v1/admin/keys',
    path: () => '/v1/admin/keys',
    body: { name: 'ci', roles: ['viewer'] },
    status: 201,
    action: 'keys:create',
    keep: (made, body) => {
      made.keyId = (body as { id: string }).id;
    },
  },
  {
    method: 'DELETE',
    route: '/v1/admin/keys/:id',
    path: (made) => `/v1/admin/keys/${made.keyId}`,
    status: 200,
    action: 'keys:revoke',
  },
  {
    method: 'PUT',
    route: '/v1/admin/role-bindings/:principal/:role',
    path: () => `/v1/admin/role-bindings/${PRINCIPAL}/viewer`,
    status: 201,
    action: 'role_bindings:grant',
  },
  {
    method: 'DELETE',
    route: '/v1/admin/role-bindings/:principal/:role',
    path: () => `/v1/admin/role-bindings/${PRINCIPAL}/viewer`,
    status: 204,
    action: 'role_bindings:revoke',
  },
  {
    method: 'PUT',
    route: '/v1/admin/role-bindings',
    path: () => `/v1/admin/role-bindings?principal=${PRINCIPAL}&role=operator`,
    status: 201,
    action: 'role_bindings:grant',
  },
  {
    method: 'DELETE',
    route: '/v1/admin/role-bindings',
    path: () => `/v1/admin/role-bindings?principal=${PRINCIPAL}&role=operator`,
    status: 204,
    action: 'role_bindings:revoke',
  },
  {
    method: 'POST',
    route: '/v1/roles',
    path: () => '/v1/roles',
    body: { name: 'auditor_aide', description: 'Reads logs.', instructions: 'Read the logs you are given.' },
    status: 201,
    action: 'roles:create',
  },
  {
    method: 'DELETE',
    route: '/v1/roles/:name',
    path: () => '/v1/roles/auditor_aide',
    status: 204,
    action: 'roles:delete',
  },
  {
    method: 'PUT',
    route: '/v1/providers/:name/credentials',
    path: () => '/v1/providers/local/credentials',
    body: { apiKey: 'sk-tenant-own' },
    status: 200,
    action: 'providers:set',
  },
  {
    method: 'DELETE',
    route: '/v1/providers/:name/credentials',
    path: () => '/v1/providers/local/credentials',
    status: 200,
    action: 'providers:delete',
  },
  {
    method: 'POST',
    route: '/v1/webhooks',
    path: () => '/v1/webhooks',
    body: { url: 'https://hooks.example.com/maos', events: ['session.completed'] },
    status: 201,
    action: 'webhooks:create',
    keep: (made, body) => {
      made.webhookId = (body as { id: string }).id;
    },
  },
  {
    method: 'POST',
    route: '/v1/webhooks/:id/rotate-secret',
    path: (made) => `/v1/webhooks/${made.webhookId}/rotate-secret`,
    status: 200,
    action: 'webhooks:rotate_secret',
  },
  {
    method: 'POST',
    route: '/v1/webhooks/:id/enable',
    path: (made) => `/v1/webhooks/${made.webhookId}/enable`,
    status: 200,
    action: 'webhooks:enable',
  },
  {
    method: 'DELETE',
    route: '/v1/webhooks/:id',
    path: (made) => `/v1/webhooks/${made.webhookId}`,
    status: 204,
    action: 'webhooks:delete',
  },
];

// Methods that change nothing; /mcp names its records after the JSON-RPC method (`mcp:<method>`).
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

test('every write route is audited under the name of what it did', { timeout: 60_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, {
    config: {
      auth: { mode: 'apikey' },
      // Sessions stay as submitted: waiting for approval, or pending with their plan to make.
      workers: { concurrency: 0 },
      secrets: { kekRing: generateKekEntry('audit-actions') },
      // The webhook's host is allowed by name: no DNS in the test.
      ssrf: { allowedHosts: ['hooks.example.com'] },
    },
  });
  const db = server.app.database.db as unknown as SecurityDb;
  const admin = await createApiKey(db, {
    tenantId: 'acme',
    name: 'admin',
    roles: ['admin'],
    createdBy: 'test',
  });
  const headers = { authorization: `Bearer ${admin.key}` };
  const submit = async (body: unknown) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers,
      body,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };

  // Every write route of the application has its row.
  const writes = server.app.http
    .listRegisteredRoutes()
    .filter((route) => !route.public && route.url !== '/mcp')
    .flatMap((route) =>
      route.methods.filter((method) => !READS.has(method)).map((method) => `${method} ${route.url}`),
    );
  assert.deepEqual(writes.sort(), ROWS.map((row) => `${row.method} ${row.route}`).sort());

  const made: Made = {
    approved: '',
    rejected: await submit({
      objective: 'Rejected',
      agents: [{ role: 'qa', task: 'check', runner: 'echo' }],
      approval: 'required',
    }),
    planned: await submit({ objective: 'Planned by the orchestrator' }),
    keyId: '',
    webhookId: '',
  };
  const seen: Array<[string, string, string]> = [];
  for (const row of ROWS) {
    const answer = await requestJson(`${server.url}${row.path(made)}`, {
      method: row.method,
      headers,
      ...(row.body === undefined ? {} : { body: row.body }),
    });
    const name = `${row.method} ${row.route}`;
    assert.equal(answer.status, row.status, `${name}: ${JSON.stringify(answer.body)}`);
    row.keep?.(made, answer.body);
    // Stored before the answer left: read at once.
    const requestId = answer.headers.get('x-request-id');
    const page = await requestJson<{ items: AuditRecordDto[] }>(`${server.url}/v1/audit?order=desc&limit=5`, {
      headers,
    });
    const record = page.body.items.find((item) => item.request_id === requestId);
    assert.ok(record, `${name}: a record of request ${requestId}`);
    assert.equal(record.outcome, 'success', name);
    assert.ok(record.target?.id, `${name}: names its target`);
    seen.push([name, record.action, String(record.target?.type)]);
  }
  assert.deepEqual(
    seen.map(([name, action]) => [name, action]),
    ROWS.map((row) => [`${row.method} ${row.route}`, row.action]),
  );
  // The target's type stays the resource, as before.
  for (const [name, action, type] of seen) {
    if (!action.startsWith('role_bindings:')) assert.equal(type, action.split(':')[0], name);
  }

  // The console suggests every action a record can have: each write's own, each permission.
  const { AUDIT_ACTIONS } = (await import(
    new URL('../../web/console/audit-actions.js', import.meta.url).href
  )) as {
    AUDIT_ACTIONS: string[];
  };
  assert.deepEqual(
    [...AUDIT_ACTIONS].sort(),
    [
      ...new Set([
        ...PERMISSIONS.filter((permission) => permission !== 'admin:*'),
        ...ROWS.map((row) => row.action),
      ]),
    ].sort(),
  );
});
