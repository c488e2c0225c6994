// Very large agent output over MCP: `session_status` with `recent_events` stays sized for a
// model's context window (long texts cut, the newest events that fit kept, the rest counted),
// and the full output stays one resource read away. Real server, SDK client over /mcp.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';
import { TEST_RUNNERS } from '../fixtures/server.ts';

interface EventView {
  seq: number;
  type: string;
  data: { line?: string };
  truncated?: true;
}

interface StatusView {
  sessionId: string;
  status: string;
  tasks: Array<{ outputUri: string }>;
  recentEvents: EventView[];
  recentEventsOmitted?: number;
}

describe('MCP with very large output', { timeout: 90_000 }, () => {
  let server: McpTestServer;
  let mcp: ConnectedClient;
  before(async () => {
    server = await startMcpTestServer({
      config: {
        runners: {
          ...TEST_RUNNERS,
          // One 300 KB line, then 60 lines of 5 KB: several MB if every event were returned whole.
          big: {
            command: [
              'sh',
              '-c',
              'head -c 300000 /dev/zero | tr "\\0" a; echo; i=0; while [ $i -lt 60 ]; do head -c 5000 /dev/zero | tr "\\0" b; echo; i=$((i+1)); done',
            ],
          },
          // About 100 KB of numbered lines on stdout, and a line on stderr in between.
          numbered: {
            command: [
              'sh',
              '-c',
              'i=1; while [ $i -le 5000 ]; do echo "line $i of the build log"; [ $i -eq 10 ] && echo "a warning" >&2; i=$((i+1)); done',
            ],
          },
          // About 30 KB each: the session's result joins every task's.
          chatty: { command: ['sh', '-c', 'head -c 30000 /dev/zero | tr "\\0" r'] },
        },
      },
    });
    mcp = await connectHttpClient(server.url);
  });
  after(async () => {
    await mcp?.close();
    await server?.close();
  });

  /** Runs `agents` (command runners) to the end in one `orchestrate` call; its status document. */
  async function runToCompletion<T extends StatusView>(objective: string, agents: unknown[]): Promise<T> {
    const started = await mcp.client.callTool({
      name: 'orchestrate',
      arguments: { objective, agents, wait_seconds: 45 },
    });
    const view = started.structuredContent as unknown as T;
    assert.equal(view.status, 'completed', JSON.stringify(started.content).slice(0, 500));
    return view;
  }

  test('session_status recent_events on a session with very large output', async () => {
    const session = await runToCompletion('lots of output', [
      { name: 'loud', role: 'tester', task: 'talk', runner: 'big' },
    ]);

    const result = await mcp.client.callTool({
      name: 'session_status',
      arguments: { session_id: session.sessionId, recent_events: 200 },
    });
    assert.notEqual(result.isError, true);
    const view = result.structuredContent as unknown as StatusView;
    const size = JSON.stringify(view.recentEvents).length;
    assert.ok(size <= 60_000, `recentEvents is ${size} characters`);
    // The newest events are kept, oldest first, and the older ones that did not fit are counted.
    assert.equal(view.recentEvents.at(-1)?.type, 'session.finished');
    const seqs = view.recentEvents.map((event) => event.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.ok((view.recentEventsOmitted ?? 0) > 0, 'older events were left out and counted');
    const outputs = view.recentEvents.filter((event) => event.type === 'task.output');
    assert.ok(outputs.length > 0);
    for (const event of outputs) {
      assert.ok((event.data.line ?? '').length <= 2_001, `line of ${event.data.line?.length}`);
    }
    assert.ok(
      outputs.some((event) => event.truncated === true && event.data.line?.endsWith('…')),
      'cut lines say so',
    );
    // A few events ask for little: nothing is left out.
    const few = (
      await mcp.client.callTool({
        name: 'session_status',
        arguments: { session_id: session.sessionId, recent_events: 3 },
      })
    ).structuredContent as unknown as StatusView;
    assert.equal(few.recentEvents.length, 3);
    assert.equal(few.recentEventsOmitted, undefined);
  });

  test("a command runner's output resource is its whole stdout, not the 64 KiB kept as its result", async () => {
    const session = await runToCompletion('a long build log', [
      { name: 'build', role: 'tester', task: 'build', runner: 'numbered' },
    ]);
    const read = await mcp.client.readResource({ uri: session.tasks[0]?.outputUri ?? '' });
    const text = (read.contents[0] as { text: string }).text;
    const expected = Array.from({ length: 5000 }, (_, i) => `line ${i + 1} of the build log`).join('\n');
    assert.ok(text.length > 64 * 1024, `${text.length} characters`);
    assert.equal(text, expected);
  });

  test('the session result in a status document is bounded; the full texts stay in the tasks', async () => {
    const agents = ['one', 'two', 'three'].map((name) => ({
      name,
      role: 'tester',
      task: 'talk',
      runner: 'chatty',
    }));
    const done = await runToCompletion<StatusView & { result: string; resultTruncated?: true }>(
      'three long results',
      agents,
    );
    for (const view of [
      done,
      (await mcp.client.callTool({ name: 'session_status', arguments: { session_id: done.sessionId } }))
        .structuredContent as unknown as typeof done,
    ]) {
      assert.equal(view.resultTruncated, true);
      assert.equal(view.result.length, 20_000);
      assert.ok(view.result.startsWith('## one\nrrr'), view.result.slice(0, 20));
    }
    // The tool says so, for a model reading its description.
    const { tools } = await mcp.client.listTools();
    assert.match(tools.find((tool) => tool.name === 'session_status')?.description ?? '', /resultTruncated/);
    const output = await mcp.client.readResource({ uri: done.tasks[2]?.outputUri ?? '' });
    assert.equal((output.contents[0] as { text: string }).text, 'r'.repeat(30_000));
  });
});
