import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringifyForStore, toStorableParameters, toStorableText } from './storable-text.ts';

test('NUL becomes U+FFFD; a text without one is returned as it is', () => {
  assert.equal(toStorableText('a\u0000b\u0000'), 'a\uFFFDb\uFFFD');
  const plain = 'no nul \\u0000 spelled out';
  assert.equal(toStorableText(plain), plain);
});

test('bound values: strings holding NUL are replaced, the array is the same one when none does', () => {
  const clean = ['a', 1, null, 'b'];
  assert.equal(toStorableParameters(clean), clean);
  const values = ['x\u0000', 2, 'y'];
  assert.deepEqual(toStorableParameters(values), ['x\uFFFD', 2, 'y']);
  assert.deepEqual(values, ['x\u0000', 2, 'y'], 'the caller’s array is left alone');
});

test('stored JSON: NUL and unpaired surrogates in strings and keys become U+FFFD, paired ones stay', () => {
  assert.equal(
    stringifyForStore({
      line: 'a\u0000b',
      lone: '\uD800x\uDC00',
      pair: '\uD83D\uDE00',
      'k\u0000': [1, 'e\uDBFF'],
    }),
    JSON.stringify({
      line: 'a\uFFFDb',
      lone: '\uFFFDx\uFFFD',
      pair: '\uD83D\uDE00',
      'k\uFFFD': [1, 'e\uFFFD'],
    }),
  );
});

test('stored JSON: text that spells an escape out is kept as written', () => {
  const value = { code: 'printf("\\u0000 and \\ud800")', n: 1 };
  assert.equal(stringifyForStore(value), JSON.stringify(value));
  assert.equal(stringifyForStore(null), 'null');
});
