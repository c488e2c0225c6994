// `*_FILE` loading of the security secrets (audit signing key, KEK ring) through the config loader.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config/load.ts';
import { redactConfig } from '../config/secrets-in-config.ts';
import { AppError } from '../errors/app-error.ts';
import { generateSigningKeyPem, loadCheckpointSigner } from './audit/checkpoint.ts';
import { generateKekEntry, parseKekRing } from './secrets.ts';

describe('security secrets from *_FILE', () => {
  let dir: string;
  const pem = generateSigningKeyPem();
  const ring = `${generateKekEntry('k2')}\n${generateKekEntry('k1')}`;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-secret-files-'));
    writeFileSync(join(dir, 'audit.pem'), pem);
    writeFileSync(join(dir, 'ring-crlf'), `${ring}\r\n`);
    writeFileSync(join(dir, 'empty'), '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const invalid = (pattern: RegExp) => (e: unknown) =>
    e instanceof AppError && e.code === 'CONFIG_INVALID' && pattern.test(e.message);

  test('values are read from the files, a trailing (CR)LF trimmed, and usable', () => {
    const config = loadConfig({
      env: {
        MAOS_AUDIT__SIGNING_KEY_FILE: join(dir, 'audit.pem'),
        MAOS_SECRETS__KEK_RING_FILE: join(dir, 'ring-crlf'),
      },
    });
    assert.equal(config.audit.signingKey, pem.replace(/\n$/, ''));
    assert.ok(!config.secrets.kekRing?.endsWith('\n'));
    assert.equal(
      loadCheckpointSigner(config.audit.origin, config.audit.signingKey as string).name,
      'maos.local/audit',
    );
    assert.equal(parseKekRing(config.secrets.kekRing as string).activeId, 'k2');
  });

  test('setting a value both directly and through _FILE is a startup error', () => {
    assert.throws(
      () =>
        loadConfig({
          env: { MAOS_AUDIT__SIGNING_KEY: pem, MAOS_AUDIT__SIGNING_KEY_FILE: join(dir, 'audit.pem') },
        }),
      invalid(/audit\.signingKey: set both/),
    );
  });

  test('a missing or empty file is a startup error naming the setting, never the content', () => {
    assert.throws(
      () => loadConfig({ env: { MAOS_SECRETS__KEK_RING_FILE: join(dir, 'nope') } }),
      invalid(/secrets\.kekRing_FILE: cannot read/),
    );
    assert.throws(
      () => loadConfig({ env: { MAOS_SECRETS__KEK_RING_FILE: join(dir, 'empty') } }),
      invalid(/secrets\.kekRing/),
    );
  });

  test('redaction hides both secrets in printed config', () => {
    const config = loadConfig({
      env: {
        MAOS_AUDIT__SIGNING_KEY_FILE: join(dir, 'audit.pem'),
        MAOS_SECRETS__KEK_RING_FILE: join(dir, 'ring-crlf'),
      },
    });
    const printed = JSON.stringify(redactConfig(config, []));
    assert.ok(!printed.includes('PRIVATE KEY'));
    assert.ok(!printed.includes(ring.split(':')[1]?.slice(0, 20) as string));
  });

  test('auth mode none is refused off loopback by the security layer', async () => {
    const { assertAuthConfigAllowed } = await import('./authenticate.ts');
    const auth = loadConfig({ env: { MAOS_AUTH__MODE: 'none' } }).auth;
    assert.doesNotThrow(() => assertAuthConfigAllowed(auth, '127.0.0.1'));
    assert.doesNotThrow(() => assertAuthConfigAllowed(auth, '::1'));
    assert.doesNotThrow(() => assertAuthConfigAllowed(auth, 'localhost'));
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'example.com']) {
      assert.throws(
        () => assertAuthConfigAllowed(auth, host),
        invalid(/only allowed when host is a loopback/),
      );
    }
    const oidcWithoutIssuer = loadConfig({ env: { MAOS_AUTH__MODE: 'oidc' } }).auth;
    assert.throws(() => assertAuthConfigAllowed(oidcWithoutIssuer, '127.0.0.1'), invalid(/issuer/));
  });
});
