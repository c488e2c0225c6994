// A provider that refuses the key inside its streamed answer, as its first event (an OpenAI
// `{"error":{"type":"invalid_request_error","code":"invalid_api_key"}}` chunk): the session fails
// with the credentials named (HTTP 401), by the error's code, and the call is not sent again. The
// real engine on SQLite, the LLM stack and the scripted LLM server, for both provider types of the
// OpenAI wire.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACTOR, type LlmEngine, startLlmEngine } from '../fixtures/llm-engine.ts';
import type { RecordedLlmRequest } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

function isPlanRequest(request: RecordedLlmRequest): boolean {
  return request.body.response_format !== undefined;
}

for (const type of ['openai', 'openai-compatible'] as const) {
  describe(`a key the ${type} provider refuses in its stream's first event`, { timeout: 60_000 }, () => {
    let llm: LlmEngine;
    before(async () => {
      llm = await startLlmEngine({
        type,
        apiKey: 'k',
        llm: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } },
      });
    });
    after(() => llm.close());

    test('fails the session with the credentials named (HTTP 401), without a retry', async () => {
      llm.server.setHandler((request) =>
        isPlanRequest(request)
          ? { object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('solo', 'analyst')] }] } }
          : {
              text: 'never sent',
              streamError: { afterFrames: 0, status: 401, message: 'Incorrect API key provided' },
            },
      );
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Analyse' });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'failed');
      assert.match(
        done.error ?? '',
        /task solo failed: provider 'local' \(model local-model\) rejected the credentials \(HTTP 401\): Incorrect API key provided\. Check providers\.local\.apiKey\./,
      );
      const agentCalls = llm.server.requests.filter((request) => !isPlanRequest(request));
      assert.equal(agentCalls.length, 1, 'the refused call is not sent again');
      assert.equal(agentCalls[0]?.stream, true);
    });
  });
}
