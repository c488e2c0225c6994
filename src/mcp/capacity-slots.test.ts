// The slots of /mcp's bounded capacity (capacity-slots.ts): each cap refuses with 429
// RESOURCE_LIMIT_EXCEEDED naming its setting and the wait its Retry-After names; a slot given back
// is taken again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { CAPACITY_RETRY_AFTER_SECONDS, createCapacitySlots } from './capacity-slots.ts';

function slots() {
  return createCapacitySlots({
    what: 'open MCP sessions',
    total: { max: 3, setting: 'mcp.maxSessions' },
    perTenant: { max: 2, setting: 'mcp.maxSessionsPerTenant' },
    perPrincipal: { max: 1, setting: 'mcp.maxSessionsPerPrincipal' },
  });
}

/** The refusal `reserve` throws, checked to be a 429 naming `setting` with its Retry-After. */
function assertRefused(reserve: () => unknown, setting: string): void {
  assert.throws(reserve, (error: unknown) => {
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'RESOURCE_LIMIT_EXCEEDED');
    assert.equal(error.status, 429);
    assert.equal((error.details as { setting?: string }).setting, setting);
    assert.match(error.message, new RegExp(setting.replaceAll('.', '\\.')));
    assert.equal(error.retryAfterSeconds, CAPACITY_RETRY_AFTER_SECONDS);
    return true;
  });
}

describe('capacity slots', () => {
  test('every cap refuses with 429 naming its setting and a Retry-After', () => {
    const capacity = slots();
    capacity.reserve('acme', 'alice');
    assertRefused(() => capacity.reserve('acme', 'alice'), 'mcp.maxSessionsPerPrincipal');
    capacity.reserve('acme', 'bob');
    assertRefused(() => capacity.reserve('acme', 'carol'), 'mcp.maxSessionsPerTenant');
    capacity.reserve('globex', 'dave');
    assertRefused(() => capacity.reserve('initech', 'erin'), 'mcp.maxSessions');
  });

  test('a slot given back is taken again; giving it back twice frees no second one', () => {
    const capacity = slots();
    const release = capacity.reserve('acme', 'alice');
    release();
    release();
    const again = capacity.reserve('acme', 'alice');
    assertRefused(() => capacity.reserve('acme', 'alice'), 'mcp.maxSessionsPerPrincipal');
    again();
    capacity.reserve('acme', 'alice');
  });
});

test('each refusal, by any cap, is reported once (metrics); a slot taken is not', () => {
  let refusals = 0;
  const counted = createCapacitySlots({
    what: 'open MCP sessions',
    total: { max: 2, setting: 'mcp.maxSessions' },
    perTenant: { max: 2, setting: 'mcp.maxSessionsPerTenant' },
    perPrincipal: { max: 1, setting: 'mcp.maxSessionsPerPrincipal' },
    onRefused: () => {
      refusals += 1;
    },
  });
  counted.reserve('acme', 'alice');
  assert.equal(refusals, 0);
  assertRefused(() => counted.reserve('acme', 'alice'), 'mcp.maxSessionsPerPrincipal');
  assert.equal(refusals, 1);
  counted.reserve('acme', 'bob');
  assertRefused(() => counted.reserve('acme', 'carol'), 'mcp.maxSessionsPerTenant');
  assertRefused(() => counted.reserve('globex', 'dave'), 'mcp.maxSessions');
  assert.equal(refusals, 3);
});
