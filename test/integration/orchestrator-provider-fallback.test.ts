// The orchestrator's provider chain failing as a whole: the session error names every provider
// tried and why, whether the fallback is unavailable too or refuses the call for good (a wrong key).
// Real app over HTTP, two scripted LLM servers (the primary and the fallback provider), SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ScriptedLlmServer, type ScriptedReply, startLlmServer } from '../fixtures/llm-server.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

async function failingSession(
  t: { after(fn: () => Promise<void>): void },
  backupReply: ScriptedReply,
): Promise<{ error: string; primary: ScriptedLlmServer; backup: ScriptedLlmServer }> {
  const primary = await startLlmServer({
    apiKey: 'k',
    handler: () => ({ error: 503, message: 'primary overloaded' }),
  });
  t.after(() => primary.close());
  const backup = await startLlmServer({ apiKey: 'k', handler: () => backupReply });
  t.after(() => backup.close());
  const server = await startTestServer({
    config: {
      providers: {
        local: { type: 'openai-compatible', baseURL: primary.openaiBaseURL, model: 'm', apiKey: 'k' },
        backup: { type: 'openai-compatible', baseURL: backup.openaiBaseURL, model: 'b', apiKey: 'k' },
      },
      llm: {
        retry: { maxAttempts: 1 },
        agentMessaging: false,
        roles: { orchestrator: { provider: 'local', fallback: ['backup'] } },
      },
    },
  });
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Plan something' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{ status: string; error: string | null }>(server.url, created.body.id);
  assert.equal(done.status, 'failed');
  return { error: done.error ?? '', primary, backup };
}

describe('the orchestrator fallback provider failing too', { timeout: 60_000 }, () => {
  test('fallback unavailable as well: both providers are named', async (t) => {
    const { error, primary, backup } = await failingSession(t, { error: 500, message: 'backup down' });
    assert.ok(primary.requests.length > 0 && backup.requests.length > 0, 'both providers were called');
    assert.match(
      error,
      /All providers for role 'orchestrator' failed: local: .*primary overloaded.*; backup: .*backup down/,
    );
  });

  test('fallback refusing the key: the error names the primary failure and the fallback refusal', async (t) => {
    const { error, backup } = await failingSession(t, { error: 401, message: 'bad key for backup' });
    assert.ok(backup.requests.length > 0, 'the fallback was called');
    assert.match(error, /local: .*primary overloaded/);
    assert.match(
      error,
      /provider 'backup' \(model b\) rejected the credentials \(HTTP 401\).*Check providers\.backup\.apiKey/,
    );
  });
});
