// `maos logs` on an LLM agent that writes a long line slowly: the output coalescer stores it in
// pieces (`partial`), and the log shows it as one line under the seq of its first piece, followed
// or not. Real server, scripted LLM server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { readAllEvents, waitForSession } from '../fixtures/server.ts';

const PARAGRAPH = 'A model writes one long paragraph slowly, so it reaches the log in several pieces.';

test('maos logs joins the pieces of a streamed line', { timeout: 60_000 }, async (t) => {
  // 4 characters every 60 ms: the ~100 ms flush cuts the unfinished line into pieces.
  const { server } = await startLlmAppStack(t, {
    handler: () => ({ text: PARAGRAPH, chunkSize: 4, chunkDelayMs: 60 }),
  });
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };
  const submitted = await runMaos(['run', 'Write', '--agent', 'writer=engineer:write it', '--json'], { env });
  assert.equal(submitted.code, 0, submitted.stderr);
  const { id } = JSON.parse(submitted.stdout) as { id: string };
  await waitForSession(server.url, id);
  const pieces = (
    await readAllEvents<{ seq: number; type: string; data: { line: string; partial?: boolean } }>(
      server.url,
      id,
    )
  ).filter((event) => event.type === 'task.output');
  assert.ok(pieces.filter((event) => event.data.partial).length >= 2, 'the line was stored in pieces');

  for (const follow of [[], ['-f']]) {
    const logs = await runMaos(['logs', id, ...follow], { env });
    assert.equal(logs.code, 0, logs.stderr);
    const lines = logs.stdout.split('\n').filter((line) => line.includes('[writer]'));
    assert.deepEqual(lines, [
      `#${pieces[0]?.seq} ${lines[0]?.split(' ')[1]} ${lines[0]?.split(' ')[2]} [writer] ${PARAGRAPH}`,
    ]);
  }
});
