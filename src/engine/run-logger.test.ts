// A run's logger: lines carry the run's ids as a child's would, secrets stay redacted, and the
// child is made only once a line is logged at a level the parent logs.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createRunLogger } from './run-logger.ts';

const IDS = { tenantId: 't1', sessionId: 's1', taskId: 'k1' };

/** The process logger writing to a stream, with a count of the children made from it. */
function capture(level: string) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += String(chunk);
  });
  const logger = createLogger({ level, destination: stream, format: 'json' });
  let children = 0;
  // pino's own method, from the prototype: a child's prototype is its parent, so the children of
  // children come through here as well (only the root's are counted).
  const child = logger.child;
  logger.child = function (this: Logger, ...args: Parameters<Logger['child']>) {
    if (this === logger) children++;
    return child.apply(this, args);
  } as Logger['child'];
  const lines = async (): Promise<Array<Record<string, unknown>>> => {
    await new Promise((resolve) => setImmediate(resolve));
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  };
  return { logger, lines, children: () => children };
}

describe('run logger', () => {
  test('a run that logs nothing, or only below the level, makes no child', async () => {
    const { logger, lines, children } = capture('info');
    const run = createRunLogger(logger, IDS);
    run.debug({ step: 1 }, 'not logged');
    run.trace('not logged either');
    assert.equal(children(), 0);
    assert.equal(run.isLevelEnabled('debug'), false);
    assert.equal(children(), 1, 'asking for anything but a disabled level makes the child');
    assert.deepEqual(await lines(), []);
  });

  test("a logged line has the run's ids, once made the child is kept, secrets stay redacted", async () => {
    const { logger, lines, children } = capture('info');
    const run = createRunLogger(logger, IDS);
    run.warn({ token: 'sk-secret-value' }, 'first');
    run.error('second');
    assert.equal(children(), 1);
    const [first, second] = await lines();
    for (const line of [first, second]) {
      assert.equal(line?.tenantId, 't1');
      assert.equal(line?.sessionId, 's1');
      assert.equal(line?.taskId, 'k1');
    }
    assert.equal(first?.message, 'first');
    assert.equal(first?.token, '[REDACTED]');
    assert.equal(second?.['log.level'], 'error');
    // Its own children carry the run's ids too.
    run.child({ tool: 'search' }).warn('from a tool');
    const third = (await lines())[2];
    assert.equal(third?.taskId, 'k1');
    assert.equal(third?.tool, 'search');
  });
});
