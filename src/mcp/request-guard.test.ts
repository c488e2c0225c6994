import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { assertOriginAllowed, isLoopbackHostname, type OriginPolicy } from './request-guard.ts';

const loopback: OriginPolicy = { allowedOrigins: [], allowedHosts: [], bindHost: '127.0.0.1' };

function denied(fn: () => void): boolean {
  try {
    fn();
    return false;
  } catch (error) {
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'PERMISSION_DENIED');
    return true;
  }
}

describe('assertOriginAllowed', () => {
  test('accepts non-browser requests (no Origin) on a loopback Host', () => {
    assertOriginAllowed({ host: '127.0.0.1:7070' }, loopback);
    assertOriginAllowed({ host: 'localhost:7070' }, loopback);
    assertOriginAllowed({ host: '[::1]:7070' }, loopback);
  });

  test('accepts loopback origins and listed origins', () => {
    assertOriginAllowed({ origin: 'http://localhost:3000', host: 'localhost:7070' }, loopback);
    const policy = { ...loopback, allowedOrigins: ['https://console.example.com'] };
    assertOriginAllowed({ origin: 'https://console.example.com', host: '127.0.0.1:7070' }, policy);
  });

  test('rejects a foreign Origin', () => {
    assert.ok(
      denied(() => assertOriginAllowed({ origin: 'https://evil.example', host: '127.0.0.1:7070' }, loopback)),
    );
    assert.ok(denied(() => assertOriginAllowed({ origin: 'null', host: '127.0.0.1:7070' }, loopback)));
  });

  test('rejects a rebound DNS name on a loopback server', () => {
    assert.ok(denied(() => assertOriginAllowed({ host: 'attacker.example:7070' }, loopback)));
    assert.ok(denied(() => assertOriginAllowed({}, loopback)));
  });

  test('checks the Host only against the list when the server binds to all interfaces', () => {
    const open = { ...loopback, bindHost: '0.0.0.0' };
    assertOriginAllowed({ host: 'maos.internal:7070' }, open);
    const listed = { ...open, allowedHosts: ['maos.example.com'] };
    assertOriginAllowed({ host: 'maos.example.com' }, listed);
    assert.ok(denied(() => assertOriginAllowed({ host: 'other.example.com' }, listed)));
  });

  test('a listed Host may name its port, as the Host header and the refusal show it', () => {
    const open = { ...loopback, bindHost: '0.0.0.0' };
    // The refusal names the Host with its port; listing exactly that must let it in.
    const listed = { ...open, allowedHosts: ['maos.example.com:8443', '[fd00::1]:7070'] };
    assertOriginAllowed({ host: 'maos.example.com:8443' }, listed);
    assertOriginAllowed({ host: 'MAOS.example.com:8443' }, listed);
    assertOriginAllowed({ host: '[fd00::1]:7070' }, listed);
    assert.ok(denied(() => assertOriginAllowed({ host: 'maos.example.com:9443' }, listed)));
    assert.ok(denied(() => assertOriginAllowed({ host: 'maos.example.com' }, listed)));
    assert.ok(denied(() => assertOriginAllowed({ host: '[fd00::1]:8080' }, listed)));
    // A name without a port takes any port.
    const anyPort = { ...open, allowedHosts: ['maos.example.com'] };
    assertOriginAllowed({ host: 'maos.example.com:8443' }, anyPort);
    // Port 80 too is that port only: read as a URL, http's default port was dropped from the entry,
    // which then took any port.
    const eighty = { ...open, allowedHosts: ['maos.example.com:80'] };
    assertOriginAllowed({ host: 'maos.example.com:80' }, eighty);
    assert.ok(denied(() => assertOriginAllowed({ host: 'maos.example.com:8443' }, eighty)));
    assert.ok(denied(() => assertOriginAllowed({ host: 'maos.example.com' }, eighty)));
  });
});

test('isLoopbackHostname', () => {
  for (const name of ['localhost', '127.0.0.1', '127.8.9.10', '[::1]', 'app.localhost']) {
    assert.equal(isLoopbackHostname(name), true, name);
  }
  for (const name of ['example.com', '10.0.0.1', '0.0.0.0', 'localhost.example.com']) {
    assert.equal(isLoopbackHostname(name), false, name);
  }
});
