// The OpenAPI `webhooks` section says how each answer of a receiver is treated, as the delivery
// worker treats it (webhooks/delivery-worker.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeWebhooks } from './openapi-webhooks.ts';

test('a Retry-After is described as the worker reads it: bounded by the retry window, not by a day', () => {
  const webhooks = describeWebhooks() as Record<
    string,
    { post: { responses: Record<string, { description: string }> } }
  >;
  for (const [event, { post }] of Object.entries(webhooks)) {
    for (const status of ['429', '503']) {
      const description = post.responses[status]?.description ?? '';
      // The worker waits a Retry-After of any length up to the delivery's retry window, and gives the
      // delivery up when the window ends rather than wait past it; there is no cap of a day.
      assert.doesNotMatch(description, /at most a day/, `${event} ${status}`);
      assert.match(description, /retry window/, `${event} ${status}`);
      // One under a second (0, a date past) is ignored: the schedule's delay applies.
      assert.match(description, /under a second/, `${event} ${status}`);
    }
  }
});
