// Real answers of the REST API against its own OpenAPI 3.1 document (GET /openapi.json), as a
// client generated from that document relies on them: a broad scenario (LLM sessions with approval,
// SSE, roles, usage, audit, API keys, providers, the usual errors) goes through a recorder that
// checks every request's parameters and body and every answer's status, media type, headers and
// body (fixtures/openapi-recorder.ts), then that every documented operation was exercised. On
// SQLite and PostgreSQL. OIDC tokens: http-openapi-conformance-auth.test.ts; 503 answers:
// http-openapi-conformance-unavailable.test.ts.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder, type RecordedCall } from '../fixtures/openapi-recorder.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/** Documented operations this scenario does not reach, each with the reason. */
const NOT_EXERCISED: Record<string, string> = {};

const MISSING_ID = '0190a0a0-0000-7000-8000-000000000abc';

function answer(request: RecordedLlmRequest): ScriptedReply {
  const kind = llmRequestKind(request);
  if (kind === 'plan') {
    return {
      object: { rationale: 'r', phases: [{ name: 'main', tasks: [plannedTask('research', 'researcher')] }] },
    };
  }
  if (kind === 'synthesis') return { text: 'Final answer', usage: { inputTokens: 7, outputTokens: 3 } };
  return { text: 'Research notes', usage: { inputTokens: 11, outputTokens: 5 } };
}

for (const store of CONFORMANCE_STORES) {
  test(`every answer of the REST API matches its OpenAPI document (${store})`, { timeout: 120_000 }, (t) =>
    runScenario(t, store),
  );
}

async function runScenario(t: TestContext, store: (typeof CONFORMANCE_STORES)[number]): Promise<void> {
  const database = await createConformanceStore(store);
  const { server } = await startLlmAppStack(t, {
    handler: answer,
    config: {
      ...database.config,
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('k1') },
      workers: { concurrency: 2, pollIntervalMs: 50 },
      // The drain must outlast the two calls made during it (the last step), also on a busy machine.
      shutdown: { graceSeconds: 1, drainDelaySeconds: 3 },
      // Trusting loopback as a proxy lets the anonymous caller below come from its own address: an
      // address out of failed logins is refused whatever its credential, the keys' calls included.
      http: { bodyLimitBytes: 65_536, maxSseStreamsPerTenant: 1, trustedProxies: ['127.0.0.1/32'] },
      // Keys are not limited in practice; anonymous callers soon are (the last step checks the 429).
      rateLimit: {
        enabled: true,
        principal: { points: 100_000, windowSeconds: 60 },
        tenant: { points: 100_000, windowSeconds: 60 },
        anonymous: { points: 5, windowSeconds: 60 },
      },
    },
  });
  t.after(() => database.drop());
  const db = server.app.database.db as unknown as SecurityDb;
  const mint = async (roles: string[], tenantId = 'acme') =>
    (await createApiKey(db, { tenantId, name: `k-${roles.join('-')}`, roles, createdBy: 'test' })).key;
  const admin = await mint(['admin']);
  const viewer = await mint(['viewer']);

  const doc = await fetchOpenApiDocument(server.url);
  // What client generators name methods and group them by: a unique operationId, declared tags.
  const documented = Object.values(doc.paths).flatMap((item) => Object.values(item));
  const operationIds = documented.map((operation) => operation.operationId);
  assert.ok(
    operationIds.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)),
    String(operationIds),
  );
  assert.equal(new Set(operationIds).size, operationIds.length, 'operationIds are unique');
  // Errors of the API are problem documents: that is the one media type documented for them.
  // Every response says what it is (the generator's placeholder is 'Default Response').
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        assert.notEqual(response.description, 'Default Response', `${method} ${path} ${status}`);
        if (!path.startsWith('/v1/')) continue;
        if (Number(status) < 400) continue;
        const types = Object.keys(response.content ?? {});
        assert.deepEqual(types, ['application/problem+json'], `${method} ${path} ${status}`);
      }
    }
  }
  // Every component schema is used (a generated client gets no type that nothing returns or takes).
  const documentText = JSON.stringify(doc);
  for (const name of Object.keys(doc.components?.schemas ?? {}))
    assert.ok(documentText.includes(`"#/components/schemas/${name}"`), `schema ${name} is used`);
  const declaredTags = new Set(doc.tags?.map((tag) => tag.name));
  for (const tag of documented.flatMap((operation) => operation.tags ?? []))
    assert.ok(declaredTags.has(tag), `tag ${tag} is declared`);

  const api = createOpenApiRecorder(server.url, doc, { authorization: `Bearer ${admin}` });
  const asViewer = { headers: { authorization: `Bearer ${viewer}` } };
  const anonymous = { headers: { authorization: '' } };

  // Probes, the unknown route, authentication and authorization.
  expectStatus(await api.call('GET', '/healthz', anonymous), 200);
  expectStatus(await api.call('GET', '/readyz', anonymous), 200);
  expectStatus(await api.call('GET', '/v1/nothing-here', { undocumented: true }), 404, 'NOT_FOUND');
  expectStatus(await api.call('GET', '/v1/sessions', anonymous), 401, 'UNAUTHENTICATED');
  const anonymousStream = { headers: { authorization: '', accept: 'text/event-stream' }, stream: true };
  const streamUrl = `/v1/sessions/${MISSING_ID}/events`;
  expectStatus(await api.call('GET', streamUrl, anonymousStream), 401, 'UNAUTHENTICATED');
  const forged = { headers: { authorization: `Bearer maos_0123456789ab_${'A'.repeat(43)}` } };
  expectStatus(await api.call('GET', '/v1/roles', forged), 401, 'INVALID_TOKEN');
  // Probes are public: a credential sent along (valid or not) does not change their answer.
  expectStatus(await api.call('GET', '/healthz', forged), 200);
  expectStatus(await api.call('GET', '/readyz', forged), 200);
  expectStatus(await api.call('GET', '/v1/admin/keys', asViewer), 403, 'PERMISSION_DENIED');
  const twice = { headers: { 'x-api-key': admin } };
  const twiceCall = await api.call('GET', '/v1/admin/keys', {
    ...twice,
    ruleBeyondSchema: 'one credential per request',
  });
  expectStatus(twiceCall, 400);
  // The refusal of a malformed credential carries its challenge, documented on the 400 too.
  assert.match(twiceCall.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
  expectStatus(await api.call('GET', '/v1/roles?unknown=1'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', '/v1/audit/checkpoint?unknown=1'), 400, 'VALIDATION_FAILED');

  // Roles. Rate limits apply: both RateLimit fields are sent, in their documented syntax.
  const roles = await api.call('GET', '/v1/roles');
  expectStatus(roles, 200);
  assert.ok(roles.headers.has('ratelimit') && roles.headers.has('ratelimit-policy'), 'RateLimit fields');
  const role = {
    name: 'compliance_officer',
    description: 'Checks documents against the rules.',
    instructions: 'Read the document and list every rule it breaks.',
  };
  const createdRole = await api.call('POST', '/v1/roles', { body: role });
  expectStatus(createdRole, 201);
  // The new role's Location answers, as does a built-in role's name; an unknown name is 404.
  const location = createdRole.headers.get('location') ?? '';
  assert.equal(location, '/v1/roles/compliance_officer');
  const fetched = await api.call('GET', location);
  expectStatus(fetched, 200);
  assert.deepEqual(fetched.body as { name: string; instructions: string }, {
    ...role,
    capabilities: [],
    builtIn: false,
  });
  expectStatus(await api.call('GET', '/v1/roles/engineer'), 200);
  expectStatus(await api.call('GET', '/v1/roles/no_such_role'), 404, 'ROLE_NOT_FOUND');
  expectStatus(await api.call('POST', '/v1/roles', { body: role }), 409, 'CONFLICT');
  expectStatus(await api.call('POST', '/v1/roles', { body: { name: 'X' } }), 400, 'VALIDATION_FAILED');
  // 200 mistakes in one body: the first 100 are listed, the rest counted, the answer stays small.
  const manyMistakes = Array.from({ length: 200 }, () => ({ role: 5, task: 'x' }));
  const tooMany = await api.call('POST', '/v1/sessions', { body: { objective: 'x', agents: manyMistakes } });
  expectStatus(tooMany, 400, 'VALIDATION_FAILED');
  const bounded = tooMany.body as { details: unknown[]; omittedDetails: number };
  assert.equal(bounded.details.length, 100);
  assert.ok(bounded.omittedDetails >= 100, `omitted ${bounded.omittedDetails}`);
  // Lengths count once the text is trimmed, as the documented pattern says.
  const padded = { body: { ...role, name: 'padded', description: `${' '.repeat(9)}x` } };
  expectStatus(await api.call('POST', '/v1/roles', padded), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('DELETE', '/v1/roles/compliance_officer'), 204);
  expectStatus(await api.call('DELETE', '/v1/roles/compliance_officer'), 404, 'ROLE_NOT_FOUND');
  expectStatus(await api.call('DELETE', '/v1/roles/Bad-Name'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('DELETE', '/v1/roles/researcher'), 409, 'INVALID_STATE');

  // Submitting sessions, with the request errors a client meets.
  const submit = { objective: 'Document the API', approval: 'required' };
  const keyed = { body: submit, headers: { 'idempotency-key': 'conformance-1' } };
  const created = await api.call('POST', '/v1/sessions', keyed);
  expectStatus(created, 201);
  const approveId = (created.body as { id: string }).id;
  expectStatus(await api.call('POST', '/v1/sessions', keyed), 200);
  const reused = { body: { objective: 'Other' }, headers: { 'idempotency-key': 'conformance-1' } };
  expectStatus(await api.call('POST', '/v1/sessions', reused), 409, 'IDEMPOTENCY_KEY_REUSED');
  expectStatus(await api.call('POST', '/v1/sessions', { body: {} }), 400, 'VALIDATION_FAILED');
  expectStatus(
    await api.call('POST', '/v1/sessions', { rawBody: '{"objective":' }),
    400,
    'VALIDATION_FAILED',
  );
  const text = { rawBody: 'objective', contentType: 'text/plain' };
  expectStatus(await api.call('POST', '/v1/sessions', text), 415, 'UNSUPPORTED_MEDIA_TYPE');
  const huge = { body: { objective: 'x'.repeat(70_000) } };
  expectStatus(await api.call('POST', '/v1/sessions', huge), 413, 'PAYLOAD_TOO_LARGE');
  expectStatus(
    await api.call('POST', '/v1/sessions', { ...asViewer, body: submit }),
    403,
    'PERMISSION_DENIED',
  );
  const rejectId = (
    (await api.call('POST', '/v1/sessions', { body: submit })).body as {
      id: string;
    }
  ).id;
  const cancelId = ((await api.call('POST', '/v1/sessions', { body: submit })).body as { id: string }).id;

  // Reading sessions.
  expectStatus(await api.call('GET', '/v1/sessions'), 200);
  const firstPage = await api.call('GET', '/v1/sessions?limit=1');
  expectStatus(firstPage, 200);
  const cursor = (firstPage.body as { nextCursor: string | null }).nextCursor;
  assert.ok(cursor, 'three sessions make a second page');
  expectStatus(await api.call('GET', `/v1/sessions?limit=1&cursor=${cursor}`), 200);
  expectStatus(await api.call('GET', '/v1/sessions?status=planning'), 200);
  expectStatus(await api.call('GET', '/v1/sessions?limit=0'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', '/v1/sessions?cursor=bad'), 400, 'INVALID_CURSOR');
  expectStatus(await api.call('GET', '/v1/sessions/not-a-uuid'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', `/v1/sessions/${MISSING_ID}`), 404, 'SESSION_NOT_FOUND');
  for (const id of [approveId, rejectId, cancelId]) await waitForStatus(id, 'awaiting_approval');
  // Not finished yet: cancel it first.
  expectStatus(await api.call('DELETE', `/v1/sessions/${approveId}`), 409, 'INVALID_STATE');
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}`), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}/plans`), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${MISSING_ID}/plans`), 404, 'SESSION_NOT_FOUND');
  const tasks = `/v1/sessions/${approveId}/tasks`;
  const firstTasks = await api.call('GET', `${tasks}?limit=1`);
  expectStatus(firstTasks, 200);
  // The planning task and the plan's tasks: more than one page of one.
  const taskCursor = (firstTasks.body as { nextCursor: string | null }).nextCursor;
  assert.ok(taskCursor, "a second page of the session's tasks");
  expectStatus(await api.call('GET', `${tasks}?limit=1&cursor=${taskCursor}`), 200);
  expectStatus(await api.call('GET', `${tasks}?cursor=bad`), 400, 'INVALID_CURSOR');
  expectStatus(await api.call('GET', `/v1/sessions/${MISSING_ID}/tasks`), 404, 'SESSION_NOT_FOUND');
  const someTask = (firstTasks.body as { items: Array<{ id: string }> }).items[0]?.id;
  assert.ok(someTask, 'a task to read by id');
  expectStatus(await api.call('GET', `${tasks}?ids=${someTask},${MISSING_ID}`), 200);
  expectStatus(await api.call('GET', `${tasks}?ids=${someTask};x`), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}?tasks=none`), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}?tasks=all`), 200);

  // Events: JSON pages both ways, SSE, and the per-tenant stream cap.
  const events = `/v1/sessions/${approveId}/events`;
  expectStatus(await api.call('GET', events), 200);
  expectStatus(await api.call('GET', `${events}?after=1&limit=2`), 200);
  const newest = await api.call('GET', `${events}?order=desc&limit=2`);
  expectStatus(newest, 200);
  const before = (newest.body as { nextBefore: number | null }).nextBefore;
  expectStatus(await api.call('GET', `${events}?order=desc&before=${before ?? 1}`), 200);
  const onlyDesc = { ruleBeyondSchema: '`before` needs order=desc' };
  expectStatus(await api.call('GET', `${events}?before=3`, onlyDesc), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', `/v1/sessions/${MISSING_ID}/events`), 404, 'SESSION_NOT_FOUND');
  const sse = { headers: { accept: 'text/event-stream' }, stream: true };
  const stream = await api.call('GET', events, sse);
  expectStatus(stream, 200);
  assert.match(stream.text, /^(:|id:|event:|retry:)/m, 'the stream starts with an SSE frame');
  const forwardOnly = { ...sse, stream: false, ruleBeyondSchema: 'a stream only goes forward' };
  expectStatus(await api.call('GET', `${events}?order=desc`, forwardOnly), 400);
  // The one stream allowed: opened once the stream above is counted closed (that happens async).
  let held = new AbortController();
  for (let attempt = 0; ; attempt += 1) {
    const holder = await fetch(`${server.url}${events}`, {
      headers: { authorization: `Bearer ${admin}`, accept: 'text/event-stream' },
      signal: held.signal,
    });
    if (holder.status === 200) break;
    held.abort();
    assert.ok(holder.status === 429 && attempt < 100, `the held stream: ${holder.status}`);
    held = new AbortController();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  try {
    expectStatus(await api.call('GET', events, sse), 429, 'RESOURCE_LIMIT_EXCEEDED');
  } finally {
    held.abort();
  }

  // Steering and approval.
  const messages = `/v1/sessions/${approveId}/messages`;
  expectStatus(await api.call('POST', messages, { body: { message: 'Keep it short' } }), 202);
  expectStatus(await api.call('POST', messages, { body: { message: '' } }), 400, 'VALIDATION_FAILED');
  expectStatus(
    await api.call('POST', `/v1/sessions/${MISSING_ID}/messages`, { body: { message: 'x' } }),
    404,
    'SESSION_NOT_FOUND',
  );
  expectStatus(await api.call('POST', `/v1/sessions/${approveId}/approve`), 200);
  expectStatus(await api.call('POST', `/v1/sessions/${approveId}/approve`), 409, 'INVALID_STATE');
  const badPlan = await api.call('POST', `/v1/sessions/${rejectId}/approve`, {
    body: { plan: { phases: [] } },
  });
  expectStatus(badPlan, 400, 'INVALID_PLAN');
  // The edited plan's schema is documented (checked by the service, not the route): this one breaks it.
  assert.match(badPlan.requestProblems.join('\n'), /\/plan\/phases must NOT have fewer than 1 items/);
  const reject = `/v1/sessions/${rejectId}/reject`;
  expectStatus(await api.call('POST', reject, { body: { reason: ' ' } }), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('POST', reject, { body: { reason: 'Not now' } }), 204);
  expectStatus(await api.call('POST', reject, { body: { reason: 'Again' } }), 409, 'INVALID_STATE');

  // Cancelling.
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/cancel`), 200);
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/cancel`), 200);
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/cancel`, { body: { force: true } }), 400);
  // Any route that takes a body parses it first: 415 and 413 are possible (and documented) there too.
  const cancelText = { rawBody: 'now', contentType: 'text/plain' };
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/cancel`, cancelText), 415);
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/cancel`, huge), 413);
  expectStatus(await api.call('POST', `/v1/sessions/${MISSING_ID}/cancel`), 404, 'SESSION_NOT_FOUND');
  await waitForStatus(approveId, 'completed');
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}`), 200);
  expectStatus(await api.call('GET', events), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${approveId}/plans`), 200);
  expectStatus(await api.call('POST', `/v1/sessions/${approveId}/cancel`), 409, 'INVALID_STATE');
  expectStatus(await api.call('POST', messages, { body: { message: 'Late' } }), 409, 'INVALID_STATE');
  // The stream of a finished session replays the log and ends: every `data` is a SessionEvent.
  let finished = await api.call('GET', events, { headers: { accept: 'text/event-stream' } });
  // The held stream may not be counted closed yet: 429 (documented) until it is.
  for (let attempt = 0; finished.status === 429 && attempt < 100; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    finished = await api.call('GET', events, { headers: { accept: 'text/event-stream' } });
  }
  expectStatus(finished, 200);
  // As documented: per event, `id` is its seq and `event` its type.
  const frames = finished.text.split('\n\n').filter((frame) => /^data: /m.test(frame));
  assert.ok(frames.length >= 5, finished.text);
  for (const frame of frames) {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(frame)?.[1];
    const event = JSON.parse(field('data') ?? '') as { seq?: number; type?: string };
    api.validate('/components/schemas/SessionEvent', event, 'SSE data');
    assert.equal(field('id'), String(event.seq), frame);
    assert.equal(field('event'), event.type, frame);
  }

  // A session with its agents given (a runner task), a budget and metadata.
  const given = await api.call('POST', '/v1/sessions', {
    body: {
      objective: 'Build it',
      agents: [{ role: 'engineer', task: 'Build', runner: 'ok' }],
      metadata: { team: 'platform', ticket: 42 },
      budget: { maxTokens: 100_000, maxCostUsd: 5, deadlineSeconds: 600 },
    },
  });
  expectStatus(given, 201);
  const givenId = (given.body as { id: string }).id;
  await waitForStatus(givenId, 'completed');
  expectStatus(await api.call('GET', `/v1/sessions/${givenId}`), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${givenId}/plans`), 200);
  const failing = await api.call('POST', '/v1/sessions', {
    body: { objective: 'Break it', agents: [{ role: 'engineer', task: 'Fail', runner: 'fail' }] },
  });
  expectStatus(failing, 201);
  const failingId = (failing.body as { id: string }).id;
  await waitForStatus(failingId, 'failed');
  expectStatus(await api.call('GET', `/v1/sessions/${failingId}`), 200);
  expectStatus(await api.call('GET', `/v1/sessions/${failingId}/events`), 200);
  expectStatus(await api.call('GET', '/v1/sessions?status=failed'), 200);
  expectStatus(await api.call('POST', `/v1/sessions/${givenId}/messages`, { body: { message: 'x' } }), 409);

  // Retrying: the failed session again as a new one (201, a replay of its key 200), with bad bodies,
  // a completed session, one that ended waiting for approval and an unknown one refused.
  const retry = `/v1/sessions/${failingId}/retry`;
  const retryKey = { headers: { 'idempotency-key': 'retry-1' } };
  const retried = await api.call('POST', retry, { ...retryKey, body: { budget: { maxTokens: 1000 } } });
  expectStatus(retried, 201);
  expectStatus(await api.call('POST', retry, { ...retryKey, body: { budget: { maxTokens: 1000 } } }), 200);
  await waitForStatus((retried.body as { id: string }).id, 'failed');
  expectStatus(
    await api.call('POST', retry, { body: { budget: { maxTokens: 0 } } }),
    400,
    'VALIDATION_FAILED',
  );
  expectStatus(await api.call('POST', retry, asViewer), 403, 'PERMISSION_DENIED');
  expectStatus(await api.call('POST', `/v1/sessions/${givenId}/retry`), 409, 'INVALID_STATE');
  expectStatus(await api.call('POST', `/v1/sessions/${cancelId}/retry`), 409, 'INVALID_STATE');
  expectStatus(await api.call('POST', `/v1/sessions/${MISSING_ID}/retry`), 404, 'SESSION_NOT_FOUND');

  // Deleting a finished session: 204, then it is gone; a body, a bad id and a viewer are refused.
  const failedPath = `/v1/sessions/${failingId}`;
  expectStatus(await api.call('DELETE', failedPath, { body: { force: true } }), 400);
  expectStatus(await api.call('DELETE', failedPath, asViewer), 403, 'PERMISSION_DENIED');
  expectStatus(await api.call('DELETE', failedPath), 204);
  expectStatus(await api.call('DELETE', failedPath), 404, 'SESSION_NOT_FOUND');
  expectStatus(await api.call('GET', failedPath), 404, 'SESSION_NOT_FOUND');
  expectStatus(await api.call('DELETE', '/v1/sessions/not-a-uuid'), 400, 'VALIDATION_FAILED');

  // Usage, every grouping.
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const to = new Date(Date.now() + 86_400_000).toISOString();
  const range = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  for (const groupBy of ['', '&groupBy=day', '&groupBy=role', '&groupBy=model'])
    expectStatus(await api.call('GET', `/v1/usage?${range}${groupBy}`), 200);
  const reversed = `/v1/usage?from=${encodeURIComponent(to)}&to=${encodeURIComponent(from)}`;
  expectStatus(await api.call('GET', reversed, { ruleBeyondSchema: '`from` before `to`' }), 400);
  const toParameter = doc.paths['/v1/usage']?.get?.parameters?.find((p) => p.name === 'to');
  assert.match(toParameter?.description ?? '', /later than `from`/, 'the rule is stated in the document');
  expectStatus(await api.call('GET', '/v1/usage'), 400, 'VALIDATION_FAILED');

  // The caller, and the tenant's quotas.
  expectStatus(await api.call('GET', '/v1/me'), 200);
  expectStatus(await api.call('GET', '/v1/me', asViewer), 200);
  expectStatus(await api.call('GET', '/v1/quotas'), 200);
  expectStatus(await api.call('GET', '/v1/quotas', asViewer), 200);

  // Role bindings: granted (201, then 200), listed, revoked (204, then 404); a bad role is a 400.
  const binding = `/v1/admin/role-bindings/${encodeURIComponent('auth0|conformance')}/viewer`;
  expectStatus(await api.call('PUT', binding), 201);
  expectStatus(await api.call('PUT', binding), 200);
  expectStatus(await api.call('GET', binding), 200);
  expectStatus(await api.call('GET', '/v1/admin/role-bindings'), 200);
  expectStatus(await api.call('GET', '/v1/admin/role-bindings?principal=auth0%7Cconformance'), 200);
  const reserved = await api.call('PUT', '/v1/admin/role-bindings/key%3Aabc/viewer', {
    ruleBeyondSchema: 'ids MAOS gives its own callers',
  });
  expectStatus(reserved, 400, 'VALIDATION_FAILED');
  const principalParameter = doc.paths['/v1/admin/role-bindings/{principal}/{role}']?.put?.parameters?.find(
    (p) => p.name === 'principal',
  );
  assert.match(principalParameter?.description ?? '', /ids MAOS gives its own callers/, 'the rule is stated');
  expectStatus(await api.call('PUT', '/v1/admin/role-bindings/alice/root'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('PUT', binding, asViewer), 403, 'PERMISSION_DENIED');
  expectStatus(await api.call('DELETE', binding), 204);
  expectStatus(await api.call('DELETE', binding), 404, 'NOT_FOUND');
  expectStatus(await api.call('GET', binding), 404, 'NOT_FOUND');
  // The same, named in the query (the form for the principals `.` and `..`).
  const byQuery = '/v1/admin/role-bindings?principal=..&role=viewer';
  expectStatus(await api.call('PUT', byQuery), 201);
  expectStatus(await api.call('GET', byQuery), 200);
  expectStatus(await api.call('PUT', '/v1/admin/role-bindings?principal=..'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('DELETE', byQuery), 204);
  expectStatus(await api.call('DELETE', byQuery), 404, 'NOT_FOUND');

  // API keys.
  const newKey = await api.call('POST', '/v1/admin/keys', { body: { name: 'ci', roles: ['developer'] } });
  expectStatus(newKey, 201);
  expectStatus(await api.call('GET', '/v1/admin/keys'), 200);
  expectStatus(await api.call('GET', `/v1/admin/keys/${(newKey.body as { id: string }).id}`), 200);
  expectStatus(await api.call('GET', '/v1/admin/keys/unknown-key'), 404, 'NOT_FOUND');
  expectStatus(await api.call('POST', '/v1/admin/keys', { body: { name: '', roles: [] } }), 400);
  expectStatus(await api.call('DELETE', `/v1/admin/keys/${(newKey.body as { id: string }).id}`), 200);
  expectStatus(await api.call('DELETE', '/v1/admin/keys/unknown-key'), 404);
  expectStatus(await api.call('DELETE', '/v1/admin/keys/bad_id!'), 400);
  expectStatus(
    await api.call('DELETE', '/v1/admin/keys/unknown-key', { rawBody: 'x', contentType: 'text/plain' }),
    415,
  );
  expectStatus(await api.call('DELETE', '/v1/admin/keys/unknown-key', { body: { force: true } }), 400);

  // Tenant provider credentials.
  expectStatus(await api.call('GET', '/v1/providers'), 200);
  const credentials = '/v1/providers/local/credentials';
  expectStatus(await api.call('PUT', credentials, { body: { apiKey: 'sk-tenant' } }), 200);
  expectStatus(await api.call('PUT', credentials, { body: {} }), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('PUT', '/v1/providers/nope/credentials', { body: { apiKey: 'x' } }), 404);
  expectStatus(await api.call('DELETE', credentials), 200);
  expectStatus(await api.call('DELETE', credentials), 404, 'NOT_FOUND');
  expectStatus(await api.call('DELETE', '/v1/providers/nope/credentials'), 404);

  // Webhooks (a documentation-range address: public to the SSRF guard, deleted before any event).
  const hook = { url: 'https://203.0.113.10/hooks', events: ['session.cancelled'] };
  const webhook = await api.call('POST', '/v1/webhooks', { body: hook });
  expectStatus(webhook, 201);
  const webhookPath = `/v1/webhooks/${(webhook.body as { id: string }).id}`;
  expectStatus(await api.call('POST', '/v1/webhooks', { body: { ...hook, events: [] } }), 400);
  expectStatus(await api.call('GET', '/v1/webhooks'), 200);
  expectStatus(await api.call('GET', webhookPath), 200);
  expectStatus(await api.call('GET', `/v1/webhooks/${MISSING_ID}`), 404, 'NOT_FOUND');
  expectStatus(await api.call('GET', `${webhookPath}/deliveries?limit=5`), 200);
  expectStatus(await api.call('GET', `/v1/webhooks/${MISSING_ID}/deliveries`), 404, 'NOT_FOUND');
  expectStatus(await api.call('POST', `${webhookPath}/rotate-secret`), 200);
  expectStatus(await api.call('POST', `/v1/webhooks/${MISSING_ID}/rotate-secret`), 404, 'NOT_FOUND');
  expectStatus(await api.call('POST', `${webhookPath}/enable`), 200);
  expectStatus(await api.call('POST', `/v1/webhooks/${MISSING_ID}/enable`), 404, 'NOT_FOUND');
  expectStatus(await api.call('DELETE', webhookPath), 204);
  expectStatus(await api.call('DELETE', webhookPath), 404, 'NOT_FOUND');

  // Audit: both orders, a cursor, a cursor of the other order, the checkpoint, proofs.
  const audit = await api.call('GET', '/v1/audit?limit=2');
  expectStatus(audit, 200);
  const auditCursor = (audit.body as { nextCursor: string | null }).nextCursor;
  assert.ok(auditCursor, 'the scenario wrote more than two audit records');
  expectStatus(await api.call('GET', `/v1/audit?limit=2&cursor=${auditCursor}`), 200);
  const descending = await api.call('GET', '/v1/audit?order=desc&limit=2&outcome=success');
  expectStatus(descending, 200);
  const descCursor = (descending.body as { nextCursor: string | null }).nextCursor;
  expectStatus(await api.call('GET', `/v1/audit?order=desc&limit=2&cursor=${descCursor}`), 200);
  expectStatus(await api.call('GET', `/v1/audit?cursor=${descCursor}`), 400, 'INVALID_CURSOR');
  expectStatus(await api.call('GET', '/v1/audit?order=sideways'), 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', '/v1/audit/checkpoint'), 200);
  expectStatus(await api.call('GET', '/v1/audit/proof/inclusion?index=1&size=3'), 200);
  const indexInTree = { ruleBeyondSchema: '`index` below `size`' };
  const inclusionBeyond = await api.call('GET', '/v1/audit/proof/inclusion?index=3&size=3', indexInTree);
  expectStatus(inclusionBeyond, 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', '/v1/audit/proof/consistency?from=2&to=3'), 200);
  const fromBeforeTo = { ruleBeyondSchema: '`from` at most `to`' };
  const reversedSizes = await api.call('GET', '/v1/audit/proof/consistency?from=4&to=3', fromBeforeTo);
  expectStatus(reversedSizes, 400, 'VALIDATION_FAILED');
  expectStatus(await api.call('GET', '/v1/audit', asViewer), 403, 'PERMISSION_DENIED');

  // Anonymous callers over their limit: 429 RATE_LIMITED with Retry-After.
  let limited: RecordedCall | undefined;
  const anonymousElsewhere = { headers: { authorization: '', 'x-forwarded-for': '203.0.113.5' } };
  for (let i = 0; i < 10 && limited === undefined; i += 1) {
    const call = await api.call('GET', '/v1/roles', anonymousElsewhere);
    if (call.status === 429) limited = call;
    else expectStatus(call, 401, 'UNAUTHENTICATED');
  }
  assert.ok(limited, 'anonymous calls are limited');
  expectStatus(limited, 429, 'RATE_LIMITED');
  assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/);

  // Stopping: during the drain delay /readyz answers 503 with its checks, the API still answers.
  const stopping = server.app.stop();
  const draining = await api.call('GET', '/readyz', anonymous);
  expectStatus(draining, 503);
  assert.equal((draining.body as { status?: string }).status, 'not_ready');
  expectStatus(await api.call('GET', '/v1/roles'), 200);
  await stopping;

  const missing = api.operations.filter(
    (operation) => !api.exercised.has(operation) && !NOT_EXERCISED[operation],
  );
  assert.deepEqual(missing, [], 'every documented operation is exercised');
  // An exception that no longer applies (the operation is gone or now exercised) is removed.
  for (const operation of Object.keys(NOT_EXERCISED)) {
    assert.ok(api.operations.includes(operation), `${operation} is still documented`);
    assert.ok(!api.exercised.has(operation), `${operation} is exercised now; drop its exception`);
  }
  const violations = api.violations.join('\n');
  assert.equal(api.violations.length, 0, `answers that do not match the document:\n${violations}`);

  async function waitForStatus(id: string, status: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (true) {
      const response = await fetch(`${server.url}/v1/sessions/${id}`, {
        headers: { authorization: `Bearer ${admin}` },
        signal: AbortSignal.timeout(10_000),
      });
      const session = (await response.json()) as { status: string; error: string | null };
      if (session.status === status) return;
      if (Date.now() > deadline)
        throw new Error(`session ${id} is ${session.status} (${session.error}), not ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
