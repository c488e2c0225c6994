// The console's "spent / limit" of a cost budget (web/console/dom.js, formatSpendOf): the spend
// reads over the limit when it is over, under when under, level only when equal; amounts that the
// usual formatter already writes apart keep its look. Run in Node's Intl; the session page's line in
// Chromium: test/e2e/console-budget-spend.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

interface Dom {
  formatUsd(value: number): string;
  formatSpendOf(used: number | null, limit: number): string;
}

const dom = (await import(new URL('../../web/console/dom.js', import.meta.url).href)) as Dom;

/** The decimal point of the default locale's dollar amounts (as the console writes them). */
const POINT =
  new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' })
    .formatToParts(1.5)
    .find((part) => part.type === 'decimal')?.value ?? '.';

/**
 * An amount as written, as an exact integer of 10^-100 dollars: compared as numbers, two texts
 * that differ in their 20th digit would read as one double.
 */
function exactly(text: string): bigint {
  const [whole = '', fraction = ''] = text.replace(new RegExp(`[^0-9${POINT}]`, 'g'), '').split(POINT);
  return BigInt(`${whole || '0'}${fraction.padEnd(100, '0')}`);
}

const order = (a: bigint, b: bigint) => (a > b ? 1 : a < b ? -1 : 0);

test('a spend just over or under its limit reads so (the en-US look)', () => {
  assert.equal(dom.formatSpendOf(0.010004, 0.01), '$0.010004 / $0.010000');
  assert.equal(dom.formatSpendOf(0.009996, 0.01), '$0.009996 / $0.010000');
  assert.equal(dom.formatSpendOf(1.001, 1), '$1.001 / $1.000');
  // Past $0.995 the usual look is in cents: $1.00 for both.
  assert.equal(dom.formatSpendOf(0.9951, 0.996), '$0.995 / $0.996');
  assert.equal(dom.formatSpendOf(2500.000001, 2500), '$2,500.000001 / $2,500.000000');
  // Level only when equal; apart already: as every other amount.
  assert.equal(dom.formatSpendOf(0.01, 0.01), '$0.010 / $0.010');
  assert.equal(dom.formatSpendOf(0.010004, 0.05), '$0.010 / $0.050');
  assert.equal(dom.formatSpendOf(1200.005175, 2500), '$1,200.01 / $2,500.00');
  assert.equal(dom.formatSpendOf(null, 0.5), '$0.00 / $0.50');
});

test('over many amounts near their limits, the spend reads in the order it is in', () => {
  let checked = 0;
  let widened = 0;
  for (const limit of [1e-7, 3.3e-5, 0.0049, 0.01, 0.123456, 0.995, 1, 7.77, 19.99, 2500, 123456.78]) {
    for (let digits = 1; digits <= 15; digits += 1) {
      for (const step of [-9, -5, -1, 1, 5, 9]) {
        const spent = limit * (1 + step * 10 ** -digits);
        if (spent === limit) continue;
        const shown = dom.formatSpendOf(spent, limit);
        const [spentText = '', limitText = ''] = shown.split(' / ');
        assert.equal(
          order(exactly(spentText), exactly(limitText)),
          Math.sign(spent - limit),
          `${spent} against ${limit}: ${shown}`,
        );
        const usual = `${dom.formatUsd(spent)} / ${dom.formatUsd(limit)}`;
        if (dom.formatUsd(spent) !== dom.formatUsd(limit)) assert.equal(shown, usual);
        else widened += 1;
        checked += 1;
      }
    }
  }
  assert.ok(widened > 100, `${widened} of ${checked} needed more decimals`);
});
