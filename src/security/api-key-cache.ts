// Short-lived memory of verified API keys, so a busy key does not cost two database reads per
// request. Bounded staleness: an entry is reused for at most API_KEY_CACHE_TTL_MS, and a revocation
// made in this process drops every entry at once (see api-keys.ts revokeApiKey).
import { timingSafeEqual } from 'node:crypto';
import { apiKeyRevocationEpoch, hashSecretBytes, parseApiKey } from './api-keys.ts';
import type { Principal } from './principal.ts';

/**
 * How long a verified key (hash, expiry, roles and role bindings) is trusted without reading the
 * database. Why 5 s: a key revoked by another process (the `maos keys revoke` CLI, another replica)
 * or a changed role binding takes effect within this time, which is short next to how long a leaked
 * key takes to be noticed, while a busy key still skips the reads on nearly every request.
 */
export const API_KEY_CACHE_TTL_MS = 5000;

// Why a cap: memory stays bounded however many distinct valid keys call; beyond it, keys are
// simply verified against the database every time.
const MAX_ENTRIES = 10_000;

interface Entry {
  hash: Buffer;
  principal: Principal;
  /** Expiry of the key itself (ms since epoch), null = never. */
  keyExpiresAtMs: number | null;
  /** The entry is not used at or after this time. */
  cachedUntilMs: number;
  /** apiKeyRevocationEpoch() before the key was read: a revocation since then voids the entry. */
  epoch: number;
}

export interface ApiKeyCache {
  /** The principal of a presented key verified less than the TTL ago, or undefined (verify it). */
  lookup(presented: string, nowMs: number): Principal | undefined;
  /** Remembers a key just verified; `epoch` is apiKeyRevocationEpoch() read before the verification. */
  store(
    presented: string,
    entry: { principal: Principal; keyExpiresAt: string | null; epoch: number },
    nowMs: number,
  ): void;
  /** Drops the entry of a key found refused (e.g. revoked by another process) by a fresh read. */
  forget(presented: string): void;
}

/** Creates an empty cache; `ttlMs` 0 turns it off. */
export function createApiKeyCache(ttlMs: number = API_KEY_CACHE_TTL_MS): ApiKeyCache {
  const entries = new Map<string, Entry>();
  return {
    lookup(presented, nowMs) {
      if (ttlMs <= 0) return undefined;
      const parsed = parseApiKey(presented);
      if (!parsed) return undefined;
      const entry = entries.get(parsed.prefix);
      if (!entry) return undefined;
      if (entry.epoch !== apiKeyRevocationEpoch() || nowMs >= entry.cachedUntilMs) {
        entries.delete(parsed.prefix);
        return undefined;
      }
      // Same check as the database path: the secret's hash, compared in constant time.
      if (!timingSafeEqual(entry.hash, hashSecretBytes(parsed.secret))) return undefined;
      if (entry.keyExpiresAtMs !== null && entry.keyExpiresAtMs <= nowMs) return undefined;
      return { ...entry.principal, roles: [...entry.principal.roles] };
    },
    store(presented, { principal, keyExpiresAt, epoch }, nowMs) {
      if (ttlMs <= 0) return;
      const parsed = parseApiKey(presented);
      if (!parsed) return;
      if (entries.size >= MAX_ENTRIES && !entries.has(parsed.prefix)) {
        // Drop the oldest entry (Map keeps insertion order).
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(parsed.prefix, {
        hash: hashSecretBytes(parsed.secret),
        principal: { ...principal, roles: [...principal.roles] },
        keyExpiresAtMs: keyExpiresAt === null ? null : Date.parse(keyExpiresAt),
        cachedUntilMs: nowMs + ttlMs,
        epoch,
      });
    },
    forget(presented) {
      const parsed = parseApiKey(presented);
      if (parsed) entries.delete(parsed.prefix);
    },
  };
}
