// The MaosBudgetRejectionsSpike runbook against a real server: the scopes it lists are the scopes
// the server counts, and its jq query over the failed sessions finds the session a budget stopped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { requireBinary } from '../helpers/promtool.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const RUNBOOK = readFileSync(
  new URL('../../docs/runbooks/MaosBudgetRejectionsSpike.md', import.meta.url),
  'utf8',
);

/** The scopes of the runbook's scope table (first column, backticked). */
function runbookScopes(): string[] {
  return [...RUNBOOK.matchAll(/^\| `([a-z_]+)` \|/gm)].map((match) => match[1] ?? '').sort();
}

/** Scopes with a non-zero maos_budget_rejections_total sample in a scrape. */
async function countedScopes(baseUrl: string): Promise<string[]> {
  const text = await fetch(`${baseUrl}/metrics`).then((response) => response.text());
  return [...text.matchAll(/^maos_budget_rejections_total\{scope="([^"]+)"\} (\S+)$/gm)]
    .filter((match) => Number(match[2]) > 0)
    .map((match) => match[1] ?? '')
    .sort();
}

test(
  'the budget runbook lists the scopes the server counts and its query finds the stopped session',
  requireBinary('jq', 'jq not found: apt-get install -y jq'),
  async (t) => {
    // Every call costs 610 tokens: over the session's budget of 100 and the tenant's daily 500.
    const { server } = await startLlmAppStack(t, {
      handler: () => ({ text: 'done', usage: { inputTokens: 600, outputTokens: 10 } }),
      config: { rateLimit: { enabled: true, maxDailyTokensPerTenant: 500 } },
    });
    const submit = (budget?: { maxTokens: number }) =>
      requestJson<{ id: string; code?: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'One step',
          agents: [{ name: 'one', role: 'researcher', task: 'Step one' }],
          ...(budget ? { budget } : {}),
        },
      });
    const stopped = await submit({ maxTokens: 100 });
    assert.equal(stopped.status, 201, JSON.stringify(stopped.body));
    const done = await waitForSession<{ status: string; error: string | null }>(server.url, stopped.body.id);
    assert.match(done.error ?? '', /^BUDGET_EXCEEDED/);
    const refused = await submit();
    assert.equal(refused.status, 429, JSON.stringify(refused.body));

    assert.deepEqual(runbookScopes(), await countedScopes(server.url));

    const filter = /sessions list --status failed[^\n]*\\\n\s*\| jq -c '([^']+)'/.exec(RUNBOOK)?.[1];
    assert.ok(filter, 'the runbook gives a jq query over the failed sessions');
    const failed = await fetch(`${server.url}/v1/sessions?status=failed&limit=100`).then((r) => r.text());
    const jq = spawnSync('jq', ['-c', filter], { input: failed, encoding: 'utf8' });
    assert.equal(jq.status, 0, jq.stderr);
    const found = jq.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      found.map((session) => session.id),
      [stopped.body.id],
    );
    assert.match(found[0].error, /^BUDGET_EXCEEDED: /);
  },
);
