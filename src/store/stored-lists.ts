// A list of names stored as a JSON array of text: a webhook subscription's events, a custom role's
// capabilities, an API key's roles. Such a row read after a hand edit gone wrong (text cut short, JSON
// that is no array) must not fail every read of it: each of those JSON.parse calls made a tenant's
// task finishes, role lists or requests a 500. What cannot be read is read as no names, which grants
// and subscribes to nothing.

/**
 * The entries of a stored JSON array of text that `accept` takes, in their order; none when `text`
 * is not a JSON array. Entries that are no text, or that `accept` refuses, are left out.
 */
export function readStoredNames<T extends string>(text: string, accept: (name: string) => name is T): T[];
export function readStoredNames(text: string): string[];
export function readStoredNames(text: string, accept?: (name: string) => boolean): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  return value.filter(
    (entry): entry is string => typeof entry === 'string' && (accept === undefined || accept(entry)),
  );
}
