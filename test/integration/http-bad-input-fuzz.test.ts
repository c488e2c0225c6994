// Property-based bad input over every operation of the OpenAPI document: from a valid request per
// operation, fast-check makes one to three things bad (a path parameter, a query value, a repeated
// or unknown query parameter, a header the API reads, a body field, the whole body, malformed JSON,
// the media type) and sends it as an admin API key, then without credentials. Every answer is
// below 500; a 4xx is a problem document with a stable code of that status; the answer matches the
// document; a refused request leaves the store as it was. SQLite; a fixed seed, printed on failure.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { ERROR_CODES, isErrorCode } from '../../src/errors/app-error.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { type RawAnswer, sendRaw } from '../fixtures/bad-input.ts';
import { type Base, brief, buildRequest, type FuzzRequest, mutationOf } from '../fixtures/bad-request.ts';
import { readCopiedTables } from '../fixtures/copied-tables.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { fetchOpenApiDocument } from '../fixtures/openapi-conformance.ts';
import {
  compileTemplate,
  createOpenApiRecorder,
  type OpenApiDocument,
  type ParameterObject,
} from '../fixtures/openapi-recorder.ts';
import { waitForSession } from '../fixtures/server.ts';

/** The seed of every run: the same requests each time; a failure names it with the path to replay. */
const SEED = Number(process.env.MAOS_TEST_FUZZ_SEED ?? 20_261_127);
/** A multiple of the runs below, to search longer (MAOS_TEST_FUZZ_SCALE=10) without a new test. */
const SCALE = Number(process.env.MAOS_TEST_FUZZ_SCALE ?? 1);
/** Requests per operation and caller: about 1,600 in all, well within a minute on SQLite. */
const RUNS_PER_OPERATION = { admin: 32, anonymous: 8 };

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** Tables a refused request still writes to: its audit record (refusals are audited too). */
const WRITTEN_BY_REFUSALS = new Set(['audit_log', 'audit_checkpoints']);
/** Columns any authenticated request may write: when its key was last used (a minute apart at most). */
const WRITTEN_BY_EVERY_REQUEST: Record<string, string> = { api_keys: 'last_used_at' };

/** Resources the valid requests name. */
interface Ids {
  completed: string;
  deletable: string;
  failed: string;
  webhook: string;
  spareKey: string;
  role: string;
}

const HOUR = 3_600_000;

/** A valid request for each documented operation; one missing here fails the test. */
const BASES: Record<string, (ids: Ids) => Base> = {
  'GET /healthz': () => ({}),
  'GET /readyz': () => ({}),
  'POST /v1/sessions': () => ({
    headers: { 'idempotency-key': 'fuzz-submit' },
    body: {
      objective: 'Fuzz',
      strategy: 'pipeline',
      agents: [{ name: 'build', role: 'engineer', task: 'Build', runner: 'ok', depends_on: [] }],
      metadata: { team: 'fuzz', tags: ['a'] },
      budget: { maxTokens: 1000, maxCostUsd: 1, deadlineSeconds: 600 },
    },
  }),
  'GET /v1/sessions': () => ({
    query: [
      ['status', 'completed'],
      ['limit', '5'],
    ],
  }),
  'GET /v1/sessions/{id}': (ids) => ({ path: { id: ids.completed } }),
  'DELETE /v1/sessions/{id}': (ids) => ({ path: { id: ids.deletable } }),
  'GET /v1/sessions/{id}/plans': (ids) => ({ path: { id: ids.completed } }),
  'GET /v1/sessions/{id}/tasks': (ids) => ({ path: { id: ids.completed }, query: [['limit', '5']] }),
  'GET /v1/sessions/{id}/events': (ids) => ({
    path: { id: ids.completed },
    query: [
      ['after', '0'],
      ['limit', '5'],
    ],
    headers: { accept: 'text/event-stream', 'last-event-id': '1' },
  }),
  'POST /v1/sessions/{id}/messages': (ids) => ({ path: { id: ids.completed }, body: { message: 'Hi' } }),
  'POST /v1/sessions/{id}/approve': (ids) => ({
    path: { id: ids.completed },
    body: {
      plan: {
        phases: [
          {
            name: 'main',
            tasks: [
              {
                name: 'a',
                role: 'engineer',
                instructions: 'Build',
                dependsOn: [],
                runner: 'ok',
                agent: null,
              },
            ],
          },
        ],
      },
    },
  }),
  'POST /v1/sessions/{id}/reject': (ids) => ({ path: { id: ids.completed }, body: { reason: 'No' } }),
  'POST /v1/sessions/{id}/cancel': (ids) => ({ path: { id: ids.completed } }),
  'POST /v1/sessions/{id}/retry': (ids) => ({
    path: { id: ids.failed },
    headers: { 'idempotency-key': 'fuzz-retry' },
    body: { budget: { maxTokens: 1000, maxCostUsd: 1, deadlineSeconds: 600 }, rerun: ['engineer-1'] },
  }),
  'GET /v1/roles': () => ({}),
  'POST /v1/roles': () => ({
    body: {
      name: 'fuzz_role',
      description: 'A role of the fuzz.',
      instructions: 'Answer every question.',
      capabilities: ['answering'],
    },
  }),
  'GET /v1/roles/{name}': (ids) => ({ path: { name: ids.role } }),
  'DELETE /v1/roles/{name}': (ids) => ({ path: { name: ids.role } }),
  'GET /v1/me': () => ({}),
  'GET /v1/quotas': () => ({}),
  'GET /v1/usage': () => ({
    query: [
      ['from', new Date(Date.now() - 24 * HOUR).toISOString()],
      ['to', new Date(Date.now() + HOUR).toISOString()],
      ['groupBy', 'day'],
    ],
  }),
  'GET /v1/providers': () => ({}),
  'PUT /v1/providers/{name}/credentials': () => ({
    path: { name: 'local' },
    body: { apiKey: 'sk-fuzz', baseURL: 'https://203.0.113.10/v1' },
  }),
  'DELETE /v1/providers/{name}/credentials': () => ({ path: { name: 'local' } }),
  'POST /v1/webhooks': () => ({
    body: { url: 'https://203.0.113.10/hooks', events: ['session.awaiting_approval'] },
  }),
  'GET /v1/webhooks': () => ({}),
  'GET /v1/webhooks/{id}': (ids) => ({ path: { id: ids.webhook } }),
  'DELETE /v1/webhooks/{id}': (ids) => ({ path: { id: ids.webhook } }),
  'POST /v1/webhooks/{id}/rotate-secret': (ids) => ({ path: { id: ids.webhook } }),
  'POST /v1/webhooks/{id}/enable': (ids) => ({ path: { id: ids.webhook } }),
  'GET /v1/webhooks/{id}/deliveries': (ids) => ({ path: { id: ids.webhook }, query: [['limit', '5']] }),
  'POST /v1/admin/keys': () => ({
    body: { name: 'fuzz', roles: ['viewer'], expiresAt: new Date(Date.now() + HOUR).toISOString() },
  }),
  'GET /v1/admin/keys': () => ({}),
  'GET /v1/admin/keys/{id}': (ids) => ({ path: { id: ids.spareKey } }),
  'DELETE /v1/admin/keys/{id}': (ids) => ({ path: { id: ids.spareKey } }),
  'GET /v1/admin/role-bindings': () => ({
    query: [
      ['principal', 'alice'],
      ['role', 'viewer'],
    ],
  }),
  'GET /v1/admin/role-bindings/{principal}/{role}': () => ({ path: { principal: 'alice', role: 'viewer' } }),
  'PUT /v1/admin/role-bindings': () => ({
    query: [
      ['principal', 'alice'],
      ['role', 'viewer'],
    ],
  }),
  'DELETE /v1/admin/role-bindings': () => ({
    query: [
      ['principal', 'alice'],
      ['role', 'viewer'],
    ],
  }),
  'PUT /v1/admin/role-bindings/{principal}/{role}': () => ({ path: { principal: 'alice', role: 'viewer' } }),
  'DELETE /v1/admin/role-bindings/{principal}/{role}': () => ({
    path: { principal: 'alice', role: 'viewer' },
  }),
  'GET /v1/audit': () => ({
    query: [
      ['order', 'desc'],
      ['limit', '5'],
    ],
  }),
  'GET /v1/audit/checkpoint': () => ({}),
  'GET /v1/audit/proof/inclusion': () => ({
    query: [
      ['index', '0'],
      ['size', '1'],
    ],
  }),
  'GET /v1/audit/proof/consistency': () => ({
    query: [
      ['from', '1'],
      ['to', '1'],
    ],
  }),
};

/**
 * Refusals of input the document's schemas allow, for a rule it states in words: the refusal's
 * detail, and the words that state the rule in the operation's document (checked to be there).
 */
const RULES_IN_WORDS: Array<[detail: RegExp, words: string]> = [
  [/^more than one credential/, 'a credential sent twice'],
  [/^malformed Authorization header/, 'when the credentials are malformed'],
  [/U\+0000 \(NUL\)|well-formed Unicode/, 'text holding U+0000 or an unpaired surrogate'],
  [/^The principal must be/, 'without surrounding spaces or control characters'],
  [/is a principal MAOS names itself/, 'ids MAOS gives its own callers'],
  [/^Webhook URLs must use https/, 'HTTPS URL'],
  [/^expiresAt must be in the future/, 'in the future'],
  [/^Strategy adaptive .* takes no agents/, 'so it takes no agents'],
  [/^Strategy \w+ orders the agents you give/, 'Without agents the orchestrator plans'],
  [/needs an LLM provider to be configured/, 'needs an LLM provider'],
  [/gives no runner and no LLM provider is configured/, 'the LLM, which needs a provider'],
  [/^Session \S+ has no task .* to run again/, 'Names of tasks to run again'],
  [/cannot run again: the orchestrator's plan/, '`orchestrator:synthesis`'],
  [/^Invalid querystring\. before: only with order=desc/, 'With `order=desc`'],
  [/^Invalid querystring\. after: not with order=desc/, 'Not with `order=desc`'],
  [/^Invalid headers\. last-event-id: resumes a forward read/, 'JSON pages only'],
  [/^Invalid querystring\. order: an event stream only goes forward/, 'JSON pages only'],
  [/^Invalid querystring\. index: must be less than size/, 'Less than `size`'],
  [/^Invalid querystring\. \w+: \d+ is beyond the log/, 'at most the records in the log'],
  [/^Invalid querystring\. from: must be at least 1/, 'at least 1'],
  [/^Invalid querystring\. from: must not be greater than to/, 'is the start of the tree of the first `to`'],
  [/^to must be later than from/, 'later than `from`'],
  [/^The range must not be longer than/, 'at most 366 days'],
  [/^URL /, 'URL'],
];

// biome-ignore lint/suspicious/noExplicitAny: reads every area's tables by name
type AnyDb = Kysely<any>;

/** Every stored row but the audit records, as a text per table. */
async function storeContents(db: AnyDb): Promise<Map<string, string>> {
  const contents = new Map<string, string>();
  for (const [name, rows] of await readCopiedTables(db)) {
    if (WRITTEN_BY_REFUSALS.has(name)) continue;
    const skipped = WRITTEN_BY_EVERY_REQUEST[name];
    contents.set(
      name,
      JSON.stringify(rows, (key, value: unknown) =>
        key === skipped ? undefined : typeof value === 'bigint' ? value.toString() : value,
      ),
    );
  }
  return contents;
}

/** The tables whose rows differ between two readings of storeContents. */
function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before.keys()].filter((name) => before.get(name) !== after.get(name));
}

test('bad input to every operation of the API: no 500, a stable code, the store unchanged', {
  timeout: 180_000 * SCALE,
}, async (t) => {
  await runFuzz(t);
});

async function runFuzz(t: TestContext): Promise<void> {
  const { server } = await startLlmAppStack(t, {
    handler: () => ({ text: 'not a plan' }),
    config: {
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('fuzz') },
      workers: { concurrency: 2, pollIntervalMs: 50 },
    },
  });
  const db = server.app.database.db as unknown as SecurityDb;
  const mint = async (name: string) =>
    createApiKey(db, { tenantId: 'acme', name, roles: ['admin'], createdBy: 'test' });
  const admin = `Bearer ${(await mint('fuzz-admin')).key}`;
  const spareKey = (await mint('fuzz-spare')).info.id;
  const doc: OpenApiDocument = await fetchOpenApiDocument(server.url);
  const api = createOpenApiRecorder(server.url, doc);
  const call = async (method: string, path: string, body?: unknown) => {
    const answer = await sendRaw(server.url, {
      method,
      path,
      headers: {
        authorization: admin,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)) }),
    });
    assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${answer.text}`);
    return (answer.text === '' ? {} : JSON.parse(answer.text)) as { id: string };
  };
  const session = async (runner: string) => {
    const { id } = await call('POST', '/v1/sessions', {
      objective: 'Seed',
      agents: [{ role: 'engineer', task: 'Build', runner }],
    });
    await waitForSession(server.url, id, undefined, 30_000, { authorization: admin });
    return id;
  };
  const webhook = await call('POST', '/v1/webhooks', {
    url: 'https://203.0.113.10/hooks',
    events: ['session.awaiting_approval'],
  });
  const role = 'fuzz_seeded';
  await call('POST', '/v1/roles', {
    name: role,
    description: 'A role the fuzz reads.',
    instructions: 'Answer every question briefly.',
  });
  await call('PUT', '/v1/admin/role-bindings/alice/viewer');
  await call('PUT', '/v1/providers/local/credentials', { apiKey: 'sk-seeded' });
  const ids: Ids = {
    completed: await session('ok'),
    deletable: await session('ok'),
    failed: await session('fail'),
    webhook: webhook.id,
    spareKey,
    role,
  };

  /** Waits until no session of the store is still moving (one a fuzz request created or retried). */
  const settle = async () => {
    for (let attempt = 0; ; attempt += 1) {
      const moving = await (db as unknown as AnyDb)
        .selectFrom('sessions')
        .select('id')
        .where('status', 'in', ['pending', 'planning', 'running'])
        .execute();
      if (moving.length === 0) return;
      assert.ok(attempt < 600, `sessions still moving: ${JSON.stringify(moving)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const operations = Object.entries(doc.paths).flatMap(([template, item]) =>
    METHODS.filter((method) => item[method] !== undefined).map((method) => ({
      method: method.toUpperCase(),
      template,
      parameters: [
        ...((item as { parameters?: ParameterObject[] }).parameters ?? []),
        ...(item[method]?.parameters ?? []),
      ],
    })),
  );
  const missing = operations.map((o) => `${o.method} ${o.template}`).filter((name) => !BASES[name]);
  assert.deepEqual(missing, [], 'every documented operation has a valid request to start from');

  const checkAnswer = async (
    request: FuzzRequest,
    template: string,
    before: Map<string, string>,
    answer: RawAnswer,
  ) => {
    const label = `${request.method} ${brief(request.path)} → ${answer.status}: ${answer.text.slice(0, 300)}`;
    assert.ok(answer.status < 500, label);
    if (answer.status >= 400) {
      assert.equal(answer.headers.get('content-type')?.split(';')[0], 'application/problem+json', label);
      const code = (JSON.parse(answer.text) as { code?: unknown }).code;
      assert.ok(typeof code === 'string' && isErrorCode(code), `${label}: code ${String(code)}`);
      assert.equal(ERROR_CODES[code].status, answer.status, `${label}: code ${code}`);
      // The answer names what is wrong: this generic detail is what an error thrown inside a check
      // became (a stack overflow on deep nesting did), a refusal by accident.
      const detail = (JSON.parse(answer.text) as { detail?: unknown }).detail;
      assert.notEqual(detail, 'The request is malformed.', label);
    }
    const seen = api.violations.length;
    const flat = Object.fromEntries(
      Object.entries(request.headers).map(([name, value]) => [name, [value].flat().join(', ')]),
    );
    const documented = compileTemplate(template).test(request.path.split('?')[0] ?? '');
    let recorded: ReturnType<typeof api.record> | undefined;
    const detail =
      answer.status === 400 ? String((JSON.parse(answer.text) as { detail?: unknown }).detail) : '';
    const rule = RULES_IN_WORDS.find(([pattern]) => pattern.test(detail));
    if (rule !== undefined) {
      const operation = JSON.stringify(doc.paths[template]?.[request.method.toLowerCase()]);
      assert.ok(operation.includes(rule[1]), `${label}: the document states the rule (${rule[1]})`);
    }
    if (answer.status === 431) {
      // The HTTP parser's refusal, before any route: no operation's answer, a problem all the same.
      api.validate('/components/schemas/Problem', JSON.parse(answer.text), label);
    } else {
      recorded = api.record(request.method, request.path, answer, {
        headers: flat,
        ...(request.body === undefined
          ? {}
          : { rawBody: request.body.toString('utf8'), contentType: String(flat['content-type'] ?? '') }),
        stream: true,
        undocumented: !documented,
        ...(rule === undefined ? {} : { ruleBeyondSchema: rule[1] }),
      });
    }
    let fresh = api.violations.slice(seen);
    // What an accepted request may carry beyond the document: headers the API does not read (HTTP
    // ignores unknown headers), a GET's body (which has no meaning), an empty body (`{}` or null),
    // a query string on a probe (a health checker's cache-buster must not fail it).
    const emptyBody = /^\s*(\{\s*\}|null)?\s*$/.test(request.body?.toString('utf8') ?? '');
    const probe = !template.startsWith('/v1/');
    const ignorable = (problem: string) =>
      /^header \S+ is not declared$/.test(problem) ||
      (probe &&
        /^query parameter .* is not declared$|^query parameter .* is sent \d+ times$|^query .* is not percent-encoded UTF-8$/.test(
          problem,
        )) ||
      (problem === 'the operation takes no body' && (emptyBody || request.method === 'GET'));
    if (recorded && recorded.status < 400 && recorded.requestProblems.every(ignorable))
      fresh = fresh.filter((v) => !v.includes('accepted a request the document forbids'));
    assert.deepEqual(fresh, [], label);
    if (answer.status >= 400) {
      const after = await storeContents(db as unknown as AnyDb);
      assert.deepEqual(changedTables(before, after), [], `${label}: the store changed`);
    }
  };

  for (const [caller, credentials] of [
    ['admin', { authorization: admin }],
    ['anonymous', {}],
  ] as const) {
    for (const { method, template, parameters } of operations) {
      const base = BASES[`${method} ${template}`]?.(ids) ?? {};
      const requests = fc
        .array(mutationOf(parameters, base), { minLength: 1, maxLength: 3 })
        .map((mutations) => buildRequest(method, template, base, credentials, mutations));
      await fc.assert(
        fc.asyncProperty(requests, async (request) => {
          const before = await storeContents(db as unknown as AnyDb);
          const answer = await sendRaw(server.url, request);
          await checkAnswer(request, template, before, answer);
          if (answer.status < 300 && method !== 'GET') await settle();
        }),
        { seed: SEED, numRuns: RUNS_PER_OPERATION[caller] * SCALE },
      );
    }
  }
}
