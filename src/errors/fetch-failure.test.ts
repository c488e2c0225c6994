// The ports fetch refuses for every request: the list kept here is the HTTP client's own (undici's,
// and the global fetch refuses each of them), so a URL refused at start is one fetch would refuse;
// and a failure on one reads as why, not as "fetch failed".
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { freePort } from '../../test/fixtures/free-port.ts';
import {
  describeFetchFailure,
  FETCH_BLOCKED_PORTS,
  fetchBlockedPort,
  isBlockedPortFailure,
} from './fetch-failure.ts';

describe('ports fetch refuses', () => {
  test('the list is undici’s', () => {
    // Not a public export of undici: read from its source, so an update that changes it fails here.
    const { badPorts } = createRequire(import.meta.url)('undici/lib/web/fetch/constants.js') as {
      badPorts: readonly string[];
    };
    assert.deepEqual(
      [...FETCH_BLOCKED_PORTS].sort((a, b) => a - b),
      badPorts.map(Number).sort((a, b) => a - b),
    );
  });

  test('the global fetch refuses each of them before connecting, and not a port beside them', async () => {
    for (const port of FETCH_BLOCKED_PORTS) {
      const error = await fetch(`http://127.0.0.1:${port}/v1`).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isBlockedPortFailure(error), `port ${port}`);
    }
    // 6001 is tried: answered or refused by whatever is (not) there, but not blocked.
    const beside = await fetch('http://127.0.0.1:6001/v1').then(
      (response) => response.body?.cancel(),
      (e: unknown) => e,
    );
    assert.equal(isBlockedPortFailure(beside), false);
  });

  test('fetchBlockedPort reads the port of http(s) URLs only', () => {
    assert.equal(fetchBlockedPort('http://llm.internal:6000/v1'), 6000);
    assert.equal(fetchBlockedPort('https://llm.example.com:10080/v1?api-version=1'), 10080);
    assert.equal(fetchBlockedPort('http://localhost:6665'), 6665);
    assert.equal(fetchBlockedPort('http://localhost:11434/v1'), undefined);
    assert.equal(fetchBlockedPort('http://localhost/v1'), undefined);
    assert.equal(fetchBlockedPort('ws://localhost:6000/v1'), undefined);
    assert.equal(fetchBlockedPort('not a url'), undefined);
  });

  test('describeFetchFailure says why fetch refused a port, naming it when given the URL', async () => {
    const url = 'http://127.0.0.1:6000/metrics';
    const refused = await fetch(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.match(
      describeFetchFailure(refused, url),
      /^port 6000 is one the HTTP client \(Node's fetch\) refuses for every request/,
    );
    assert.match(
      describeFetchFailure(refused),
      /^a port the HTTP client \(Node's fetch\) refuses for every request/,
    );
    // Any other failure keeps its code: a port just let go refuses the connection.
    const closed = `http://127.0.0.1:${await freePort()}/metrics`;
    const down = await fetch(closed).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(describeFetchFailure(down, closed), 'ECONNREFUSED');
  });
});
