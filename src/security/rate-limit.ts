// Request rate limits per principal, per tenant and per anonymous client IP (rate-limiter-flexible,
// in-memory store), reported with the IETF RateLimit-Policy / RateLimit header fields.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { z } from 'zod';
import type { rateLimitConfigSchema } from '../config/security-schema.ts';
import { AppError } from '../errors/app-error.ts';

export type RateLimitConfig = z.infer<typeof rateLimitConfigSchema>;

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

/**
 * Creates the limiter. The memory store is per process: with N replicas the effective limit is up to
 * N× the configured one until the database-backed store (cluster mode) replaces it.
 */
export function createRateLimiter(config: RateLimitConfig): RateLimiter {
  const make = (name: PolicyState['name'], limit: { points: number; windowSeconds: number }) => ({
    name,
    limit,
    limiter: new RateLimiterMemory({
      keyPrefix: `maos-${name}`,
      points: limit.points,
      duration: limit.windowSeconds,
    }),
  });
  const principal = make('principal', config.principal);
  const tenant = make('tenant', config.tenant);
  const anonymous = make('anonymous', config.anonymous);

  return {
    async consume(subject) {
      if (!config.enabled) return { allowed: true, retryAfterSeconds: 0, headers: {}, policies: [] };
      const charges: { policy: typeof principal; key: string }[] = [];
      if (subject.tenantId !== undefined) charges.push({ policy: tenant, key: subject.tenantId });
      if (subject.principalId !== undefined) {
        charges.push({ policy: principal, key: `${subject.tenantId ?? ''}\u0000${subject.principalId}` });
      }
      if (charges.length === 0) charges.push({ policy: anonymous, key: subject.ip ?? 'unknown' });
      const policies: PolicyState[] = [];
      let allowed = true;
      let retryAfterMs = 0;
      for (const { policy, key } of charges) {
        let res: RateLimiterRes;
        try {
          res = await policy.limiter.consume(key, 1);
        } catch (rejection) {
          if (!(rejection instanceof RateLimiterRes)) {
            throw new AppError('INTERNAL', 'Rate limiter failed', { cause: rejection });
          }
          res = rejection;
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
