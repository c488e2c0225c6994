// An open event stream of a quiet session reads only the event list at each re-wake (on PostgreSQL
// every sweep, 2 × workers.pollIntervalMs, in case a notification was lost): listEvents reads the
// session row (tenant check, deletion) and the events. The session's status is looked up once, the
// first time the stream is caught up; a session that ends later ends the stream through its
// session.finished event. Counted statement by statement on the store, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import type { SessionService } from '../../src/engine/session-service.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

/** Resolves once `check()` holds; polls a condition, not a duration. */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface OpenStream {
  text(): string;
  ended: Promise<void>;
  close(): void;
}

function openStream(port: number, sessionId: string, headers: Record<string, string> = {}): OpenStream {
  let received = '';
  let close: () => void = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    const request = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `/v1/sessions/${sessionId}/events`,
        headers: { accept: 'text/event-stream', ...headers },
      },
      (response) => {
        assert.equal(response.statusCode, 200);
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          received += chunk;
        });
        response.on('end', () => resolve());
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    close = () => request.destroy();
  });
  return { text: () => received, ended, close };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`a quiet event stream's reads per re-wake (${backend})`, { timeout: 60_000 }, () => {
    let h: Harness;
    let app: FastifyInstance;
    let port: number;
    let dropDatabase: () => Promise<void> = async () => {};
    let statements = 0;
    // The statement count when each listEvents call of the stream began: one loop of the stream each.
    const listStarts: number[] = [];
    const wakers = new Set<() => void>();
    const counter: KyselyPlugin = {
      transformQuery: ({ node }) => node,
      transformResult: async ({ result }) => {
        statements += 1;
        return result;
      },
    };

    before(async () => {
      const database = backend === 'postgres' ? await createTestDatabase() : null;
      if (database) dropDatabase = () => database.drop();
      // Not started: nothing but the stream reads the store.
      h = await createHarness({
        start: false,
        runners: { ok: { command: ['true'] } },
        ...(database ? { storeUrl: database.url } : {}),
        engineDb: (db) => db.withPlugin(counter),
      });
      const inner = h.engine.service;
      // The engine's service as is, except that the test holds each stream's wake-up, to re-wake it
      // as the PostgreSQL sweep does (a wake-up with nothing new), and sees where each loop starts.
      const service: SessionService = {
        ...inner,
        listEvents: (actor, sessionId, afterSeq, limit) => {
          listStarts.push(statements);
          return inner.listEvents(actor, sessionId, afterSeq, limit);
        },
        watchEvents: (sessionId, onWake) => {
          wakers.add(onWake);
          const stop = inner.watchEvents(sessionId, onWake);
          return () => {
            wakers.delete(onWake);
            stop();
          };
        },
      };
      app = await buildHttpServer({
        config: { http: { bodyLimitBytes: 65_536, maxPageSize: 50, sseKeepAliveSeconds: 15 } },
        service,
        logger: createLogger({ level: 'silent' }),
        readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
        listRoles: () => [],
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      port = (app.server.address() as AddressInfo).port;
    });
    after(async () => {
      await app?.close();
      await h?.close();
      await dropDatabase();
    });

    const agents = [{ name: 'a', role: 'engineer', task: 'work', runner: 'ok' }];

    /** Re-wakes the stream (nothing changed) until it has begun `loops` more reads. */
    async function rewake(loops: number): Promise<void> {
      const target = listStarts.length + loops;
      while (listStarts.length < target) {
        const before = listStarts.length;
        for (const wake of wakers) wake();
        await until(() => listStarts.length > before, 'the stream to read again');
      }
    }

    test('one read (the event list) per re-wake, and the stream still ends at session.finished', async () => {
      const { session } = await h.engine.service.createSession(ACTOR, { objective: 'quiet', agents });
      listStarts.length = 0;
      const stream = openStream(port, session.id);
      try {
        await until(() => stream.text().includes('event: session.created'), 'the first event');
        await until(() => wakers.size === 1, 'the stream to watch its session');
        // The first loops: the events, then the first empty read (which looks the status up once).
        await rewake(2);
        const from = listStarts.length;
        await rewake(4);
        const starts = listStarts.slice(from, from + 4);
        const perLoop = starts.slice(1).map((count, i) => count - (starts[i] ?? 0));
        // Each loop reads the session row (tenant check, deletion) and the events: two statements,
        // not the status lookup (row, plan, tasks, agents: five more) on top.
        assert.deepEqual(perLoop, [2, 2, 2]);

        // The session ends: its session.finished event ends the stream.
        await h.engine.service.cancelSession(ACTOR, session.id);
        await stream.ended;
        assert.match(stream.text(), /event: session\.finished/);
      } finally {
        stream.close();
      }
      await until(() => wakers.size === 0, 'the stream to stop watching');
    });

    test('a stream resumed after the session ended still ends at once', async () => {
      const { session } = await h.engine.service.createSession(ACTOR, { objective: 'ended', agents });
      await h.engine.service.cancelSession(ACTOR, session.id);
      const events = await h.allEvents(session.id);
      const last = events.at(-1);
      assert.equal(last?.type, 'session.finished');
      const stream = openStream(port, session.id, { 'last-event-id': String(last.seq) });
      try {
        await stream.ended;
        assert.doesNotMatch(stream.text(), /^event:/m);
      } finally {
        stream.close();
      }
    });

    test('a stream resumed past the end of its log ends when the session ends', async () => {
      // A Last-Event-ID beyond the log (a client's of a database since restored from a backup, a
      // client's mistake): the session.finished the session gets has a seq the stream never reads,
      // so the stream learns of the end from the session's status, at each re-wake.
      const { session } = await h.engine.service.createSession(ACTOR, { objective: 'past', agents });
      const stream = openStream(port, session.id, { 'last-event-id': '1000' });
      let ended = false;
      void stream.ended.then(() => {
        ended = true;
      });
      try {
        await until(() => wakers.size === 1, 'the stream to watch its session');
        await rewake(3);
        await h.engine.service.cancelSession(ACTOR, session.id);
        for (const wake of wakers) wake();
        await until(() => ended, 'the stream to end');
        assert.doesNotMatch(stream.text(), /^event:/m);
      } finally {
        stream.close();
      }
      await until(() => wakers.size === 0, 'the stream to stop watching');
    });

    test('a session deleted while streamed ends its stream', async () => {
      // Only a finished session can be deleted, and its stream ends at session.finished first; so
      // the session is marked failed directly (no event, as if its end had not been streamed yet)
      // after the stream's one status lookup, then deleted through the service.
      const { session } = await h.engine.service.createSession(ACTOR, { objective: 'deleted', agents });
      const stream = openStream(port, session.id);
      try {
        await until(() => stream.text().includes('event: session.created'), 'the first event');
        await until(() => wakers.size === 1, 'the stream to watch its session');
        await rewake(3);
        await h.handle.db
          .updateTable('sessions')
          .set({ status: 'failed', finished_at: Date.now() })
          .where('id', '=', session.id)
          .execute();
        await h.engine.service.deleteSession(ACTOR, session.id);
        for (const wake of wakers) wake();
        await stream.ended;
        assert.doesNotMatch(stream.text(), /event: session\.finished/);
      } finally {
        stream.close();
      }
    });
  });
}
