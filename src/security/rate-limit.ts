// Request rate limits per principal, per tenant and per anonymous client IP (rate-limiter-flexible),
// reported with the IETF RateLimit-Policy / RateLimit header fields. On SQLite the counters live in
// process memory (one process owns the database); on PostgreSQL they live in the `rate_limits` table,
// so every replica charges the same counters.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { z } from 'zod';
import type { rateLimitConfigSchema } from '../config/security-schema.ts';
import { AppError } from '../errors/app-error.ts';

export type RateLimitConfig = z.infer<typeof rateLimitConfigSchema>;

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
  /** Seconds until a retry can succeed (for Retry-After); 0 when allowed. */
  retryAfterSeconds: number;
  /** Header fields to add to the response (also on 429). */
  headers: Record<string, string>;
  policies: PolicyState[];
}

export interface RateLimiter {
  /** Charges one request to the subject's counters and says whether it may proceed. */
  consume(subject: RateLimitSubject): Promise<RateLimitDecision>;
}

export interface RateLimiterOptions {
  /**
   * PostgreSQL pool of the store: counters are shared by every replica through the `rate_limits`
   * table. Absent (SQLite): per-process memory counters.
   */
  pool?: pg.Pool;
  /**
   * Called when the shared store fails (database unreachable). The request is then charged to a
   * per-process memory counter with the same limits instead of failing.
   */
  onStoreError?: (error: unknown) => void;
}

type LimiterName = PolicyState['name'];

interface Policy {
  name: LimiterName;
  limit: { points: number; windowSeconds: number };
  limiter: RateLimiterMemory | RateLimiterPostgres;
}

/**
 * Creates the limiter. With a pool, each counter is one row of `rate_limits` updated by an atomic
 * upsert, and a memory limiter with the same limits insures it: while PostgreSQL is unreachable the
 * limits still hold per replica (up to N× cluster-wide) and no request fails because of the limiter.
 */
export function createRateLimiter(config: RateLimitConfig, options: RateLimiterOptions = {}): RateLimiter {
  const make = (name: LimiterName, limit: { points: number; windowSeconds: number }): Policy => {
    const base = { keyPrefix: `maos-${name}`, points: limit.points, duration: limit.windowSeconds };
    if (!options.pool) return { name, limit, limiter: new RateLimiterMemory(base) };
    return {
      name,
      limit,
      limiter: new RateLimiterPostgres({
        ...base,
        storeClient: reportingClient(options.pool, options.onStoreError),
        storeType: 'client',
        tableName: RATE_LIMIT_TABLE,
        // Created by our migration; the library must not run DDL at start (or race other replicas).
        tableCreated: true,
        // Expired rows are removed by the retention job (single-flight), not by a timer per replica.
        clearExpiredByTimeout: false,
        insuranceLimiter: new RateLimiterMemory(base),
      }),
    };
  };
  const principal = make('principal', config.principal);
  const tenant = make('tenant', config.tenant);
  const anonymous = make('anonymous', config.anonymous);

  return {
    async consume(subject) {
      if (!config.enabled) return { allowed: true, retryAfterSeconds: 0, headers: {}, policies: [] };
      const charges: { policy: Policy; key: string }[] = [];
      if (subject.tenantId !== undefined)
        charges.push({ policy: tenant, key: counterKey([subject.tenantId]) });
      if (subject.principalId !== undefined) {
        charges.push({ policy: principal, key: counterKey([subject.tenantId ?? '', subject.principalId]) });
      }
      if (charges.length === 0)
        charges.push({ policy: anonymous, key: counterKey([subject.ip ?? 'unknown']) });
      // Charged concurrently: with the shared store each charge is a round trip to PostgreSQL.
      const outcomes = await Promise.all(charges.map(({ policy, key }) => charge(policy, key)));
      const policies: PolicyState[] = [];
      let allowed = true;
      let retryAfterMs = 0;
      for (const [index, { res, refused }] of outcomes.entries()) {
        const policy = charges[index]!.policy;
        if (refused) {
          allowed = false;
          retryAfterMs = Math.max(retryAfterMs, res.msBeforeNext);
        }
        policies.push({
          name: policy.name,
          quota: policy.limit.points,
          windowSeconds: policy.limit.windowSeconds,
          remaining: Math.max(0, res.remainingPoints),
          resetSeconds: Math.max(0, Math.ceil(res.msBeforeNext / 1000)),
        });
      }
      return {
        allowed,
        retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000)),
        headers: formatRateLimitHeaders(policies),
        policies,
      };
    },
  };
}

/** Charges one point; a refusal comes back as `refused` with the counter state, any other error throws. */
async function charge(policy: Policy, key: string): Promise<{ res: RateLimiterRes; refused: boolean }> {
  try {
    return { res: await policy.limiter.consume(key, 1), refused: false };
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return { res: rejection, refused: true };
    throw new AppError('INTERNAL', 'Rate limiter failed', { cause: rejection });
  }
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
export function formatRateLimitHeaders(policies: readonly PolicyState[]): Record<string, string> {
  if (policies.length === 0) return {};
  return {
    'RateLimit-Policy': policies.map((p) => `"${p.name}";q=${p.quota};w=${p.windowSeconds}`).join(', '),
    RateLimit: policies.map((p) => `"${p.name}";r=${p.remaining};t=${p.resetSeconds}`).join(', '),
  };
}
