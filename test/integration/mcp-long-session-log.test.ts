// A session whose event log is longer than 20000 events, on the real store: `session_status` with
// `recent_events` returns the log's last events, and an agent whose output starts after event
// 20000 has it in its output resource; in remote mode (over REST) too, reading from the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { NewEvent } from '../../src/domain/events.ts';
import type { SessionService } from '../../src/engine/session-service.ts';
import { createRemoteSessionService } from '../../src/mcp/remote-service.ts';
import { listRecentEvents, readAgentOutput } from '../../src/mcp/session-view.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';

/** Output lines of the first agent: more than any walk from the start of the log reads. */
const NOISY_LINES = 25_000;

function structured<T>(result: CallToolResult): T {
  assert.notEqual(result.isError, true, JSON.stringify(result.content));
  return result.structuredContent as T;
}

function outputLine(taskId: string, name: string, line: string): NewEvent {
  return { type: 'task.output', data: { taskId, name, stream: 'stdout', line } };
}

describe('MCP reads of a long session log', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  let mcp: ConnectedClient;
  let sessionId: string;

  before(async () => {
    server = await startMcpTestServer();
    mcp = await connectHttpClient(server.url);
    // Two agents that run (and print nothing) until cancelled; their output is written below.
    const started = structured<{ sessionId: string }>(
      (await mcp.client.callTool({
        name: 'orchestrate',
        arguments: {
          objective: 'a long log',
          agents: [
            { name: 'noisy', role: 'tester', task: 'print a lot', runner: 'sleep' },
            { name: 'quiet', role: 'tester', task: 'print a little', runner: 'sleep' },
          ],
        },
      })) as CallToolResult,
    );
    sessionId = started.sessionId;
    const detail = await server.app.engine.service.getSession(
      { tenantId: 'default', principalId: 'test' },
      sessionId,
    );
    const idOf = (name: string) => detail.tasks.find((task) => task.name === name)?.id ?? '';
    const noisy = Array.from({ length: NOISY_LINES }, (_, i) => outputLine(idOf('noisy'), 'noisy', `n${i}`));
    const quiet = ['q1', 'q2', 'q3'].map((line) => outputLine(idOf('quiet'), 'quiet', line));
    const session = { id: sessionId, tenantId: detail.tenantId };
    await server.app.database.db.transaction().execute(async (trx) => {
      await appendEvents(trx, session, [...noisy, ...quiet], Date.now());
    });
  });

  after(async () => {
    await mcp?.client
      .callTool({ name: 'cancel_session', arguments: { session_id: sessionId } })
      .catch(() => {});
    await mcp?.close();
    await server?.close();
  });

  test('recent_events gives the last N events of the log', async () => {
    const view = structured<{ recentEvents: Array<{ seq: number; type: string; data: { line?: string } }> }>(
      (await mcp.client.callTool({
        name: 'session_status',
        arguments: { session_id: sessionId, recent_events: 3 },
      })) as CallToolResult,
    );
    assert.deepEqual(
      view.recentEvents.map((event) => event.data.line),
      ['q1', 'q2', 'q3'],
    );
    const seqs = view.recentEvents.map((event) => event.seq);
    assert.ok((seqs[0] ?? 0) > NOISY_LINES, `seqs ${seqs.join(',')} are at the end of the log`);
    assert.deepEqual(seqs, [seqs[0], (seqs[0] ?? 0) + 1, (seqs[0] ?? 0) + 2]);
  });

  test('an agent whose output starts after event 20000 has it in its output resource', async () => {
    const result = await mcp.client.readResource({ uri: `maos://sessions/${sessionId}/agents/quiet/output` });
    const first = result.contents[0];
    assert.equal(first && 'text' in first ? first.text : undefined, 'q1\nq2\nq3');
  });

  test('remote mode reads the end of the log over REST in one request per page', async () => {
    const { service: remote } = createRemoteSessionService({ server: server.url });
    const requests: string[] = [];
    const counted: SessionService = {
      ...remote,
      listEvents: (...args) => {
        requests.push('forward');
        return remote.listEvents(...args);
      },
      listEventsBefore: (...args) => {
        requests.push('backward');
        return remote.listEventsBefore(...args);
      },
    };
    const actor = { tenantId: 'default', principalId: 'test' };
    const recent = await listRecentEvents(counted, actor, sessionId, 3);
    assert.deepEqual(
      recent.map((event) => event.data.line),
      ['q1', 'q2', 'q3'],
    );
    assert.deepEqual(requests, ['backward']);
    const detail = await remote.getSession(actor, sessionId);
    const quiet = detail.tasks.find((task) => task.name === 'quiet');
    assert.ok(quiet);
    assert.equal(await readAgentOutput(counted, actor, detail, quiet), 'q1\nq2\nq3');
  });
});
