// Bounded capacity of /mcp in one process (open MCP sessions, resumed streams): a total cap and a
// per-tenant cap, so one tenant cannot take every slot and lock the others out.
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
}

/** Gives a slot back; calling it again does nothing, so every close path may call it. */
export type ReleaseSlot = () => void;

export interface CapacitySlots {
  /**
   * Takes a slot for `tenantId`, synchronously: callers reserve before their first `await`, so
   * concurrent requests cannot all pass the check and overshoot a cap. Throws 429
   * RESOURCE_LIMIT_EXCEEDED naming the limit reached.
   */
  reserve(tenantId: string): ReleaseSlot;
}

function limitExceeded(what: string, limit: SlotLimit, scope: string): AppError {
  return new AppError(
    'RESOURCE_LIMIT_EXCEEDED',
    `Too many ${what} ${scope} (${limit.setting} = ${limit.max}); close one or retry later`,
    { details: { setting: limit.setting, limit: limit.max } },
  );
}

/** Creates an empty set of slots with the given caps. */
export function createCapacitySlots(options: CapacitySlotsOptions): CapacitySlots {
  const heldByTenant = new Map<string, number>();
  let held = 0;
  return {
    reserve(tenantId) {
      // The tenant's own cap first: a tenant at its cap is told so, even when the process is full too.
      const tenantHeld = heldByTenant.get(tenantId) ?? 0;
      if (tenantHeld >= options.perTenant.max) {
        throw limitExceeded(options.what, options.perTenant, 'for this tenant');
      }
      if (held >= options.total.max) throw limitExceeded(options.what, options.total, 'on this server');
      held += 1;
      heldByTenant.set(tenantId, tenantHeld + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held -= 1;
        const left = (heldByTenant.get(tenantId) ?? 1) - 1;
        if (left > 0) heldByTenant.set(tenantId, left);
        else heldByTenant.delete(tenantId);
      };
    },
  };
}
