// Free text the server trims before checking its length (objectives, steering messages, reject
// reasons, key names, custom roles): one problem per mistake, said in plain words, and a pattern
// that states the rule in the OpenAPI document, where `minLength` alone would count the spaces.
import { z } from 'zod';

/**
 * A string trimmed, then at least `min` and at most `max` characters long. The pattern (two
 * non-space characters at least `min` apart; one for `min` 1) only documents the rule: the length
 * check aborts the field's checks, so a text too short is not reported twice.
 */
export function trimmedText(min: number, max: number) {
  const message =
    min > 1 ? `must be at least ${min} characters besides surrounding spaces` : 'must not be blank';
  const pattern = min > 1 ? new RegExp(`\\S[\\s\\S]{${min - 2},}\\S`) : /\S/;
  return z.string().trim().min(min, { abort: true, error: message }).max(max).regex(pattern, message);
}

// C0 and C1 controls (a C1 CSI, U+009B, starts a terminal escape as ESC [ does), and the bidirectional
// overrides and isolates, which make a name print in another order than it is stored (in `maos keys
// list`, in logs) and so pass for another.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
export const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$/;

/**
 * A one-line text such as a name: trimmedText, and no control characters (line breaks, tabs, NUL,
 * C1 controls, bidirectional overrides …), which have no place in a name shown in lists and logs.
 */
export function trimmedLine(min: number, max: number) {
  return trimmedText(min, max).regex(
    NO_CONTROL_CHARACTERS,
    'must not contain control characters (line breaks, tabs …)',
  );
}
