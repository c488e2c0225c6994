// Dollar amounts in messages: plain decimals, never exponent notation ("$1e-7").
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatUsd } from './money.ts';

describe('formatUsd', () => {
  test('writes an amount as a plain decimal, as many digits as it has', () => {
    assert.equal(formatUsd(2), '$2');
    assert.equal(formatUsd(0.01), '$0.01');
    assert.equal(formatUsd(1e-7), '$0.0000001');
    assert.equal(formatUsd(1.25e-9), '$0.00000000125');
    assert.equal(formatUsd(123456.5), '$123456.5');
    assert.equal(formatUsd(1e21), '$1000000000000000000000');
    assert.equal(formatUsd(0), '$0');
    assert.equal(formatUsd(-0.5), '-$0.5');
  });

  test('writes the largest amounts out too: rounding to 15 digits does not make them Infinity', () => {
    // 1.7976931348623157e308 to 15 digits is 1.79769313486232e308, past the largest double.
    const largest = `$17976931348623157${'0'.repeat(292)}`;
    assert.equal(formatUsd(Number.MAX_VALUE), largest);
    assert.equal(formatUsd(Number.MAX_VALUE, 6), `${largest}.000000`);
    assert.equal(formatUsd(-Number.MAX_VALUE), `-${largest}`);
    assert.equal(formatUsd(1e308), `$1${'0'.repeat(308)}`);
  });

  test('pads to the fraction digits asked for, and shows more rather than round a digit away', () => {
    assert.equal(formatUsd(1.5, 6), '$1.500000');
    assert.equal(formatUsd(0.010004, 6), '$0.010004');
    assert.equal(formatUsd(0, 6), '$0.000000');
    // An estimate below the millionth is not shown as $0.000000 next to a smaller limit.
    assert.equal(formatUsd(1.5e-7, 6), '$0.00000015');
  });

  test('a sum of costs is shown without the noise of binary fractions', () => {
    assert.equal(formatUsd(0.1 + 0.2, 6), '$0.300000');
    assert.equal(formatUsd(0.1 + 0.2), '$0.3');
  });
});
