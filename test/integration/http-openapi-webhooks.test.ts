// The `webhooks` section of the OpenAPI 3.1 document against real deliveries: one POST per event a
// subscription can ask for, and the body and signature headers a receiver really gets for each of
// them (a session awaiting approval, then cancelled; one completed; one failed) match it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { WEBHOOK_EVENTS } from '../../src/webhooks/webhook-tables.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { escapePointer } from '../fixtures/openapi-request-check.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, verifyDelivery } from '../fixtures/webhook-receiver.ts';

// ajv-formats is CommonJS: under Node's ESM loader its default export is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema: { pattern?: string };
}
interface WebhookOperation {
  operationId: string;
  summary: string;
  tags: string[];
  parameters: Parameter[];
  requestBody: { required: boolean; content: Record<string, { schema: unknown }> };
  responses: Record<string, unknown>;
}
interface Document {
  openapi: string;
  webhooks: Record<string, { post: WebhookOperation }>;
  components: { schemas: Record<string, unknown> };
}

const DOC_ID = 'https://maos.invalid/openapi.json';

test('the OpenAPI webhooks section describes the deliveries receivers get', {
  timeout: 120_000,
}, async (t) => {
  const { server } = await startLlmAppStack(t, {
    config: {
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { pollIntervalMs: 50 },
    },
  });
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const db = server.app.database.db as unknown as SecurityDb;
  const admin = (await createApiKey(db, { tenantId: 'acme', name: 'a', roles: ['admin'], createdBy: 'test' }))
    .key;
  const call = <T>(method: string, path: string, body?: unknown) =>
    requestJson<T>(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}` },
      ...(body === undefined ? {} : { body }),
    });

  const { body: doc } = await call<Document>('GET', '/openapi.json');
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.webhooks), [...WEBHOOK_EVENTS]);
  for (const [event, { post }] of Object.entries(doc.webhooks)) {
    assert.ok(post.summary && post.operationId, event);
    assert.deepEqual(post.tags, ['webhooks']);
    assert.deepEqual(
      post.parameters.filter((p) => p.in === 'header' && p.required).map((p) => p.name),
      ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'user-agent'],
    );
    assert.ok(post.requestBody.required && post.requestBody.content['application/json'], event);
    assert.ok(post.responses['2XX'] && post.responses['410'] && post.responses.default, event);
  }
  // The body's schema and what it refers to survive the pruning of unused components.
  assert.ok(doc.components.schemas.WebhookMessage);
  assert.ok(doc.components.schemas.Usage);

  const created = await call<{ id: string; secret: string }>('POST', '/v1/webhooks', {
    url: receiver.url,
    events: [...WEBHOOK_EVENTS],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const submit = async (body: Record<string, unknown>) => {
    const answer = await call<{ id: string }>('POST', '/v1/sessions', body);
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body.id;
  };
  const waiting = await submit({
    objective: 'Wait for me',
    agents: [{ role: 'qa', task: 'x', runner: 'ok' }],
    approval: 'required',
  });
  await submit({ objective: 'Finish', agents: [{ role: 'qa', task: 'x', runner: 'ok' }] });
  await submit({ objective: 'Break', agents: [{ role: 'engineer', task: 'x', runner: 'fail' }] });
  const typeOf = (body: string) => (JSON.parse(body) as { type: string }).type;
  await waitFor(
    () => receiver.received.some((d) => typeOf(d.body) === 'session.awaiting_approval'),
    15_000,
    'the awaiting_approval delivery',
  );
  assert.equal((await call('POST', `/v1/sessions/${waiting}/cancel`)).status, 200);
  await waitFor(
    () => new Set(receiver.received.map((d) => typeOf(d.body))).size === WEBHOOK_EVENTS.length,
    20_000,
    'a delivery of every event',
  );

  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(doc as object, DOC_ID);
  const problems: string[] = [];
  for (const delivery of receiver.received) {
    assert.ok(verifyDelivery(created.body.secret, delivery));
    const event = typeOf(delivery.body);
    const operation = doc.webhooks[event]?.post;
    assert.ok(operation, `${event} is documented`);
    const pointer = `/webhooks/${escapePointer(event)}/post/requestBody/content/application~1json/schema`;
    const validate = ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
    if (!validate(JSON.parse(delivery.body))) {
      problems.push(`${event}: ${ajv.errorsText(validate.errors)} in ${delivery.body}`);
    }
    for (const parameter of operation.parameters) {
      const value = delivery.headers[parameter.name];
      if (typeof value !== 'string') problems.push(`${event}: header ${parameter.name} missing`);
      else if (parameter.schema.pattern && !new RegExp(parameter.schema.pattern).test(value))
        problems.push(`${event}: header ${parameter.name}: ${value}`);
    }
  }
  assert.deepEqual(problems, []);

  // The per-event schemas tell the events apart: a completion is no failure.
  const completed = receiver.received.find((d) => typeOf(d.body) === 'session.completed');
  const asFailed = ajv.compile({
    $ref: `${DOC_ID}#/webhooks/session.failed/post/requestBody/content/application~1json/schema`,
  });
  assert.equal(asFailed(JSON.parse(completed?.body ?? '{}')), false);
});
