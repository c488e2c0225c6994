// The scripted LLM server of bench/orchestrator.ts in a process of its own, as a real provider is:
// its request parsing and streaming then never run on MAOS's event loop between steps. Answers
// every chat completion at once with a fixed text; prints one JSON line {openaiBaseURL} when ready
// and stops when stdin closes or on SIGTERM.
//   node bench/llm-provider-process.ts
import { createInterface } from 'node:readline';
import { startLlmServer } from '../test/fixtures/llm-server.ts';

const server = await startLlmServer({
  handler: () => ({ text: 'done', usage: { inputTokens: 10, outputTokens: 1 } }),
});
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
