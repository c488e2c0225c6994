// The scripted LLM server of bench/orchestrator.ts in a process of its own, as a real provider is:
// its request parsing and streaming then never run on MAOS's event loop between steps. Answers
// every chat completion at once with a fixed text, in one write; with `frames` above 1, streams it
// as that many text deltas 1 ms apart, each in a write of its own, as a model streaming tokens does
// (every network chunk then costs the client its own pass through the HTTP and stream code). Prints
// one JSON line {openaiBaseURL} when ready and stops when stdin closes or on SIGTERM.
//   node bench/llm-provider-process.ts [frames=1]
import { createInterface } from 'node:readline';
import { startLlmServer } from '../test/fixtures/llm-server.ts';

const frames = Number(process.argv[2] ?? 1);
if (!Number.isInteger(frames) || frames < 1) {
  console.error(`frames must be a positive integer, not ${process.argv[2]}`);
  process.exit(2);
}
const answer =
  frames === 1
    ? { text: 'done', usage: { inputTokens: 10, outputTokens: 1 } }
    : {
        text: 'word '.repeat(frames),
        chunkSize: 5,
        chunkDelayMs: 1,
        usage: { inputTokens: 10, outputTokens: frames },
      };
const server = await startLlmServer({ handler: () => answer });
process.stdout.write(`${JSON.stringify({ openaiBaseURL: server.openaiBaseURL })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
}
createInterface({ input: process.stdin }).on('close', () => void stop());
process.on('SIGTERM', () => void stop());
