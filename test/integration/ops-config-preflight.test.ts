// A configuration `maos serve` refuses beyond its schema (auth mode against the bind address, TLS
// files, audit signing key, KEK ring) is refused before the data directory is touched: no directory
// created, no database migrated, no signing key generated. `maos config check` finds the same
// problems, all of them in one run.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const REFUSED: { name: string; config: Record<string, unknown>; problem: RegExp }[] = [
  {
    name: 'auth mode none off loopback',
    config: { auth: { mode: 'none' }, host: '0.0.0.0' },
    problem: /auth\.mode "none" is only allowed when host is a loopback address/,
  },
  {
    name: 'an unreadable TLS certificate',
    config: { tls: { certFile: '/nonexistent/maos.pem', keyFile: '/nonexistent/maos.key' } },
    problem: /tls\.certFile: cannot read \/nonexistent\/maos\.pem/,
  },
  {
    name: 'an audit signing key that is not a PEM key',
    config: { audit: { signingKey: 'not a key' } },
    problem: /audit\.signingKey is not a readable PEM private key/,
  },
  {
    name: 'a malformed KEK ring',
    config: { secrets: { kekRing: 'garbage' } },
    problem: /secrets\.kekRing entry 1/,
  },
];

describe('configuration refused before the data directory is touched', { timeout: 300_000 }, () => {
  for (const { name, config, problem } of REFUSED) {
    test(`maos serve with ${name}: exit 2, no data directory`, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'maos-preflight-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, 'maos.json');
      writeFileSync(file, JSON.stringify(config));
      const dataDir = join(dir, 'data');
      const result = await runMaos(['serve', '--config', file, '--port', '0', '--data-dir', dataDir]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /CONFIG_INVALID/);
      assert.match(result.stderr, problem);
      assert.equal(existsSync(dataDir), false, 'the refused server created or migrated the data directory');
    });
  }

  test('an OIDC issuer whose origin the console CSP cannot list, with the console sign-in on: serve exits 2 untouched, config check says so', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-preflight-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const oidc = {
      // A host the URL parser keeps and a CSP host-source cannot hold (no `_` there).
      issuer: 'https://idp_1.example.com/realms/maos',
      audience: 'https://maos.example.com',
    };
    const problem =
      /auth\.oidc\.issuer "https:\/\/idp_1\.example\.com\/realms\/maos" has no origin the console CSP can list/;
    const file = join(dir, 'maos.json');
    writeFileSync(
      file,
      JSON.stringify({ auth: { mode: 'oidc', oidc: { ...oidc, console: { clientId: 'c' } } } }),
    );
    const dataDir = join(dir, 'data');
    const served = await runMaos(['serve', '--config', file, '--port', '0', '--data-dir', dataDir]);
    assert.equal(served.code, 2, served.stderr);
    assert.match(served.stderr, problem);
    assert.equal(existsSync(dataDir), false, 'the refused server created or migrated the data directory');
    const checked = await runMaos(['config', 'check', '--config', file]);
    assert.equal(checked.code, 2, checked.stderr);
    assert.match(checked.stderr, problem);
    // Without the console's sign-in no CSP lists the issuer: nothing to refuse.
    writeFileSync(file, JSON.stringify({ auth: { mode: 'oidc', oidc } }));
    const without = await runMaos(['config', 'check', '--config', file]);
    assert.equal(without.code, 0, without.stderr);
  });

  test('maos config check lists every one of those problems in one run', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-preflight-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'maos.json');
    writeFileSync(file, JSON.stringify(Object.assign({}, ...REFUSED.map((each) => each.config))));
    const result = await runMaos(['config', 'check', '--json', '--config', file]);
    assert.equal(result.code, 2, result.stderr);
    const report = JSON.parse(result.stdout) as { ok: boolean; problems: string[] };
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, REFUSED.length, report.problems.join('\n'));
    for (const [index, { problem }] of REFUSED.entries()) {
      assert.match(report.problems[index] ?? '', problem);
    }
  });
});
