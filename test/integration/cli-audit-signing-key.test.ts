// A local command (`maos keys create`) run without the server's audit signing key — the server reads
// it from an environment this shell lacks — signs no checkpoint with a key of its own: no second key
// appears in the data directory and no checkpoint a verifier with the server's key would reject.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
} from '../../src/security/audit/checkpoint.ts';
import { runMaos } from '../fixtures/cli.ts';

test('keys create without the signing key that signed the log adds no checkpoint of another key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-signing-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const pem = generateSigningKeyPem();
  writeFileSync(join(dir, 'audit.pem'), pem, { mode: 0o600 });
  const withKey = join(dir, 'with-key.json');
  writeFileSync(
    withKey,
    JSON.stringify({ dataDir, logLevel: 'silent', audit: { signingKey_FILE: join(dir, 'audit.pem') } }),
  );
  const withoutKey = join(dir, 'without-key.json');
  writeFileSync(withoutKey, JSON.stringify({ dataDir, logLevel: 'silent' }));

  // As the server would: records and a checkpoint signed with the configured key.
  const first = await runMaos(['keys', 'create', '--config', withKey, '--role', 'admin']);
  assert.equal(first.code, 0, first.stderr);
  // Then a shell without that key: the key is made and its record written, but nothing signed.
  const second = await runMaos(['keys', 'create', '--config', withoutKey, '--role', 'viewer']);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(existsSync(join(dataDir, 'keys', 'audit-signing-key.pem')), false, 'no key of its own');

  const key = formatVerifierKey(loadCheckpointSigner('maos.local/audit', pem));
  const verified = await runMaos(['audit', 'verify', '--config', withKey, '--key', key, '--json']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const report = JSON.parse(verified.stdout) as { ok: boolean; size: number; rejectedCheckpoints: number };
  assert.equal(report.size, 2);
  assert.equal(report.rejectedCheckpoints, 0, "every checkpoint is the server key's");

  // With the key again, the next command's checkpoint covers both records.
  const third = await runMaos(['keys', 'create', '--config', withKey, '--role', 'viewer']);
  assert.equal(third.code, 0, third.stderr);
  const again = await runMaos(['audit', 'verify', '--config', withKey, '--key', key, '--json']);
  assert.deepEqual(
    (({ ok, checkpointSize, rejectedCheckpoints }) => ({ ok, checkpointSize, rejectedCheckpoints }))(
      JSON.parse(again.stdout) as { ok: boolean; checkpointSize: number; rejectedCheckpoints: number },
    ),
    { ok: true, checkpointSize: 3, rejectedCheckpoints: 0 },
  );
});
