// Dollar amounts as messages and the CLI show them: plain decimals, never exponent notation, which
// JavaScript writes for amounts below a millionth ("$1e-7") and from 10^21 up.

/**
 * Significant digits kept of an amount: a sum of costs kept to the millionth carries the noise of
 * binary fractions past them (0.1 + 0.2 is 0.30000000000000004), which these drop.
 */
const SIGNIFICANT_DIGITS = 15;

/**
 * `amount` in US dollars as a plain decimal ("$0.0000001", "$2"), with at least
 * `minFractionDigits` digits after the point (6 for costs, kept to the millionth: "$1.500000"),
 * and more when the amount has more, so that no digit of it is rounded away: a cost just over a
 * limit never reads as the limit, nor an estimate below a millionth as $0.000000.
 */
export function formatUsd(amount: number, minFractionDigits = 0): string {
  if (!Number.isFinite(amount)) return `$${amount}`;
  // Rounded up past the largest double (from 1.797693134862315e308) it would be Infinity: as it is.
  const rounded = Number(amount.toPrecision(SIGNIFICANT_DIGITS));
  const value = Number.isFinite(rounded) ? rounded : amount;
  // The shortest digits that name the value, and where its decimal point goes.
  const [mantissa = '0', exponent = '0'] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const point = Number(exponent) + 1;
  let whole: string;
  let fraction: string;
  if (point <= 0) {
    whole = '0';
    fraction = '0'.repeat(-point) + digits;
  } else if (point >= digits.length) {
    whole = digits + '0'.repeat(point - digits.length);
    fraction = '';
  } else {
    whole = digits.slice(0, point);
    fraction = digits.slice(point);
  }
  fraction = fraction.replace(/0+$/, '').padEnd(minFractionDigits, '0');
  const sign = value < 0 ? '-' : '';
  return `${sign}$${whole}${fraction === '' ? '' : `.${fraction}`}`;
}
