// Provider checks against the scripted LLM server (real HTTP on loopback).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkProviders } from '../../src/agents/providers/check-providers.ts';
import { providersConfigSchema } from '../../src/config/llm-schema.ts';
import { freePort } from '../fixtures/free-port.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';

describe('checkProviders', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: 'right' });
  });
  after(async () => {
    await server.close();
  });

  test('passes with the right key, fails with a wrong key or an unreachable server', async () => {
    const providers = providersConfigSchema.parse({
      good: { type: 'openai-compatible', baseURL: server.openaiBaseURL, model: 'm', apiKey: 'right' },
      claude: { type: 'anthropic', baseURL: server.anthropicBaseURL, model: 'c', apiKey: 'wrong' },
      // Nothing listens on a port just let go: the connection is refused.
      down: { type: 'openai-compatible', baseURL: `http://127.0.0.1:${await freePort()}/v1`, model: 'm' },
    });
    const results = await checkProviders(providers, { timeoutMs: 2000 });
    assert.deepEqual(
      results.map((r) => [r.name, r.status]),
      [
        ['provider:good', 'pass'],
        ['provider:claude', 'fail'],
        ['provider:down', 'fail'],
      ],
    );
    assert.match(results[1]?.message ?? '', /rejected the API key \(HTTP 401\)/);
    assert.match(results[1]?.fix ?? '', /providers\.claude\.apiKey/);
    assert.match(results[2]?.message ?? '', /not reachable \(ECONNREFUSED\)/);
  });

  test('a base URL on a port fetch refuses (past the config check) is said as such, not as "TypeError"', async () => {
    const parsed = providersConfigSchema.parse({
      local: { type: 'openai-compatible', baseURL: server.openaiBaseURL, model: 'm', apiKey: 'right' },
    });
    const local = { ...parsed.local!, baseURL: 'http://127.0.0.1:6666/v1' };
    const [result] = await checkProviders({ local }, { timeoutMs: 2000 });
    assert.equal(result?.status, 'fail');
    assert.equal(
      result?.message,
      'http://127.0.0.1:6666/v1 is not reachable: port 6666 is one the HTTP client (Node\'s fetch) refuses for every request, as browsers do (a "bad port" of the fetch standard); use another port',
    );
    assert.match(result?.fix ?? '', /providers\.local\.baseURL/);
  });

  test('a base URL with a query string: the model list is asked for with it, the messages leave it out', async () => {
    const providers = providersConfigSchema.parse({
      azure: {
        type: 'openai',
        baseURL: `${server.url}/openai/deployments/d1?api-version=2024-10-21&key=gw-secret`,
        model: 'm',
        apiKey: 'right',
      },
    });
    const asked: string[] = [];
    const [result] = await checkProviders(providers, {
      timeoutMs: 2000,
      fetch: (input, init) => {
        asked.push(String(input));
        return fetch(input, init);
      },
    });
    assert.deepEqual(asked, [
      `${server.url}/openai/deployments/d1/models?api-version=2024-10-21&key=gw-secret`,
    ]);
    assert.equal(result?.status, 'pass', result?.message);
    assert.equal(result?.message, `${server.url}/openai/deployments/d1 reachable, key accepted (model m)`);
  });

  test('a rejected key: the fix names the variable that sets it, none for a name with a hyphen', async () => {
    const providers = providersConfigSchema.parse({
      my_llm: { type: 'openai-compatible', baseURL: server.openaiBaseURL, model: 'm', apiKey: 'wrong' },
      'my-llm': { type: 'openai-compatible', baseURL: server.openaiBaseURL, model: 'm', apiKey: 'wrong' },
    });
    const [underscore, hyphen] = await checkProviders(providers, { timeoutMs: 2000 });
    assert.equal(
      underscore?.fix,
      'Set a valid key in providers.my_llm.apiKey (or apiKey_FILE / MAOS_PROVIDERS__MY_LLM__API_KEY).',
    );
    // MAOS_PROVIDERS__MY_LLM__API_KEY sets provider my_llm: following that advice added a provider
    // without type or model, and the server no longer started. No variable names my-llm.
    assert.equal(hyphen?.fix, 'Set a valid key in providers.my-llm.apiKey (or apiKey_FILE).');
  });
});
