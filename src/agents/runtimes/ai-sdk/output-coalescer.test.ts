// Unit tests for output coalescing (size-triggered flushes are deterministic; the timer is checked
// only for "eventually flushed", never for a duration).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOutputCoalescer } from './output-coalescer.ts';

describe('output coalescer', () => {
  test('flushes when the byte threshold is reached', () => {
    const out: string[] = [];
    const coalescer = createOutputCoalescer((text) => out.push(text), { intervalMs: 60_000, maxBytes: 10 });
    for (const piece of ['abc', 'def', 'ghij', 'k']) coalescer.push(piece);
    assert.deepEqual(out, ['abcdefghij']);
    coalescer.close();
    assert.deepEqual(out, ['abcdefghij', 'k']);
  });

  test('flushes buffered text on the timer', async () => {
    const out: string[] = [];
    const coalescer = createOutputCoalescer((text) => out.push(text), { intervalMs: 5, maxBytes: 1000 });
    coalescer.push('a');
    coalescer.push('b');
    assert.deepEqual(out, []);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(out, ['ab']);
    coalescer.close();
  });

  test('counts bytes, not characters', () => {
    const out: string[] = [];
    const coalescer = createOutputCoalescer((text) => out.push(text), { intervalMs: 60_000, maxBytes: 6 });
    coalescer.push('ééé');
    assert.deepEqual(out, ['ééé']);
    coalescer.close();
  });

  test('after close, pushes are emitted at once and empty pushes never are', () => {
    const out: string[] = [];
    const coalescer = createOutputCoalescer((text) => out.push(text));
    coalescer.close();
    coalescer.push('');
    coalescer.push('late');
    assert.deepEqual(out, ['late']);
  });
});
