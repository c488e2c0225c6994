// Request rate limits per principal, per tenant and per anonymous client IP (rate-limiter-flexible),
// reported with the IETF RateLimit-Policy / RateLimit header fields. On SQLite the counters live in
// process memory (one process owns the database); on PostgreSQL they live in the `rate_limits` table,
// so every replica charges the same counters.
import { createHash } from 'node:crypto';
import { isIP, isIPv6 } from 'node:net';
import type pg from 'pg';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { z } from 'zod';
import type { rateLimitConfigSchema } from '../config/security-schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createWindowCounters } from './window-counters.ts';

export type RateLimitConfig = z.infer<typeof rateLimitConfigSchema>;

/**
 * Most networks the memory of charged networks holds (createChargedNetworks): about 170 bytes
 * each (IPv6 /64 keys), 1.7 MB in all. Past it, every request is pre-checked until the networks
 * pushed out would have expired.
 */
export const MAX_CHARGED_NETWORKS = 10_000;

/** The table the shared counters live in (created by migration 0008, never by the library). */
export const RATE_LIMIT_TABLE = 'rate_limits';

/** Longest counter key stored as is; longer ones are hashed (the table's key is varchar(255)). */
const MAX_PLAIN_KEY_CHARS = 200;

/** Which counters a request is charged to. */
export interface RateLimitSubject {
  principalId?: string;
  tenantId?: string;
  /** Used when the caller is not authenticated. */
  ip?: string;
}

export interface PolicyState {
  name: 'principal' | 'tenant' | 'anonymous';
  quota: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  /**
   * Seconds until a retry can succeed (for Retry-After): the latest reset of the counters with no
   * request left, so that both caps allow it then; 0 when allowed.
   */
  retryAfterSeconds: number;
  /** Header fields to add to the response (also on 429). */
  headers: Record<string, string>;
  policies: PolicyState[];
  /**
   * Refused, and the first refusal of a refusing counter in its window: the one the audit log
   * records. Later refusals in the same window are only counted (see http-security-plugin.ts).
   */
  firstRefusal?: boolean;
  /**
   * Set by consumeMore when the requests asked for are more than a limit's whole quota: they can
   * never be allowed at once, whatever the wait (nothing is charged).
   */
  exceedsQuota?: { name: LimiterName; quota: number; windowSeconds: number };
}

export interface RateLimiter {
  /** Charges one request to the subject's counters and says whether it may proceed. */
  consume(subject: RateLimitSubject): Promise<RateLimitDecision>;
  /**
   * Charges `points` more requests to the subject's counters after one already charged (the further
   * calls of a JSON-RPC batch whose POST `consume` charged), all or none: only if every counter has
   * that many left; otherwise none is charged and the decision refuses, with the Retry-After of the
   * counters that lack room. Each such refusal is a `firstRefusal` (audited): the request carrying
   * it was charged, so they stay within the limit. When the request's `1 + points` are more than a
   * counter's whole quota they can never be allowed: refused with `exceedsQuota`, nothing charged.
   */
  consumeMore(subject: RateLimitSubject, points: number): Promise<RateLimitDecision>;
  /**
   * True when the unauthenticated counter of `ip` has no request left in its window, charging
   * nothing: checked before a credential is verified, so an address over its failed-login limit
   * costs no key lookup or signature check. Never true when the shared store cannot be read. On the
   * shared store only networks this process has charged in the last window are read (see
   * createChargedNetworks); any other answers false at once. The read waits for this process's
   * charges of the network still in flight, so a failure it charged is counted.
   */
  isExhausted(ip: string): Promise<boolean>;
  /**
   * A number that changes whenever this process charges the unauthenticated counter of `ip`'s
   * network (a failed login or a refusal): taken before a credential is verified and compared
   * after, it tells whether a failure of the same network was charged meanwhile.
   */
  chargeMark(ip: string): number;
  /**
   * Waits until fewer than the unauthenticated limit's `points` credentials of `ip`'s network are
   * being verified in this process, and takes that turn; the returned function gives it back (once
   * the outcome is charged). Without it a burst of guesses sent at once would all be verified (a key
   * lookup or a signature check each) before the first failure is counted; with it, those beyond
   * the turns wait, and then find the address exhausted by the pre-check (isExhausted). Null when
   * the limiter is disabled (nothing to wait for).
   */
  admitCheck(ip: string): Promise<(() => void) | null>;
}

export interface RateLimiterOptions {
  /**
   * PostgreSQL pool of the store: counters are shared by every replica through the `rate_limits`
   * table. Absent (SQLite): per-process memory counters.
   */
  pool?: pg.Pool;
  /** Most networks remembered as charged (for tests). @defaultValue MAX_CHARGED_NETWORKS */
  maxChargedNetworks?: number;
  /**
   * Called when the shared store fails (database unreachable). The request is then charged to a
   * per-process memory counter with the same limits instead of failing.
   */
  onStoreError?: (error: unknown) => void;
}

type LimiterName = PolicyState['name'];

interface Limit {
  points: number;
  windowSeconds: number;
}

/** A counter's state after a charge. */
interface Charged {
  refused: boolean;
  remaining: number;
  msBeforeNext: number;
  /** Requests charged in the counter's window, this one included. */
  consumed: number;
  /** When the charged window ends (epoch ms; the shared store's, for its refund). */
  endsAtMs?: number;
}

/** Charges requests to a counter key; the shared store answers asynchronously, memory at once. */
interface Policy {
  name: LimiterName;
  limit: Limit;
  charge(key: string, points: number): Charged | Promise<Charged>;
  /** Takes back `points` requests `charged` to `key` just before (a batch refused whole). */
  refund(key: string, points: number, charged: Charged): void | Promise<void>;
  /** Requests charged to `key` in its current window, charging nothing. */
  peek(key: string): number | Promise<number>;
}

/**
 * Creates the limiter. Without a pool (SQLite) the counters are fixed windows in this process's
 * memory, charged synchronously (window-counters.ts). With a pool, each counter is one row of
 * `rate_limits` updated by an atomic upsert, and a memory limiter with the same limits insures it:
 * while PostgreSQL is unreachable the limits still hold per replica (up to N× cluster-wide) and no
 * request fails because of the limiter.
 */
export function createRateLimiter(config: RateLimitConfig, options: RateLimiterOptions = {}): RateLimiter {
  const make = (name: LimiterName, limit: Limit): Policy => {
    if (!options.pool) {
      const counters = createWindowCounters(limit.windowSeconds);
      // Timed by the monotonic clock: the counters are this process's alone, and a step of the wall
      // clock (NTP, a resumed VM) would otherwise stretch every open window by its length (an hour
      // back: callers refused for an hour, Retry-After 3660) or end them all at once (forward).
      return {
        name,
        limit,
        charge(key, points) {
          const { consumed, msBeforeNext } = counters.charge(key, performance.now(), points);
          return {
            refused: consumed > limit.points,
            remaining: limit.points - consumed,
            msBeforeNext,
            consumed,
          };
        },
        refund: (key, points) => counters.refund(key, performance.now(), points),
        peek: (key) => counters.peek(key, performance.now()),
      };
    }
    const pool = options.pool;
    const base = { keyPrefix: `maos-${name}`, points: limit.points, duration: limit.windowSeconds };
    const limiter = new RateLimiterPostgres({
      ...base,
      storeClient: reportingClient(pool, options.onStoreError),
      storeType: 'client',
      tableName: RATE_LIMIT_TABLE,
      // Created by our migration; the library must not run DDL at start (or race other replicas).
      tableCreated: true,
      // Expired rows are removed by the retention job (single-flight), not by a timer per replica.
      clearExpiredByTimeout: false,
      insuranceLimiter: new RateLimiterMemory(base),
    });
    return {
      name,
      limit,
      charge: (key, points) => chargeShared(limiter, key, points),
      // Between the charge and this refund, a request of the same counter may be refused for the
      // batch's points (a refused batch is rare; an allowed one is never refunded). The refund takes
      // the points back only from the window that was charged, still open: the library's reward of a
      // row whose window ended meanwhile would open a new one below zero, a gift of the refunded
      // requests. A failed or late refund keeps the charge: the caller's counter is then too high,
      // never too low, until its reset.
      refund: (key, points, charged) =>
        charged.endsAtMs === undefined
          ? undefined
          : pool
              .query({
                text: `UPDATE ${RATE_LIMIT_TABLE} SET points = points - $2
                  WHERE key = $1 AND expire > $3 AND expire < $4 AND points >= $2`,
                // A later window ends at least a whole window after the charged one.
                values: [
                  limiter.getKey(key),
                  points,
                  Date.now(),
                  charged.endsAtMs + (limit.windowSeconds * 1000) / 2,
                ],
              })
              .then(
                () => {},
                (error: unknown) => options.onStoreError?.(error),
              ),
      // The library answers a failed read from its insurance limiter; anything else: not exhausted
      // (the charge after a refused credential still limits the caller).
      peek: (key) =>
        limiter.get(key).then(
          (res) => res?.consumedPoints ?? 0,
          () => 0,
        ),
    };
  };
  const principal = make('principal', config.principal);
  const tenant = make('tenant', config.tenant);
  const anonymous = make('anonymous', config.anonymous);
  const charged = createChargedNetworks(
    config.anonymous.windowSeconds * 1000,
    options.maxChargedNetworks ?? MAX_CHARGED_NETWORKS,
  );
  // The unauthenticated charges of this process still on their way to the shared store, settled or
  // not, per counter key: a read of the counter waits for them, or it could answer before a failure
  // this process already charged (and noted) is counted.
  const pendingCharges = new Map<string, Promise<void>>();
  const trackCharge = (key: string, charge: Promise<unknown>): void => {
    const settled = charge.then(
      () => {},
      () => {},
    );
    const before = pendingCharges.get(key);
    const all = before ? Promise.all([before, settled]).then(() => {}) : settled;
    pendingCharges.set(key, all);
    all.then(() => {
      if (pendingCharges.get(key) === all) pendingCharges.delete(key);
    });
  };
  const checks = createCheckTurns(config.anonymous.points);
  // RateLimit-Policy depends only on which policies apply: built once per combination.
  const policyHeaders = new Map<string, string>();
  const policyHeaderOf = (policies: readonly Policy[]): string => {
    const names = policies.map((policy) => policy.name).join();
    let header = policyHeaders.get(names);
    if (header === undefined) {
      header = formatPolicyHeader(policies.map(({ name, limit }) => ({ name, ...limit })));
      policyHeaders.set(names, header);
    }
    return header;
  };

  const decide = (policies: readonly Policy[], outcomes: readonly Charged[]): RateLimitDecision => {
    const states: PolicyState[] = [];
    let allowed = true;
    let firstRefusal = false;
    for (let index = 0; index < outcomes.length; index++) {
      const outcome = outcomes[index] as Charged;
      const policy = policies[index] as Policy;
      if (outcome.refused) {
        allowed = false;
        if (outcome.consumed === policy.limit.points + 1) firstRefusal = true;
      }
      states.push({
        name: policy.name,
        quota: policy.limit.points,
        windowSeconds: policy.limit.windowSeconds,
        remaining: Math.max(0, outcome.remaining),
        resetSeconds: Math.max(0, Math.ceil(outcome.msBeforeNext / 1000)),
      });
    }
    return {
      allowed,
      retryAfterSeconds: allowed ? 0 : retryAfterSecondsOf(outcomes),
      headers: { 'RateLimit-Policy': policyHeaderOf(policies), RateLimit: formatStateHeader(states) },
      policies: states,
      ...(allowed ? {} : { firstRefusal }),
    };
  };

  return {
    async isExhausted(ip) {
      if (!config.enabled) return false;
      const key = counterKey([clientNetwork(ip)]);
      // Memory counters are read at no cost, and hold every charge there is.
      if (options.pool && !charged.suspects(key, Date.now())) return false;
      const pending = pendingCharges.get(key);
      if (pending) await pending;
      const consumed = await anonymous.peek(key);
      return consumed >= anonymous.limit.points;
    },
    chargeMark: (ip) => (config.enabled ? charged.mark(counterKey([clientNetwork(ip)])) : 0),
    admitCheck: async (ip) => (config.enabled ? checks.take(clientNetwork(ip)) : null),
    async consume(subject) {
      if (!config.enabled) return allowedUnlimited();
      const { policies, keys } = countersOf(subject);
      if (policies[0] === anonymous) {
        // Noted before the charge is answered: a request of the same network whose credential is
        // being checked meanwhile sees the mark change (see chargeMark).
        charged.note(keys[0] as string, Date.now());
      }
      const charges = policies.map((policy, index) => policy.charge(keys[index] as string, 1));
      const anonymousCharge = policies[0] === anonymous ? charges[0] : undefined;
      if (anonymousCharge instanceof Promise) trackCharge(keys[0] as string, anonymousCharge);
      // Memory counters answer at once; the shared store's charges run concurrently (a round trip
      // to PostgreSQL each).
      const outcomes = charges.some((outcome) => outcome instanceof Promise)
        ? await Promise.all(charges)
        : (charges as Charged[]);
      return decide(policies, outcomes);
    },
    async consumeMore(subject, points) {
      if (!config.enabled || points <= 0) return allowedUnlimited();
      const { policies, keys } = countersOf(subject);
      const tooSmall = policies.find((policy) => policy.limit.points < points + 1);
      if (tooSmall) {
        const { name, limit } = tooSmall;
        return {
          ...allowedUnlimited(),
          allowed: false,
          exceedsQuota: { name, quota: limit.points, windowSeconds: limit.windowSeconds },
        };
      }
      // Memory counters are charged and refunded synchronously: no other request sees the charge
      // of a batch that does not fit.
      const charges = policies.map((policy, index) => policy.charge(keys[index] as string, points));
      const outcomes = charges.some((outcome) => outcome instanceof Promise)
        ? await Promise.all(charges)
        : (charges as Charged[]);
      if (!outcomes.some((outcome) => outcome.refused)) return decide(policies, outcomes);
      const refunds = policies.map((policy, index) =>
        policy.refund(keys[index] as string, points, outcomes[index] as Charged),
      );
      if (refunds.some((refund) => refund instanceof Promise)) await Promise.all(refunds);
      // As the counters stand without the batch; the ones it did not fit decide when to retry.
      // (The shared store's `remaining` stops at 0: it is worked out from what was consumed.)
      const before = outcomes.map((outcome, index) => ({
        ...outcome,
        remaining: (policies[index] as Policy).limit.points - (outcome.consumed - points),
        consumed: outcome.consumed - points,
      }));
      // When to retry: the rule of a single request, over the counters as the batch left them (a
      // retry is its POST and these points again, so one the batch used up exactly has no room either).
      return {
        ...decide(policies, before),
        allowed: false,
        retryAfterSeconds: retryAfterSecondsOf(outcomes),
        firstRefusal: true,
      };
    },
  };

  /** The counters a subject is charged to, and their keys: its tenant's and its own, or its network's. */
  function countersOf(subject: RateLimitSubject): { policies: Policy[]; keys: string[] } {
    const policies: Policy[] = [];
    const keys: string[] = [];
    if (subject.tenantId !== undefined) {
      policies.push(tenant);
      keys.push(counterKey([subject.tenantId]));
    }
    if (subject.principalId !== undefined) {
      policies.push(principal);
      keys.push(counterKey([subject.tenantId ?? '', subject.principalId]));
    }
    if (policies.length === 0) {
      policies.push(anonymous);
      keys.push(counterKey([clientNetwork(subject.ip ?? 'unknown')]));
    }
    return { policies, keys };
  }
}

/**
 * Retry-After of a refused charge: once every counter the charge left without a point has reset,
 * the one that refused and any other it used up (refused or not). A retry at the first reset alone
 * would be refused by the other cap.
 */
function retryAfterSecondsOf(outcomes: readonly Charged[]): number {
  let retryAfterMs = 0;
  for (const outcome of outcomes) {
    if (outcome.remaining <= 0) retryAfterMs = Math.max(retryAfterMs, outcome.msBeforeNext);
  }
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/** The decision of a disabled limiter: allowed, no header fields. */
function allowedUnlimited(): RateLimitDecision {
  return { allowed: true, retryAfterSeconds: 0, headers: {}, policies: [] };
}

/**
 * Turns of credential verification per network, at most `width` at once; the others wait in line.
 * An entry lives only while a turn of its network is taken.
 */
export function createCheckTurns(width: number): { take(network: string): Promise<() => void> } {
  const networks = new Map<string, { taken: number; waiting: (() => void)[] }>();
  return {
    async take(network) {
      let entry = networks.get(network);
      if (entry === undefined) {
        entry = { taken: 0, waiting: [] };
        networks.set(network, entry);
      }
      const turns = entry;
      if (turns.taken < width) turns.taken += 1;
      // Handed over by the turn given back (taken stays counted).
      else await new Promise<void>((resolve) => turns.waiting.push(resolve));
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const next = turns.waiting.shift();
        if (next !== undefined) return next();
        turns.taken -= 1;
        if (turns.taken === 0) networks.delete(network);
      };
    },
  };
}

/** The networks this process charged to the unauthenticated counter in the last window. */
interface ChargedNetworks {
  /** Remembers a charge of `key` at `nowMs` (a failed login here, or a refusal). */
  note(key: string, nowMs: number): void;
  /** Whether `key`'s shared counter must be read before a credential of it is verified. */
  suspects(key: string, nowMs: number): boolean;
  /** Changes with every note of `key`, and when the memory drops it early (see chargeMark). */
  mark(key: string): number;
}

/**
 * What lets an authenticated request skip the read of the shared `rate_limits` table before its
 * credential is checked (a round trip to PostgreSQL per request, for addresses that never failed a
 * login): the counter is read only for networks this process charged (a failed login, or a refusal)
 * within the last window, since only those can be exhausted as far as it knows.
 *
 * Why the limit still holds: on the replica where the failures happen, every failure is noted here,
 * so once its network's counter is exhausted each further request is refused unchecked, as before.
 * A network exhausted on other replicas only is not read here until it is charged here: its first
 * credential is verified, then (a wrong one) charged, refused and noted, and from then until a
 * window after it, pre-checked. Each other replica thus verifies at most one credential per window
 * from a network already exhausted elsewhere (a note lasts a full window, longer than the counter's
 * window that held it): for guesses sent one after the other, `points + replicas - 1` per window
 * instead of `points`. Guesses sent to such a replica at once are checked together, but one accepted
 * is let through only if no failure of its network was charged here while it was checked
 * (chargeMark; the HTTP layer reads the counter otherwise), so a burst gains only the guesses
 * verified before its first wrong one.
 * A success never clears a note: a caller holding a valid key of its own could otherwise clear it
 * before each guess.
 *
 * Memory: at most `max` networks (IPv4 addresses or IPv6 /64s, the counters' keys), the least
 * recently charged dropped first; notes older than a window are dropped as new ones come. A network
 * dropped while still in its window would lose its pre-check, so until its note would have ended
 * every network is read (as before this memory existed): spraying failed logins from more networks
 * than `max` costs reads, never the limit.
 */
export function createChargedNetworks(windowMs: number, max: number): ChargedNetworks {
  // Insertion order is the order of the last charge; with one window length, also of expiry.
  const notes = new Map<string, { seq: number; expiresAtMs: number }>();
  let seq = 0;
  let dropped = 0;
  let readAllUntilMs = 0;
  return {
    note(key, nowMs) {
      notes.delete(key);
      notes.set(key, { seq: ++seq, expiresAtMs: nowMs + windowMs });
      for (const [oldest, note] of notes) {
        const expired = note.expiresAtMs <= nowMs;
        if (!expired && notes.size <= max) break;
        notes.delete(oldest);
        if (!expired) {
          dropped += 1;
          readAllUntilMs = Math.max(readAllUntilMs, note.expiresAtMs);
        }
      }
    },
    suspects(key, nowMs) {
      if (nowMs < readAllUntilMs) return true;
      const note = notes.get(key);
      return note !== undefined && note.expiresAtMs > nowMs;
    },
    // Absent: minus the drops so far, so a network noted and dropped between two marks still
    // changes its mark (notes are numbered from 1).
    mark: (key) => notes.get(key)?.seq ?? -dropped,
  };
}

/** Charges `points` in the shared store; a refusal is an outcome, any other error throws. */
async function chargeShared(limiter: RateLimiterPostgres, key: string, points: number): Promise<Charged> {
  try {
    const res = await limiter.consume(key, points);
    return {
      refused: false,
      remaining: res.remainingPoints,
      msBeforeNext: res.msBeforeNext,
      consumed: res.consumedPoints,
      endsAtMs: Date.now() + res.msBeforeNext,
    };
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) {
      return {
        refused: true,
        remaining: rejection.remainingPoints,
        msBeforeNext: rejection.msBeforeNext,
        consumed: rejection.consumedPoints,
        endsAtMs: Date.now() + rejection.msBeforeNext,
      };
    }
    throw new AppError('INTERNAL', 'Rate limiter failed', { cause: rejection });
  }
}

/**
 * The network an unauthenticated caller's counter is kept for: its IPv4 address, or the /64 prefix
 * of its IPv6 address. One IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so a
 * counter per address would let it take a fresh one for every request and never be limited.
 */
export function clientNetwork(ip: string): string {
  const address = withoutPort(ip);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (isIPv6(address)) return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
  return address;
}

/**
 * `ip` without the port a proxy may forward with it (Azure Application Gateway writes
 * `X-Forwarded-For: 203.0.113.9:51234`, or `[2001:db8::1]:51234`; IIS/ARR `::ffff:203.0.113.9:51234`):
 * the port is the client connection's, a new one with each connection, and a counter per port
 * limited nothing. An address as it stands is kept whole (`::1`, `2001:db8::1:443`: no reading tells
 * an IPv6 address's last group from a port without brackets); a string that is an address only
 * without its last `:digits` (an IPv4 or IPv4-mapped address, a fifth digit, a ninth group) loses them.
 */
function withoutPort(ip: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(ip);
  if (bracketed) return bracketed[1] as string;
  if (isIP(ip) !== 0) return ip;
  const withPort = /^(.+):\d{1,5}$/.exec(ip);
  return withPort && isIP(withPort[1] as string) !== 0 ? (withPort[1] as string) : ip;
}

/** The eight hextets of an IPv6 address (with `::` expanded; a zone id dropped). */
function expandIPv6(ip: string): string[] {
  const [head = '', tail] = (ip.split('%')[0] as string).toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: Math.max(0, 8 - left.length - right.length) }, () => '0');
  return [...left, ...zeros, ...right].map((hextet) => hextet.replace(/^0+(?=.)/, ''));
}

/**
 * The stored key of a counter: its parts URI-encoded and joined with `/` (no NUL, which PostgreSQL
 * text cannot hold, and no ambiguity between parts); hashed when too long for the key column.
 */
export function counterKey(parts: readonly string[]): string {
  const plain = parts.map((part) => encodeURIComponent(part)).join('/');
  if (plain.length <= MAX_PLAIN_KEY_CHARS) return plain;
  return `sha256:${createHash('sha256').update(plain).digest('hex')}`;
}

/** The pool as the library's "client" store type, reporting every failed query before it is rethrown. */
function reportingClient(pool: pg.Pool, onError: ((error: unknown) => void) | undefined) {
  return {
    query(query: pg.QueryConfig) {
      return pool.query(query).catch((error: unknown) => {
        onError?.(error);
        throw error;
      });
    },
  };
}

/**
 * draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "tenant";q=3000;w=60, …` and
 * `RateLimit: "tenant";r=2999;t=60, …` (RFC 8941 structured-field Lists).
 */
function formatPolicyHeader(policies: readonly ({ name: LimiterName } & Limit)[]): string {
  return policies.map((p) => `"${p.name}";q=${p.points};w=${p.windowSeconds}`).join(', ');
}

function formatStateHeader(policies: readonly PolicyState[]): string {
  let header = '';
  for (const p of policies) {
    header += `${header === '' ? '' : ', '}"${p.name}";r=${p.remaining};t=${p.resetSeconds}`;
  }
  return header;
}
