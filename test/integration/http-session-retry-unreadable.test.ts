// POST /v1/sessions/:id/retry when the original's workspace holds a file the server's user may not
// read (a runner left it mode 000): INVALID_STATE naming the file by its path in the workspace (not
// the server's directories), with no retry stored and no copy of the workspace left behind; once
// the file is readable, the same retry works. The server runs as an ordinary user (uid 1000), as
// the container image runs it: root reads any file, whatever its mode.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cannotRunCheckoutAs } from '../fixtures/run-as-user.ts';
import { killServeChildren, startServeChild, writeServeConfig } from '../fixtures/serve-child.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

const SERVICE_UID = 1000;

interface Session {
  id: string;
  status: string;
  retryOf: string | null;
}
interface Problem {
  code: string;
  status: number;
  detail: string;
  details: { path: string; reason: string };
}

test('a workspace file the server may not read: INVALID_STATE naming it, nothing of the retry left', {
  skip: cannotRunCheckoutAs(SERVICE_UID),
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-retry-unreadable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  chownSync(dir, SERVICE_UID, SERVICE_UID);
  chownSync(dataDir, SERVICE_UID, SERVICE_UID);
  const config = writeServeConfig(dataDir, {
    tasks: { maxAttempts: 1 },
    runners: {
      // Leaves a key only its owner's root could read, then fails: the session can be retried.
      locked: {
        command: [
          'sh',
          '-c',
          'mkdir -p out/keys && echo secret > out/keys/private.pem && chmod 000 out/keys/private.pem && echo made > out/notes.txt; exit 3',
        ],
      },
    },
  });
  const { child, url } = await startServeChild(config, { uid: SERVICE_UID });
  t.after(() => killServeChildren([child]));

  const created = await requestJson<Session>(`${url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Build a key',
      agents: [{ name: 'build', role: 'engineer', task: 'build it', runner: 'locked' }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const failed = await waitForSession<Session>(url, id);
  assert.equal(failed.status, 'failed');
  const workspaces = join(dataDir, 'workspaces');
  assert.deepEqual(readdirSync(workspaces), [id]);

  const refused = await requestJson<Problem>(`${url}/v1/sessions/${id}/retry`, { method: 'POST' });
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(refused.body.code, 'INVALID_STATE');
  assert.deepEqual(refused.body.details, { path: 'out/keys/private.pem', reason: 'unreadable' });
  assert.match(
    refused.body.detail,
    /its workspace holds out\/keys\/private\.pem, which the server may not read/,
  );
  assert.ok(!JSON.stringify(refused.body).includes(dir), "the server's own directories are not shown");

  // Nothing of the refused retry: no session, no (half-made) copy of the workspace.
  const retries = await requestJson<{ items: Session[] }>(`${url}/v1/sessions?retryOf=${id}`);
  assert.deepEqual(retries.body.items, []);
  const all = await requestJson<{ items: Session[] }>(`${url}/v1/sessions`);
  assert.deepEqual(
    all.body.items.map((session) => session.id),
    [id],
  );
  assert.deepEqual(readdirSync(workspaces), [id]);

  // Made readable: the same retry is taken.
  chmodSync(join(workspaces, id, 'out', 'keys', 'private.pem'), 0o600);
  const retried = await requestJson<Session>(`${url}/v1/sessions/${id}/retry`, { method: 'POST' });
  assert.equal(retried.status, 201, JSON.stringify(retried.body));
  assert.equal(retried.body.retryOf, id);
});
