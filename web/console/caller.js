// Who this sign-in is to MAOS (GET /v1/me), read once per sign-in: the sections of the navigation
// and the actions of a page are offered from its permissions, without probing a route.
import { api } from './api.js';

/** The read of the current sign-in: the caller, or null when it could not be read; null before. */
let reading = null;

/**
 * Reads the caller of a new sign-in. Never rejects: a caller that could not be read is null, and so
 * is one whose sign-in has ended (signed out, or another sign-in began) by the time it is answered.
 * @returns {Promise<{principal: string, tenantId: string, roles: string[], permissions: string[]} | null>}
 */
export function readCaller() {
  const read = api.me().catch(() => null);
  reading = read;
  return read.then((caller) => (reading === read ? caller : null));
}

/** Forgets the caller at sign-out. */
export function forgetCaller() {
  reading = null;
}

/**
 * Whether the caller of this sign-in holds `permission`: true or false, or null when that is not
 * known (not read, or the read failed); the action is then offered and the API's 403 says why not.
 * @param {string} permission e.g. "sessions:create"
 * @returns {Promise<boolean | null>}
 */
export async function callerMay(permission) {
  const caller = reading ? await reading : null;
  return caller ? caller.permissions.includes(permission) : null;
}
