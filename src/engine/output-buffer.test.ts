import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createOutputBuffer,
  MAX_LINE_CHARS,
  MAX_LINES_PER_RUN,
  type OutputLine,
  PARTIAL_LINE_CHARS,
} from './output-buffer.ts';

/** The text a reader rebuilds from the pieces of one stream. */
function rebuild(pieces: OutputLine[]): string {
  return pieces.map((piece) => piece.line + (piece.partial ? '' : '\n')).join('');
}

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
      { stream: 'stdout', line: 'wor', partial: true },
      { stream: 'stderr', line: 'rest', partial: true },
    ]);
    assert.equal(buffer.pending, 0);
  });

  test('tells the streams whose output handed over so far ends in an unfinished line', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'done\nhalf');
    buffer.push('stderr', 'warn\n');
    buffer.take(false);
    assert.deepEqual(buffer.openStreams(), [], 'a held rest not handed over yet leaves no line open');
    buffer.startInterval();
    buffer.take(false);
    assert.deepEqual(buffer.openStreams(), ['stdout']);
    buffer.push('stdout', ' ends\n');
    buffer.push('text', 'a paragraph');
    buffer.take(true);
    assert.deepEqual(buffer.openStreams(), ['text']);
  });

  test('counts unfinished text as pending, so a flush is scheduled for it', () => {
    const buffer = createOutputBuffer();
    buffer.push('text', 'no line break yet');
    assert.equal(buffer.pending, 1);
    buffer.push('text', ' still none');
    assert.equal(buffer.pending, 1);
  });

  test('writes an unfinished line once it has waited a whole flush interval', () => {
    const buffer = createOutputBuffer();
    buffer.push('text', 'The answer is');
    assert.deepEqual(buffer.take(false), [], 'not before an interval has passed');
    buffer.startInterval();
    buffer.push('text', ' forty');
    assert.deepEqual(buffer.take(false), [{ stream: 'text', line: 'The answer is forty', partial: true }]);
    assert.equal(buffer.pending, 0);
    buffer.push('text', '-two.');
    assert.deepEqual(buffer.take(true), [{ stream: 'text', line: '-two.', partial: true }]);
  });

  test('keeps a line whole when it ends within the interval', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'compil');
    buffer.startInterval();
    buffer.push('stdout', 'ing…\n');
    assert.deepEqual(buffer.take(false), [{ stream: 'stdout', line: 'compiling…' }]);
  });

  test('a line begun during the interval waits for the next one', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'one\n');
    buffer.startInterval();
    buffer.push('stdout', 'tw');
    assert.deepEqual(buffer.take(false), [{ stream: 'stdout', line: 'one' }]);
    assert.equal(buffer.pending, 1);
    buffer.startInterval();
    assert.deepEqual(buffer.take(false), [{ stream: 'stdout', line: 'tw', partial: true }]);
  });

  test('the rest after a line break starts young even if the line before it was due', () => {
    const buffer = createOutputBuffer();
    buffer.push('text', 'first');
    buffer.startInterval();
    buffer.push('text', ' line\nsecond');
    assert.deepEqual(buffer.take(false), [{ stream: 'text', line: 'first line' }]);
    assert.equal(buffer.pending, 1);
  });

  test('hands over an unfinished line of about 1 KiB without waiting', () => {
    const buffer = createOutputBuffer();
    buffer.push('text', 'a'.repeat(PARTIAL_LINE_CHARS - 1));
    assert.deepEqual(buffer.take(false), []);
    buffer.push('text', 'bc');
    assert.deepEqual(buffer.take(false), [
      { stream: 'text', line: `${'a'.repeat(PARTIAL_LINE_CHARS - 1)}bc`, partial: true },
    ]);
    assert.equal(buffer.pending, 0);
  });

  test('5000 characters without a line break are handed over while they arrive', () => {
    const buffer = createOutputBuffer();
    const taken: OutputLine[] = [];
    const text = 'word '.repeat(1000);
    for (let at = 0; at < text.length; at += 250) {
      buffer.push('text', text.slice(at, at + 250));
      taken.push(...buffer.take(false));
    }
    assert.ok(taken.length >= 4, `${taken.length} pieces before the end`);
    assert.ok(taken.every((piece) => piece.partial && piece.line.length <= PARTIAL_LINE_CHARS + 250));
    taken.push(...buffer.take(true));
    assert.equal(taken.map((piece) => piece.line).join(''), text);
  });

  test('the pieces rebuild the exact text however it was chunked and flushed', () => {
    // A fixed pseudo-random sequence: every run checks the same cases.
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const words = ['alpha', 'beta', '\n', 'γάμμα', '😀', ' ', '\n\n', 'x'.repeat(700), 'delta epsilon'];
    for (let round = 0; round < 50; round++) {
      let text = '';
      while (text.length < 6000) text += words[random(words.length)];
      const buffer = createOutputBuffer();
      const taken: OutputLine[] = [];
      for (let at = 0; at < text.length; ) {
        const size = 1 + random(400);
        buffer.push('text', text.slice(at, at + size));
        at += size;
        if (random(3) === 0) buffer.startInterval();
        if (random(2) === 0) taken.push(...buffer.take(false));
      }
      taken.push(...buffer.take(true));
      assert.equal(rebuild(taken), text, `round ${round}`);
      for (const piece of taken) assert.ok(piece.line.length <= MAX_LINE_CHARS);
      // Chunks split emoji; no piece keeps half of one (the store would keep it as U+FFFD).
      for (const piece of taken) assert.ok(piece.line.isWellFormed(), `round ${round}: ${piece.line}`);
    }
  });

  test('splits a long unfinished line into pieces without breaking a surrogate pair', () => {
    const buffer = createOutputBuffer();
    const text = `${'x'.repeat(MAX_LINE_CHARS - 1)}😀${'y'.repeat(10)}`;
    buffer.push('stdout', text);
    const pieces = buffer.take(false);
    assert.deepEqual(
      pieces.map((piece) => [piece.line.length, piece.partial]),
      [
        [MAX_LINE_CHARS - 1, true],
        [12, true],
      ],
    );
    assert.equal(pieces.map((piece) => piece.line).join(''), text);
  });

  test('a long line that arrives whole with its line break comes in pieces, nothing cut away', () => {
    // A minified blob written at once: one chunk holds the whole line and its break.
    const line = `${'x'.repeat(MAX_LINE_CHARS - 1)}😀${'y'.repeat(MAX_LINE_CHARS * 2)}`;
    const buffer = createOutputBuffer();
    buffer.push('stdout', `${line}\r\nnext\n`);
    const pieces = buffer.take(false);
    assert.equal(rebuild(pieces), `${line}\nnext\n`);
    assert.deepEqual(
      pieces.map((piece) => piece.partial ?? false),
      [true, true, true, false, false],
    );
    for (const piece of pieces) {
      assert.ok(piece.line.length <= MAX_LINE_CHARS);
      assert.ok(piece.line.isWellFormed());
    }
  });

  test('stops after the line cap with one notice', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'a\n'.repeat(MAX_LINES_PER_RUN + 5));
    const lines = buffer.take(false);
    assert.equal(lines.length, MAX_LINES_PER_RUN + 1);
    assert.match(lines.at(-1)!.line, /output truncated/);
  });

  test('the cap notice goes on a line of its own when the cap falls within an unfinished line', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', 'a\n'.repeat(MAX_LINES_PER_RUN - 1));
    buffer.push('stdout', 'progress 10%');
    buffer.startInterval();
    const taken = buffer.take(false);
    buffer.push('stdout', ' 20%\ndone\n');
    taken.push(...buffer.take(true));
    const notice = `[maos: output truncated after ${MAX_LINES_PER_RUN} lines]`;
    assert.equal(rebuild(taken), `${'a\n'.repeat(MAX_LINES_PER_RUN - 1)}progress 10%\n${notice}\n`);
    assert.deepEqual(buffer.openStreams(), []);
  });

  test('an emoji split between two chunks is handed over whole, with the chunk that completes it', () => {
    const buffer = createOutputBuffer();
    buffer.push('text', 'c\ud83d');
    buffer.startInterval();
    assert.deepEqual(buffer.take(false), [{ stream: 'text', line: 'c', partial: true }]);
    buffer.startInterval();
    assert.deepEqual(buffer.take(false), [], 'the half alone is not handed over');
    buffer.push('text', '\ude00\ud83d');
    assert.deepEqual(buffer.take(false), [{ stream: 'text', line: '😀', partial: true }]);
    // About 1 KiB is handed over at once, but for a last half.
    buffer.push('text', `\ude80${'x'.repeat(PARTIAL_LINE_CHARS)}\ud83c`);
    assert.deepEqual(buffer.take(false), [
      { stream: 'text', line: `🚀${'x'.repeat(PARTIAL_LINE_CHARS)}`, partial: true },
    ]);
    buffer.push('text', '\udf89 end');
    assert.deepEqual(buffer.take(true), [{ stream: 'text', line: '🎉 end', partial: true }]);
  });

  test('a long line split where an emoji straddles the limit keeps no half of it in either piece', () => {
    const buffer = createOutputBuffer();
    buffer.push('stdout', `${'x'.repeat(MAX_LINE_CHARS - 1)}😀 and more\n`);
    assert.deepEqual(buffer.take(false), [
      { stream: 'stdout', line: 'x'.repeat(MAX_LINE_CHARS - 1), partial: true },
      { stream: 'stdout', line: '😀 and more' },
    ]);
  });
});
