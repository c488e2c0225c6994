import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EventDto } from '../../http/dto.ts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { carriedTaskCount } from './sessions.ts';

/** A context whose client answers listEvents with `events`, or fails with `error`. */
function contextWith(answer: { events?: EventDto[]; error?: Error }): Pick<CliContext, 'client'> {
  const client = {
    listEvents: async () => {
      if (answer.error) throw answer.error;
      return answer.events ?? [];
    },
  };
  return { client: () => client as unknown as ReturnType<CliContext['client']> };
}

const created = (data: Record<string, unknown>): EventDto => ({
  sessionId: 's',
  seq: 1,
  type: 'session.created',
  data,
  createdAt: '2026-01-01T00:00:00.000Z',
});

describe('maos sessions retry: the carried-over count', () => {
  test('is what the retry’s session.created event lists', async () => {
    const ctx = contextWith({ events: [created({ carried: ['plan', 'design'], rerun: ['build'] })] });
    assert.equal(await carriedTaskCount(ctx, 's'), 2);
  });

  test('is unknown (null) without that event, and when it cannot be read: the retry exists anyway', async () => {
    assert.equal(await carriedTaskCount(contextWith({ events: [] }), 's'), null);
    const unreachable = new CliError('UNREACHABLE', 'cannot reach MAOS', EXIT.UNREACHABLE);
    assert.equal(await carriedTaskCount(contextWith({ error: unreachable }), 's'), null);
  });
});
