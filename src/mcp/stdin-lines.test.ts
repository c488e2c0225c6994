import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { boundStdinLines } from './stdin-lines.ts';

/**
 * What `boundStdinLines` passes on of `pieces` (bound `maxBytes`), one entry per chunk, how many
 * lines it left out for their length, and those it left out as not UTF-8.
 */
async function linesOf(
  pieces: ReadonlyArray<string | Buffer>,
  maxBytes: number,
): Promise<{ chunks: string[]; tooLong: number; notUtf8: Buffer[] }> {
  const stdin = new PassThrough();
  let tooLong = 0;
  const notUtf8: Buffer[] = [];
  const { lines } = boundStdinLines(
    stdin,
    { tooLong: () => tooLong++, notUtf8: (line) => notUtf8.push(line) },
    maxBytes,
  );
  const chunks: string[] = [];
  lines.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const ended = new Promise((resolve) => lines.once('end', resolve));
  for (const piece of pieces) stdin.write(piece);
  stdin.end();
  await ended;
  return { chunks, tooLong, notUtf8 };
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

test('a line that is not UTF-8 is left out and told, whole; the lines around it pass', async () => {
  const latin1 = Buffer.from('caf\xe9\n', 'latin1');
  // A character cut between two pieces is still one character.
  const euro = Buffer.from('€\n');
  const { chunks, notUtf8 } = await linesOf(['ok\n', latin1, euro.subarray(0, 2), euro.subarray(2)], 10);
  assert.deepEqual(chunks, ['ok\n', '€\n']);
  assert.deepEqual(notUtf8, [latin1]);
});

test('stop stops reading stdin: it is paused, and what comes after is not passed on', async () => {
  const stdin = new PassThrough();
  const { lines, stop } = boundStdinLines(stdin, { tooLong: () => {}, notUtf8: () => {} }, 10);
  const chunks: string[] = [];
  lines.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  stdin.write('one\n');
  await new Promise((resolve) => setImmediate(resolve));
  stop();
  assert.equal(stdin.isPaused(), true);
  stdin.write('two\n');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(chunks, ['one\n']);
});
