// Stopping runs across replicas: a session cancelled on an API-only replica while its task runs on
// a worker replica, and a session whose budget a task finishing on one replica crossed while its
// other task runs on another. The runs stop at once (NOTIFY at the commit), not at their next lease
// renewal: leases are long here (renewed every 100 s), so only the cross-replica stop can end them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { isAlive } from '../fixtures/processes.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { readAllEvents, requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface EventDto {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

const LONG_LEASE = { leaseSeconds: 300, maxAttempts: 2 };
// Long polls too: nothing but NOTIFY moves work between the replicas within the test's waits.
const SLOW_POLL = 60_000;
// Prints its pid and sleeps in that process for longer than the test's waits.
const RUNNERS = {
  long: { command: ['sh', '-c', 'echo "pid=$$"; exec sleep 300'] },
  seconds: { command: ['sh', '-c', 'sleep 2; echo done'] },
};

async function submit(server: TestServer, agent: Record<string, unknown>): Promise<string> {
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'cancel across replicas',
      agents: [{ name: 'a', role: 'engineer', task: 't', ...agent }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

// One database per case: a replica left from another case must not claim this one's task.
describe('cluster: cancel through another replica, command runner', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('a runner process on the worker replica is killed at once', async () => {
    const config = (concurrency: number) => ({
      store: { url: suite.database.url, poolSize: 4 },
      tasks: LONG_LEASE,
      workers: { concurrency, pollIntervalMs: SLOW_POLL },
      runners: RUNNERS,
    });
    const api = await suite.start({ config: config(0) });
    await suite.start({ config: config(2) });
    const sessionId = await submit(api, { runner: 'long' });
    const pid = await waitFor(async () => {
      for (const event of await readAllEvents<EventDto>(api.url, sessionId)) {
        const match = /pid=(\d+)/.exec(JSON.stringify(event.data));
        if (match) return Number(match[1]);
      }
      return undefined;
    }, 30_000);
    assert.ok(isAlive(pid));

    const cancelled = await requestJson<{ status: string }>(`${api.url}/v1/sessions/${sessionId}/cancel`, {
      method: 'POST',
    });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled');
    // Without the stop notification the process lives until the worker's next renewal (100 s).
    const killed = await waitFor(() => (isAlive(pid) ? undefined : true), 30_000).catch(() => false);
    if (!killed) process.kill(pid, 'SIGKILL');
    assert.ok(killed, 'the runner process on the worker replica was not killed');
  });
});

describe('cluster: cancel through another replica, LLM agent', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('an LLM agent on the worker replica has its model call aborted at once', async (t) => {
    const llm = await startLlmServer({ apiKey: 'k' });
    t.after(() => llm.close());
    llm.setHandler(() => ({ hang: true }));
    const config = (concurrency: number) => ({
      store: { url: suite.database.url, poolSize: 4 },
      tasks: LONG_LEASE,
      workers: { concurrency, pollIntervalMs: SLOW_POLL },
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
      },
      llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
    });
    const api = await suite.start({ config: config(0) });
    await suite.start({ config: config(2) });
    const sessionId = await submit(api, {});
    await waitFor(() => (llm.openResponses() > 0 ? true : undefined), 30_000);

    const cancelled = await requestJson(`${api.url}/v1/sessions/${sessionId}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    await waitFor(() => (llm.openResponses() === 0 ? true : undefined), 30_000);
    const task = await waitFor(async () => {
      const detail = await requestJson<{ tasks: Array<{ status: string }> }>(
        `${api.url}/v1/sessions/${sessionId}`,
      );
      return detail.body.tasks[0];
    });
    assert.equal(task.status, 'cancelled');
  });
});

describe('cluster: stop notifications', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('a run is not stopped by the wake-up sweeps of a replica whose session still runs', async () => {
    // Polls of 100 ms: the notifier re-wakes its channels every 250 ms, several times per run.
    const server = await suite.start({
      config: {
        store: { url: suite.database.url, poolSize: 4 },
        tasks: LONG_LEASE,
        workers: { concurrency: 2, pollIntervalMs: 100 },
        runners: RUNNERS,
      },
    });
    const sessionId = await submit(server, { runner: 'seconds' });
    // A run stopped by a sweep would stay `running` until its 300 s lease ran out.
    const done = await waitForSession<{ status: string; tasks: Array<{ status: string; attempts: number }> }>(
      server.url,
      sessionId,
      undefined,
      30_000,
    );
    assert.equal(done.status, 'completed');
    assert.equal(done.tasks[0]!.attempts, 1);
  });
});

describe('cluster: a budget crossed on one replica', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test("stops the session's model call running on another replica", async (t) => {
    const llm = await startLlmServer({ apiKey: 'k' });
    t.after(() => llm.close());
    // `slow` never answers; `fast` answers after a moment with more tokens than the budget allows.
    llm.setHandler((request) =>
      request.promptText.includes('Your task (slow)')
        ? { hang: true }
        : { text: 'done', usage: { inputTokens: 5000, outputTokens: 5000 }, delayMs: 300 },
    );
    // One slot each: the two tasks run on different replicas.
    const config = {
      store: { url: suite.database.url, poolSize: 4 },
      tasks: LONG_LEASE,
      workers: { concurrency: 1, pollIntervalMs: SLOW_POLL },
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
      },
      llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
    };
    const first = await suite.start({ config });
    await suite.start({ config });
    const created = await requestJson<{ id: string }>(`${first.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'budget across replicas',
        strategy: 'parallel',
        budget: { maxTokens: 1000 },
        agents: [
          { name: 'slow', role: 'engineer', task: 't' },
          { name: 'fast', role: 'engineer', task: 't' },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{ status: string; error: string | null }>(
      first.url,
      created.body.id,
      undefined,
      30_000,
    );
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /BUDGET_EXCEEDED/);
    // The slow call was made on the other replica; it is aborted there without a lease renewal.
    assert.ok(llm.requests.some((request) => request.promptText.includes('Your task (slow)')));
    await waitFor(() => (llm.openResponses() === 0 ? true : undefined), 30_000);
  });
});
