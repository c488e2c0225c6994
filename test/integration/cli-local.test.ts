// The `maos` CLI as a child process for what needs no server: usage errors, an unreachable server,
// `config check|print` and `migrate`, with their exit codes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';

describe('maos CLI without a server', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cli-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('an unreachable server exits 3 with a clear message and no stack trace', async () => {
    const port = await freePort();
    const result = await runMaos(['sessions', 'list'], { env: { MAOS_SERVER: `http://127.0.0.1:${port}` } });
    assert.equal(result.code, 3);
    assert.match(result.stderr, new RegExp(`cannot reach MAOS at http://127.0.0.1:${port}.*maos serve`));
    assert.doesNotMatch(result.stderr, /\n\s+at /);
    assert.equal(result.stdout, '');
    // --server wins over MAOS_SERVER.
    const flag = await runMaos(['--server', `http://127.0.0.1:${port}`, 'roles'], {
      env: { MAOS_SERVER: 'http://127.0.0.1:1' },
    });
    assert.match(flag.stderr, new RegExp(`127.0.0.1:${port}`));
  });

  test('bad usage exits 2 with the usage hint', async () => {
    for (const args of [
      ['no-such-command'],
      ['sessions', 'list', '--no-such-flag'],
      ['run'],
      ['run', 'objective', '--agent', 'not a spec'],
      ['run', 'objective', '--agent', 'qa:x', '--depends', 'ghost=qa-1'],
      ['run', 'objective', '--agent', 'qa:x', '--strategy', 'random'],
      ['sessions', 'list', '--status', 'sleeping'],
      ['--server', 'not a url', 'roles'],
    ]) {
      const result = await runMaos(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.notEqual(result.stderr, '', args.join(' '));
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
  });

  test('--version and --help exit 0', async () => {
    const version = await runMaos(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const help = await runMaos(['run', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /\[name=\]role:task\[:runner\]/);
  });

  test('config check lists every problem of an invalid file and exits 2', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'port: 99999\nworkers:\n  concurrency: lots\nprot: 1\n');
    const result = await runMaos(['config', 'check', '--config', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /3 problem/);
    assert.match(result.stderr, /^ {2}- port: /m);
    assert.match(result.stderr, /^ {2}- workers\.concurrency: /m);
    assert.match(result.stderr, /^ {2}- .*prot/m);

    const json = await runMaos(['config', 'check', '--config', file, '--json']);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { problems: string[] }).problems.length, 3);

    const good = join(dir, 'good.yaml');
    writeFileSync(good, `dataDir: ${JSON.stringify(join(dir, 'data'))}\nport: 8080\n`);
    const ok = await runMaos(['config', 'check', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 'ok');
    // What serve refuses at start is refused here too: auth mode none off loopback.
    const open = join(dir, 'open.yaml');
    writeFileSync(
      open,
      `dataDir: ${JSON.stringify(join(dir, 'data'))}\nhost: 0.0.0.0\nauth: { mode: none }\n`,
    );
    const refused = await runMaos(['config', 'check', '--config', open]);
    assert.equal(refused.code, 2, refused.stdout);
    assert.match(refused.stderr, /auth\.mode "none" is only allowed when host is a loopback address/);
    // MAOS_CONFIG works as well as --config, and env values are validated too.
    const viaEnv = await runMaos(['config', 'check'], { env: { MAOS_CONFIG: good, MAOS_PORT: 'abc' } });
    assert.equal(viaEnv.code, 2);
    assert.match(viaEnv.stderr, /port/);
  });

  test('config check warns, still exit 0, about models whose calls would cost $0', async () => {
    const file = join(dir, 'unpriced.yaml');
    const config = (prices: string) =>
      [
        `dataDir: ${JSON.stringify(join(dir, 'data'))}`,
        'providers:',
        '  cloud: { type: openai, apiKey: k, model: big-model }',
        '  local: { type: openai-compatible, baseURL: "http://llm.invalid/v1", model: small-model }',
        'llm:',
        '  roles:',
        '    reviewer: { provider: cloud, model: review-model }',
        prices,
        '',
      ].join('\n');
    writeFileSync(file, config('  prices: { big-model: { inputPerMTok: 3, outputPerMTok: 15 } }'));
    const warned = await runMaos(['config', 'check', '--config', file]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.equal(warned.stdout.trim(), 'ok');
    const lines = warned.stderr.trim().split('\n');
    assert.equal(lines.length, 2, warned.stderr);
    assert.match(
      lines[0] ?? '',
      /warning: llm\.prices has no entry for model 'small-model' \(provider local\)/,
    );
    assert.match(lines[1] ?? '', /'review-model' \(provider cloud\).*maxCostUsd budgets do not limit them/);
    const json = await runMaos(['config', 'check', '--config', file, '--json']);
    assert.equal((JSON.parse(json.stdout) as { warnings: string[] }).warnings.length, 2);
    // The user guide names the warnings of the JSON answer.
    const guide = readFileSync(new URL('../../docs/user-guide.md', import.meta.url), 'utf8');
    assert.ok(
      guide.includes('`--json` prints `{"ok": true, "warnings": [...]}`'),
      'the guide shows the warnings',
    );

    // A price of 0 (a free local model) is a price.
    const zero = '{ inputPerMTok: 0, outputPerMTok: 0 }';
    writeFileSync(
      file,
      config(`  prices: { big-model: ${zero}, small-model: ${zero}, review-model: ${zero} }`),
    );
    const quiet = await runMaos(['config', 'check', '--config', file]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
  });

  test('config print shows the resolved config with secrets redacted', async () => {
    const file = join(dir, 'secret.yaml');
    writeFileSync(
      file,
      [
        'port: 7171',
        'runners:',
        '  deploy:',
        '    command: ["sh", "-c", "echo deploy"]',
        '    env:',
        '      DEPLOY_TOKEN: very-secret-value',
        '',
      ].join('\n'),
    );
    const yaml = await runMaos(['config', 'print', '--config', file]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^port: 7171$/m);
    assert.match(yaml.stdout, /DEPLOY_TOKEN: "?\[REDACTED\]"?/);
    assert.ok(!yaml.stdout.includes('very-secret-value'));
    const json = await runMaos(['config', 'print', '--config', file, '--json']);
    const parsed = JSON.parse(json.stdout) as { runners: { deploy: { env: Record<string, string> } } };
    assert.equal(parsed.runners.deploy.env.DEPLOY_TOKEN, '[REDACTED]');
    assert.ok(!json.stdout.includes('very-secret-value'));
  });

  test('config print shows tenant ids and IdP groups named like secrets (token-team, secret-admins) with their values', async () => {
    const file = join(dir, 'named-like-secrets.yaml');
    writeFileSync(
      file,
      [
        'runners:',
        '  python:',
        '    command: ["python3", "-V"]',
        '    env:',
        '      PIP_TOKEN: pip-secret-value',
        'runnerAccess:',
        '  tenants:',
        '    token-team: [python]',
        '    env: [python]',
        'auth:',
        '  oidc:',
        '    roleMapping:',
        '      secret-admins: [admin]',
        'llm:',
        '  approval:',
        '    tenants:',
        '      token-team: required',
        '',
      ].join('\n'),
    );
    const json = await runMaos(['config', 'print', '--config', file, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const printed = JSON.parse(json.stdout) as {
      runners: { python: { env: Record<string, string> } };
      runnerAccess: { tenants: Record<string, string[]> };
      auth: { oidc: { roleMapping: Record<string, string[]> } };
      llm: { approval: { tenants: Record<string, string> } };
    };
    assert.deepEqual(printed.runnerAccess.tenants, { 'token-team': ['python'], env: ['python'] });
    assert.deepEqual(printed.auth.oidc.roleMapping, { 'secret-admins': ['admin'] });
    assert.deepEqual(printed.llm.approval.tenants, { 'token-team': 'required' });
    // A secret is still one.
    assert.equal(printed.runners.python.env.PIP_TOKEN, '[REDACTED]');
    assert.ok(!json.stdout.includes('pip-secret-value'));
  });

  test('migrate applies the migrations once; --status reports them', async () => {
    const file = join(dir, 'migrate.yaml');
    writeFileSync(file, `dataDir: ${JSON.stringify(join(dir, 'migrate-data'))}\n`);
    const before = await runMaos(['migrate', '--status', '--json', '--config', file]);
    assert.equal(before.code, 0, before.stderr);
    const pending = (JSON.parse(before.stdout) as { pending: string[] }).pending;
    assert.ok(pending.length > 0);

    const applied = await runMaos(['migrate', '--json', '--config', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual((JSON.parse(applied.stdout) as { applied: string[] }).applied, pending);

    const again = await runMaos(['migrate', '--config', file]);
    assert.match(again.stdout, /up to date/);
    const status = JSON.parse(
      (await runMaos(['migrate', '--status', '--json', '--config', file])).stdout,
    ) as {
      current: boolean;
    };
    assert.equal(status.current, true);
  });
});
