// What the `observer.node` of the audit records this process writes says (`audit.observerNode`):
// its host name, a keyed pseudonym of it that only the holder of the signing key maps back, or null.
import { createHmac, hkdfSync, type KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import { VERSION } from '../../version.ts';
import type { AuditObserver } from './audit-record.ts';

/**
 * `hostname`: the host name (a replica's pod name), readable by every tenant's auditors in their
 * records; `pseudonym`: `pseudonym:<16 hex>`, an HMAC of the host name under a key derived from the
 * checkpoint signing key; `omit`: null.
 */
export type ObserverNodeMode = 'hostname' | 'pseudonym' | 'omit';

/** What the log writes when nothing is configured: tenants' auditors learn no host names. */
export const DEFAULT_OBSERVER_NODE_MODE: ObserverNodeMode = 'pseudonym';

/** Starts every pseudonym; a host name never holds a colon (RFC 1123), so the two never mix. */
export const NODE_PSEUDONYM_PREFIX = 'pseudonym:';

// Domain separation: the HMAC key is derived from the Ed25519 seed, never the seed itself, so the
// pseudonyms say nothing about the key that signs the checkpoints. `v1` names this derivation.
const PSEUDONYM_KEY_INFO = 'maos audit observer.node pseudonym v1';

// 64 bits: a handful of hosts never collide (that takes about 2^32 of them), and the length does
// not protect the name (the 256-bit key does: without it, guessing `maos-0`, `maos-1` … tells nothing).
const PSEUDONYM_HEX_CHARS = 16;

/**
 * The pseudonym of host `host` under the checkpoint signing key `signingKey` (an Ed25519 private
 * key): `pseudonym:` and the first 16 hex digits of HMAC-SHA-256(HKDF-SHA-256(seed), host in lower
 * case). The same host and key always give the same pseudonym, so every record of a replica names it
 * alike and the operator finds it again (`maos audit node-pseudonym`); host names are compared
 * without case (RFC 4343), as DNS does.
 */
export function nodePseudonym(host: string, signingKey: KeyObject): string {
  const seed = signingKey.export({ format: 'jwk' }).d;
  if (typeof seed !== 'string') throw new TypeError('the audit signing key is not a private key');
  const key = Buffer.from(
    hkdfSync('sha256', Buffer.from(seed, 'base64url'), Buffer.alloc(0), PSEUDONYM_KEY_INFO, 32),
  );
  const mac = createHmac('sha256', key).update(host.toLowerCase(), 'utf8').digest('hex');
  return `${NODE_PSEUDONYM_PREFIX}${mac.slice(0, PSEUDONYM_HEX_CHARS)}`;
}

/**
 * The `observer.node` of this process's records in `mode`. `pseudonym` needs the key that signs this
 * log's checkpoints; a process without one (a CLI command run without the server's key) names no
 * node (null) rather than its host name.
 */
export function observerNodeOf(
  mode: ObserverNodeMode,
  signingKey: KeyObject | null,
  host: string = hostname(),
): string | null {
  switch (mode) {
    case 'hostname':
      return host;
    case 'pseudonym':
      return signingKey ? nodePseudonym(host, signingKey) : null;
    case 'omit':
      return null;
  }
}

/**
 * This process as the observer of what it records: service `maos`, its version, and its node as
 * `mode` says (observerNodeOf).
 */
export function localAuditObserver(mode: ObserverNodeMode, signingKey: KeyObject | null): AuditObserver {
  return { service: 'maos', version: VERSION, node: observerNodeOf(mode, signingKey) };
}
