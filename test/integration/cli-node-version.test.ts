// `maos` on a Node.js older than it needs: one line naming both versions and a non-zero exit, not
// ERR_UNKNOWN_FILE_EXTENSION from the first TypeScript import. The old version is simulated by
// redefining process.versions.node before bin/maos.js runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

function runAs(version: string) {
  const pretend = `data:text/javascript,Object.defineProperty(process.versions,"node",{value:"${version}"})`;
  return spawnSync(process.execPath, ['--import', pretend, BIN, '--version'], { encoding: 'utf8' });
}

test('an older Node.js is refused with the versions named (exit 7)', () => {
  const result = runAs('22.11.0');
  assert.equal(result.status, 7, result.stderr);
  assert.equal(
    result.stderr,
    `error NODE_TOO_OLD: maos needs Node.js 24.5 or newer; ${process.execPath} is Node.js 22.11.0\n`,
  );
  assert.equal(result.stdout, '');
});

test('Node.js 24 before 24.5 is refused too (its HTTP agents ignore proxyEnv)', () => {
  const result = runAs('24.4.1');
  assert.equal(result.status, 7, result.stderr);
  assert.match(
    result.stderr,
    /^error NODE_TOO_OLD: maos needs Node\.js 24\.5 or newer; .* is Node\.js 24\.4\.1\n$/,
  );
});

test('Node.js 24.5 and later run the command', () => {
  for (const version of ['24.5.0', '25.0.0']) {
    const result = runAs(version);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
  }
});
