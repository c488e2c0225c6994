// SSE against the real engine: a stream cut mid-session and resumed with Last-Event-ID delivers
// exactly the missed events (no gap, no duplicate) and ends after session.finished; a stream its
// client closes is in the access log and the request metrics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { captureLog } from '../fixtures/log-capture.ts';
import { scrapeSample } from '../fixtures/metrics-scrape.ts';
import { readAllEvents, requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { readSseFrames } from '../fixtures/sse.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('SSE resume with Last-Event-ID replays exactly the missed events', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'chatty',
      agents: [1, 2, 3].map((n) => ({ name: `t${n}`, role: 'qa', task: `count ${n}`, runner: 'count' })),
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const url = `${server.url}/v1/sessions/${created.body.id}/events`;

  const head = await readSseFrames(url, {}, 4);
  assert.equal(head.length, 4);
  const lastSeen = head.at(-1)?.id;
  assert.equal(lastSeen, '4');
  const tail = await readSseFrames(url, { 'last-event-id': String(lastSeen) });

  const stored = await readAllEvents<{ seq: number; type: string }>(server.url, created.body.id);
  const streamed = [...head, ...tail];
  assert.deepEqual(
    streamed.map((f) => Number(f.id)),
    stored.map((e) => e.seq),
    'head + resumed tail = the whole log, without gaps or duplicates',
  );
  assert.deepEqual(
    streamed.map((f) => f.event),
    stored.map((e) => e.type),
  );
  assert.equal(tail.at(-1)?.event, 'session.finished');
  assert.ok(
    stored.some((e) => e.type === 'task.output'),
    'output lines were streamed while the session ran',
  );
  for (const frame of streamed) {
    const event = JSON.parse(frame.data) as { seq: number; type: string };
    assert.equal(String(event.seq), frame.id);
    assert.equal(event.type, frame.event);
  }
});

test('a stream its client closes is logged and counted like any answered request', async (t) => {
  const { destination, lines } = captureLog();
  const server = await startTestServer({ config: { logLevel: 'info' }, logDestination: destination });
  let sessionId: string | undefined;
  t.after(async () => {
    if (sessionId) await requestJson(`${server.url}/v1/sessions/${sessionId}/cancel`, { method: 'POST' });
    await server.close();
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'long', agents: [{ name: 'wait', role: 'qa', task: 'wait', runner: 'sleep' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  sessionId = created.body.id;
  const controller = new AbortController();
  const stream = await fetch(`${server.url}/v1/sessions/${created.body.id}/events`, {
    headers: { accept: 'text/event-stream', 'x-request-id': 'stream-left' },
    signal: controller.signal,
  });
  assert.equal(stream.status, 200);
  await stream.body?.getReader().read();
  // The client leaves while the session still runs: the stream never reaches session.finished.
  controller.abort();
  const access = await waitFor(
    () => lines.find((line) => line.requestId === 'stream-left' && line.message === 'request completed'),
    10_000,
    'the access line of the stream',
  );
  assert.equal(access['http.route'], '/v1/sessions/:id/events');
  assert.equal(access['http.response.status_code'], 200);
  assert.equal(
    await scrapeSample(
      server.url,
      'http_request_duration_seconds_count{method="GET",route="/v1/sessions/:id/events",status_code="200"}',
    ),
    1,
  );
});

test('a stream carries the headers every answer gets: security headers, CORS, rate limits', async (t) => {
  const origin = 'https://console.example.com';
  const server = await startTestServer({
    config: { cors: { allowedOrigins: [origin] }, rateLimit: { enabled: true } },
  });
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'short', agents: [{ name: 'a', role: 'qa', task: 'a', runner: 'ok' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const url = `${server.url}/v1/sessions/${created.body.id}/events`;
  const page = await fetch(url, { headers: { origin } });
  await page.text();
  const stream = await fetch(url, { headers: { origin, accept: 'text/event-stream' } });
  await stream.text();
  assert.equal(stream.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  // A browser on an allowed origin may read the stream only with these.
  assert.equal(stream.headers.get('access-control-allow-origin'), origin);
  for (const name of [
    'access-control-expose-headers',
    'vary',
    'content-security-policy',
    'x-content-type-options',
    'referrer-policy',
    'x-frame-options',
    'strict-transport-security',
    'ratelimit',
    'ratelimit-policy',
  ]) {
    assert.ok(page.headers.has(name), `the JSON page has ${name}`);
    assert.ok(stream.headers.has(name), `the stream has ${name}`);
  }
  assert.equal(stream.headers.get('cache-control'), 'no-cache, no-transform');
});

test('Accept chooses between the stream and a JSON page by its q-values', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'short', agents: [{ name: 'a', role: 'qa', task: 'a', runner: 'ok' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await waitForSession(server.url, created.body.id);
  const url = `${server.url}/v1/sessions/${created.body.id}/events`;
  const answers: Record<string, string> = {
    'text/event-stream': 'text/event-stream; charset=utf-8',
    'Text/Event-Stream; q=0.5': 'text/event-stream; charset=utf-8',
    'application/json, text/event-stream': 'text/event-stream; charset=utf-8',
    // q=0 is "not acceptable" (RFC 9110): never a stream.
    'text/event-stream;q=0, application/json': 'application/json; charset=utf-8',
    'text/event-stream; q=0.0': 'application/json; charset=utf-8',
    'application/json, text/event-stream;q=0.1': 'application/json; charset=utf-8',
    'application/json;q=0.5, text/event-stream': 'text/event-stream; charset=utf-8',
    'text/event-streams': 'application/json; charset=utf-8',
    '*/*': 'application/json; charset=utf-8',
  };
  for (const [accept, contentType] of Object.entries(answers)) {
    const response = await fetch(url, { headers: { accept } });
    await response.text();
    assert.equal(response.status, 200, accept);
    assert.equal(response.headers.get('content-type'), contentType, accept);
  }
});
