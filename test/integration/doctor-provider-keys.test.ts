// `maos doctor` checks each provider's API key with an authenticated request: against the scripted
// LLM server a wrong key is a FAIL line with a fix (exit 1, no stack trace), the right key a PASS.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';

interface Check {
  name: string;
  status: string;
  message: string;
  fix?: string;
}

describe('maos doctor: provider API keys', { timeout: 120_000 }, () => {
  let llm: ScriptedLlmServer;
  let dir: string;

  before(async () => {
    llm = await startLlmServer({ apiKey: 'right-key' });
    dir = mkdtempSync(join(tmpdir(), 'maos-doctor-keys-'));
    mkdirSync(join(dir, 'data'), { mode: 0o750 });
  });
  after(async () => {
    await llm?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(name: string, openaiKey: string, anthropicKey: string): string {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(
      path,
      [
        `dataDir: ${join(dir, 'data')}`,
        'port: 0',
        'providers:',
        '  local:',
        '    type: openai-compatible',
        '    model: m',
        `    baseURL: ${llm.openaiBaseURL}`,
        `    apiKey: ${openaiKey}`,
        '  claude:',
        '    type: anthropic',
        '    model: c',
        `    baseURL: ${llm.anthropicBaseURL}`,
        `    apiKey: ${anthropicKey}`,
        '',
      ].join('\n'),
    );
    return path;
  }

  async function doctor(config: string, json: boolean) {
    return runMaos(['doctor', '-c', config, '--min-free-mb', '1', ...(json ? ['--json'] : [])], {
      timeoutMs: 60_000,
    });
  }

  test('a wrong key fails its provider check with a fix; the right key passes', async () => {
    const config = writeConfig('mixed', 'wrong-key', 'right-key');
    const result = await doctor(config, true);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: Check[] };
    assert.equal(report.ok, false);
    const local = report.checks.find((check) => check.name === 'provider:local');
    const claude = report.checks.find((check) => check.name === 'provider:claude');
    assert.equal(local?.status, 'fail', JSON.stringify(report.checks));
    assert.match(local?.message ?? '', /rejected the API key \(HTTP 401\)/);
    assert.match(local?.fix ?? '', /providers\.local\.apiKey/);
    assert.equal(claude?.status, 'pass', claude?.message);
    assert.match(claude?.message ?? '', /key accepted/);
    // The key went to the server as a credential, not as something doctor only printed.
    assert.doesNotMatch(result.stdout + result.stderr, /wrong-key/);

    const text = await doctor(config, false);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^FAIL {2}provider:local +.*rejected the API key \(HTTP 401\)$/m);
    assert.match(text.stdout, /^ {6}fix: Set a valid key in providers\.local\.apiKey/m);
    assert.doesNotMatch(text.stderr, /\n\s+at /, 'no stack trace');
  });

  test('with the right keys every provider check passes', async () => {
    const result = await doctor(writeConfig('good', 'right-key', 'right-key'), true);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: Check[] };
    const providers = report.checks.filter((check) => check.name.startsWith('provider'));
    assert.deepEqual(
      providers.map((check) => [check.name, check.status]),
      [
        ['provider:local', 'pass'],
        ['provider:claude', 'pass'],
      ],
    );
  });

  test('a provider without a key (Ollama, vLLM): passes as needing none, or fails as wanting one', async (t) => {
    const open = await startLlmServer();
    t.after(() => open.close());
    const path = join(dir, 'keyless.yaml');
    const keyless = (baseURL: string) =>
      [
        `dataDir: ${join(dir, 'data')}`,
        'port: 0',
        'providers:',
        '  local:',
        '    type: openai-compatible',
        '    model: m',
        `    baseURL: ${baseURL}`,
        '',
      ].join('\n');
    writeFileSync(path, keyless(open.openaiBaseURL));
    const needsNone = await doctor(path, true);
    const local = (JSON.parse(needsNone.stdout) as { checks: Check[] }).checks.find(
      (check) => check.name === 'provider:local',
    );
    assert.equal(local?.status, 'pass', local?.message);
    assert.match(local?.message ?? '', /reachable, no API key needed \(model m\)$/);

    writeFileSync(path, keyless(llm.openaiBaseURL));
    const wantsOne = await doctor(path, true);
    assert.equal(wantsOne.code, 1);
    const refused = (JSON.parse(wantsOne.stdout) as { checks: Check[] }).checks.find(
      (check) => check.name === 'provider:local',
    );
    assert.equal(refused?.status, 'fail');
    assert.match(refused?.message ?? '', /wants an API key and none is configured \(HTTP 401\)$/);
    assert.match(refused?.fix ?? '', /providers\.local\.apiKey/);
  });
});
