import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { describe, test } from 'node:test';
import { connectHostFor, urlHost } from './loopback-address.mjs';

/** Listens on `host`, port 0; connects to connectHostFor(host); true when the connection opened. */
async function reachable(host: string): Promise<boolean> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as { port: number };
  try {
    return await new Promise<boolean>((resolve) => {
      const socket = connect(port, connectHostFor(host));
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Whether this machine can bind an IPv6 socket. */
async function hasIpv6(): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::', () => resolve(true));
  });
  if (bound) await new Promise((resolve) => server.close(resolve));
  return bound;
}

describe('connectHostFor', () => {
  test('a wildcard bind of either family is reached on 127.0.0.1', () => {
    for (const wildcard of [
      '0.0.0.0',
      '::',
      '::0',
      '0::0',
      '0:0:0:0:0:0:0:0',
      // The same address with its last 32 bits written as IPv4 (a server bound so listens on ::).
      '::0.0.0.0',
      '0:0:0:0:0:0:0.0.0.0',
      '',
    ]) {
      assert.equal(connectHostFor(wildcard), '127.0.0.1', JSON.stringify(wildcard));
    }
  });

  test('any other address is reached as it is', () => {
    for (const host of [
      '127.0.0.1',
      '127.0.0.2',
      '::1',
      '10.1.2.3',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::127.0.0.1',
      'maos.internal',
    ]) {
      assert.equal(connectHostFor(host), host);
    }
  });

  test('reaches a listener bound to 0.0.0.0, and to :: (dual-stack)', async () => {
    assert.equal(await reachable('0.0.0.0'), true);
    if (await hasIpv6()) assert.equal(await reachable('::'), true);
  });
});

describe('urlHost', () => {
  test('puts an IPv6 address in brackets', () => {
    assert.equal(urlHost('::1'), '[::1]');
    assert.equal(urlHost('127.0.0.1'), '127.0.0.1');
    assert.equal(urlHost('maos.internal'), 'maos.internal');
    assert.equal(`http://${urlHost(connectHostFor('::'))}:7070`, 'http://127.0.0.1:7070');
  });
});
