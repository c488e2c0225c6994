import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createSessionDefaults } from '../engine/session-defaults.ts';
import { AppError } from '../errors/app-error.ts';
import { resolveSqlitePath } from '../store/db.ts';
import { findUnpricedModels } from './llm-schema.ts';
import { loadConfig, storeEnvVariables } from './load.ts';
import { collectSecretValues, redactConfig } from './secrets-in-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'CONFIG_INVALID');
    return error.details as string[];
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('loadConfig', () => {
  test('defaults when nothing is given', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.dataDir, './.maos');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 7070);
    assert.equal(config.store.synchronous, 'full');
    assert.equal(config.tasks.maxAttempts, 3);
    assert.ok(Object.isFrozen(config.tasks));
  });

  test('file < env < flags precedence, YAML and JSON files', () => {
    const yamlPath = write('a.yaml', 'port: 1000\nhost: 0.0.0.0\ntasks:\n  leaseSeconds: 9\n');
    const config = loadConfig({
      configPath: yamlPath,
      env: { MAOS_PORT: '2000', MAOS_TASKS__MAX_ATTEMPTS: '5' },
      overrides: { port: 3000 },
    });
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.tasks.leaseSeconds, 9);
    assert.equal(config.tasks.maxAttempts, 5);
    const jsonPath = write('a.json', JSON.stringify({ workers: { concurrency: 2 } }));
    assert.equal(loadConfig({ configPath: jsonPath, env: {} }).workers.concurrency, 2);
  });

  test('runners from the config file', () => {
    const path = write('r.yaml', 'runners:\n  unit-tests:\n    command: [npm, test]\n');
    const config = loadConfig({ configPath: path, env: {} });
    assert.deepEqual(config.runners['unit-tests']?.command, ['npm', 'test']);
    assert.equal(config.runners['unit-tests']?.timeoutSeconds, 600);
  });

  test('lists every problem at once', () => {
    const path = write('bad.yaml', 'port: -1\nworkers:\n  concurrency: lots\nunknownKey: 1\n');
    const problems = problemsOf(() => loadConfig({ configPath: path, env: {} }));
    assert.ok(problems.some((p) => p.startsWith('port:')));
    assert.ok(problems.some((p) => p.startsWith('workers.concurrency:')));
    assert.ok(problems.some((p) => p.includes('unknownKey')));
  });

  test('a duration longer than a timer holds (~24.8 days) is refused with the limit named', () => {
    // Node fires such a timer after 1 ms: a checkpoint or a poll every millisecond, a grace of none.
    const path = write(
      'long-timers.yaml',
      'audit:\n  checkpointIntervalSeconds: 31536000\nworkers:\n  pollIntervalMs: 3000000000\nshutdown:\n  graceSeconds: 2147484\n',
    );
    const problems = problemsOf(() => loadConfig({ configPath: path, env: {} }));
    for (const key of [
      'audit.checkpointIntervalSeconds',
      'workers.pollIntervalMs',
      'shutdown.graceSeconds',
    ]) {
      assert.ok(
        problems.some((p) => p.startsWith(`${key}:`) && p.includes('the longest a timer waits')),
        `${key} in ${problems.join('; ')}`,
      );
    }
    const longest = loadConfig({
      env: { MAOS_SHUTDOWN__GRACE_SECONDS: '2147483', MAOS_WORKERS__POLL_INTERVAL_MS: '2147483647' },
    });
    assert.equal(longest.shutdown.graceSeconds, 2_147_483);
  });

  test('Kubernetes service-link variables of a Service named maos or maos-canary are not read as config', () => {
    const config = loadConfig({
      env: {
        MAOS_SERVICE_HOST: '10.0.0.7',
        MAOS_SERVICE_PORT: '80',
        MAOS_SERVICE_PORT_HTTP: '80',
        MAOS_PORT: 'tcp://10.0.0.7:80',
        MAOS_PORT_80_TCP: 'tcp://10.0.0.7:80',
        MAOS_PORT_80_TCP_PROTO: 'tcp',
        MAOS_PORT_80_TCP_PORT: '80',
        MAOS_PORT_80_TCP_ADDR: '10.0.0.7',
        MAOS_CANARY_SERVICE_HOST: '10.0.0.8',
        MAOS_CANARY_PORT: 'tcp://10.0.0.8:80',
        MAOS_CANARY_PORT_80_TCP_ADDR: '10.0.0.8',
      },
    });
    assert.equal(config.port, 7070);
    // A real MAOS_PORT is still read, and a malformed one still refused.
    assert.equal(loadConfig({ env: { MAOS_PORT: '8080' } }).port, 8080);
    assert.ok(
      problemsOf(() => loadConfig({ env: { MAOS_PORT: 'http://x' } })).some((p) => p.startsWith('port:')),
    );
  });

  test('unreadable or malformed file is reported, not thrown raw', () => {
    assert.ok(
      problemsOf(() => loadConfig({ configPath: join(dir, 'missing.yaml'), env: {} }))[0]?.includes(
        'cannot be read',
      ),
    );
    const broken = write('broken.yaml', 'port: [1,\n');
    assert.equal(problemsOf(() => loadConfig({ configPath: broken, env: {} })).length, 1);
    const scalar = write('scalar.yaml', '42\n');
    assert.ok(problemsOf(() => loadConfig({ configPath: scalar, env: {} }))[0]?.includes('object'));
  });

  test('a key given twice in one object is refused in a JSON file as in a YAML one, not the last one taken', () => {
    // JSON.parse keeps the last: a second `auth` (a merge gone wrong) replaced the first unseen.
    const json = write(
      'twice.json',
      '{\n  "auth": {"mode": "apikey"},\n  "port": 8080,\n  "auth": {"mode": "none"}\n}\n',
    );
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: json, env: {} })),
      [`config file ${json}: Map keys must be unique at line 4, column 3:`],
    );
    const nested = write('twice-nested.json', '{"auth": {"mode": "oidc", "mode": "none"}}');
    assert.equal(problemsOf(() => loadConfig({ configPath: nested, env: {} })).length, 1);
    const yaml = write('twice.yaml', 'port: 1\nport: 2\n');
    assert.match(
      problemsOf(() => loadConfig({ configPath: yaml, env: {} }))[0] ?? '',
      /Map keys must be unique/,
    );
    // JSON indented with tabs, escapes and all, without a repeated key, is read as before.
    const tabs = write('tabs.json', '{\n\t"port": 8081,\n\t"auth": {\n\t\t"realm": "m\\u0061os"\n\t}\n}\n');
    const config = loadConfig({ configPath: tabs, env: {} });
    assert.deepEqual([config.port, config.auth.realm], [8081, 'maos']);
  });

  test('a key given twice in one object of JSON in a MAOS_* variable or a _FILE is refused naming it, as in a JSON file', () => {
    // JSON.parse keeps the last: MAOS_RATE_LIMIT='{"principal": {"points": 10}, "principal": …}' set
    // the second limit without a word, while the same object in a JSON config file is refused.
    assert.deepEqual(
      problemsOf(() =>
        loadConfig({
          env: {
            MAOS_TASKS: '{"leaseSeconds": 10, "leaseSeconds": 600}',
            MAOS_RATE_LIMIT: '{"principal": {"points": 10},\n "principal": {"points": 100000}}',
          },
        }),
      ),
      [
        // In the order of their names (the environment's own order is no order to rely on).
        'environment MAOS_RATE_LIMIT: its JSON gives a key twice in one object (line 2, column 2); give each key once (JSON would keep only the last)',
        'environment MAOS_TASKS: its JSON gives a key twice in one object (line 1, column 22); give each key once (JSON would keep only the last)',
      ],
    );
    const file = write('limit.json', '{\n  "windowSeconds": 60,\n  "windowSeconds": 1\n}\n');
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_RATE_LIMIT__ANONYMOUS_FILE: file } })),
      [
        `rateLimit.anonymous_FILE: ${file} gives a key twice in one JSON object (line 3, column 3); give each key once (JSON would keep only the last) (from the environment: MAOS_RATE_LIMIT__ANONYMOUS_FILE)`,
      ],
    );
    // Each key once, nested or not, is read as before.
    const config = loadConfig({
      env: {
        MAOS_RATE_LIMIT: '{"tenant": {"points": 10, "windowSeconds": 5}, "principal": {"points": 7}}',
      },
    });
    assert.deepEqual(config.rateLimit.tenant, { points: 10, windowSeconds: 5 });
    assert.deepEqual(config.rateLimit.principal, { points: 7, windowSeconds: 60 });
  });

  test('*_FILE reads a secret from a file and trims one trailing newline', () => {
    const secret = write('url.txt', 'sqlite:/tmp/x.db\n');
    const config = loadConfig({ env: { MAOS_STORE__URL_FILE: secret } });
    assert.equal(config.store.url, 'sqlite:/tmp/x.db');
  });

  test('*_FILE reads any value as its MAOS_* variable would: JSON for numbers, booleans and lists, text for text', () => {
    const port = write('port.txt', '8080\n');
    const proxies = write('proxies.txt', '["10.0.0.0/8"]\n');
    const yes = write('yes.txt', 'true');
    const config = loadConfig({
      env: {
        MAOS_PORT_FILE: port,
        MAOS_HTTP__TRUSTED_PROXIES_FILE: proxies,
        MAOS_METRICS__PUBLIC_FILE: yes,
        MAOS_AUTH__OIDC__DEFAULT_TENANT_FILE: port,
        MAOS_AUTH__OIDC__ISSUER: 'https://idp.example.com',
        MAOS_AUTH__OIDC__AUDIENCE: 'maos',
      },
    });
    assert.equal(config.port, 8080);
    assert.deepEqual(config.http.trustedProxies, ['10.0.0.0/8']);
    assert.equal(config.metrics.public, true);
    // A key that takes text keeps the file's text, digits and all (as every secret does).
    assert.equal(config.auth.oidc?.defaultTenant, '8080');
    const secret = write('digits.txt', '12345\n');
    const file = write(
      'digits.yaml',
      `providers:\n  oa:\n    type: openai\n    model: m\n    apiKey_FILE: ${secret}\n`,
    );
    assert.equal(loadConfig({ configPath: file, env: {} }).providers.oa?.apiKey, '12345');
  });

  test('a value read through a MAOS_*_FILE variable that the schema refuses names that variable', () => {
    const word = write('word.txt', 'eighty\n');
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_PORT_FILE: word } })),
      ['port: Invalid input: expected number, received string (from the environment: MAOS_PORT_FILE)'],
    );
  });

  test('*_FILE and the plain value together is an error; a missing file too', () => {
    const secret = write('u.txt', 'x');
    const both = problemsOf(() =>
      loadConfig({ env: { MAOS_STORE__URL: 'y', MAOS_STORE__URL_FILE: secret } }),
    );
    assert.ok(both[0]?.includes('both'));
    const missing = problemsOf(() => loadConfig({ env: { MAOS_STORE__URL_FILE: join(dir, 'nope') } }));
    assert.ok(missing[0]?.includes('cannot read'));
  });

  test('an unreadable *_FILE names its path only when it is an absolute one, never the secret put there', () => {
    const missing = join(dir, 'no-such-url');
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_STORE__URL_FILE: missing } })),
      [`store.url_FILE: cannot read ${missing} (ENOENT) (from the environment: MAOS_STORE__URL_FILE)`],
    );
    // The secret itself where its file goes (a URL, a PEM key, an API key): not a path, not echoed.
    for (const secret of [
      'postgres://maos:s3cret-pw@db/maos',
      '-----BEGIN PRIVATE KEY-----\nMC4CAQ\n',
      'sk-live-s3cret',
    ]) {
      const problems = problemsOf(() => loadConfig({ env: { MAOS_STORE__URL_FILE: secret } }));
      assert.deepEqual(problems, [
        'store.url_FILE: is not an absolute path and cannot be read (ENOENT); a _FILE setting names a file holding the secret, not the secret (value not shown) (from the environment: MAOS_STORE__URL_FILE)',
      ]);
      assert.ok(!problems.join('\n').includes('s3cret') && !problems.join('\n').includes('MC4CAQ'));
    }
    const file = write(
      'secret-in-file-key.yaml',
      'providers:\n  oa:\n    type: openai\n    model: m\n    apiKey_FILE: sk-live-s3cret\n',
    );
    const problems = problemsOf(() => loadConfig({ configPath: file, env: {} }));
    assert.match(problems[0] as string, /^providers\.oa\.apiKey_FILE: is not an absolute path/);
    assert.ok(!problems.join('\n').includes('s3cret'));
  });

  test('an unreadable absolute *_FILE outside an existing directory is not echoed: it may be a secret starting with /', () => {
    const variable = '(from the environment: MAOS_SECRETS__KEK_RING_FILE)';
    const problemFor = (value: string) =>
      problemsOf(() => loadConfig({ env: { MAOS_SECRETS__KEK_RING_FILE: value } }));
    // Base64 keys that start with `/`: one with another `/` (its "directory" does not exist) and one
    // without (its directory would be `/`).
    for (const secret of ['/s3cretQ2xv9Lr0yZ+a1b2/c3d4e5f6g7h8==', '/s3cretQ2xv9Lr0yZ+a1b2c3d4e5f6g7h8==']) {
      const problems = problemFor(secret);
      assert.deepEqual(problems, [
        `secrets.kekRing_FILE: cannot read it (ENOENT): no directory of it exists below /; a _FILE setting names a file holding the secret, not the secret (value not shown, ${secret.length} characters) ${variable}`,
      ]);
      assert.ok(!problems.join('\n').includes('s3cret'));
    }
    // A real path whose directory is missing (a secret volume not mounted): the part that exists is
    // named, for the operator to see where the path leaves the file system.
    const unmounted = join(dir, 'not-mounted', 'kek-ring');
    assert.deepEqual(problemFor(unmounted), [
      `secrets.kekRing_FILE: cannot read it (ENOENT): no directory of it exists below ${dir}; a _FILE setting names a file holding the secret, not the secret (value not shown, ${unmounted.length} characters) ${variable}`,
    ]);
  });

  test('a key and its _FILE form are one setting: the later source wins; in one source both are an error', () => {
    const fileUrl = write('url-file.txt', 'postgres://from-file-secret/maos\n');
    const envUrl = write('url-env.txt', 'postgres://from-env-secret/maos\n');
    const plain = write('plain-url.yaml', 'store:\n  url: postgres://from-config/maos\n');
    const viaFile = write('file-url.yaml', `store:\n  url_FILE: ${fileUrl}\n`);
    const urlOf = (configPath: string, env: NodeJS.ProcessEnv) => loadConfig({ configPath, env }).store.url;
    assert.equal(urlOf(plain, { MAOS_STORE__URL_FILE: envUrl }), 'postgres://from-env-secret/maos');
    assert.equal(urlOf(viaFile, { MAOS_STORE__URL: 'postgres://from-env/maos' }), 'postgres://from-env/maos');
    assert.equal(urlOf(viaFile, { MAOS_STORE__URL_FILE: envUrl }), 'postgres://from-env-secret/maos');
    // A file the environment replaces is not read: a missing one is no error.
    const gone = write('gone-url.yaml', `store:\n  url_FILE: ${join(dir, 'no-such-secret')}\n`);
    assert.equal(urlOf(gone, { MAOS_STORE__URL: 'postgres://from-env/maos' }), 'postgres://from-env/maos');
    // Flags win over both forms of the environment.
    const port = write('port-7.txt', '7\n');
    assert.equal(loadConfig({ env: { MAOS_PORT_FILE: port }, overrides: { port: 9 } }).port, 9);
    const both = write('both-url.yaml', `store:\n  url: postgres://a/maos\n  url_FILE: ${fileUrl}\n`);
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: both, env: {} })),
      ['store.url: set both directly and through url_FILE; use one'],
    );
  });

  test('keys a later source sets inside a map an earlier one reads from a _FILE go into that map, not replace it', () => {
    const tenants = write('runner-tenants.json', '{"acme": ["r1"], "beta": []}\n');
    const config = write(
      'runner-access.yaml',
      `runners:\n  r1: {command: [echo]}\n  r2: {command: [ls]}\nrunnerAccess:\n  default: []\n  tenants_FILE: ${tenants}\n`,
    );
    // beta stays without runners; it fell back to `default` unseen when the file's map was dropped.
    assert.deepEqual(
      loadConfig({ configPath: config, env: { MAOS_RUNNER_ACCESS__TENANTS__GAMMA: '["r2"]' } }).runnerAccess
        .tenants,
      { acme: ['r1'], beta: [], gamma: ['r2'] },
    );
    // The later source wins for a key the file gives too; flags over the environment over the file.
    assert.deepEqual(
      loadConfig({
        configPath: config,
        env: { MAOS_RUNNER_ACCESS__TENANTS__ACME: '["r2"]' },
        overrides: { runnerAccess: { tenants: { delta: ['r1'] } } },
      }).runnerAccess.tenants,
      { acme: ['r2'], beta: [], delta: ['r1'] },
    );
    // A _FILE of the same source replaces as before; the file must hold an object to take keys.
    const list = write('runner-tenants-list.json', '["r1"]\n');
    const listConfig = write('runner-access-list.yaml', `runnerAccess:\n  tenants_FILE: ${list}\n`);
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: listConfig, env: { MAOS_RUNNER_ACCESS__TENANTS__X: '[]' } })),
      [
        `runnerAccess.tenants_FILE: ${list} holds no JSON object, so the keys a later source sets inside tenants cannot go into it`,
      ],
    );
  });

  test('a *_FILE larger than 16 MiB or never ending (/dev/zero) is refused naming it, not read until memory runs out', () => {
    const big = join(dir, 'big-secret');
    writeFileSync(big, '');
    truncateSync(big, 16 * 1024 * 1024 + 1);
    for (const path of [big, '/dev/zero']) {
      assert.deepEqual(
        problemsOf(() => loadConfig({ env: { MAOS_SECRETS__KEK_RING_FILE: path } })),
        [
          `secrets.kekRing_FILE: ${path} is larger than 16777216 bytes, more than any setting holds (from the environment: MAOS_SECRETS__KEK_RING_FILE)`,
        ],
      );
    }
    // The config file too.
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: '/dev/zero', env: {} })),
      ['config file /dev/zero: is larger than 16777216 bytes, more than any configuration holds'],
    );
    // Up to the limit it is read, in chunks as a pipe is.
    const url = `sqlite:${join(dir, 'x'.repeat(70_000))}`;
    assert.equal(
      loadConfig({ env: { MAOS_STORE__URL_FILE: write('long-url.txt', `${url}\n`) } }).store.url,
      url,
    );
  });

  test('a map a later source reads from a _FILE goes into the map an earlier source writes out, not replace it', () => {
    const config = write(
      'approval-inline.yaml',
      'llm:\n  approval:\n    tenants: {acme: required, beta: required}\n',
    );
    // As MAOS_LLM__APPROVAL__TENANTS='{"gamma":"required"}' would: acme and beta kept their approval.
    const gamma = write('approval-gamma.json', '{"gamma": "required"}\n');
    assert.deepEqual(
      loadConfig({ configPath: config, env: { MAOS_LLM__APPROVAL__TENANTS_FILE: gamma } }).llm.approval
        .tenants,
      loadConfig({ configPath: config, env: { MAOS_LLM__APPROVAL__TENANTS: '{"gamma":"required"}' } }).llm
        .approval.tenants,
    );
    assert.deepEqual(
      loadConfig({ configPath: config, env: { MAOS_LLM__APPROVAL__TENANTS_FILE: gamma } }).llm.approval
        .tenants,
      { acme: 'required', beta: 'required', gamma: 'required' },
    );
    const list = write('approval-list.json', '["gamma"]\n');
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: config, env: { MAOS_LLM__APPROVAL__TENANTS_FILE: list } })),
      [
        `llm.approval.tenants_FILE: ${list} holds no JSON object, so it cannot go into the tenants an earlier source sets (from the environment: MAOS_LLM__APPROVAL__TENANTS_FILE)`,
      ],
    );
  });

  test('an empty *_FILE is an error naming the file, not an empty value (a store.url of SQLite)', () => {
    for (const text of ['', '\n', '  \r\n']) {
      const empty = write('empty-url.txt', text);
      const problems = problemsOf(() => loadConfig({ env: { MAOS_STORE__URL_FILE: empty } }));
      assert.deepEqual(problems, [
        `store.url_FILE: ${empty} is empty (from the environment: MAOS_STORE__URL_FILE)`,
      ]);
    }
    const emptyKey = write('empty-key.txt', '\n');
    const file = write(
      'empty-secret.yaml',
      `providers:\n  oa:\n    type: openai\n    model: gpt-4o\n    apiKey_FILE: ${emptyKey}\n`,
    );
    // First the file, then what its absence means (as for a file that cannot be read).
    assert.equal(
      problemsOf(() => loadConfig({ configPath: file, env: {} }))[0],
      `providers.oa.apiKey_FILE: ${emptyKey} is empty`,
    );
  });

  test('an empty *_FILE path is refused naming its variable, not read as the file "" (ENOENT)', () => {
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_SECRETS__KEK_RING_FILE: '' } })),
      [
        'secrets.kekRing_FILE: is empty, not a file path; remove it to leave kekRing unset (from the environment: MAOS_SECRETS__KEK_RING_FILE)',
      ],
    );
    const file = write(
      'empty-path.yaml',
      "providers:\n  oa:\n    type: openai\n    model: gpt-4o\n    apiKey_FILE: ' '\n",
    );
    assert.equal(
      problemsOf(() => loadConfig({ configPath: file, env: {} }))[0],
      'providers.oa.apiKey_FILE: is empty, not a file path; remove it to leave apiKey unset',
    );
  });

  test('an empty MAOS_* variable is a value, not unset: it does not remove the key the file sets', () => {
    const file = write('port-1000.yaml', 'port: 1000\n');
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: file, env: { MAOS_PORT: '' } })),
      ['port: Invalid input: expected number, received string (from the environment: MAOS_PORT)'],
    );
  });

  test('an empty store.url is refused, not read as unset (the SQLite file in dataDir)', () => {
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_STORE__URL: '' } })),
      [
        'store.url: must not be empty (leave it unset for the SQLite file maos.db in dataDir) (from the environment: MAOS_STORE__URL)',
      ],
    );
    assert.equal(loadConfig({ env: {} }).store.url, undefined);
  });

  test('a store.url the store cannot open is refused by the config, not first at the start (never echoing it)', () => {
    const problemOf = (url: string) => {
      const problems = problemsOf(() => loadConfig({ env: {}, overrides: { store: { url } } }));
      assert.equal(problems.length, 1);
      assert.ok(!(problems[0] as string).includes('s3cret'), problems[0]);
      return problems[0] as string;
    };
    assert.match(problemOf('sqlite:'), /^store\.url: `sqlite:` needs a file path/);
    assert.match(problemOf(`sqlite:${join(dir, 'x.db')} `), /ending in whitespace/);
    // `//` reads as the root: sqlite://x.db opened /x.db, sqlite:// the directory /.
    for (const url of ['sqlite://x.db', 'sqlite://', 'sqlite://var/lib/maos.db']) {
      assert.match(
        problemOf(url),
        /^store\.url: `sqlite:\/\/<host>` is not a SQLite file: write `sqlite:<path>`/,
      );
      assert.throws(
        () => resolveSqlitePath({ dataDir: dir, store: { url, synchronous: 'full', busyTimeoutMs: 0 } }),
        /store\.url `sqlite:\/\/<host>` is not a SQLite file/,
      );
    }
    assert.match(problemOf('mysql://u:s3cret@db/maos'), /must start with `sqlite:` or `postgres:\/\/`/);
    assert.match(problemOf('postgres:s3cret'), /must start with `sqlite:` or `postgres:\/\/`/);
    // Refused by the PostgreSQL driver at the first connection: the start failed INTERNAL "Invalid URL".
    assert.match(
      problemOf('postgres://maos:s3cret@db:99999/maos'),
      /not a URL the PostgreSQL driver can read/,
    );
    assert.match(problemOf('postgresql://maos:s3cret@[db/maos'), /not a URL the PostgreSQL driver can read/);
    const missing = join(dir, 'no-such-client.crt');
    assert.equal(
      problemOf(`postgres://maos:s3cret@db/maos?sslcert=${missing}`),
      `store.url: names a file the PostgreSQL driver cannot read: ${missing} (ENOENT)`,
    );
    for (const url of [
      'sqlite:./maos.db',
      'sqlite:///var/lib/maos.db',
      'postgres://maos:s3cret@db:5432/maos',
    ]) {
      assert.equal(loadConfig({ env: {}, overrides: { store: { url } } }).store.url, url);
    }
  });

  test('metrics.port on the API port of an overlapping address is refused by the config, not first at the bind', () => {
    const problems = (env: NodeJS.ProcessEnv) => problemsOf(() => loadConfig({ env }));
    assert.deepEqual(problems({ MAOS_PORT: '9464', MAOS_METRICS__PORT: '9464' }), [
      'metrics.port: Cannot listen on 127.0.0.1:9464 for metrics (setting `metrics.port`) and on 127.0.0.1:9464 for the API (setting `port`): `metrics.port` and `port` name one port on overlapping addresses; set another `metrics.port`, or leave it unset to serve /metrics on the API port (from the environment: MAOS_METRICS__PORT)',
    ]);
    for (const [host, metricsHost] of [
      ['0.0.0.0', '127.0.0.1'],
      ['10.1.2.3', '0.0.0.0'],
      ['::', '127.0.0.1'],
      ['::1', '::'],
      ['LOCALHOST', 'localhost'],
    ] as const) {
      const env = {
        MAOS_HOST: host,
        MAOS_PORT: '9464',
        MAOS_METRICS__HOST: metricsHost,
        MAOS_METRICS__PORT: '9464',
      };
      assert.match(
        problems(env).join('\n'),
        /^metrics\.port: Cannot listen on \S+:9464 for metrics .* name one port on overlapping addresses/,
        host,
      );
    }
    // Apart: another port, 0 (each picks its own), other addresses (left to the bind at start).
    for (const env of [
      { MAOS_PORT: '9464', MAOS_METRICS__PORT: '9465' },
      { MAOS_PORT: '0', MAOS_METRICS__PORT: '0' },
      { MAOS_PORT: '9464', MAOS_METRICS__PORT: '9464', MAOS_METRICS__HOST: '127.0.0.2' },
      { MAOS_HOST: '0.0.0.0', MAOS_PORT: '9464', MAOS_METRICS__HOST: '::1', MAOS_METRICS__PORT: '9464' },
    ]) {
      assert.equal(loadConfig({ env }).metrics.port, Number(env.MAOS_METRICS__PORT));
    }
  });

  test('an empty runner cwd is refused, not read as unset (the session workspace)', () => {
    assert.deepEqual(
      problemsOf(() => loadConfig({ env: { MAOS_RUNNERS__X__COMMAND: '["ls"]', MAOS_RUNNERS__X__CWD: '' } })),
      [
        'runners.x.cwd: must not be empty (leave it unset for the session workspace) (from the environment: MAOS_RUNNERS__X__CWD)',
      ],
    );
    assert.equal(loadConfig({ env: { MAOS_RUNNERS__X__COMMAND: '["ls"]' } }).runners.x?.cwd, undefined);
  });

  test('an empty MAOS_CONFIG is refused, not read as no config file (the defaults and ./.maos)', () => {
    // `MAOS_CONFIG=$CONFIG` with CONFIG unset, as `--config ""` is refused by the CLI.
    for (const empty of ['', '  ']) {
      assert.deepEqual(
        problemsOf(() => loadConfig({ env: { MAOS_CONFIG: empty } })),
        ['MAOS_CONFIG: is empty, not a file path; unset it to run without a config file'],
      );
    }
    // An empty path given as the option is the same mistake.
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: '', env: {} })),
      ['config file path: is empty, not a file path; leave it out to run without a config file'],
    );
    const file = write('port-2000.yaml', 'port: 2000\n');
    assert.equal(loadConfig({ env: { MAOS_CONFIG: file } }).port, 2000);
  });

  test('a byte order mark at the start of a JSON config or a *_FILE secret is not part of it', () => {
    const file = write('bom.json', '\uFEFF{"port": 8080}');
    const secret = write('bom-url.txt', '\uFEFFsqlite:/tmp/bom.db\r\n');
    const config = loadConfig({ configPath: file, env: { MAOS_STORE__URL_FILE: secret } });
    assert.equal(config.port, 8080);
    assert.equal(config.store.url, 'sqlite:/tmp/bom.db');
  });

  test('a MAOS_* variable of a key that takes text keeps its value as written, not read as JSON', () => {
    const config = loadConfig({
      env: {
        MAOS_RUNNERS__DEPLOY__COMMAND: '["./deploy.sh"]',
        MAOS_RUNNERS__DEPLOY__ENV__PORT: '8080',
        MAOS_RUNNERS__DEPLOY__ENV__CI: 'true',
        MAOS_AUTH__OIDC__DEFAULT_TENANT: '42',
        // Keys that take numbers, booleans or lists still read JSON.
        MAOS_PORT: '8081',
        MAOS_TASKS__MAX_ATTEMPTS: '2',
      },
    });
    assert.deepEqual(config.runners.deploy?.env, { PORT: '8080', CI: 'true' });
    assert.deepEqual(config.runners.deploy?.command, ['./deploy.sh']);
    assert.equal(config.auth.oidc?.defaultTenant, '42');
    assert.equal(config.port, 8081);
    assert.equal(config.tasks.maxAttempts, 2);
  });

  test("a runner's env variable the system cannot set is CONFIG_INVALID naming runner and variable, not the value", () => {
    const file = write(
      'runner-env-nul.json',
      JSON.stringify({
        runners: {
          deploy: {
            command: ['./deploy.sh'],
            env: {
              REGION: 'eu-west-1',
              TOKEN: 'tok-SECRET\u0000tail',
              'A=B': 'x',
              'NUL\u0000NAME': 'y',
              '': 'z',
            },
          },
          fine: { command: ['true'], env: { CI: 'true' } },
        },
      }),
    );
    const problems = problemsOf(() => loadConfig({ configPath: file, env: {} }));
    assert.deepEqual(problems, [
      'runners.deploy.env.TOKEN: variable "TOKEN" of runner deploy cannot be set: a NUL character in its value (value not shown); no process environment can hold it',
      'runners.deploy.env: variable "A=B" of runner deploy cannot be set: an "=" in its name (the system ends a name at its first "="); no process environment can hold it',
      'runners.deploy.env: variable "NUL\\u0000NAME" of runner deploy cannot be set: a NUL character in its name; no process environment can hold it',
      'runners.deploy.env: variable "" of runner deploy cannot be set: an empty name; no process environment can hold it',
    ]);
    assert.ok(!problems.join('\n').includes('SECRET'), 'the value is not shown');
    // The same value read from a file the environment names: the variable is named too.
    const token = write('runner-token.txt', 'tok-SECRET\u0000tail');
    const fromEnv = problemsOf(() =>
      loadConfig({
        env: {
          MAOS_RUNNERS__DEPLOY__COMMAND: '["./deploy.sh"]',
          MAOS_RUNNERS__DEPLOY__ENV__TOKEN_FILE: token,
        },
      }),
    );
    assert.equal(fromEnv.length, 1, fromEnv.join('\n'));
    assert.match(
      fromEnv[0] ?? '',
      /^runners\.deploy\.env\.TOKEN: variable "TOKEN" of runner deploy cannot be set: a NUL character in its value/,
    );
    assert.ok(!fromEnv[0]?.includes('SECRET'));
  });

  test('a key named …File is set by its MAOS_* variable, not read from a file', () => {
    const config = loadConfig({
      env: { MAOS_TLS__CERT_FILE: '/etc/maos/cert.pem', MAOS_TLS__KEY_FILE: '/etc/maos/key.pem' },
    });
    assert.deepEqual(config.tls, {
      certFile: '/etc/maos/cert.pem',
      keyFile: '/etc/maos/key.pem',
      reloadIntervalSeconds: 60,
    });
    const polled = loadConfig({ env: { MAOS_TLS__RELOAD_INTERVAL_SECONDS: '0' } });
    assert.equal(polled.tls.reloadIntervalSeconds, 0);
    // Other …_FILE variables still read the value from the file.
    const path = join(dir, 'store-url');
    writeFileSync(path, 'postgres://db/maos\n');
    assert.equal(loadConfig({ env: { MAOS_STORE__URL_FILE: path } }).store.url, 'postgres://db/maos');
  });

  test('keys spelt with capitals are set by their MAOS_* variables', () => {
    const config = loadConfig({
      env: {
        MAOS_PROVIDERS__LOCAL__TYPE: 'openai-compatible',
        MAOS_PROVIDERS__LOCAL__MODEL: 'qwen',
        MAOS_PROVIDERS__LOCAL__BASE_URL: 'http://127.0.0.1:11434/v1',
        MAOS_LLM__PRICES__QWEN__INPUT_PER_MTOK: '0',
        MAOS_LLM__PRICES__QWEN__OUTPUT_PER_MTOK: '0',
        MAOS_LLM__PRICES__QWEN__CACHE_READ_PER_MTOK: '0',
      },
    });
    assert.equal(config.providers.local?.baseURL, 'http://127.0.0.1:11434/v1');
    assert.deepEqual(config.llm.prices.qwen, { inputPerMTok: 0, outputPerMTok: 0, cacheReadPerMTok: 0 });
  });

  test('a map given as JSON and variables of its entries combine whatever their order in the environment', () => {
    const whole = { MAOS_RUNNERS: JSON.stringify({ a: { command: ['echo'], timeoutSeconds: 5 } }) };
    const entries = { MAOS_RUNNERS__B__COMMAND: '["ls"]', MAOS_RUNNERS__A__TIMEOUT_SECONDS: '9' };
    // The environment's order is the order its variables were set in: both orders give one result.
    for (const env of [
      { ...whole, ...entries },
      { ...entries, ...whole },
    ]) {
      const { runners } = loadConfig({ env });
      assert.deepEqual(Object.keys(runners).sort(), ['a', 'b'], Object.keys(env).join(' '));
      assert.deepEqual(runners.b?.command, ['ls']);
      // The variable of the key wins over the JSON holding it.
      assert.equal(runners.a?.timeoutSeconds, 9);
    }
    // A key inside a value that is no object: refused naming both variables, whatever the order.
    for (const env of [
      { MAOS_RUNNERS: 'oops', ...entries },
      { ...entries, MAOS_RUNNERS: 'oops' },
    ]) {
      const problems = problemsOf(() => loadConfig({ env }));
      assert.ok(
        problems.includes(
          'environment MAOS_RUNNERS__B__COMMAND: sets a key inside runners, which MAOS_RUNNERS sets to a value that is not an object; use one of them',
        ),
        problems.join('\n'),
      );
      assert.ok(
        problems.some((problem) => problem.startsWith('runners: ')),
        problems.join('\n'),
      );
    }
  });

  test('map entries named with underscores keep their names (runners, role routes)', () => {
    const config = loadConfig({
      env: {
        MAOS_RUNNERS__UNIT_TESTS__COMMAND: '["npm","test"]',
        MAOS_PROVIDERS__LOCAL__TYPE: 'openai-compatible',
        MAOS_PROVIDERS__LOCAL__MODEL: 'qwen',
        MAOS_PROVIDERS__LOCAL__BASE_URL: 'http://127.0.0.1:11434/v1',
        MAOS_LLM__ROLES__BACKEND_ENGINEER__PROVIDER: 'local',
      },
    });
    assert.deepEqual(config.runners.unit_tests?.command, ['npm', 'test']);
    assert.equal(config.llm.roles.backend_engineer?.provider, 'local');
  });

  test('a problem with a value the environment set names its variable', () => {
    const file = write('port.yaml', 'port: 70a70\nnoSuch: 1\n');
    const problems = problemsOf(() =>
      loadConfig({
        configPath: file,
        env: {
          MAOS_DEBUG: '1',
          MAOS_TASKS__LEASE_SECONDS: 'soon',
          MAOS_LLM__BUDGETS__TENANTS: '{"acme":{"bogus":1}}',
        },
      }),
    );
    assert.deepEqual(problems.toSorted(), [
      '(root): Unrecognized keys: "noSuch", "debug" (from the environment: MAOS_DEBUG)',
      'llm.budgets.tenants.acme: Unrecognized key: "bogus" (from the environment: MAOS_LLM__BUDGETS__TENANTS)',
      // From the file: no variable named.
      'port: Invalid input: expected number, received string',
      'tasks.leaseSeconds: Invalid input: expected number, received string (from the environment: MAOS_TASKS__LEASE_SECONDS)',
    ]);
  });

  test('client-side variables and those a runner gets are not configuration', () => {
    const config = loadConfig({
      env: {
        MAOS_SERVER: 'http://x',
        MAOS_TOKEN: 't',
        MAOS_CREDENTIALS: '/tmp/creds.json',
        // A runner that calls `maos` itself has these (agents/runtimes/command).
        MAOS_TASK: 'write it',
        MAOS_SESSION_ID: 's',
        MAOS_TASK_ID: 't',
        MAOS_TASK_NAME: 'a',
        MAOS_ROLE: 'engineer',
        MAOS_OBJECTIVE: 'o',
        MAOS_ATTEMPT: '1',
      },
    });
    assert.equal(config.port, 7070);
  });

  test('runner env names are kept as written, header names get - for _; _FILE reads a map entry from a file', () => {
    const secret = join(dir, 'gateway-secret');
    writeFileSync(secret, 'Bearer s3cret\n');
    const token = join(dir, 'runner-token');
    writeFileSync(token, 'tok\n');
    const config = loadConfig({
      env: {
        MAOS_PROVIDERS__GW__TYPE: 'openai-compatible',
        MAOS_PROVIDERS__GW__MODEL: 'm',
        MAOS_PROVIDERS__GW__BASE_URL: 'http://llm.invalid/v1',
        MAOS_PROVIDERS__GW__HEADERS__AUTHORIZATION_FILE: secret,
        MAOS_PROVIDERS__GW__HEADERS__X_TEAM: 'core',
        MAOS_RUNNERS__UNIT_TESTS__COMMAND: '["npm","test"]',
        MAOS_RUNNERS__UNIT_TESTS__ENV__NODE_ENV: 'test',
        MAOS_RUNNERS__UNIT_TESTS__ENV__NPM_TOKEN_FILE: token,
      },
    });
    assert.deepEqual(config.providers.gw?.headers, { AUTHORIZATION: 'Bearer s3cret', 'X-TEAM': 'core' });
    assert.deepEqual(config.runners.unit_tests?.env, { NODE_ENV: 'test', NPM_TOKEN: 'tok' });
  });
});

describe('storeEnvVariables', () => {
  test('the store and audit variables only, sorted, each marked secret when it is or holds one', () => {
    const variables = storeEnvVariables({
      MAOS_STORE__URL: 'postgres://maos:pw@db:5432/maos',
      MAOS_STORE__POOL_SIZE: '20',
      MAOS_AUDIT__SIGNING_KEY: '-----BEGIN PRIVATE KEY-----',
      MAOS_AUDIT__CHECKPOINT_DIR: 'checkpoints',
      // A path, not the secret, although its key is named like one.
      MAOS_SECRETS__KEK_RING_FILE: '/run/secrets/kek',
      MAOS_AUDIT__SIGNING_KEY_FILE: '/run/secrets/audit.pem',
      // Other sections, client variables and a Service's link are not the store's.
      MAOS_PORT: '8080',
      MAOS_TOKEN: 't',
      MAOS_STORE_SERVICE_HOST: '10.0.0.7',
      PATH: '/bin',
    });
    assert.deepEqual(
      variables.map(({ name, path, secret }) => ({ name, path: path.join('.'), secret })),
      [
        { name: 'MAOS_AUDIT__CHECKPOINT_DIR', path: 'audit.checkpointDir', secret: false },
        { name: 'MAOS_AUDIT__SIGNING_KEY', path: 'audit.signingKey', secret: true },
        { name: 'MAOS_AUDIT__SIGNING_KEY_FILE', path: 'audit.signingKey_FILE', secret: false },
        { name: 'MAOS_STORE__POOL_SIZE', path: 'store.poolSize', secret: false },
        { name: 'MAOS_STORE__URL', path: 'store.url', secret: true },
      ],
    );
    // A URL without a password is no secret; a whole section in one variable is judged by its keys.
    assert.deepEqual(
      storeEnvVariables({
        MAOS_STORE__URL: 'postgres://db:5432/maos',
        MAOS_AUDIT: '{"signingKey":"-----BEGIN PRIVATE KEY-----"}',
      }).map(({ name, secret }) => ({ name, secret })),
      [
        { name: 'MAOS_AUDIT', secret: true },
        { name: 'MAOS_STORE__URL', secret: false },
      ],
    );
  });
});

describe('redactConfig', () => {
  test('hides secret keys and passwords inside URLs', () => {
    const redacted = redactConfig(
      {
        store: { url: 'postgres://maos:hunter2@db:5432/maos' },
        providers: { claude: { apiKey: 'sk-123', model: 'm' } },
      },
      [],
    ) as { store: { url: string }; providers: { claude: { apiKey: string; model: string } } };
    assert.equal(redacted.store.url, 'postgres://maos:[REDACTED]@db:5432/maos');
    assert.equal(redacted.providers.claude.apiKey, '[REDACTED]');
    assert.equal(redacted.providers.claude.model, 'm');
    assert.ok(!JSON.stringify(redacted).includes('hunter2'));
  });

  test('hides provider headers, runner environments, URL passwords with any character, query values', () => {
    const config = {
      providers: {
        gw: {
          baseURL: 'https://gw.example.com/v1?key=QUERYSECRET&region=eu',
          headers: { Authorization: 'Bearer sk-HEADER', 'x-api-key': 'sk-XAPIKEY', 'api-key': 'AZUREKEY' },
        },
      },
      runners: { deploy: { command: ['sh'], env: { GH_PAT: 'ghp_RUNNERPAT123', REGION: 'eu-west-1' } } },
      store: { url: 'postgres://app:pa/ss@db:5432/x' },
    };
    const printed = JSON.stringify(redactConfig(config, []));
    for (const secret of [
      'QUERYSECRET',
      'sk-HEADER',
      'sk-XAPIKEY',
      'AZUREKEY',
      'ghp_RUNNERPAT123',
      'pa/ss',
    ]) {
      assert.ok(!printed.includes(secret), `${secret} printed: ${printed}`);
    }
    const redacted = redactConfig(config, []) as typeof config;
    assert.equal(redacted.providers.gw.baseURL, 'https://gw.example.com/v1?key=[REDACTED]&region=[REDACTED]');
    assert.deepEqual(Object.keys(redacted.providers.gw.headers), ['Authorization', 'x-api-key', 'api-key']);
    assert.equal(redacted.runners.deploy.env.REGION, '[REDACTED]');
    assert.deepEqual(redacted.runners.deploy.command, ['sh']);
    assert.equal(redacted.store.url, 'postgres://app:[REDACTED]@db:5432/x');
    // The support bundle scrubs its logs of the same values.
    assert.deepEqual(collectSecretValues(config, []).sort(), [
      'AZUREKEY',
      'Bearer sk-HEADER',
      'QUERYSECRET',
      'eu-west-1',
      'ghp_RUNNERPAT123',
      'pa/ss',
      'sk-XAPIKEY',
    ]);
  });

  test('hides a URL password as the database driver reads it: up to the last @, with no user, or after a user with @', () => {
    for (const [url, printed, secret] of [
      [
        'postgres://maos:s3cr@t!x@db.example:5432/maos',
        'postgres://maos:[REDACTED]@db.example:5432/maos',
        's3cr@t!x',
      ],
      ['postgres://:onlypw@db/maos', 'postgres://:[REDACTED]@db/maos', 'onlypw'],
      ['postgres://me@corp:pw1234@db/x', 'postgres://me@corp:[REDACTED]@db/x', 'pw1234'],
      ['postgres://u:p%40ssword@db/x', 'postgres://u:[REDACTED]@db/x', 'p@ssword'],
    ] as const) {
      const config = { store: { url } };
      assert.equal((redactConfig(config, []) as typeof config).store.url, printed);
      assert.ok(collectSecretValues(config, []).includes(secret), `${secret} is scrubbed from logs`);
    }
  });
});

// A tenant (or IdP group, or model) named `__proto__` lost its entry without a word: JSON and YAML
// keep the key, zod's records drop it, and `maos config check` said ok while that tenant's sessions
// ran without the required approval and budget. Names of other Object.prototype members are kept.
describe('keys named like members of Object.prototype', () => {
  test('a __proto__ key is refused wherever it is and whichever source sets it, naming its path', () => {
    const json = write(
      'proto.json',
      '{"llm":{"approval":{"tenants":{"__proto__":"required","acme":"none"}},' +
        '"budgets":{"tenants":{"__proto__":{"maxCostUsd":1}}}},' +
        '"auth":{"mode":"oidc","oidc":{"issuer":"https://idp.example","audience":"maos",' +
        '"roleMapping":{"__proto__":["admin"]}}}}',
    );
    const fromJson = problemsOf(() => loadConfig({ configPath: json, env: {} }));
    for (const path of ['llm.approval.tenants', 'llm.budgets.tenants', 'auth.oidc.roleMapping']) {
      assert.ok(
        fromJson.some((p) => p.startsWith(`${path}.__proto__: a key named "__proto__" is not supported`)),
        `${path}: ${fromJson.join(' | ')}`,
      );
    }
    assert.equal(fromJson.length, 3, fromJson.join(' | '));

    const yaml = write('proto.yaml', 'llm:\n  approval:\n    tenants:\n      __proto__: required\n');
    assert.deepEqual(
      problemsOf(() => loadConfig({ configPath: yaml, env: {} })).map((p) => p.split(':')[0]),
      ['llm.approval.tenants.__proto__'],
    );

    const fromEnv = problemsOf(() =>
      loadConfig({ env: { MAOS_LLM__BUDGETS__TENANTS: '{"__proto__":{"maxCostUsd":1}}' } }),
    );
    assert.equal(fromEnv.length, 1, fromEnv.join(' | '));
    assert.match(
      fromEnv[0] ?? '',
      /^llm\.budgets\.tenants\.__proto__: .*\(from the environment: MAOS_LLM__BUDGETS__TENANTS\)$/,
    );

    // In an object of the schema too: it used to become the object's prototype, whose keys were then
    // reported as if written there.
    const asPrototype = problemsOf(() => loadConfig({ env: { MAOS_LLM: '{"__proto__":{"x":1}}' } }));
    assert.deepEqual(
      asPrototype.map((p) => p.split(':')[0]),
      ['llm.__proto__'],
    );
    const viaFlags = problemsOf(() =>
      loadConfig({ env: {}, overrides: JSON.parse('{"llm":{"approval":{"tenants":{"__proto__":"none"}}}}') }),
    );
    assert.deepEqual(
      viaFlags.map((p) => p.split(':')[0]),
      ['llm.approval.tenants.__proto__'],
    );
    // Read through a _FILE (the variable's or the config file's), at any depth of what it holds.
    const approvals = write('approval-tenants.json', '{"acme": "none", "__proto__": "required"}\n');
    const budgets = write('budgets.json', '{"tenants": {"__proto__": {"maxTokens": 10}}}\n');
    const viaFile = write('proto-file.yaml', `llm:\n  budgets_FILE: ${budgets}\n`);
    assert.deepEqual(
      problemsOf(() =>
        loadConfig({ configPath: viaFile, env: { MAOS_LLM__APPROVAL__TENANTS_FILE: approvals } }),
      )
        .map((p) => p.split(': a key')[0])
        .sort(),
      [
        `llm.approval.tenants_FILE: ${approvals} has the key llm.approval.tenants.__proto__`,
        `llm.budgets_FILE: ${budgets} has the key llm.budgets.tenants.__proto__`,
      ],
    );
  });

  test('tenants named constructor, toString or hasOwnProperty keep their own entries, and only them', () => {
    const path = write(
      'members.yaml',
      [
        'llm:',
        '  approval:',
        '    default: none',
        '    tenants: { constructor: required, toString: required }',
        '  budgets:',
        '    default: { maxCostUsd: 5 }',
        '    tenants: { constructor: { maxCostUsd: 1 }, valueOf: { maxTokens: 1000 } }',
        '',
      ].join('\n'),
    );
    const config = loadConfig({ configPath: path, env: {} });
    const defaultsOf = createSessionDefaults(config.llm);
    assert.deepEqual(defaultsOf('constructor'), { approval: 'required', budget: { maxCostUsd: 1 } });
    assert.deepEqual(defaultsOf('toString'), { approval: 'required', budget: { maxCostUsd: 5 } });
    assert.deepEqual(defaultsOf('valueOf'), { approval: 'none', budget: { maxTokens: 1000 } });
    assert.deepEqual(defaultsOf('hasOwnProperty'), { approval: 'none', budget: { maxCostUsd: 5 } });
    assert.deepEqual(defaultsOf('__proto__'), { approval: 'none', budget: { maxCostUsd: 5 } });
  });

  test('a model named constructor or toString without a price is reported as unpriced', () => {
    const config = loadConfig({
      env: {},
      overrides: {
        providers: {
          local: { type: 'openai-compatible', model: 'constructor', baseURL: 'http://127.0.0.1:11434/v1' },
          other: { type: 'openai-compatible', model: 'toString', baseURL: 'http://127.0.0.1:11434/v1' },
        },
      },
    });
    assert.deepEqual(
      findUnpricedModels(config.providers, config.llm).map((u) => u.model),
      ['constructor', 'toString'],
    );
  });
});
