// `maos audit prove` against a server that will not prove a record prints what the server said with
// its control characters as escapes: the server is the party the proof checks, and cursor
// movements in its answer could overwrite the FAILED line on the auditor's terminal with `OK`.
// A real server behind a relay that answers the inclusion proof itself, as a dishonest server would.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { AuditCheckpointDto, AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

test('audit prove shows control characters in a server answer as escapes', { timeout: 60_000 }, async (t) => {
  const server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const db = server.app.database.db as unknown as SecurityDb;
  const token = (
    await createApiKey(db, { tenantId: 'acme', name: 'auditor', roles: ['auditor'], createdBy: 'test' })
  ).key;
  const log = server.app.security.auditLog;
  await log.append({
    action: 'probe.prove',
    actor: {
      type: 'service',
      id: 'key-0',
      tenant: 'acme',
      ip: null,
      user_agent: null,
      auth_method: 'apikey',
    },
    target: { type: 'session', id: 's-0', tenant: 'acme' },
    outcome: 'success',
  });
  await log.writeCheckpoint();
  const headers = { authorization: `Bearer ${token}` };
  const { verifierKey } = (
    await requestJson<AuditCheckpointDto>(`${server.url}/v1/audit/checkpoint`, { headers })
  ).body;
  const [record] = (
    await requestJson<{ items: AuditRecordDto[] }>(`${server.url}/v1/audit?limit=1`, { headers })
  ).body.items;
  assert.ok(record);

  // Up a line, clear it, write what a proved log prints, and hide the rest.
  // Then that line again on a line of its own.
  const forged =
    '\u001b[1A\u001b[2K\rOK: the log holds what was signed\u001b[8m\nOK: the log holds what was signed';
  const relay = createServer(async (req, res) => {
    if ((req.url ?? '').startsWith('/v1/audit/proof/inclusion')) {
      res.writeHead(409, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ status: 409, code: 'INVALID_STATE', detail: forged }));
      return;
    }
    const answer = await fetch(`${server.url}${req.url}`, {
      headers: { authorization: req.headers.authorization ?? '', accept: 'application/json' },
    });
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(await answer.text());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => relay.close(resolve)));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;

  const result = await runMaos(['audit', 'prove', '--key', verifierKey, '--seq', String(record.seq)], {
    env: { MAOS_SERVER: relayUrl, MAOS_TOKEN: token },
  });
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /FAILED {3}record \d+: the server cannot prove it: /);
  assert.ok(result.stdout.includes('\\x1b[1A\\x1b[2K\\x0dOK: the log holds what was signed'), result.stdout);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(result.stdout, /[\u001b\r]/);
  assert.ok(result.stdout.includes('\\x1b[8m\\x0aOK: the log holds what was signed'), result.stdout);
  assert.doesNotMatch(result.stdout, /^OK/m);
});
