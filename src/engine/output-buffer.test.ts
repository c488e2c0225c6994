import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOutputBuffer, MAX_LINE_CHARS, MAX_LINES_PER_RUN } from './output-buffer.ts';

describe('output buffer', () => {
  test('splits chunks into lines per stream and keeps partial lines until final', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'hel');
    buffer.push('stderr', 'warn\r\nrest');
    buffer.push('stdout', 'lo\nwor');
    assert.deepEqual(buffer.take(false), [
      { stream: 'stderr', line: 'warn' },
      { stream: 'stdout', line: 'hello' },
    ]);
    assert.deepEqual(buffer.take(true), [
      { stream: 'stdout', line: 'wor' },
      { stream: 'stderr', line: 'rest' },
    ]);
    assert.equal(buffer.pending, 0);
  });

  test('cuts long lines and stops after the line cap with one notice', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', `${'x'.repeat(MAX_LINE_CHARS + 10)}\n`);
    const [line] = buffer.take(false);
    assert.ok(line!.line.endsWith('[line truncated]'));
    buffer.push('stdout', 'a\n'.repeat(MAX_LINES_PER_RUN + 5));
    const lines = buffer.take(false);
    assert.equal(lines.length, MAX_LINES_PER_RUN);
    assert.match(lines.at(-1)!.line, /output truncated/);
  });
});
