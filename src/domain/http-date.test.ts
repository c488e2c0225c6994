// HTTP dates (RFC 9110 §5.6.7): a leap second, which the format allows (second 60), is read as the
// instant after 23:59:59; an impossible day or time is no date.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHttpDate, parseRetryAfter } from './http-date.ts';

const now = Date.parse('2026-06-30T12:00:00Z');

test('a leap second at the end of June or December is read in each of the three formats', () => {
  const july = Date.parse('2026-07-01T00:00:00Z');
  assert.equal(parseHttpDate('Tue, 30 Jun 2026 23:59:60 GMT', now), july);
  assert.equal(parseHttpDate('Tuesday, 30-Jun-26 23:59:60 GMT', now), july);
  assert.equal(parseHttpDate('Tue Jun 30 23:59:60 2026', now), july);
  assert.equal(parseHttpDate('Thu, 31 Dec 2026 23:59:60 GMT', now), Date.parse('2027-01-01T00:00:00Z'));
  assert.equal(parseHttpDate('Tue, 30 Jun 2026 12:30:60 GMT', now), Date.parse('2026-06-30T12:31:00Z'));
});

test('an impossible day or time is no date', () => {
  for (const value of [
    'Sat, 31 Feb 2026 12:00:00 GMT',
    'Tue, 31 Jun 2026 23:59:60 GMT',
    'Tue, 00 Jun 2026 12:00:00 GMT',
    'Tue, 30 Jun 2026 24:00:00 GMT',
    'Tue, 30 Jun 2026 23:60:00 GMT',
    'Tue, 30 Jun 2026 23:59:61 GMT',
    'Tue Jun 31 12:00:00 2026',
  ]) {
    assert.equal(parseHttpDate(value, now), null, value);
  }
  assert.equal(parseHttpDate('Tue, 30 Jun 2026 23:59:59 GMT', now), Date.parse('2026-06-30T23:59:59Z'));
});

test('Retry-After is seconds or an HTTP date read as GMT, whatever the time zone; anything else is none', (t) => {
  const zone = process.env.TZ;
  // Date.parse reads an asctime date (no zone written) in the local time zone.
  process.env.TZ = 'America/New_York';
  t.after(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });
  const start = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('7', start), 7000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', start), 5000);
  assert.equal(parseRetryAfter('Thu Jan  1 00:00:09 2026', start), 9000);
  for (const value of ['-1', 'in 5', 'Fri 2027', '2026-01-01T00:00:05Z', '']) {
    assert.equal(parseRetryAfter(value, start), null, value);
  }
});
