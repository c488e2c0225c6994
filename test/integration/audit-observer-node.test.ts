// `audit.observerNode` on the real server, SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts): under the default a tenant's auditor
// reads the node's pseudonym, never its host name, in `GET /v1/audit` and in its tenant's export; the
// operator maps the pseudonym back (the start log line, `maos audit node-pseudonym`); and records
// written before and after changes of the mode still verify (`maos audit verify`) and prove
// (`maos audit prove`) as listed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuditCheckpointDto, AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { nodePseudonym } from '../../src/security/audit/observer-node.ts';
import { loadAuditSigner } from '../../src/security/create-security.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import { createOpenApiRecorder } from '../fixtures/openapi-recorder.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

for (const store of CONFORMANCE_STORES) {
  test(`tenants' auditors read the node's pseudonym, the operator maps it; every mode's records verify and prove (${store})`, {
    timeout: 180_000,
  }, async (t) => {
    const database = await createConformanceStore(store);
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-observer-node-'));
    // The one server running at a time, stopped at the end however the test ends.
    let running: TestServer | null = null;
    t.after(async () => {
      await running?.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const configFile = join(dataDir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ ...database.config, dataDir, logLevel: 'silent' }));
    const host = hostname();
    const startServer = async (audit: Record<string, unknown>, logDestination?: NodeJS.WritableStream) => {
      running = await startTestServer({
        dataDir,
        config: {
          ...database.config,
          auth: { mode: 'apikey' },
          workers: { concurrency: 0 },
          audit,
          ...(logDestination ? { logLevel: 'info' } : {}),
        },
        ...(logDestination ? { logDestination } : {}),
      });
      return running;
    };
    const stopServer = async () => {
      await running?.close();
      running = null;
    };

    // The default, with the operator's log.
    const log = captureLog<{ message?: string; 'labels.host'?: string; auditObserverNode?: string | null }>();
    let server = await startServer({}, log.destination);
    const db = () => server.app.database.db as unknown as SecurityDb;
    const pseudonym = nodePseudonym(host, loadAuditSigner(server.app.config).privateKey);
    const auditor = await createApiKey(db(), {
      tenantId: 'acme',
      name: 'a',
      roles: ['auditor'],
      createdBy: 'test',
    });
    const viewer = await createApiKey(db(), {
      tenantId: 'acme',
      name: 'v',
      roles: ['viewer'],
      createdBy: 'test',
    });
    // A viewer may not read the log: each refusal is a record of tenant acme, written by this node.
    const deny = async () => {
      const response = await fetch(`${server.url}/v1/audit`, {
        headers: { authorization: `Bearer ${viewer.key}` },
      });
      assert.equal(response.status, 403);
    };
    await deny();
    let api = createOpenApiRecorder(server.url, await fetchOpenApiDocument(server.url), {
      authorization: `Bearer ${auditor.key}`,
    });
    let page = await api.call('GET', '/v1/audit?limit=100');
    expectStatus(page, 200);
    assert.deepEqual(api.violations, [], 'GET /v1/audit answers as its document declares');
    assert.deepEqual(
      (page.body as { items: AuditRecordDto[] }).items.map((record) => record.observer?.node),
      [pseudonym],
    );
    assert.ok(!page.text.includes(JSON.stringify(host)), `the host name ${host} is nowhere in the answer`);
    // The operator's log line is where the pseudonym meets the host name.
    const line = log.lines.find((entry) => entry.auditObserverNode !== undefined);
    // `labels.host`: ECS maps `host` as an object (host.hostname), so a plain `host` is moved there.
    assert.deepEqual(
      [line?.['labels.host'], line?.auditObserverNode],
      [host, pseudonym],
      JSON.stringify(line),
    );
    assert.match(line?.message ?? '', new RegExp(`audit records name this node ${pseudonym}`));
    await stopServer();

    // The operator maps it with the installation's key, here and for named hosts.
    const mapped = await runMaos(['audit', 'node-pseudonym', '--config', configFile, '--json']);
    assert.equal(mapped.code, 0, mapped.stderr);
    assert.deepEqual(JSON.parse(mapped.stdout), { observerNode: 'pseudonym', nodes: [{ host, pseudonym }] });
    const named = await runMaos(['audit', 'node-pseudonym', '--config', configFile, 'maos-0', host]);
    assert.equal(named.code, 0, named.stderr);
    assert.match(
      named.stdout,
      new RegExp(`${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+${pseudonym}\\n`),
    );
    assert.match(named.stdout, /^maos-0\s+pseudonym:[0-9a-f]{16}\n/m);
    const reversed = await runMaos(['audit', 'node-pseudonym', '--config', configFile, pseudonym]);
    assert.equal(reversed.code, 2, 'a pseudonym is not a host name');
    assert.match(reversed.stderr, /cannot be turned back into a host name/);

    // An operator who opts into host names, then into none, then back to the default.
    for (const observerNode of ['hostname', 'omit', 'pseudonym']) {
      server = await startServer({ observerNode });
      await deny();
      if (observerNode !== 'pseudonym') await stopServer();
    }
    api = createOpenApiRecorder(server.url, await fetchOpenApiDocument(server.url), {
      authorization: `Bearer ${auditor.key}`,
    });
    page = await api.call('GET', '/v1/audit?limit=100');
    expectStatus(page, 200);
    assert.deepEqual(api.violations, [], 'a null node answers as the document declares');
    const items = (page.body as { items: AuditRecordDto[] }).items;
    assert.deepEqual(
      items.map((record) => record.observer?.node),
      [pseudonym, host, null, pseudonym],
      'stored records keep what they were written with',
    );

    // The chain and checkpoints verify; each record proves from outside as its auditor lists it.
    assert.ok(await server.app.security.auditLog.writeCheckpoint());
    const verifierKey = ((await api.call('GET', '/v1/audit/checkpoint')).body as AuditCheckpointDto)
      .verifierKey;
    const seqs = items.flatMap((record) => ['--seq', String(record.seq)]);
    const proved = await runMaos(['audit', 'prove', '--key', verifierKey, ...seqs], {
      env: { MAOS_SERVER: server.url, MAOS_TOKEN: auditor.key },
    });
    assert.equal(proved.code, 0, proved.stderr + proved.stdout);
    assert.match(proved.stdout, /OK: the log holds what was signed/);
    await stopServer();
    const verified = await runMaos([
      'audit',
      'verify',
      '--config',
      configFile,
      '--key',
      verifierKey,
      '--json',
    ]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);

    // The tenant's export holds the host name only in the record written while the operator chose it.
    const exported = await runMaos(['audit', 'export', '--config', configFile, '--tenant', 'acme']);
    assert.equal(exported.code, 0, exported.stderr);
    const events = exported.stdout
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text) as AuditRecordDto);
    assert.deepEqual(
      events.map((record) => record.observer?.node),
      [pseudonym, host, null, pseudonym],
    );
  });
}
