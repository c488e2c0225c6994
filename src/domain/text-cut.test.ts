import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { charCount, headOf, pairSafeEnd, streamSafeEnd, tailOf } from './text-cut.ts';

describe('text cuts', () => {
  test('headOf never ends on half a surrogate pair', () => {
    assert.equal(headOf('ab😀c', 3), 'ab');
    assert.equal(headOf('ab😀c', 4), 'ab😀');
    assert.equal(headOf('ab😀c', 2), 'ab');
    assert.equal(headOf('abc', 10), 'abc');
    assert.equal(headOf('abc', 0), '');
  });

  test('tailOf never starts on half a surrogate pair', () => {
    assert.equal(tailOf('a😀bc', 3), 'bc');
    assert.equal(tailOf('a😀bc', 4), '😀bc');
    assert.equal(tailOf('abc', 10), 'abc');
    assert.equal(tailOf('abc', 0), '');
  });

  test('pairSafeEnd moves a cut inside a pair before it, and leaves other cuts alone', () => {
    assert.equal(pairSafeEnd('a😀', 2), 1);
    assert.equal(pairSafeEnd('a😀', 3), 3);
    assert.equal(pairSafeEnd('abc', 2), 2);
    assert.equal(pairSafeEnd('abc', 0), 0);
  });

  test('streamSafeEnd holds back a last first half of a pair, and nothing else', () => {
    assert.equal(streamSafeEnd(''), 0);
    assert.equal(streamSafeEnd('abc'), 3);
    assert.equal(streamSafeEnd('a😀'), 3);
    assert.equal(streamSafeEnd('a\ud83d'), 1);
    assert.equal(streamSafeEnd('\ud83d'), 0);
    // A lone second half has no first half to wait for.
    assert.equal(streamSafeEnd('a\ude00'), 2);
  });

  test('every cut of mixed text is well formed', () => {
    const text = 'x😀γ🚀 \u{1F9D1}\u200D\u{1F4BB}!';
    for (let max = 0; max <= text.length + 1; max++) {
      assert.ok(headOf(text, max).isWellFormed(), `head ${max}`);
      assert.ok(tailOf(text, max).isWellFormed(), `tail ${max}`);
      assert.ok(headOf(text, max).length <= max && tailOf(text, max).length <= max);
    }
  });

  test('charCount counts code points: a pair is one character, a lone half one too', () => {
    assert.equal(charCount(''), 0);
    assert.equal(charCount('abc'), 3);
    assert.equal(charCount('a😀b🎉'), 4);
    assert.equal(charCount('\ud83d'), 1);
    assert.equal(charCount('\ude00\ud83d'), 2);
    assert.equal(charCount('x\ud83d\ude00\ud83d'), 3);
  });
});
