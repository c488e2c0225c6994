// Unit tests for the cross-checks of the providers and llm config sections.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { loadConfig } from '../../config/load.ts';
import { AppError } from '../../errors/app-error.ts';
import { validateLlmConfig } from './validate-llm-config.ts';

describe('validateLlmConfig', () => {
  const providers = providersConfigSchema.parse({
    local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm' },
  });

  test('accepts routes to configured providers', () => {
    const llm = llmConfigSchema.parse({ defaultProvider: 'local', roles: { qa: { provider: 'local' } } });
    assert.deepEqual(validateLlmConfig(providers, llm), []);
  });

  test('lists every unknown provider with its path', () => {
    const llm = llmConfigSchema.parse({
      defaultProvider: 'claude',
      defaultFallback: ['gpt'],
      roles: { qa: { provider: 'nope', fallback: ['local', 'other'] } },
    });
    assert.deepEqual(validateLlmConfig(providers, llm), [
      "llm.defaultProvider: unknown provider 'claude' (providers: local)",
      "llm.defaultFallback[0]: unknown provider 'gpt' (providers: local)",
      "llm.roles.qa.provider: unknown provider 'nope' (providers: local)",
      "llm.roles.qa.fallback[1]: unknown provider 'other' (providers: local)",
    ]);
  });

  test('the schema requires keys for hosted providers and a base URL for compatible ones', () => {
    const result = providersConfigSchema.safeParse({
      claude: { type: 'anthropic', model: 'x' },
      local: { type: 'openai-compatible', model: 'y' },
    });
    assert.equal(result.success, false);
    const paths = result.error?.issues.map((issue) => issue.path.join('.'));
    assert.deepEqual(paths?.sort(), ['claude.apiKey', 'local.baseURL']);
  });

  test('loading the config reports unknown providers (once the sections themselves are valid)', () => {
    let error: unknown;
    try {
      loadConfig({ env: { MAOS_LLM__DEFAULT_PROVIDER: 'ghost' } });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'CONFIG_INVALID');
    const problems = (error.details as string[]).join('\n');
    assert.match(problems, /llm\.defaultProvider: unknown provider 'ghost' \(providers: none configured\)/);
  });
});
