// The rule every tenant id meets where one enters MAOS: an OIDC tenant claim, `auth.oidc.defaultTenant`,
// `auth.noneTenant`, `maos keys create --tenant`. A padded id (` acme`) is a tenant of its own that
// reads like `acme` in every list and log, and one with control characters (a tab, a bidirectional
// override) prints as another; both are refused where they come in, not found out at an erasure.
import { NO_CONTROL_CHARACTERS } from './trimmed-text.ts';

/**
 * Why `id` cannot name a tenant (`must not be empty`, `must not start or end with spaces` …, to follow
 * the id's name in a message; ASCII only, as it may go into a `WWW-Authenticate` header), or null
 * when it can.
 */
export function tenantIdProblem(id: string): string | null {
  if (id.trim() === '') return 'must not be empty';
  if (id.trim() !== id) return 'must not start or end with spaces';
  if (!NO_CONTROL_CHARACTERS.test(id)) {
    return 'must not contain control characters (line breaks, tabs, bidirectional overrides)';
  }
  // The store keeps such text as U+FFFD (store/storable-text.ts): two ids would become one.
  if (!id.isWellFormed()) return 'must not contain an unpaired surrogate';
  return null;
}
