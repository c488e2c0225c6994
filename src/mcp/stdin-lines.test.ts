import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { boundStdinLines } from './stdin-lines.ts';

/** What `boundStdinLines` passes on of `pieces` (bound `maxBytes`), one entry per chunk, and how many lines it left out. */
async function linesOf(
  pieces: readonly string[],
  maxBytes: number,
): Promise<{ chunks: string[]; tooLong: number }> {
  const stdin = new PassThrough();
  let tooLong = 0;
  const lines = boundStdinLines(stdin, () => tooLong++, maxBytes);
  const chunks: string[] = [];
  lines.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const ended = new Promise((resolve) => lines.once('end', resolve));
  for (const piece of pieces) stdin.write(piece);
  stdin.end();
  await ended;
  return { chunks, tooLong };
}

test('passes each line on whole, however the input is cut', async () => {
  const { chunks, tooLong } = await linesOf(['ab', 'c\nde', 'f\ng\n\nh'], 5);
  assert.deepEqual(chunks, ['abc\n', 'def\n', 'g\n', '\n']);
  assert.equal(tooLong, 0);
});

test('a line of the bound passes; a longer one is left out, up to its line break, also across pieces', async () => {
  const { chunks, tooLong } = await linesOf(
    ['12345\n123456\n1', '2345', '6789\nok\n', '1234567', '\nlast\n'],
    5,
  );
  assert.deepEqual(chunks, ['12345\n', 'ok\n', 'last\n']);
  assert.equal(tooLong, 3);
});

test('a \\r before the line break counts in the line, as the transport reads it', async () => {
  const { chunks } = await linesOf(['1234\r\n12345\r\n'], 5);
  assert.deepEqual(chunks, ['1234\r\n']);
});
