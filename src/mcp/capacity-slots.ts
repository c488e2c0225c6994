// Bounded capacity of /mcp in one process (open MCP sessions, resumed streams): a total cap, a
// per-tenant cap, so one tenant cannot take every slot and lock the others out, and a per-principal
// cap within it, so one caller (a single viewer key) cannot lock out the rest of its tenant.
import { AppError } from '../errors/app-error.ts';

/** A cap and the config key that sets it, named in the 429 so an operator knows what to raise. */
export interface SlotLimit {
  max: number;
  setting: string;
}

export interface CapacitySlotsOptions {
  /** What the slots hold, for error messages (e.g. "open MCP sessions"). */
  what: string;
  total: SlotLimit;
  perTenant: SlotLimit;
  perPrincipal: SlotLimit;
  /** Called once for each refusal, by any cap, before the 429 is thrown (metrics). */
  onRefused?: () => void;
}

/** Gives a slot back; calling it again does nothing, so every close path may call it. */
export type ReleaseSlot = () => void;

export interface CapacitySlots {
  /**
   * Takes a slot for `principalId` of `tenantId`, synchronously: callers reserve before their first
   * `await`, so concurrent requests cannot all pass the check and overshoot a cap. Throws 429
   * RESOURCE_LIMIT_EXCEEDED naming the limit reached, with CAPACITY_RETRY_AFTER_SECONDS.
   */
  reserve(tenantId: string, principalId: string): ReleaseSlot;
}

/**
 * Retry-After of a refusal by any cap. A slot frees when a client ends its MCP session or stream,
 * on no schedule the server knows, or when the idle sweep closes a session unused for
 * `mcp.sessionIdleSeconds` (swept at least once a minute); announcing either would be a guess.
 * 10 s is a polite poll, as for the REST event-stream caps, and a refusal costs the server little.
 */
export const CAPACITY_RETRY_AFTER_SECONDS = 10;

function limitExceeded(what: string, limit: SlotLimit, scope: string): AppError {
  return new AppError(
    'RESOURCE_LIMIT_EXCEEDED',
    `Too many ${what} ${scope} (${limit.setting} = ${limit.max}); close one or retry later`,
    {
      details: { setting: limit.setting, limit: limit.max },
      retryAfterSeconds: CAPACITY_RETRY_AFTER_SECONDS,
    },
  );
}

/** Creates an empty set of slots with the given caps. */
export function createCapacitySlots(options: CapacitySlotsOptions): CapacitySlots {
  const heldByTenant = new Map<string, number>();
  // Keyed by tenant and principal (JSON: no separator a principal id could contain).
  const heldByPrincipal = new Map<string, number>();
  let held = 0;
  const give = (counts: Map<string, number>, key: string) => {
    const left = (counts.get(key) ?? 1) - 1;
    if (left > 0) counts.set(key, left);
    else counts.delete(key);
  };
  const refuse = (limit: SlotLimit, scope: string): AppError => {
    options.onRefused?.();
    return limitExceeded(options.what, limit, scope);
  };
  return {
    reserve(tenantId, principalId) {
      // The tenant's own cap first: a tenant at its cap is told so, even when the process is full too.
      const tenantHeld = heldByTenant.get(tenantId) ?? 0;
      if (tenantHeld >= options.perTenant.max) throw refuse(options.perTenant, 'for this tenant');
      const principalKey = JSON.stringify([tenantId, principalId]);
      const principalHeld = heldByPrincipal.get(principalKey) ?? 0;
      if (principalHeld >= options.perPrincipal.max) throw refuse(options.perPrincipal, 'for this caller');
      if (held >= options.total.max) throw refuse(options.total, 'on this server');
      held += 1;
      heldByTenant.set(tenantId, tenantHeld + 1);
      heldByPrincipal.set(principalKey, principalHeld + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held -= 1;
        give(heldByTenant, tenantId);
        give(heldByPrincipal, principalKey);
      };
    },
  };
}
