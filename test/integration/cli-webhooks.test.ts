// `maos webhooks list|create|rotate-secret|enable|delete|deliveries` as child processes against a real
// server with a real receiver: the secret printed once verifies the deliveries (after a rotation, the
// new one and, during the grace period, the old one), a failing receiver's deliveries
// show their attempts and last answer (two failed in a row disable it: listed so, until `enable`), pages continue with the printed command, and mistakes get
// the exit codes of the user guide.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import type { WebhookDelivery } from '../../src/webhooks/webhook-service.ts';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, verifyDelivery } from '../fixtures/webhook-receiver.ts';

test('maos webhooks create, list, deliveries and delete', { timeout: 120_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, {
    config: {
      auth: { mode: 'apikey' },
      secrets: { kekRing: generateKekEntry('k1') },
      // The receiver listens on loopback, which the SSRF guard refuses unless the operator allows it.
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: {
        retryDelaysSeconds: [0.05],
        pollIntervalMs: 50,
        maxAttempts: 2,
        disableAfterFailedDeliveries: 2,
      },
    },
  });
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const db = server.app.database.db as unknown as SecurityDb;
  const keyFor = async (role: string) =>
    (await createApiKey(db, { tenantId: 'acme', name: role, roles: [role], createdBy: 'test' })).key;
  const admin = await keyFor('admin');
  const env = { MAOS_SERVER: server.url, MAOS_TOKEN: admin, NO_COLOR: '1' };
  const submit = async (objective: string) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { objective, agents: [{ role: 'qa', task: 'x', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };

  const noEvent = await runMaos(['webhooks', 'create', '--url', receiver.url], { env });
  assert.equal(noEvent.code, 2, noEvent.stderr);
  assert.match(noEvent.stderr, /^error USAGE: give at least one --event \(session\.awaiting_approval, /);
  const badEvent = await runMaos(['webhooks', 'create', '--url', receiver.url, '--event', 'session.done'], {
    env,
  });
  assert.equal(badEvent.code, 2, badEvent.stderr);
  assert.match(badEvent.stderr, /^error VALIDATION_FAILED: /);
  const internal = await runMaos(
    ['webhooks', 'create', '--url', 'http://10.1.2.3/hooks', '--event', 'session.completed'],
    { env },
  );
  assert.equal(internal.code, 2, internal.stderr);
  assert.match(internal.stderr, /points to an internal network address/);

  // The secret alone on stdout, the note on stderr.
  receiver.answer([500]);
  const created = await runMaos(
    [
      'webhooks',
      'create',
      '--url',
      receiver.url,
      '--event',
      'session.completed',
      '--event',
      'session.failed',
    ],
    { env },
  );
  assert.equal(created.code, 0, created.stderr);
  const secret = created.stdout.trim();
  assert.match(created.stdout, /^whsec_[A-Za-z0-9+/]{43}=\n$/);
  const webhookId = /^webhook (\S+) created for /.exec(created.stderr)?.[1] as string;
  assert.ok(webhookId, created.stderr);
  assert.match(
    created.stderr,
    /session\.completed, session\.failed\)\. Its signing secret is shown only now/,
  );

  const json = await runMaos(
    ['webhooks', 'create', '--json', '--url', receiver.url, '--event', 'session.cancelled'],
    {
      env,
    },
  );
  assert.equal(json.code, 0, json.stderr);
  const body = JSON.parse(json.stdout) as { id: string; url: string; events: string[]; secret: string };
  assert.deepEqual([body.url, body.events], [receiver.url, ['session.cancelled']]);
  assert.match(body.secret, /^whsec_/);
  assert.equal(json.stderr, '');

  const listed = await runMaos(['webhooks', 'list'], { env });
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trimEnd().split('\n');
  assert.match(lines[0] as string, /^ID\s+CREATED\s+STATE\s+EVENTS\s+URL$/);
  assert.match(
    lines[1] as string,
    new RegExp(
      `^${webhookId}\\s+\\S+ \\S+\\s+active\\s+session\\.completed,session\\.failed\\s+${receiver.url}$`,
    ),
  );
  assert.match(lines[2] as string, new RegExp(`^${body.id}\\s+.*session\\.cancelled`));
  assert.equal(lines.length, 3);
  const listedJson = JSON.parse((await runMaos(['webhooks', 'list', '--json'], { env })).stdout) as {
    items: Array<{ id: string; secret?: string }>;
  };
  assert.deepEqual(
    listedJson.items.map((item) => [item.id, item.secret]),
    [
      [webhookId, undefined],
      [body.id, undefined],
    ],
  );

  // Two sessions, each delivered to a receiver that answers 500: tried twice, then failed.
  const first = await submit('first');
  const second = await submit('second');
  const deliveriesUrl = `${server.url}/v1/webhooks/${webhookId}/deliveries`;
  // The two sessions run side by side and may finish in either order: the API's newest-first page
  // says which delivery is the newer, and the CLI must list them the same way.
  let newestFirst: string[] = [];
  await waitFor(
    async () => {
      const page = await requestJson<{ items: WebhookDelivery[] }>(deliveriesUrl, {
        headers: { authorization: `Bearer ${admin}` },
      });
      newestFirst = page.body.items.map((d) => d.sessionId);
      return page.body.items.length === 2 && page.body.items.every((d) => d.status === 'failed');
    },
    20_000,
    'both deliveries failed',
  );
  assert.deepEqual([...newestFirst].sort(), [first, second].sort());
  const [newer, older] = newestFirst as [string, string];
  assert.equal(receiver.received.length, 4);
  for (const delivery of receiver.received)
    assert.ok(verifyDelivery(secret, delivery), 'the printed secret signs');

  const shown = await runMaos(['webhooks', 'deliveries', webhookId], { env });
  assert.equal(shown.code, 0, shown.stderr);
  const rows = shown.stdout.trimEnd().split('\n');
  assert.match(
    rows[0] as string,
    /^CREATED\s+EVENT\s+SESSION\s+STATUS\s+ATTEMPTS\s+LAST STATUS\s+NEXT ATTEMPT\s+LAST ERROR$/,
  );
  // Newest first.
  assert.match(
    rows[1] as string,
    new RegExp(`\\s+session\\.completed\\s+${newer}\\s+failed\\s+2\\s+500\\s+-\\s+HTTP 500$`),
  );
  assert.match(
    rows[2] as string,
    new RegExp(`\\s+session\\.completed\\s+${older}\\s+failed\\s+2\\s+500\\s+-\\s+HTTP 500$`),
  );
  assert.equal(rows.length, 3, shown.stdout);

  // One per page: the printed command fetches the next one.
  const paged = await runMaos(['webhooks', 'deliveries', webhookId, '--limit', '1'], { env });
  assert.equal(paged.code, 0, paged.stderr);
  const more = /^more: maos (webhooks deliveries .+)$/m.exec(paged.stdout)?.[1] as string;
  assert.ok(more, paged.stdout);
  assert.match(paged.stdout, new RegExp(newer));
  const next = await runMaos(more.split(' '), { env });
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stdout, new RegExp(older));
  assert.doesNotMatch(next.stdout, /^more:/m);
  // A server given on the command line is kept in that command, as `sessions list` keeps it: else
  // the next page was asked of MAOS_SERVER or the default server.
  const onServer = await runMaos(
    ['webhooks', 'deliveries', webhookId, '--limit', '1', '--server', server.url],
    { env: { MAOS_TOKEN: admin, NO_COLOR: '1' } },
  );
  const moreOnServer = /^more: maos (webhooks deliveries .+)$/m.exec(onServer.stdout)?.[1] as string;
  assert.match(moreOnServer, /^webhooks deliveries \S+ --server \S+ --limit 1 --cursor \S+$/);
  const nextOnServer = await runMaos(moreOnServer.split(' '), { env: { MAOS_TOKEN: admin, NO_COLOR: '1' } });
  assert.equal(nextOnServer.code, 0, nextOnServer.stderr);
  assert.match(nextOnServer.stdout, new RegExp(older));
  const pageJson = JSON.parse(
    (await runMaos(['webhooks', 'deliveries', webhookId, '--limit', '1', '--json'], { env })).stdout,
  ) as { items: WebhookDelivery[]; nextCursor: string | null };
  assert.deepEqual(
    pageJson.items.map((d) => [d.sessionId, d.status, d.attempts, d.lastStatus, d.lastError]),
    [[newer, 'failed', 2, 500, 'HTTP 500']],
  );
  assert.ok(pageJson.nextCursor);

  const badLimit = await runMaos(['webhooks', 'deliveries', webhookId, '--limit', '0'], { env });
  assert.equal(badLimit.code, 2, badLimit.stderr);
  // A page larger than the server's largest (http.maxPageSize) is asked for as given, and the server
  // lowers it, as the help says; the CLI refused one above 1000 with a usage error.
  const large = await runMaos(['webhooks', 'deliveries', webhookId, '--limit', '5000', '--json'], { env });
  assert.equal(large.code, 0, large.stderr);
  assert.equal((JSON.parse(large.stdout) as { items: WebhookDelivery[] }).items.length, 2);
  const unknown = await runMaos(['webhooks', 'deliveries', '0193a5c4-0000-7000-8000-000000000000'], { env });
  assert.equal(unknown.code, 4, unknown.stderr);
  assert.match(unknown.stderr, /^error NOT_FOUND: No such webhook in this tenant/);

  // Another role may not manage webhooks.
  const member = await runMaos(['webhooks', 'list'], {
    env: { ...env, MAOS_TOKEN: await keyFor('operator') },
  });
  assert.equal(member.code, 5, member.stderr);

  // Two deliveries in a row failed (webhooks.disableAfterFailedDeliveries): listed as disabled, with
  // the reason and the command that re-enables it; `enable` does, and the next event is delivered.
  const disabledList = await runMaos(['webhooks', 'list'], { env });
  assert.equal(disabledList.code, 0, disabledList.stderr);
  assert.match(disabledList.stdout, new RegExp(`^${webhookId}\\s+\\S+ \\S+\\s+disabled\\s+session`, 'm'));
  assert.match(disabledList.stdout, new RegExp(`^${body.id}\\s+\\S+ \\S+\\s+active\\s+session`, 'm'));
  assert.match(
    disabledList.stderr,
    new RegExp(
      `^webhook ${webhookId} disabled .+: 2 deliveries in a row failed\\. Fix the receiver, then \`maos webhooks enable ${webhookId}\`\\.$`,
      'm',
    ),
  );
  // The disabling is in the tenant's audit log, as the re-enable below is: the server as actor.
  const audited = await requestJson<{
    items: Array<{ actor: { type: string; id: string }; target: { id: string }; reason: string }>;
  }>(`${server.url}/v1/audit?action=webhooks:disable`, { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(audited.status, 200, JSON.stringify(audited.body));
  assert.deepEqual(
    audited.body.items.map((record) => [record.actor.type, record.actor.id, record.target.id, record.reason]),
    [['system', 'webhook-delivery-worker', webhookId, '2 deliveries in a row failed']],
  );
  const enableDenied = await runMaos(['webhooks', 'enable', webhookId], {
    env: { ...env, MAOS_TOKEN: await keyFor('developer') },
  });
  assert.equal(enableDenied.code, 5, enableDenied.stderr);
  const enableUnknown = await runMaos(['webhooks', 'enable', '0193a5c4-0000-7000-8000-000000000000'], {
    env,
  });
  assert.equal(enableUnknown.code, 4, enableUnknown.stderr);
  const enabled = await runMaos(['webhooks', 'enable', webhookId], { env });
  assert.equal(enabled.code, 0, enabled.stderr);
  assert.equal(
    enabled.stdout,
    `webhook ${webhookId} enabled: the next event is delivered to ${receiver.url}\n`,
  );
  const enabledJson = JSON.parse((await runMaos(['webhooks', 'list', '--json'], { env })).stdout) as {
    items: Array<{ id: string; disabledAt: string | null; disabledReason: string | null }>;
  };
  assert.deepEqual(
    enabledJson.items.map((item) => [item.id, item.disabledAt, item.disabledReason]),
    [
      [webhookId, null, null],
      [body.id, null, null],
    ],
  );
  receiver.answer([200]);

  // A new secret, printed alone on stdout; the next delivery verifies with it (and, during the grace
  // period, with the old one).
  const rotated = await runMaos(['webhooks', 'rotate-secret', webhookId], { env });
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, /^whsec_[A-Za-z0-9+/]{43}=\n$/);
  const newSecret = rotated.stdout.trim();
  assert.notEqual(newSecret, secret);
  assert.match(
    rotated.stderr,
    new RegExp(
      `^webhook ${webhookId} has a new signing secret, shown only now\\. Until \\S+Z deliveries are signed with the previous one as well`,
    ),
  );
  assert.ok(!`${rotated.stdout}${rotated.stderr}`.includes(secret), 'the old secret is not printed');
  const before = receiver.received.length;
  await submit('after the rotation');
  const signed = await waitFor(() => receiver.received[before], 20_000, 'a delivery after the rotation');
  assert.ok(verifyDelivery(newSecret, signed), 'the new secret signs');
  assert.ok(verifyDelivery(secret, signed), 'the old one too, during the grace period');
  const rotatedJson = await runMaos(['webhooks', 'rotate-secret', webhookId, '--json'], { env });
  assert.equal(rotatedJson.code, 0, rotatedJson.stderr);
  const rotatedBody = JSON.parse(rotatedJson.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(rotatedBody).sort(), ['id', 'previousSecretExpiresAt', 'secret']);
  assert.equal(rotatedBody.id, webhookId);
  assert.match(String(rotatedBody.secret), /^whsec_/);
  assert.notEqual(rotatedBody.secret, newSecret);
  assert.equal(rotatedJson.stderr, '');
  const rotateUnknown = await runMaos(['webhooks', 'rotate-secret', '0193a5c4-0000-7000-8000-000000000000'], {
    env,
  });
  assert.equal(rotateUnknown.code, 4, rotateUnknown.stderr);
  assert.match(rotateUnknown.stderr, /^error NOT_FOUND: No such webhook in this tenant/);
  assert.equal(rotateUnknown.stdout, '');
  const rotateDenied = await runMaos(['webhooks', 'rotate-secret', webhookId], {
    env: { ...env, MAOS_TOKEN: await keyFor('developer') },
  });
  assert.equal(rotateDenied.code, 5, rotateDenied.stderr);
  assert.equal(rotateDenied.stdout, '');
  const rotateNoId = await runMaos(['webhooks', 'rotate-secret'], { env });
  assert.equal(rotateNoId.code, 2, rotateNoId.stderr);

  const deleted = await runMaos(['webhooks', 'delete', webhookId], { env });
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, `webhook ${webhookId} deleted\n`);
  const gone = await runMaos(['webhooks', 'delete', webhookId], { env });
  assert.equal(gone.code, 4, gone.stderr);
  const empty = await runMaos(['webhooks', 'delete', ''], { env });
  assert.equal(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /the webhook id must not be empty/);
  const remaining = await runMaos(['webhooks', 'list'], { env });
  assert.doesNotMatch(remaining.stdout, new RegExp(webhookId));
});

test('maos webhooks create without a server keyring exits 6 and prints no secret', async (t) => {
  const { server } = await startLlmAppStack(t);
  const result = await runMaos(
    ['webhooks', 'create', '--url', 'https://hooks.example.com/maos', '--event', 'session.failed'],
    { env: { MAOS_SERVER: server.url } },
  );
  assert.equal(result.code, 6, result.stderr);
  assert.match(result.stderr, /^error INVALID_STATE: .*kekRing/);
  assert.equal(result.stdout, '');
});
