// The console's sentences that say a count read right for none, one and many: "the one session",
// never "all 1 session" or "1 sessions".
import assert from 'node:assert/strict';
import { test } from 'node:test';

interface CountPhrases {
  describeRange(
    sessions: Array<{ createdAt: string }>,
    complete: boolean,
    status: string,
    readAt: string,
  ): string;
  describePeriod(
    totals: { sessions: number; inputTokens: number; outputTokens: number; costUsd: number },
    from: string,
    to: string,
    readAt: string,
    grouping?: string,
  ): string;
  describeKeys(count: number, active: number): string;
}

const phrases = (await import(
  new URL('../../web/console/count-phrases.js', import.meta.url).href
)) as CountPhrases;

const AT = '2026-01-02T03:04:05Z';

const spent = (sessions: number) => ({ sessions, inputTokens: 10, outputTokens: 5, costUsd: 0.01 });

test('the usage of a date range per role or model: none, one and many sessions created in it', () => {
  const none = phrases.describePeriod(
    { ...spent(0), inputTokens: 0 },
    '2026-01-01',
    '2026-01-31',
    'noon',
    'role',
  );
  assert.match(none, /^No sessions were created from 2026-01-01 to 2026-01-31 \(UTC days, both included\)/);
  const one = phrases.describePeriod(spent(1), '2026-01-01', '2026-01-31', 'noon', 'model');
  assert.match(
    one,
    /^Your tenant's usage of the one session created from 2026-01-01 .*, whatever its status,/,
  );
  const many = phrases.describePeriod(spent(3), '2026-01-01', '2026-01-31', 'noon', 'role');
  assert.match(many, /^Your tenant's usage of all 3 sessions created .*, whatever their status,/);
  for (const text of [none, one, many]) assert.doesNotMatch(text, /over all|\b1 sessions\b|all 1 session/);
});

test('the totals and days of a date range: what was charged on those days, whenever created', () => {
  const earlier = phrases.describePeriod(spent(0), '2026-01-01', '2026-01-31', 'noon');
  assert.match(
    earlier,
    /^What your tenant was charged from 2026-01-01 to 2026-01-31 \(UTC days, both included\), whichever day its sessions were created .*; no session was created in those days\./,
  );
  const one = phrases.describePeriod(spent(1), '2026-01-01', '2026-01-31', 'noon', 'day');
  assert.match(one, /; one session was created in those days\./);
  const many = phrases.describePeriod(spent(3), '2026-01-01', '2026-01-31', 'noon');
  assert.match(many, /; 3 sessions were created in those days\./);
  const nothing = phrases.describePeriod(
    { ...spent(2), inputTokens: 0, outputTokens: 0, costUsd: 0 },
    '2026-01-01',
    '2026-01-31',
    'noon',
  );
  assert.equal(
    nothing,
    'Nothing was charged to your tenant from 2026-01-01 to 2026-01-31 (UTC days, both included); 2 sessions were created in those days.',
  );
});

test('the totals of the listed sessions: one (with a status in words) and many', () => {
  const one = phrases.describeRange([{ createdAt: AT }], true, 'awaiting_approval', AT);
  assert.match(
    one,
    /^Totals of the one session listed, with status Awaiting approval, created .+, as read at/,
  );
  assert.match(one, /It is the only session with status Awaiting approval of your tenant\./);
  assert.doesNotMatch(one, / to |awaiting_approval/);
  const many = phrases.describeRange([{ createdAt: AT }, { createdAt: AT }], false, '', AT);
  assert.match(many, /^Totals over the 2 sessions listed, created .+ to .+, as read at/);
  assert.match(many, /Older sessions exist and are not counted/);
  assert.equal(phrases.describeRange([], true, 'running', AT), 'No sessions with status Running.');
});

test('the API keys listed: none, one and many', () => {
  assert.equal(phrases.describeKeys(0, 0), 'No keys.');
  assert.equal(phrases.describeKeys(1, 1), '1 key, not revoked.');
  assert.equal(phrases.describeKeys(1, 0), '1 key, revoked.');
  assert.equal(phrases.describeKeys(3, 2), '3 keys, 2 not revoked.');
});
