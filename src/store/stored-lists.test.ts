import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readStoredNames } from './stored-lists.ts';

const isShort = (name: string): name is 'a' | 'b' => name === 'a' || name === 'b';

test('the names of a stored JSON array of text, those accepted, in their order', () => {
  assert.deepEqual(readStoredNames('["b","x","a"]'), ['b', 'x', 'a']);
  assert.deepEqual(readStoredNames('["b","x","a"]', isShort), ['b', 'a']);
  // Entries that are no text are left out, not turned into text.
  assert.deepEqual(readStoredNames('["a",1,null,["b"],{"a":1},true]'), ['a']);
});

test('text that is no JSON array (a hand edit gone wrong) holds no names', () => {
  for (const text of ['["a","b', '', 'a', '"a"', '{"0":"a"}', 'null', '1']) {
    assert.deepEqual(readStoredNames(text), [], text);
    assert.deepEqual(readStoredNames(text, isShort), [], text);
  }
});
