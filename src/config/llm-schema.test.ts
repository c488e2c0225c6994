// Provider settings: a value no HTTP header can carry is refused at start, naming where it is and
// not what it holds (it is a secret); a per-call timeout no timer can hold is refused too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { providersConfigSchema } from './llm-schema.ts';
import { loadConfig } from './load.ts';
import { MAX_TIMER_SECONDS } from './timer-limits.ts';

test('an API key or extra header with a line break or control character is refused without quoting it', () => {
  for (const [field, value] of [
    ['apiKey', 'sk-secret-1\nsk-secret-2'],
    ['apiKey', 'sk-secret\rx'],
    ['headers', { 'x-gateway-token': 'gw-secret\nx' }],
  ] as const) {
    const parsed = providersConfigSchema.safeParse({
      main: { type: 'openai', model: 'm', apiKey: 'sk-ok', [field]: value },
    });
    assert.equal(parsed.success, false, field);
    const issues = parsed.error?.issues ?? [];
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.deepEqual(issues[0]?.path.slice(0, 2), ['main', field]);
    assert.match(issues[0]?.message ?? '', /line break or other control character/);
    assert.ok(!JSON.stringify(issues).includes('secret'), JSON.stringify(issues));
  }
  // Spaces, tabs and Latin-1 letters are valid in a header value; line breaks around it (a key
  // file or a Kubernetes secret ending with a newline) are dropped by the HTTP client.
  for (const apiKey of ['key with\tspacé', 'sk-ok\n', 'sk-ok\r\n\n', ' \nsk-ok']) {
    assert.equal(
      providersConfigSchema.safeParse({
        main: { type: 'openai', model: 'm', apiKey, headers: { 'x-a': 'b c\n' } },
      }).success,
      true,
      JSON.stringify(apiKey),
    );
  }
});

test('an extra header name fetch cannot send is refused at start, naming it and not its value', () => {
  const names = ['X Team', 'x-team:', 'é', '', 'x\n'];
  const parsed = providersConfigSchema.safeParse({
    main: {
      type: 'openai',
      model: 'm',
      apiKey: 'sk-ok',
      headers: Object.fromEntries(names.map((name) => [name, 'gw-secret'])),
    },
  });
  assert.equal(parsed.success, false);
  const issues = parsed.error?.issues ?? [];
  assert.deepEqual(
    issues.map((issue) => [issue.path.join('.'), issue.message.split(' cannot')[0]]),
    names.map((name) => ['main.headers', `header name ${JSON.stringify(name)}`]),
  );
  assert.ok(!JSON.stringify(issues).includes('secret'), JSON.stringify(issues));
  // Each refused by the HTTP client in every request to the provider.
  for (const name of names) assert.throws(() => new Headers({ [name]: 'v' }), TypeError);
  const valid = { 'x-team': 'a', api_key: 'b', "X-A!#$%&'*+.^`|~1": 'c' };
  assert.equal(
    providersConfigSchema.safeParse({ main: { type: 'openai', model: 'm', apiKey: 'k', headers: valid } })
      .success,
    true,
  );
  new Headers(valid);
});

test('a per-call timeout longer than a timer holds (~24.8 days) is refused, naming the limit', () => {
  const parse = (timeoutSeconds: number) =>
    providersConfigSchema.safeParse({
      main: { type: 'openai', model: 'm', apiKey: 'k', timeoutSeconds },
    });
  const refused = parse(3_000_000);
  assert.equal(refused.success, false);
  assert.deepEqual(refused.error?.issues[0]?.path, ['main', 'timeoutSeconds']);
  assert.match(refused.error?.issues[0]?.message ?? '', /at most 2147483 \(about 24\.8 days/);
  assert.equal(parse(MAX_TIMER_SECONDS).success, true);
});

test('a base URL with a user name or password is refused without quoting it', () => {
  for (const baseURL of [
    'http://user:s3cret@127.0.0.1:11434/v1',
    'https://s3cret@gateway.example/v1',
    // Without the slashes, as the URL parser (and so fetch) still reads it.
    'http:user:s3cret@127.0.0.1:11434/v1',
  ]) {
    const parsed = providersConfigSchema.safeParse({
      main: { type: 'openai-compatible', model: 'm', baseURL },
    });
    assert.equal(parsed.success, false, baseURL);
    const issues = parsed.error?.issues ?? [];
    assert.deepEqual(
      issues.map((issue) => issue.path.join('.')),
      ['main.baseURL'],
    );
    assert.match(issues[0]?.message ?? '', /must not contain a user name or password/);
    assert.ok(!JSON.stringify(issues).includes('s3cret'), JSON.stringify(issues));
  }
  // An @ in the path or query (a backslash starts the path) is no user name.
  for (const baseURL of ['http://127.0.0.1:11434/v1/@team?by=a@b', 'http://127.0.0.1:11434\\@team/v1']) {
    assert.equal(
      providersConfigSchema.safeParse({ main: { type: 'openai-compatible', model: 'm', baseURL } }).success,
      true,
      baseURL,
    );
  }
});

test('a base URL on a port fetch refuses for every request is refused at start, naming provider, key and port', () => {
  for (const [baseURL, port] of [
    ['http://127.0.0.1:6000/v1', '6000'],
    ['https://llm.example.com:6667/v1?api-version=1', '6667'],
    ['http://localhost:10080', '10080'],
  ] as const) {
    const parsed = providersConfigSchema.safeParse({
      main: { type: 'openai-compatible', model: 'm', baseURL },
    });
    assert.equal(parsed.success, false, baseURL);
    const issues = parsed.error?.issues ?? [];
    assert.deepEqual(
      issues.map((issue) => issue.path.join('.')),
      ['main.baseURL'],
    );
    assert.match(issues[0]?.message ?? '', new RegExp(`port ${port} is one the HTTP client .* refuses`));
  }
  // Set from the environment, as an operator would: `maos serve` and `maos config check` stop.
  assert.throws(
    () =>
      loadConfig({
        env: {
          MAOS_PROVIDERS__LOCAL__TYPE: 'openai-compatible',
          MAOS_PROVIDERS__LOCAL__MODEL: 'm',
          MAOS_PROVIDERS__LOCAL__BASE_URL: 'http://127.0.0.1:6665/v1',
        },
      }),
    (error: unknown) =>
      error instanceof AppError &&
      error.code === 'CONFIG_INVALID' &&
      /providers\.local\.baseURL: port 6665 is one the HTTP client/.test(error.message),
  );
  for (const baseURL of [
    'http://127.0.0.1:11434/v1',
    'http://127.0.0.1:6001/v1',
    'https://api.example.com/v1',
  ]) {
    assert.equal(
      providersConfigSchema.safeParse({ main: { type: 'openai-compatible', model: 'm', baseURL } }).success,
      true,
      baseURL,
    );
  }
});

test('a base URL that is not http or https is refused at start, naming provider, key and scheme', () => {
  // Each passed `maos config check`; every call then failed as "Cannot connect to API: unknown
  // scheme", retried as a network failure until the circuit opened, and doctor said "not reachable".
  for (const [baseURL, scheme] of [
    ['ftp://127.0.0.1:11434/v1', 'ftp:'],
    ['file:///srv/models/v1', 'file:'],
    ['localhost:11434/v1', 'localhost:'],
    ['htps://api.example.com/v1', 'htps:'],
  ] as const) {
    const parsed = providersConfigSchema.safeParse({
      main: { type: 'openai-compatible', model: 'm', baseURL },
    });
    assert.equal(parsed.success, false, baseURL);
    const issues = parsed.error?.issues ?? [];
    assert.deepEqual(
      issues.map((issue) => issue.path.join('.')),
      ['main.baseURL'],
      baseURL,
    );
    assert.equal(issues[0]?.message, `must be an http:// or https:// URL (got the scheme ${scheme})`);
  }
  assert.throws(
    () =>
      loadConfig({
        env: {
          MAOS_PROVIDERS__CLAUDE__TYPE: 'anthropic',
          MAOS_PROVIDERS__CLAUDE__MODEL: 'm',
          MAOS_PROVIDERS__CLAUDE__API_KEY: 'k',
          MAOS_PROVIDERS__CLAUDE__BASE_URL: 'ftp://llm.example.com/v1',
        },
      }),
    (error: unknown) =>
      error instanceof AppError &&
      error.code === 'CONFIG_INVALID' &&
      /providers\.claude\.baseURL: must be an http:\/\/ or https:\/\/ URL/.test(error.message),
  );
  for (const baseURL of ['HTTP://127.0.0.1:11434/v1', 'https://api.example.com/v1?api-version=1']) {
    assert.equal(
      providersConfigSchema.safeParse({ main: { type: 'openai-compatible', model: 'm', baseURL } }).success,
      true,
      baseURL,
    );
  }
});
