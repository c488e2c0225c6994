// A session event whose stored data cannot be read (a hand edit of events.data gone wrong: JSON cut
// short, JSON that is no object) is read with `data: {}`, as a session's damaged metadata is, and a
// warning is logged once per session. A JSON.parse failure there made every JSON page of the
// session's events holding it a 500 (both orders), and its event stream end at that event, for
// good: `maos sessions follow` and the console never reached the end of the log. A retry, which reads
// the original's last status change to tell whether it ended waiting for approval, failed with a
// 500 on such an event; it now reads it as telling nothing, as it does an event removed by retention.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { readSseFrames } from '../fixtures/sse.ts';

interface Event {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

async function checkDamagedEvents({ server, execute, lines }: DamageableServer) {
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'events damaged by hand',
      agents: [{ name: 'only', role: 'engineer', task: 't', runner: 'ok' }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  await waitForSession(server.url, id);
  const intact = await requestJson<{ items: Event[] }>(`${server.url}/v1/sessions/${id}/events?limit=100`);
  const events = intact.body.items;
  assert.ok(events.length >= 4, JSON.stringify(events));
  assert.equal(events.at(-1)?.type, 'session.finished');
  const [cut, notObject] = [events[1]!.seq, events[2]!.seq];
  await execute('update events set data = $1 where session_id = $2 and seq = $3', [
    '{"from": "pend',
    id,
    cut,
  ]);
  await execute('update events set data = $1 where session_id = $2 and seq = $3', ['[1, 2]', id, notObject]);
  const expected = events.map((event) =>
    event.seq === cut || event.seq === notObject ? { ...event, data: {} } : event,
  );

  const ascending = await requestJson<{ items: Event[] }>(`${server.url}/v1/sessions/${id}/events?limit=100`);
  assert.equal(ascending.status, 200, JSON.stringify(ascending.body));
  assert.deepEqual(ascending.body.items, expected);
  const descending = await requestJson<{ items: Event[] }>(
    `${server.url}/v1/sessions/${id}/events?order=desc&limit=100`,
  );
  assert.equal(descending.status, 200, JSON.stringify(descending.body));
  assert.deepEqual(descending.body.items, [...expected].reverse());
  // The stream replays past them to session.finished, and ends.
  const frames = await readSseFrames(`${server.url}/v1/sessions/${id}/events`, {});
  assert.deepEqual(
    frames.filter((frame) => frame.event !== undefined).map((frame) => Number(frame.id)),
    expected.map((event) => event.seq),
  );
  assert.deepEqual(JSON.parse(frames.find((frame) => Number(frame.id) === cut)?.data ?? '').data, {});

  const warnings = lines
    .filter((line) => line.sessionId === id && typeof line.column === 'string')
    .map((line) => [line['log.level'], line.column]);
  assert.deepEqual(warnings, [['warn', 'events.data']]);
}

async function checkRetryOverDamagedStatus({ server, execute }: DamageableServer) {
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'fails once',
      agents: [{ name: 'only', role: 'engineer', task: 't', runner: 'fail' }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  assert.equal((await waitForSession(server.url, id)).status, 'failed');
  await execute("update events set data = $1 where session_id = $2 and type = 'session.status'", [
    '{"from": "runn',
    id,
  ]);
  const retried = await requestJson<{ id: string; retryOf: string }>(
    `${server.url}/v1/sessions/${id}/retry`,
    {
      method: 'POST',
      body: {},
    },
  );
  assert.equal(retried.status, 201, JSON.stringify(retried.body));
  assert.equal(retried.body.retryOf, id);
}

for (const store of DAMAGEABLE_STORES) {
  describe(`a session event with damaged stored data (${store.name})`, { timeout: 60_000 }, () => {
    const stack = useDamageableServer(store.kind);
    test('is read with data {}, on every page and on the stream, and a warning once', async () => {
      await checkDamagedEvents(stack);
    });
    test('a session whose last status change is damaged can be retried', async () => {
      await checkRetryOverDamagedStatus(stack);
    });
  });
}
