// The CLI's numeric option parsers: digits only (with a fraction for numbers), within range, and a
// usage error naming the flag for anything Number() alone would have read (1e2, 0x10, '', ' 5').
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CliError, EXIT } from './exit-codes.ts';
import { parseIntegerOption, parseNumberOption, parsePageLimitOption } from './number-options.ts';

const NOT_DIGITS = [
  '',
  ' ',
  '1e2',
  '0x10',
  '0b1',
  '0o7',
  ' 5',
  '5 ',
  '+5',
  '-1',
  '1.5',
  '1.',
  '.5',
  'Infinity',
  'NaN',
  '1_000',
  '١٢',
];

function assertRefused(parse: () => number, message: string): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof CliError);
    assert.equal(error.code, 'USAGE');
    assert.equal(error.exitCode, EXIT.USAGE);
    assert.equal(error.message, message);
    return true;
  });
}

test('an integer option is decimal digits within its range', () => {
  assert.equal(parseIntegerOption('--limit', '100', { min: 1, max: 1000 }), 100);
  assert.equal(parseIntegerOption('--limit', '007', { min: 1, max: 1000 }), 7);
  assert.equal(parseIntegerOption('--after', '0', { min: 0 }), 0);
  for (const text of NOT_DIGITS) {
    assertRefused(
      () => parseIntegerOption('--limit', text, { min: 1, max: 1000 }),
      `--limit must be a whole number from 1 to 1000 (got "${text}")`,
    );
  }
  assertRefused(
    () => parseIntegerOption('--limit', '1001', { min: 1, max: 1000 }),
    '--limit must be a whole number from 1 to 1000 (got "1001")',
  );
  assertRefused(
    () => parseIntegerOption('--after', '9007199254740993', { min: 0 }),
    '--after must be a whole number ≥ 0 (got "9007199254740993")',
  );
  assertRefused(
    () => parseIntegerOption('--max-tokens', '0', { min: 0, aboveMin: true }),
    '--max-tokens must be a whole number greater than 0 (got "0")',
  );
});

test('a page size is decimal digits from 1 up, sent as given for the server to lower', () => {
  // No maximum of the CLI's own: the server lowers a larger page to its largest (http.maxPageSize).
  assert.equal(parsePageLimitOption('--limit', '20'), 20);
  assert.equal(parsePageLimitOption('--limit', '5000'), 5000);
  assert.equal(parsePageLimitOption('--limit', '9'.repeat(30)), Number.MAX_SAFE_INTEGER);
  for (const text of [...NOT_DIGITS, '0', '000']) {
    assertRefused(
      () => parsePageLimitOption('--limit', text),
      `--limit must be a whole number ≥ 1 (got "${text}")`,
    );
  }
});

test('a number option is decimal digits with an optional fraction, within its range', () => {
  assert.equal(parseNumberOption('--max-cost', '2.50', { min: 0, aboveMin: true }), 2.5);
  assert.equal(parseNumberOption('--retry-for', '0', { min: 0, max: 86_400 }), 0);
  for (const text of NOT_DIGITS.filter((text) => text !== '1.5')) {
    assertRefused(
      () => parseNumberOption('--max-clock-skew', text, { min: 0 }),
      `--max-clock-skew must be a number ≥ 0 (got "${text}")`,
    );
  }
  assertRefused(
    () => parseNumberOption('--max-cost', '0.0', { min: 0, aboveMin: true }),
    '--max-cost must be a number greater than 0 (got "0.0")',
  );
  assertRefused(
    () => parseNumberOption('--retry-for', '86400.5', { min: 0, max: 86_400 }),
    '--retry-for must be a number from 0 to 86400 (got "86400.5")',
  );
});
