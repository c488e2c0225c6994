// Azure OpenAI configured as docs/llm-providers.md says, against the scripted LLM server: each YAML
// block of the doc's "Azure OpenAI" section, loaded as MAOS loads a config file, reaches the
// deployment's endpoint with its `api-version` query and the key in the header Azure reads (no
// `Authorization` on the deployment URL, where Azure would read it as an Entra ID token).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateText } from 'ai';
import { checkProviders, startProviderKeyCheck } from '../../src/agents/providers/check-providers.ts';
import { createLanguageModel } from '../../src/agents/providers/create-model.ts';
import type { ProviderConfig } from '../../src/config/llm-schema.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { captureLog } from '../fixtures/log-capture.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const DOC = new URL('../../docs/llm-providers.md', import.meta.url);
const KEY = 'azure-key-0123456789';

/** The YAML blocks of the doc's `### Azure OpenAI` section, in order. */
function documentedBlocks(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const start = text.indexOf('\n### Azure OpenAI\n');
  assert.ok(start >= 0, 'docs/llm-providers.md has an "Azure OpenAI" section');
  const end = text.indexOf('\n## ', start);
  const section = text.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] as string);
}

describe('Azure OpenAI as documented', () => {
  let server: ScriptedLlmServer;
  let dir: string;
  let keyFile: string;
  before(async () => {
    server = await startLlmServer({ apiKey: KEY });
    dir = mkdtempSync(join(tmpdir(), 'maos-azure-'));
    keyFile = join(dir, 'azure-openai-key');
    writeFileSync(keyFile, `${KEY}\n`);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The doc's block `index` as a provider: the resource host is the scripted server, the key file ours. */
  function documentedProvider(index: number, env: NodeJS.ProcessEnv = {}): ProviderConfig {
    const blocks = documentedBlocks();
    assert.equal(blocks.length, 2, 'a v1 API block and a deployment URL block');
    const yaml = (blocks[index] as string)
      .replaceAll('https://my-resource.openai.azure.com', server.url)
      .replaceAll('/run/secrets/azure-openai-key', keyFile);
    const configPath = join(dir, `azure-${index}.yaml`);
    writeFileSync(configPath, yaml);
    const provider = loadConfig({ configPath, env }).providers.azure;
    assert.ok(provider, 'the block configures a provider named azure');
    return provider;
  }

  async function callOnce(provider: ProviderConfig) {
    server.requests.length = 0;
    server.enqueue({ text: 'Hello from Azure.' });
    const result = await generateText({
      model: createLanguageModel('azure', provider, provider.model),
      prompt: 'Hi.',
      maxRetries: 0,
    });
    assert.equal(result.text, 'Hello from Azure.');
    assert.equal(server.requests.length, 1);
    return server.requests[0]!;
  }

  test('v1 API (type openai): /openai/v1/chat/completions with the key as a Bearer token', async () => {
    const request = await callOnce(documentedProvider(0));
    assert.equal(request.path, '/openai/v1/chat/completions');
    assert.equal(request.query, '');
    assert.equal(request.headers.authorization, `Bearer ${KEY}`);
    assert.equal(request.model, 'my-gpt-4o-deployment');
  });

  test('deployment URL (type openai-compatible): api-version query, the key in api-key, no Authorization', async () => {
    const request = await callOnce(documentedProvider(1));
    assert.equal(request.path, '/openai/deployments/my-gpt-4o-deployment/chat/completions');
    assert.equal(request.query, 'api-version=2024-10-21');
    assert.equal(request.headers['api-key'], KEY);
    assert.equal(request.headers.authorization, undefined);
  });

  test('deployment URL with the key from MAOS_PROVIDERS__AZURE__HEADERS__API_KEY instead of a file', async () => {
    const provider = documentedProvider(1);
    const configPath = join(dir, 'azure-env.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        providers: { azure: { type: provider.type, baseURL: provider.baseURL, model: 'gpt-4o' } },
      }),
    );
    const fromEnv = loadConfig({ configPath, env: { MAOS_PROVIDERS__AZURE__HEADERS__API_KEY: KEY } });
    const request = await callOnce(fromEnv.providers.azure!);
    assert.equal(request.headers['api-key'], KEY);
    assert.equal(request.headers.authorization, undefined);
  });

  test('the key check sends the header too and names the headers when the key is rejected', async () => {
    const provider = documentedProvider(1);
    const [accepted] = await checkProviders({ azure: provider }, { timeoutMs: 2000 });
    assert.equal(accepted?.status, 'pass', accepted?.message);
    const wrong = { ...provider, headers: { 'api-key': 'wrong' } };
    const [rejected] = await checkProviders({ azure: wrong }, { timeoutMs: 2000 });
    assert.equal(rejected?.status, 'fail');
    assert.equal(
      rejected?.message,
      `${server.url}/openai/deployments/my-gpt-4o-deployment rejected the credentials in providers.azure.headers (HTTP 401)`,
    );
    assert.match(rejected?.fix ?? '', /providers\.azure\.headers/);
    assert.doesNotMatch(`${rejected?.message} ${rejected?.fix}`, /wrong/);

    // The start-up check of `maos serve` says the same in its warning, never the header's value.
    const { destination, lines, text } = captureLog<{ message: string; fix?: string }>();
    const logger = createLogger({ level: 'warn', format: 'json', destination });
    await startProviderKeyCheck({ azure: wrong }, logger, { timeoutMs: 2000 }).done;
    assert.deepEqual(
      lines.map((line) => [line.message, line.fix]),
      [
        [
          'LLM provider rejected the credentials in its configured headers; calls with them will fail until they are fixed',
          'check the credential in providers.azure.headers, or set providers.azure.apiKey',
        ],
      ],
    );
    assert.doesNotMatch(text(), /wrong/);
  });
});
