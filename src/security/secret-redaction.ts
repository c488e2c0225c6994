// Removes secrets from text that came from elsewhere, e.g. an LLM provider's error message that
// echoes the API key it was sent ("invalid key sk-…"), before it is stored, logged or shown. Not
// only a whole secret: a gateway may quote a long prefix of it, which gives most of the key away.

const REDACTED = '[REDACTED]';

/**
 * The shortest run of a secret's characters redacted where it occurs. Why 8: what providers print
 * to name a key (OpenAI's `sk-proj-****abcd`, a key's first and last four characters) stays
 * readable, while 8 characters of a random key (48 bits of a base64 one) are too many to give away.
 */
export const MIN_REDACTED_RUN = 8;

/**
 * Secrets shorter than this are left alone: a test's `k`, or a value too short to be a credential,
 * would otherwise cut every word it occurs in (as the support bundle's scrub does).
 */
const MIN_SECRET_LENGTH = 4;

/**
 * A function that replaces, in a text, every occurrence of a secret (of 4 characters or more) and
 * every run of at least MIN_REDACTED_RUN consecutive characters of one (a prefix, a suffix, a
 * middle part) with `[REDACTED]`; overlapping or adjacent runs become one. A secret is also found
 * as a JSON string holds it (`"` and `\` escaped, `/` escaped or not) and URL-encoded (a base64
 * key's `+`, `/`, `=` as `%2B`, `%2F`, `%3D`). The text is scanned once, whatever the number of
 * secrets.
 */
export function createSecretRedactor(secrets: Iterable<string>): (text: string) => string {
  const wholes = new Set<string>();
  // Every run of MIN_REDACTED_RUN characters of the longer secrets: a text position whose next
  // MIN_REDACTED_RUN characters are one of them starts a redacted stretch.
  const runs = new Set<string>();
  for (const secret of secrets) {
    const inJson = JSON.stringify(secret).slice(1, -1);
    // As written, in a JSON string (also with '/' escaped, as some serializers do), URL-encoded.
    const forms = new Set([secret, inJson, inJson.replaceAll('/', '\\/'), encodeURIComponent(secret)]);
    for (const form of forms) {
      if (form.length < MIN_SECRET_LENGTH) continue;
      if (form.length < MIN_REDACTED_RUN) {
        wholes.add(form);
        continue;
      }
      for (let start = 0; start + MIN_REDACTED_RUN <= form.length; start += 1) {
        runs.add(form.slice(start, start + MIN_REDACTED_RUN));
      }
    }
  }
  // Longest first: a short secret inside a longer one would leave the rest of it.
  const shortOnes = [...wholes].sort((a, b) => b.length - a.length);
  return (text) => {
    if (runs.size === 0 && shortOnes.length === 0) return text;
    let out = '';
    let copied = 0;
    let coveredTo = -1;
    let stretchStart = -1;
    for (let index = 0; index + MIN_REDACTED_RUN <= text.length; index += 1) {
      if (!runs.has(text.slice(index, index + MIN_REDACTED_RUN))) continue;
      if (index > coveredTo) {
        if (stretchStart >= 0) {
          out += `${text.slice(copied, stretchStart)}${REDACTED}`;
          copied = coveredTo;
        }
        stretchStart = index;
      }
      coveredTo = index + MIN_REDACTED_RUN;
    }
    if (stretchStart >= 0) {
      out += `${text.slice(copied, stretchStart)}${REDACTED}`;
      copied = coveredTo;
    }
    out += text.slice(copied);
    for (const secret of shortOnes) out = out.replaceAll(secret, REDACTED);
    return out;
  };
}
