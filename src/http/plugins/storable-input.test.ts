import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findUnstorableText, MAX_NESTING_DEPTH } from './storable-input.ts';

const NUL_MESSAGE = 'must not contain the character U+0000 (NUL)';

test('the first string holding NUL or an unpaired surrogate is named by its JSON pointer', () => {
  assert.equal(findUnstorableText({ a: 'ok', b: [1, 'fine', { c: '\uD83D\uDE00' }] }), undefined);
  assert.deepEqual(findUnstorableText({ a: ['x', 'y\u0000'] }), { path: '/a/1', message: NUL_MESSAGE });
  assert.deepEqual(findUnstorableText({ 'a/b~': { c: 'x\uDC00' } }), {
    path: '/a~1b~0/c',
    message: 'must be well-formed Unicode (it holds an unpaired surrogate)',
  });
  assert.deepEqual(findUnstorableText('\u0000'), { path: '/', message: NUL_MESSAGE });
});

test('a key holding NUL is named at the object that has it', () => {
  assert.deepEqual(findUnstorableText({ meta: { 'k\u0000': 1 } }), {
    path: '/meta',
    message: `has a key that ${NUL_MESSAGE}`,
  });
});

test('a value nested deeper than the limit is named where it goes too deep, however deep it is', () => {
  const nest = (levels: number): unknown => {
    let value: unknown = 'leaf';
    for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { k: value };
    return value;
  };
  assert.equal(findUnstorableText(nest(MAX_NESTING_DEPTH)), undefined);
  const tooDeep = findUnstorableText(nest(MAX_NESTING_DEPTH + 1));
  assert.equal(tooDeep?.message, 'nests arrays and objects more than 100 levels deep');
  assert.equal(tooDeep?.path.split('/').length, MAX_NESTING_DEPTH + 1);
  // Far past what a recursive walk survives (it threw RangeError: Maximum call stack size exceeded).
  assert.equal(findUnstorableText(nest(200_000))?.message, tooDeep?.message);
});

test('a number JSON.parse overflowed to infinity is named; finite ones, -0 and 1e308 pass', () => {
  assert.equal(findUnstorableText({ a: [0, -0, 1e308, -1e308, 5e-324] }), undefined);
  const message = 'must be a number a double can hold (it overflows to infinity, as 1e400 does)';
  assert.deepEqual(findUnstorableText(JSON.parse('{"a":{"b":[1,-1e400]}}')), { path: '/a/b/1', message });
  assert.deepEqual(findUnstorableText(JSON.parse('1e400')), { path: '/', message });
});

test('with prototypeKeys, a key __proto__ or a constructor holding prototype is named at its object, in the same walk', () => {
  const proto =
    'has a key "__proto__", which no object of the arguments may have (a REST body may not either)';
  const ctor =
    'has a key "constructor" holding a key "prototype", which no object of the arguments may have (a REST body may not either)';
  // As JSON.parse reads them: `__proto__` an own key.
  const value = JSON.parse('{"a/b":[{"__proto__":{"x":1}}],"c":{"constructor":{"prototype":{}}}}');
  assert.equal(findUnstorableText(value), undefined);
  assert.deepEqual(findUnstorableText(value, { prototypeKeys: true }), { path: '/a~1b/0', message: proto });
  assert.deepEqual(findUnstorableText(JSON.parse('{"__proto__":1}'), { prototypeKeys: true }), {
    path: '/',
    message: proto,
  });
  assert.deepEqual(findUnstorableText({ c: value.c }, { prototypeKeys: true }), {
    path: '/c',
    message: ctor,
  });
  // A constructor that holds no prototype, and a string value "__proto__", are data like any other.
  assert.equal(
    findUnstorableText(
      { constructor: { name: 'x' }, k: '__proto__', l: ['constructor'] },
      { prototypeKeys: true },
    ),
    undefined,
  );
  // Depth-first as every other finding: what comes first is named, whichever kind it is.
  assert.deepEqual(findUnstorableText({ a: 'x\u0000', b: value }, { prototypeKeys: true })?.path, '/a');
  assert.deepEqual(
    findUnstorableText({ b: value, a: 'x\u0000' }, { prototypeKeys: true })?.path,
    '/b/a~1b/0',
  );
});
