// An event stream replaying a long log (GET /v1/sessions/:id/events as SSE from the start) lets
// the event loop turn between its reads. On SQLite a page of events is read synchronously, and a
// client that takes what it is sent as fast as it comes (the socket never pushes back) kept the
// whole replay in one turn of the loop: tens of thousands of events written while every other
// request, stream and timer of the server waited (measured: 330 ms for 50,000 events).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../observability/logger.ts';
import { createFakeSessionService, type FakeSessionService } from '../fake-session-service.test-support.ts';
import { buildHttpServer } from '../server.ts';

/** More than two of the stream's reads (500 events each). */
const LINES = 1_200;

describe('event stream replay', () => {
  let service: FakeSessionService;
  let app: FastifyInstance;
  let id: string;
  /** Per read of the stream, whether the event loop turned since the stream's first read. */
  const turnedAtRead: boolean[] = [];

  before(async () => {
    service = createFakeSessionService();
    // Reads answered at once, as SQLite's are.
    const listEvents = service.listEvents.bind(service);
    let turned = false;
    service.listEvents = (actor, sessionId, afterSeq, limit) => {
      if (turnedAtRead.length === 0) setImmediate(() => (turned = true));
      turnedAtRead.push(turned);
      return listEvents(actor, sessionId, afterSeq, limit);
    };
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 100, sseKeepAliveSeconds: 15 } },
      service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: () => [],
    });
    const actor = { tenantId: 'default', principalId: 'p' };
    id = (await service.createSession(actor, { objective: 'long log' } as never)).session.id;
    for (let i = 0; i < LINES; i += 1) service.appendEvent(id, 'task.output', { line: `l${i}` });
    await service.cancelSession(actor, id);
  });
  after(async () => app.close());

  test('the loop turns between the reads of a replay', async () => {
    const response = await app.inject({
      method: 'GET',
      url: `/v1/sessions/${id}/events`,
      headers: { accept: 'text/event-stream' },
    });
    assert.equal(response.statusCode, 200);
    // session.created, the lines, session.finished: all sent, the last one ending the stream.
    assert.equal(response.body.match(/^id: /gm)?.length, LINES + 2);
    assert.match(response.body, /event: session\.finished/);
    assert.ok(turnedAtRead.length >= 3, `reads: ${turnedAtRead.length}`);
    assert.deepEqual(
      turnedAtRead.slice(1),
      turnedAtRead.slice(1).map(() => true),
    );
  });
});
