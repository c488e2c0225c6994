// Provider models against the scripted LLM server: a base URL with a query string (Azure OpenAI's
// `?api-version=…`, a gateway's `?key=…`) reaches the endpoint's path with the query kept, for every
// provider type.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateText } from 'ai';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { providersConfigSchema } from '../../config/llm-schema.ts';
import { streamModelCall } from '../runtimes/ai-sdk/model-stream.ts';
import { createLanguageModel } from './create-model.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('base URL with a query string', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  for (const type of ['openai', 'openai-compatible', 'anthropic'] as const) {
    test(`the query goes after the endpoint's path (${type})`, async () => {
      const providers = providersConfigSchema.parse({
        main: {
          type,
          model: 'm',
          apiKey: 'k',
          baseURL: `${server.url}/openai/deployments/d1/?api-version=2024-10-21&key=gw`,
        },
      });
      const model = createLanguageModel('main', providers.main!, 'm');
      server.requests.length = 0;
      server.enqueue({ text: 'Streamed.' }, { text: 'Whole.' });
      const streamed = await streamModelCall({
        model,
        system: 'You answer.',
        messages: [{ role: 'user', content: 'Hi.' }],
        tools: undefined,
        maxSteps: 1,
        maxOutputTokens: 100,
        temperature: undefined,
        signal: new AbortController().signal,
        push: () => undefined,
        onStepUsage: () => undefined,
      });
      const whole = await generateText({ model, prompt: 'Hi.', maxRetries: 0 });
      assert.equal(streamed, 'Streamed.');
      assert.equal(whole.text, 'Whole.');
      const endpoint = type === 'anthropic' ? '/messages' : '/chat/completions';
      assert.deepEqual(
        server.requests.map((request) => [request.path, request.query]),
        [
          [`/openai/deployments/d1${endpoint}`, 'api-version=2024-10-21&key=gw'],
          [`/openai/deployments/d1${endpoint}`, 'api-version=2024-10-21&key=gw'],
        ],
      );
    });
  }
});

// A provider's secrets are found by the config schema's paths (secrets-in-config.ts), so they are
// walked under `providers`: a provider named like a section of the config (`runners`, `providers`)
// was walked as that section, and its apiKey echoed in an error answer reached the error unredacted.
describe('secrets echoed in an error answer', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  for (const name of ['runners', 'providers', 'main']) {
    test(`are redacted for a provider named ${name}`, async () => {
      const apiKey = 'sk-echoed-0123456789abcdef';
      const providers = providersConfigSchema.parse({
        [name]: { type: 'openai', model: 'm', apiKey, baseURL: `${server.url}/v1` },
      });
      const model = createLanguageModel(name, providers[name]!, 'm');
      server.enqueue({ error: 400, message: `the key ${apiKey} is not valid` });
      const error = await generateText({ model, prompt: 'Hi.', maxRetries: 0 }).then(
        () => assert.fail('the call succeeded'),
        (thrown: unknown) => thrown,
      );
      const seen = JSON.stringify(error, Object.getOwnPropertyNames(error)) + String(error);
      assert.match(seen, /is not valid/);
      assert.doesNotMatch(seen, /sk-echoed/);
    });
  }
});
