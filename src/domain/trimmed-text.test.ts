import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trimmedLine, trimmedText } from './trimmed-text.ts';

test('a blank text is one problem, "must not be blank"; a short one one problem naming the length', () => {
  const blank = trimmedText(1, 10).safeParse('   ');
  assert.deepEqual(
    blank.error?.issues.map((issue) => issue.message),
    ['must not be blank'],
  );
  const short = trimmedText(10, 300).safeParse('  too short ');
  assert.deepEqual(
    short.error?.issues.map((issue) => issue.message),
    ['must be at least 10 characters besides surrounding spaces'],
  );
  assert.equal(trimmedText(1, 10).parse('  ok  '), 'ok');
  assert.equal(trimmedText(1, 3).safeParse('abcd').success, false);
});

test('the documented pattern states the rule the trim enforces', () => {
  const schema = (min: number) =>
    trimmedText(min, 100).toJSONSchema() as { pattern?: string; minLength?: number };
  assert.ok(new RegExp(schema(1).pattern ?? '').test(' x '));
  assert.ok(!new RegExp(schema(1).pattern ?? '').test('   '));
  assert.ok(new RegExp(schema(3).pattern ?? '').test(' a b '));
  assert.ok(!new RegExp(schema(3).pattern ?? '').test('  ab  '));
});

test('a one-line text refuses control characters inside it; surrounding ones are trimmed', () => {
  const message = 'must not contain control characters (line breaks, tabs …)';
  // C0, DEL, C1 (U+009B is a terminal's CSI), a right-to-left override and an isolate.
  for (const text of [
    'a\tb',
    'a\nb',
    'a\u0000b',
    'a\u007fb',
    'a\u009b31mb',
    'key\u202egpj.exe',
    'a\u2066b',
  ]) {
    assert.deepEqual(
      trimmedLine(1, 200)
        .safeParse(text)
        .error?.issues.map((issue) => issue.message),
      [message],
      JSON.stringify(text),
    );
  }
  assert.equal(trimmedLine(1, 200).parse('\t deploy bot \n'), 'deploy bot');
});
