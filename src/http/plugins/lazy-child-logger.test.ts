import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { captureLog } from '../../../test/fixtures/log-capture.ts';
import { createLazyChildLogger, LazyChildLogger } from './lazy-child-logger.ts';

function captureLogger(level = 'info'): { logger: FastifyBaseLogger; lines: Record<string, unknown>[] } {
  const { destination, lines } = captureLog();
  return { logger: pino({ level }, destination) as unknown as FastifyBaseLogger, lines };
}

describe('lazy child logger', () => {
  test('builds no child until something is logged', () => {
    const { logger } = captureLogger();
    let children = 0;
    const parent = Object.create(logger) as FastifyBaseLogger;
    parent.child = (...args: Parameters<FastifyBaseLogger['child']>) => {
      children++;
      return logger.child(...args);
    };
    const lazy = createLazyChildLogger(parent, { requestId: 'r1' }, {});
    assert.equal(children, 0);
    assert.equal(lazy.level, 'info');
    lazy.debug('below the level: dropped without building the child');
    lazy.trace('also dropped');
    assert.equal(children, 0);
    lazy.info('first');
    lazy.warn('second');
    assert.equal(children, 1);
  });

  test('log lines carry the bindings, messages and objects', async () => {
    const { logger, lines } = captureLogger('debug');
    const lazy = createLazyChildLogger(logger, { requestId: 'abc' }, {});
    lazy.error({ code: 'X' }, 'failed %s', 'hard');
    lazy.debug('detail');
    lazy.trace('not written at debug level');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.length, 2);
    assert.equal(lines[0]?.requestId, 'abc');
    assert.equal(lines[0]?.code, 'X');
    assert.equal(lines[0]?.msg, 'failed hard');
    assert.equal(lines[1]?.msg, 'detail');
  });

  test('child options (a route log level) apply; level can be changed', async () => {
    const { logger, lines } = captureLogger('info');
    const lazy = new LazyChildLogger(logger, { requestId: 'q' }, { level: 'warn' });
    assert.equal(lazy.level, 'warn');
    lazy.info('dropped');
    lazy.warn('kept');
    lazy.level = 'info';
    lazy.info('now kept');
    const grandchild = lazy.child({ extra: 1 });
    grandchild.warn('from grandchild');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      lines.map((line) => [line.msg, line.requestId]),
      [
        ['kept', 'q'],
        ['now kept', 'q'],
        ['from grandchild', 'q'],
      ],
    );
  });
});
