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
  const printed = redactConfig(config, []) as typeof config;
  assert.equal(printed.auth.oidc.console.tokenEndpointOrigin, 'https://login.example.net');
  assert.ok(!collectSecretValues(config, []).includes('https://login.example.net'));
  // A key named like a secret still is one.
  assert.equal(printed.providers.p?.apiKey, '[REDACTED]');
  assert.ok(collectSecretValues(config, []).includes('sk-configured-secret'));
});

// A map the schema keys by the operator's names (tenant ids, IdP groups) is judged by the map's own
// field name: `token-team` names a tenant, and its runner names are not secrets. Before, they were
// redacted by `maos config print` and every one of 4+ characters (`python`) was scrubbed from every
// log line the support bundle collects.
test('a tenant id or IdP group named like a secret does not make its values secrets', () => {
  const config = loadConfig({
    env: {},
    overrides: {
      runners: {
        python: { command: ['python3', '-V'], env: { PIP_TOKEN: 'pip-secret-value' } },
        npm: { command: ['npm', 'test'] },
      },
      runnerAccess: { tenants: { 'token-team': ['npm', 'python'], env: ['python'], 'kek-lab': [] } },
      auth: { oidc: { roleMapping: { 'secret-admins': ['admin'], 'password-resetters': ['operator'] } } },
      llm: { approval: { tenants: { 'token-team': 'required', 'secret-lab': 'none' } } },
      providers: { p: { type: 'openai', apiKey: 'sk-configured-secret', model: 'm' } },
    },
  });
  const printed = redactConfig(config, []) as typeof config;
  assert.deepEqual(printed.runnerAccess.tenants, {
    'token-team': ['npm', 'python'],
    env: ['python'],
    'kek-lab': [],
  });
  assert.deepEqual(printed.auth.oidc.roleMapping, {
    'secret-admins': ['admin'],
    'password-resetters': ['operator'],
  });
  assert.deepEqual(printed.llm.approval.tenants, { 'token-team': 'required', 'secret-lab': 'none' });
  // The support bundle scrubs its logs of the real secrets only.
  assert.deepEqual(collectSecretValues(config, []).sort(), ['pip-secret-value', 'sk-configured-secret']);
  assert.equal(printed.runners.python?.env.PIP_TOKEN, '[REDACTED]');
  assert.equal(printed.providers.p?.apiKey, '[REDACTED]');
});

test('outside the schema (a part of the config walked on its own, an unknown key) a key is judged by its name', () => {
  const part = { 'token-team': ['python'], p: { apiKey: 'sk-part-secret', headers: { 'x-team': 'team-a' } } };
  assert.deepEqual(redactConfig(part, []), {
    'token-team': ['[REDACTED]'],
    p: { apiKey: '[REDACTED]', headers: { 'x-team': '[REDACTED]' } },
  });
  assert.deepEqual(collectSecretValues(part, []).sort(), ['python', 'sk-part-secret', 'team-a']);
});

// A part of the config must say where it sits: walked from the root, a provider named `runners` was
// judged as the runners' map and its apiKey and headers were missed (an error answer echoing them
// reached errors and logs unredacted).
test('a part of the config is judged where the caller says it sits, and the caller must say so', () => {
  const providers = {
    runners: { type: 'openai', apiKey: 'sk-runners-provider', model: 'm', headers: { 'x-team': 'team-r' } },
    providers: { type: 'openai', apiKey: 'sk-providers-provider', model: 'm' },
  };
  assert.deepEqual(collectSecretValues(providers, ['providers']).sort(), [
    'sk-providers-provider',
    'sk-runners-provider',
    'team-r',
  ]);
  assert.deepEqual(collectSecretValues(providers.runners, ['providers', 'runners']).sort(), [
    'sk-runners-provider',
    'team-r',
  ]);
  assert.deepEqual(redactConfig(providers, ['providers']), {
    runners: { type: 'openai', apiKey: '[REDACTED]', model: 'm', headers: { 'x-team': '[REDACTED]' } },
    providers: { type: 'openai', apiKey: '[REDACTED]', model: 'm' },
  });
  // Without a location the call does not type-check, and at run time (plain JavaScript, a cast) it
  // throws instead of walking the part from the root.
  // @ts-expect-error the location in the config is required
  assert.throws(() => collectSecretValues(providers), /say where the value sits in the config/);
  // @ts-expect-error the location in the config is required
  assert.throws(() => redactConfig(providers), /say where the value sits in the config/);
  assert.throws(
    () => collectSecretValues(providers, 4 as unknown as string[]),
    /collectSecretValues: say where the value sits/,
  );
});
