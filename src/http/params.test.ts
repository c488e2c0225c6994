import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLimitSchema, storedIdSchema } from './params.ts';

describe('request params', () => {
  test('a page limit of digits above the maximum is lowered to it, however many digits it has', () => {
    const limit = createLimitSchema(100, 20);
    assert.equal(limit.parse(undefined), 20);
    assert.equal(limit.parse('1'), 1);
    assert.equal(limit.parse('100'), 100);
    for (const value of ['101', '9007199254740991', '9999999999999999', '9'.repeat(17), '1'.repeat(400)])
      assert.equal(limit.parse(value), 100, value);
    assert.equal(limit.parse(`000${'0'.repeat(20)}7`), 7, 'leading zeros');
  });

  test('a page limit that is not decimal digits, or below 1, is refused', () => {
    const limit = createLimitSchema(100, 20);
    for (const value of [
      '',
      '0',
      '-1',
      `-${'9'.repeat(20)}`,
      '0x10',
      '1e2',
      '1.5',
      ' 5',
      '+5',
      'abc',
      `${'9'.repeat(20)} `,
    ])
      assert.equal(limit.safeParse(value).success, false, JSON.stringify(value));
  });

  test('an id in upper case is read as the lower-case id the server wrote', () => {
    const id = '01a21c28-eb0c-718e-950f-2618d4401091';
    assert.equal(storedIdSchema.parse(id.toUpperCase()), id);
    assert.equal(storedIdSchema.safeParse('not-a-uuid').success, false);
  });
});
