// What `maos config print` and the support bundle treat as secret in a configuration.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from './load.ts';
import { collectSecretValues, redactConfig } from './secrets-in-config.ts';

test("the console's token endpoint origin is public: printed, and not scrubbed from collected logs", () => {
  const config = loadConfig({
    env: {},
    overrides: {
      auth: {
        mode: 'oidc',
        oidc: {
          issuer: 'https://idp.example.com/realms/maos',
          audience: 'maos',
          console: { clientId: 'maos-console', tokenEndpointOrigin: 'https://login.example.net' },
        },
      },
      providers: { p: { type: 'openai', apiKey: 'sk-configured-secret', model: 'm' } },
    },
  });
  const printed = redactConfig(config) as typeof config;
  assert.equal(printed.auth.oidc.console.tokenEndpointOrigin, 'https://login.example.net');
  assert.ok(!collectSecretValues(config).includes('https://login.example.net'));
  // A key named like a secret still is one.
  assert.equal(printed.providers.p?.apiKey, '[REDACTED]');
  assert.ok(collectSecretValues(config).includes('sk-configured-secret'));
});
