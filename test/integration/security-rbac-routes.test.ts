// Role × route on the real application: every registered route (read from the route table, so a new
// route is covered without touching this file), for every built-in role, answers 403
// insufficient_scope exactly when the role lacks the route's permission according to the table
// PUBLISHED in docs/security.md (not the code's table: the two must agree); each route's
// permission is the one docs/api.md names; every MCP tool the same way, by docs/mcp.md's table;
// without credentials, every route but the documented public ones answers 401; with OIDC on and
// public metrics, every public route is one docs/security.md names.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MCP_METADATA_PATH } from '../../src/mcp/protected-resource.ts';
import { RESOURCE_METADATA_PATH } from '../../src/security/http-security-plugin.ts';
import { BUILT_IN_ROLES, type RoleName } from '../../src/security/rbac.ts';
import { connectHttpClient, toolErrorOf } from '../fixtures/mcp-server.ts';
import { startTestOidcProvider, TEST_AUDIENCE } from '../fixtures/oidc-provider.ts';
import { type ProbeStack, sendProbe, startProbeStack } from '../fixtures/security-probe.ts';
import { startTestServer } from '../fixtures/server.ts';

/**
 * The public routes docs/security.md names (its list after "explicitly public"): a path given as a
 * folder (`/console/`) names the files under it and the folder itself.
 */
function readDocumentedPublic(): (url: string) => boolean {
  const text = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const list = /explicitly public \(([^()]*)\)/.exec(text)?.[1];
  assert.ok(list, 'docs/security.md lists the public routes');
  const paths = [...list.matchAll(/`(\/[^`]*)`/g)].map((m) => m[1] as string);
  assert.ok(paths.includes('/healthz'), `the list is read: ${paths.join(' ')}`);
  return (url) =>
    paths.some(
      (path) => url === path || (path.endsWith('/') && (url === path.slice(0, -1) || url.startsWith(path))),
    );
}

const documentedPublic = readDocumentedPublic();

/** docs/security.md's permission table: for each permission, the roles that hold it. */
function readPublishedTable(): Map<string, Set<string>> {
  const text = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const block = /<!-- permission-table:start -->([\s\S]*?)<!-- permission-table:end -->/.exec(text)?.[1];
  assert.ok(block, 'docs/security.md has the permission table');
  const lines = block.trim().split('\n');
  const roles = (lines[0] ?? '')
    .split('|')
    .map((cell) => cell.trim())
    .filter((cell) => cell !== '' && cell !== 'permission');
  const table = new Map<string, Set<string>>();
  for (const line of lines.slice(2)) {
    const cells = line.split('|').slice(1, -1);
    const permission = (cells[0] ?? '').trim().replace(/`/g, '');
    table.set(permission, new Set(roles.filter((_role, i) => (cells[i + 1] ?? '').includes('✓'))));
  }
  return table;
}

/** What a route of docs/api.md open to every authenticated caller says in place of a permission. */
const ANY_AUTHENTICATED = 'any authenticated caller';

/**
 * The rows of the Markdown tables of a doc: first cell → the backquoted words of the second (or
 * ANY_AUTHENTICATED, when the second cell says that).
 */
function readDocTable(file: string): { subject: string; permissions: string[] }[] {
  const text = readFileSync(new URL(`../../docs/${file}`, import.meta.url), 'utf8');
  const rows: { subject: string; permissions: string[] }[] = [];
  for (const line of text.split('\n')) {
    const cells = line.split('|').slice(1, -1);
    if (cells.length < 2) continue;
    const permissions =
      (cells[1] ?? '').trim() === ANY_AUTHENTICATED
        ? [ANY_AUTHENTICATED]
        : [...(cells[1] ?? '').matchAll(/`([a-z]+:[a-z*]+)`/g)].map((m) => m[1] as string);
    if (permissions.length > 0) rows.push({ subject: (cells[0] ?? '').trim(), permissions });
  }
  return rows;
}

/** Whether the published table grants `permission` to `role` (`admin:*` implies every permission). */
function publishedGrant(table: Map<string, Set<string>>, role: string, permission: string): boolean {
  return table.get(permission)?.has(role) === true || table.get('admin:*')?.has(role) === true;
}

/** A path for `url` with ids nobody owns (a granted call then fails on the lookup, not on access). */
function pathWithUnknownIds(url: string): string {
  return url
    .replace(/:id\b/g, randomUUID())
    .replace(/:name\b/g, 'probe-unknown')
    .replace(/\*$/, 'x');
}

/** Arguments a tool accepts, naming a session nobody owns (a granted call fails on the lookup). */
function toolArguments(schema: { properties?: Record<string, unknown>; required?: string[] }) {
  const args: Record<string, unknown> = {};
  for (const name of schema.required ?? []) {
    if (name === 'session_id') args[name] = randomUUID();
    else if (name === 'objective') args[name] = 'probe objective';
    else args[name] = 'probe';
  }
  if (args.objective !== undefined) args.agents = [{ role: 'engineer', task: 't', runner: 'ok' }];
  return args;
}

describe('role × route matrix on the real application', { timeout: 180_000 }, () => {
  let stack: ProbeStack;
  const keys = new Map<RoleName, string>();

  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  before(async () => {
    stack = await startProbeStack({ after: (fn: () => unknown) => cleanups.push(fn) });
    for (const role of BUILT_IN_ROLES) keys.set(role, await stack.mint('tenant-rbac', [role]));
  });

  test('the published table names the same roles and permissions as the route table uses', () => {
    const table = readPublishedTable();
    for (const route of stack.routes.filter((r) => !r.public && !r.anyAuthenticated)) {
      assert.ok(
        route.permission !== undefined && table.has(route.permission),
        `${route.method} ${route.url}: permission ${route.permission} is in docs/security.md`,
      );
    }
    const published = new Set([...table.values()].flatMap((roles) => [...roles]));
    assert.deepEqual([...published].sort(), [...BUILT_IN_ROLES].sort());
  });

  test('each /v1 route requires the permission docs/api.md names for it', () => {
    const rows = readDocTable('api.md');
    const problems: string[] = [];
    for (const route of stack.routes) {
      if (route.public || route.method === 'HEAD' || route.method === 'OPTIONS') continue;
      if (!route.url.startsWith('/v1/') && route.url !== '/mcp') continue;
      const documented = `${route.method} ${route.url.replace(/:([A-Za-z]+)/g, '{$1}')}`;
      // A row for the method and path, or else one naming the path's prefix (`/v1/audit…`, `/mcp`).
      const exact = rows.find((row) => row.subject === `\`${documented}\``);
      const grouped = rows.find((row) =>
        [...row.subject.matchAll(/`(\/[^`]*?)…?`/g)].some((m) => route.url.startsWith(m[1] as string)),
      );
      const row = exact ?? grouped;
      if (!row) problems.push(`${documented} is not in docs/api.md`);
      else if (
        !row.permissions.includes(route.anyAuthenticated ? ANY_AUTHENTICATED : (route.permission ?? ''))
      ) {
        problems.push(
          `${documented}: docs/api.md says ${row.permissions.join(', ')}, the route ${route.permission}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });

  test('MCP: each role may call exactly the tools docs/mcp.md and docs/security.md grant it', async () => {
    const table = readPublishedTable();
    const toolPermissions = new Map(
      readDocTable('mcp.md').map((row) => [row.subject.replace(/`/g, ''), row.permissions[0] as string]),
    );
    const problems: string[] = [];
    for (const role of BUILT_IN_ROLES) {
      const connected = await connectHttpClient(stack.server.url, {
        authorization: `Bearer ${keys.get(role)}`,
      });
      try {
        const { tools } = await connected.client.listTools();
        assert.ok(tools.length >= 7, 'the orchestrator tools are offered');
        for (const tool of tools) {
          const permission = toolPermissions.get(tool.name);
          if (permission === undefined) {
            problems.push(`tool ${tool.name} is not in docs/mcp.md`);
            continue;
          }
          const result = (await connected.client.callTool({
            name: tool.name,
            arguments: toolArguments(tool.inputSchema),
          })) as CallToolResult;
          const code = toolErrorOf(result)?.code;
          const denied = result.isError === true && code === 'PERMISSION_DENIED';
          const granted = publishedGrant(table, role, permission);
          if (denied === granted) {
            problems.push(
              `${role} ${tool.name} (${permission}): ${denied ? 'denied' : `not denied (${code})`}`,
            );
          }
        }
      } finally {
        await connected.close();
      }
    }
    assert.deepEqual(problems, []);
  });

  test('without credentials: 401 everywhere but the documented public routes', async () => {
    for (const route of stack.routes) {
      if (route.method === 'OPTIONS') continue;
      const path = pathWithUnknownIds(route.url);
      if (route.public) {
        assert.ok(documentedPublic(route.url), `${route.url} is public but not documented as such`);
        continue;
      }
      const answer = await sendProbe(stack.server.url, route.method, path, route.url, {});
      assert.equal(answer.status, 401, `${route.method} ${route.url} without credentials`);
      assert.match(String(answer.headers.get('www-authenticate')), /^Bearer realm="maos"/);
    }
  });

  test('each role: 403 insufficient_scope exactly where docs/security.md does not grant it', async () => {
    const table = readPublishedTable();
    const mismatches: string[] = [];
    for (const role of BUILT_IN_ROLES) {
      const key = keys.get(role) as string;
      for (const route of stack.routes) {
        if (route.public || route.method === 'OPTIONS') continue;
        const granted = route.anyAuthenticated || publishedGrant(table, role, route.permission ?? '');
        const path = pathWithUnknownIds(route.url);
        const answer = await sendProbe(stack.server.url, route.method, path, route.url, {
          authorization: `Bearer ${key}`,
        });
        const label = `${role} ${route.method} ${route.url} (${route.permission}, ${granted ? 'granted' : 'not granted'}) → ${answer.status}`;
        if (granted ? answer.status === 401 || answer.status === 403 : answer.status !== 403) {
          mismatches.push(label);
          continue;
        }
        if (!granted) {
          const challenge = String(answer.headers.get('www-authenticate'));
          if (!challenge.includes('error="insufficient_scope"')) mismatches.push(`${label}: ${challenge}`);
          if (route.method !== 'HEAD' && !answer.text.includes('"PERMISSION_DENIED"')) {
            mismatches.push(`${label}: ${answer.text.slice(0, 200)}`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, []);
  });
});

describe('public routes with OIDC on and public metrics', { timeout: 60_000 }, () => {
  test('each is in the list docs/security.md gives, the protected-resource metadata included; they answer without credentials', async (t) => {
    const idp = await startTestOidcProvider();
    t.after(() => idp.close());
    const server = await startTestServer({
      config: {
        workers: { concurrency: 0 },
        metrics: { public: true },
        auth: { mode: 'both', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE } },
      },
    });
    t.after(() => server.close());
    const publicRoutes = server.app.http
      .listRegisteredRoutes()
      .filter((route) => route.public)
      .map((route) => route.url);
    for (const path of [RESOURCE_METADATA_PATH, MCP_METADATA_PATH, '/metrics']) {
      assert.ok(publicRoutes.includes(path), `${path} is public with OIDC on`);
      const response = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      assert.equal(response.status, 200, `GET ${path} without credentials`);
    }
    const undocumented = [...new Set(publicRoutes)].filter((url) => !documentedPublic(url));
    assert.deepEqual(undocumented, [], 'public routes docs/security.md does not name');
  });
});
