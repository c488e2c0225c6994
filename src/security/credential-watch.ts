// Ends long-lived responses (event streams) when the credential they were opened with stops being
// valid, or its principal no longer holds the permission the stream needs (a role binding removed):
// at its expiry (an API key's `expiresAt`, an OIDC token's `exp`), at once after a revocation in
// this process, and within one re-check interval after one elsewhere (another replica, the CLI).
import { AppError } from '../errors/app-error.ts';
import { onApiKeyRevoked } from './api-keys.ts';
import type { Authenticator, CredentialSource } from './authenticate.ts';
import { type Principal, readAuthFailure } from './principal.ts';
import { hasPermission, type Permission } from './rbac.ts';
import { onRoleBindingRevoked } from './role-bindings.ts';

/** What a watcher of one response holds: the signal that ends it, and how to stop watching. */
export interface CredentialLease {
  /** Aborted when the credential is no longer accepted. */
  signal: AbortSignal;
  release(): void;
}

export interface CredentialWatch {
  /**
   * Watches the credential of a request authenticated as `principal`; the lease also ends once the
   * principal no longer holds one of `permissions` (its roles read again at each re-check).
   */
  watch(source: CredentialSource, principal: Principal, permissions?: readonly Permission[]): CredentialLease;
  /** Credentials watched (distinct ones), for tests. */
  size(): number;
  close(): void;
}

export interface CredentialWatchOptions {
  authenticator: Pick<Authenticator, 'authenticate'>;
  /**
   * How often every watched credential is verified again against the store, uncached (the key and
   * the principal's role bindings): what ends a stream whose key was revoked, or whose principal lost
   * its permission, in another process. The event streams' keep-alive interval.
   */
  recheckIntervalMs: number;
  /** Called when a re-check fails for another reason than a refused credential (kept open). */
  onRecheckError?: (error: unknown) => void;
}

// setTimeout's limit (about 24.8 days): a later expiry is left to the periodic re-check.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Watched {
  source: CredentialSource;
  principal: Principal;
  /** Each lease, with the permissions it needs (none: the credential alone). */
  leases: Map<AbortController, readonly Permission[]>;
  expiryTimer: NodeJS.Timeout | undefined;
  checking: boolean;
}

/** The credential a request presented, as one string (the map key of its watch). */
function credentialKey(source: CredentialSource): string {
  return JSON.stringify([source.authorization ?? null, source['x-api-key'] ?? null]);
}

/** Creates the watch; its timers are unref'd and only run while something is watched. */
export function createCredentialWatch(options: CredentialWatchOptions): CredentialWatch {
  const watched = new Map<string, Watched>();
  let interval: NodeJS.Timeout | undefined;

  function end(key: string, entry: Watched): void {
    if (watched.get(key) === entry) watched.delete(key);
    clearTimeout(entry.expiryTimer);
    for (const lease of entry.leases.keys()) lease.abort();
    entry.leases.clear();
    stopIntervalIfIdle();
  }

  /** Ends the leases one of whose permissions `principal` (as just read again) no longer holds. */
  function endUnpermitted(key: string, entry: Watched, principal: Principal): void {
    for (const [lease, permissions] of entry.leases) {
      if (permissions.every((permission) => hasPermission(principal.roles, permission))) continue;
      entry.leases.delete(lease);
      lease.abort();
    }
    if (entry.leases.size === 0) end(key, entry);
  }

  function stopIntervalIfIdle(): void {
    if (watched.size > 0 || interval === undefined) return;
    clearInterval(interval);
    interval = undefined;
  }

  async function recheck(key: string, entry: Watched): Promise<void> {
    if (entry.checking) return;
    entry.checking = true;
    try {
      const principal = await options.authenticator.authenticate(entry.source, { fresh: true });
      if (principal.id !== entry.principal.id || principal.tenantId !== entry.principal.tenantId) {
        end(key, entry);
      } else endUnpermitted(key, entry, principal);
    } catch (error) {
      // Refused (revoked, expired, unknown): ended. An outage (503) refuses nothing: kept open.
      if (error instanceof AppError && readAuthFailure(error) !== null) end(key, entry);
      else options.onRecheckError?.(error);
    } finally {
      entry.checking = false;
    }
  }

  // One credential at a time: a sweep over thousands of open streams must not take the whole
  // database pool from the requests. A revocation during a sweep asks for one more pass.
  let sweeping = false;
  let sweepAgain = false;
  async function sweep(): Promise<void> {
    if (sweeping) {
      sweepAgain = true;
      return;
    }
    sweeping = true;
    try {
      do {
        sweepAgain = false;
        for (const [key, entry] of [...watched]) if (watched.get(key) === entry) await recheck(key, entry);
      } while (sweepAgain);
    } finally {
      sweeping = false;
    }
  }
  const recheckAll = (): void => void sweep();

  const unsubscribeKeys = onApiKeyRevoked(recheckAll);
  const unsubscribeBindings = onRoleBindingRevoked(recheckAll);

  return {
    watch(source, principal, permissions = []) {
      const key = credentialKey(source);
      let entry = watched.get(key);
      if (entry === undefined) {
        const created: Watched = {
          source: { ...source },
          principal,
          leases: new Map(),
          expiryTimer: undefined,
          checking: false,
        };
        const expiresAtMs = principal.expiresAtMs;
        if (expiresAtMs !== undefined) {
          const delay = expiresAtMs - Date.now();
          if (delay <= MAX_TIMER_MS) {
            created.expiryTimer = setTimeout(() => end(key, created), Math.max(0, delay));
            created.expiryTimer.unref();
          }
        }
        entry = created;
        watched.set(key, entry);
      }
      if (interval === undefined) {
        interval = setInterval(recheckAll, options.recheckIntervalMs);
        interval.unref();
      }
      const lease = new AbortController();
      entry.leases.set(lease, permissions);
      const owner = entry;
      return {
        signal: lease.signal,
        release() {
          owner.leases.delete(lease);
          if (owner.leases.size === 0 && watched.get(key) === owner) {
            watched.delete(key);
            clearTimeout(owner.expiryTimer);
            stopIntervalIfIdle();
          }
        },
      };
    },
    size: () => watched.size,
    close() {
      unsubscribeKeys();
      unsubscribeBindings();
      clearInterval(interval);
      interval = undefined;
      for (const entry of watched.values()) clearTimeout(entry.expiryTimer);
      watched.clear();
    },
  };
}
