// Tenant-aware models against the scripted LLM server: the tenant's key is used only inside its
// scope, and a stored tenant base URL is checked by the SSRF guard on every request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateText } from 'ai';
import { pino } from 'pino';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import type { SsrfPolicy } from '../../security/ssrf-guard.ts';
import { createLlmClient } from './llm-client.ts';
import {
  bindTenantScope,
  createTenantCredentialUse,
  createTenantModelCache,
  readCurrentTenant,
  runAsTenant,
} from './tenant-models.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('tenant models', () => {
  let llm: ScriptedLlmServer;
  before(async () => {
    llm = await startLlmServer({ handler: () => ({ text: 'ok' }) });
  });
  after(() => llm.close());

  /** Tenant acme's call through `getModel` fails on the SSRF guard, and nothing reaches the server. */
  async function assertRefusedBeforeAnyRequest(getModel: ReturnType<typeof setup>): Promise<void> {
    llm.requests.length = 0;
    await assert.rejects(
      runAsTenant('acme', () => generateText({ model: getModel('local', 'm'), prompt: 'hi', maxRetries: 0 })),
      (error: unknown) =>
        JSON.stringify(error, Object.getOwnPropertyNames(error)).includes('internal network'),
    );
    assert.equal(llm.requests.length, 0, 'no request left the process');
  }

  function setup(stored: Record<string, { apiKey: string; baseURL: string | null }>, ssrf: SsrfPolicy = {}) {
    const providers = providersConfigSchema.parse({
      local: {
        type: 'openai-compatible',
        model: 'm',
        apiKey: 'server-key',
        baseURL: llm.openaiBaseURL,
        headers: { 'x-gateway-secret': 'operator-only' },
      },
    });
    return createTenantModelCache(providers, {
      ssrf,
      get: async (tenantId, provider) => stored[`${tenantId}/${provider}`] ?? null,
    });
  }

  test('the tenant key is used inside its scope only', async () => {
    const getModel = setup({ 'acme/local': { apiKey: 'acme-key', baseURL: null } });
    llm.requests.length = 0;
    await generateText({ model: getModel('local', 'm'), prompt: 'hi' });
    await runAsTenant('acme', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    await runAsTenant('globex', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    assert.deepEqual(
      llm.requests.map((request) => request.headers.authorization),
      ['Bearer server-key', 'Bearer acme-key', 'Bearer server-key'],
    );
    // The operator's URL gets the operator's headers, also with a tenant key.
    assert.deepEqual(
      llm.requests.map((request) => request.headers['x-gateway-secret']),
      ['operator-only', 'operator-only', 'operator-only'],
    );
  });

  test('a stored tenant base URL that is internal is refused at call time', async () => {
    // Stored while allowed (or resolved to a public address then); the guard runs again per request.
    const getModel = setup({ 'acme/local': { apiKey: 'acme-key', baseURL: llm.openaiBaseURL } });
    await assertRefusedBeforeAnyRequest(getModel);

    const allowed = setup(
      { 'acme/local': { apiKey: 'acme-key', baseURL: llm.openaiBaseURL } },
      { allowedHosts: ['127.0.0.1'] },
    );
    await runAsTenant('acme', () => generateText({ model: allowed('local', 'm'), prompt: 'hi' }));
    assert.equal(llm.requests.at(-1)?.headers.authorization, 'Bearer acme-key');
    // A base URL of the tenant's own never receives the operator's headers.
    assert.equal(llm.requests.at(-1)?.headers['x-gateway-secret'], undefined);
  });

  test('a tenant base URL that resolves to a public address at the check and to loopback at the connection gets no request', async () => {
    // DNS rebinding: the first answer (the check) is public, every later one is loopback.
    let lookups = 0;
    const resolve = async () => (lookups++ === 0 ? ['203.0.113.7'] : ['127.0.0.1']);
    // `localhost` is what a connection resolves it to, unless the guard resolves it itself.
    const baseURL = llm.openaiBaseURL.replace('127.0.0.1', 'localhost');
    const getModel = setup({ 'acme/local': { apiKey: 'acme-key', baseURL } }, { resolve });
    await assertRefusedBeforeAnyRequest(getModel);
    assert.equal(lookups, 2, 'the connection resolved the name through the guard');
  });

  test('each model is put behind the response cache with its endpoint: the tenant base URL or none', async () => {
    const providers = providersConfigSchema.parse({
      local: { type: 'openai-compatible', model: 'm', apiKey: 'server-key', baseURL: llm.openaiBaseURL },
    });
    const seen: Array<string | undefined> = [];
    const getModel = createTenantModelCache(
      providers,
      {
        ssrf: { allowedHosts: ['127.0.0.1'] },
        get: async (tenantId) =>
          tenantId === 'acme' ? { apiKey: 'acme-key', baseURL: llm.openaiBaseURL } : null,
      },
      (model, _provider, _modelId, endpoint) => {
        seen.push(endpoint);
        return model;
      },
    );
    await runAsTenant('acme', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    await runAsTenant('globex', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    // The server model for each getModel call, the tenant model once, with its base URL.
    assert.ok(seen.includes(llm.openaiBaseURL), JSON.stringify(seen));
    assert.deepEqual(
      seen.filter((endpoint) => endpoint !== undefined),
      [llm.openaiBaseURL],
    );
  });

  test("the operator's fetch (the egress proxy's) serves the operator's URLs, also with a tenant key; tenant base URLs take the guard's", async () => {
    const providers = providersConfigSchema.parse({
      local: { type: 'openai-compatible', model: 'm', apiKey: 'server-key', baseURL: llm.openaiBaseURL },
    });
    const operatorCalls: string[] = [];
    const operatorFetch: typeof fetch = (input, init) => {
      operatorCalls.push(String(input instanceof Request ? input.url : input));
      return fetch(input, init);
    };
    const stored: Record<string, { apiKey: string; baseURL: string | null }> = {
      'acme/local': { apiKey: 'acme-key', baseURL: null },
      'globex/local': { apiKey: 'globex-key', baseURL: llm.openaiBaseURL },
    };
    const getModel = createTenantModelCache(
      providers,
      { ssrf: { allowedNetworks: ['127.0.0.1/32'] }, get: async (t, p) => stored[`${t}/${p}`] ?? null },
      undefined,
      operatorFetch,
    );
    llm.requests.length = 0;
    await generateText({ model: getModel('local', 'm'), prompt: 'hi' });
    await runAsTenant('acme', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    assert.equal(operatorCalls.length, 2, 'the server key and the tenant key on the operator URL');
    await runAsTenant('globex', () => generateText({ model: getModel('local', 'm'), prompt: 'hi' }));
    assert.equal(operatorCalls.length, 2, "the tenant's own base URL did not use the operator's fetch");
    assert.deepEqual(
      llm.requests.map((request) => request.headers.authorization),
      ['Bearer server-key', 'Bearer acme-key', 'Bearer globex-key'],
    );
  });

  test("whose credential a call uses: the tenant's own (with or without a base URL), else the operator's", async () => {
    const use = createTenantCredentialUse({
      get: async (tenantId, provider) => {
        if (tenantId === 'broken') throw new Error('cannot decrypt');
        if (provider !== 'local') return null;
        return { apiKey: 'k', baseURL: tenantId === 'acme' ? 'https://llm.acme.example/v1' : null };
      },
    });
    assert.equal((await use('local')).use, undefined, 'outside any tenant: the operator');
    assert.deepEqual((await runAsTenant('acme', () => use('local'))).use, {
      tenantId: 'acme',
      ownBaseURL: true,
    });
    assert.deepEqual((await runAsTenant('globex', () => use('local'))).use, {
      tenantId: 'globex',
      ownBaseURL: false,
    });
    assert.equal((await runAsTenant('globex', () => use('other'))).use, undefined);
    // Unreadable: the call fails on its own lookup, with the provider's error; not here.
    assert.equal((await runAsTenant('broken', () => use('local'))).use, undefined);
  });

  test("a call's attempt reads and decrypts the tenant's credential once; a later request of it reads again", async () => {
    const providers = providersConfigSchema.parse({
      local: { type: 'openai-compatible', model: 'm', apiKey: 'server-key', baseURL: llm.openaiBaseURL },
    });
    const stored: Record<string, { apiKey: string; baseURL: string | null }> = {
      'acme/local': { apiKey: 'acme-key', baseURL: null },
    };
    const reads: string[] = [];
    const source = {
      ssrf: {},
      get: async (tenantId: string, provider: string) => {
        reads.push(tenantId);
        return stored[`${tenantId}/${provider}`] ?? null;
      },
    };
    const client = createLlmClient({
      providers,
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 } }),
      logger: pino({ level: 'silent' }),
      getModel: createTenantModelCache(providers, source),
      tenantCredential: createTenantCredentialUse(source),
      sleep: async () => undefined,
    });
    const ask = () =>
      client.call('engineer', new AbortController().signal, ({ model, signal }) =>
        generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal: signal }),
      );
    llm.requests.length = 0;
    await runAsTenant('acme', ask);
    await runAsTenant('globex', ask);
    assert.deepEqual(reads, ['acme', 'globex'], 'one read per call of one attempt, with a key or without');
    // A retried call: one read per attempt, each attempt with the tenant's key.
    reads.length = 0;
    llm.enqueue({ error: 500 });
    await runAsTenant('acme', ask);
    assert.deepEqual(reads, ['acme', 'acme']);
    // Two requests of one attempt (an agent's steps): the key replaced between them is used by the second.
    reads.length = 0;
    await runAsTenant('acme', () =>
      client.call('engineer', new AbortController().signal, async ({ model, signal }) => {
        await generateText({ model, prompt: 'step 1', maxRetries: 0, abortSignal: signal });
        stored['acme/local'] = { apiKey: 'acme-key-2', baseURL: null };
        return generateText({ model, prompt: 'step 2', maxRetries: 0, abortSignal: signal });
      }),
    );
    assert.deepEqual(reads, ['acme', 'acme']);
    assert.deepEqual(
      llm.requests.map((request) => request.headers.authorization),
      [
        'Bearer acme-key',
        'Bearer server-key',
        'Bearer acme-key',
        'Bearer acme-key',
        'Bearer acme-key',
        'Bearer acme-key-2',
      ],
    );
  });

  test('bindTenantScope runs methods as the tenant of their first argument', async () => {
    const target = {
      kind: 'llm',
      async run(task: { tenantId: string }) {
        await Promise.resolve();
        return `${task.tenantId}:${readCurrentTenant()}`;
      },
    };
    const bound = bindTenantScope(target);
    assert.equal(bound.kind, 'llm');
    assert.equal(await bound.run({ tenantId: 'acme' }), 'acme:acme');
    assert.equal(readCurrentTenant(), undefined);
  });
});
