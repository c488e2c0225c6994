import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSseParser, readSseFrames } from './sse-reader.ts';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield new TextEncoder().encode(part);
}

async function collect(...parts: string[]) {
  const out = [];
  for await (const frame of readSseFrames(chunks(...parts))) out.push(frame);
  return out;
}

describe('readSseFrames', () => {
  test('parses id, event and data, skipping comments', async () => {
    const frames = await collect(': keep-alive\n\nid: 1\nevent: task.status\ndata: {"a":1}\n\n');
    assert.deepEqual(frames, [{ id: '1', event: 'task.status', data: '{"a":1}' }]);
  });

  test('joins multi-line data and handles frames split across chunks and CRLF', async () => {
    const frames = await collect('id: 7\r\nda', 'ta: one\r\ndata: two\r', '\n\r\n');
    assert.deepEqual(frames, [{ id: '7', event: 'message', data: 'one\ntwo' }]);
  });

  test('keeps the last id for frames without one and drops an unterminated frame', async () => {
    const frames = await collect('id: 3\ndata: x\n\ndata: y\n\ndata: cut');
    assert.deepEqual(
      frames.map((f) => [f.id, f.data]),
      [
        ['3', 'x'],
        ['3', 'y'],
      ],
    );
  });

  test('a multi-byte character split between chunks survives', async () => {
    const bytes = new TextEncoder().encode('data: é\n\n');
    async function* split() {
      yield bytes.slice(0, 7);
      yield bytes.slice(7);
    }
    const frames = [];
    for await (const frame of readSseFrames(split())) frames.push(frame);
    assert.equal(frames[0]?.data, 'é');
  });

  test('frames pushed a character at a time, or in uneven pieces, parse as when pushed whole', () => {
    const text = `id: 1\r\ndata: ${'a'.repeat(300)}\r\ndata: b\r\r: note\n\nevent: e\ndata: c\n\rdata: d\r\n\r\n`;
    const whole = createSseParser().push(text);
    assert.equal(whole.length, 3);
    for (const size of [1, 2, 7, 64]) {
      const parser = createSseParser();
      const frames = [];
      for (let i = 0; i < text.length; i += size) frames.push(...parser.push(text.slice(i, i + size)));
      assert.deepEqual(frames, whole, `pieces of ${size}`);
    }
  });

  test('the parser emits nothing until the blank line', () => {
    const parser = createSseParser();
    assert.deepEqual(parser.push('id: 1\ndata: a\n'), []);
    assert.equal(parser.push('\n').length, 1);
  });
});
