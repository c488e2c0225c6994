// `maos keys`, `maos audit verify|export` and `maos login` against a real data directory and a
// real server: first admin key, tamper detection through the CLI, SIEM export, stored login.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { sql } from 'kysely';
import { registerAuditCommand } from '../../src/cli/commands/audit.ts';
import { registerKeysCommand } from '../../src/cli/commands/keys.ts';
import { readStoredToken, registerLoginCommand } from '../../src/cli/commands/login.ts';
import { registerSecretsCommand } from '../../src/cli/commands/secrets.ts';
import { type ActionFactory, type CliIo, createContext } from '../../src/cli/context.ts';
import { toCliError } from '../../src/cli/exit-codes.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createFakeSessionService } from '../../src/http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import { createSecurity } from '../../src/security/create-security.ts';
import { createSecretStore } from '../../src/security/secret-store.ts';
import { generateKekEntry, parseKekRing } from '../../src/security/secrets.ts';
import { createSecurityRoutesPlugin } from '../../src/security/security-routes-plugin.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { openSqlite } from '../../src/security/test-support.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { serviceAuditEvent } from '../fixtures/audit-records.ts';
import { freePort } from '../fixtures/free-port.ts';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCli(argv: string[]): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += String(chunk)));
  stderr.on('data', (chunk) => (err += String(chunk)));
  const io: CliIo = { stdout, stderr, env: { noColor: true } };
  let code = 0;
  const act: ActionFactory =
    (handler) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const ctx = createContext(command, io);
      try {
        code = (await handler(ctx, command)) ?? 0;
      } finally {
        ctx.dispose();
      }
    };
  const program = new Command('maos').option('--json').enablePositionalOptions().exitOverride();
  program.configureOutput({
    writeOut: () => {},
    writeErr: (text) => {
      err += text;
    },
  });
  registerKeysCommand(program, act);
  registerAuditCommand(program, act);
  registerLoginCommand(program, act);
  registerSecretsCommand(program, act);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (thrown) {
    if (thrown instanceof CommanderError) code = thrown.exitCode === 0 ? 0 : 2;
    else {
      const error = toCliError(thrown);
      err += `error ${error.code}: ${error.message}\n`;
      code = error.exitCode;
    }
  }
  return { code, stdout: out, stderr: err };
}

describe('security CLI on a data directory', { timeout: 60_000 }, () => {
  let dir: string;
  let configFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cli-sec-'));
    configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data') }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('first admin key: create prints it once, list hides it, revoke works; all audited', async () => {
    const created = await runCli([
      'keys',
      'create',
      '--role',
      'admin',
      '--tenant',
      'acme',
      '-c',
      configFile,
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const info = JSON.parse(created.stdout) as { key: string; id: string; roles: string[] };
    assert.match(info.key, /^maos_/);
    assert.deepEqual(info.roles, ['admin']);
    const list = await runCli(['keys', 'list', '--tenant', 'acme', '-c', configFile]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /active/);
    assert.ok(!list.stdout.includes(info.key.slice(18)));
    // Sent in upper case: ids are stored in lower case, and the case sent names the same key.
    const revoked = await runCli([
      'keys',
      'revoke',
      info.id.toUpperCase(),
      '--tenant',
      'acme',
      '-c',
      configFile,
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match((await runCli(['keys', 'list', '--tenant', 'acme', '-c', configFile])).stdout, /revoked/);
    assert.equal((await runCli(['keys', 'revoke', info.id, '--tenant', 'other', '-c', configFile])).code, 4);
    assert.equal((await runCli(['keys', 'create', '--tenant', 'acme', '-c', configFile])).code, 2);
    assert.equal((await runCli(['keys', 'create', '--role', 'root', '-c', configFile])).code, 2);

    const verified = await runCli(['audit', 'verify', '-c', configFile, '--json']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const report = JSON.parse(verified.stdout) as { ok: boolean; size: number; checkpointSize: number };
    assert.equal(report.ok, true);
    assert.equal(report.size, 2);
    assert.equal(report.checkpointSize, 2);
  });

  test('export to JSONL verifies offline with the verifier key; tampering is found by index', async () => {
    await runCli(['keys', 'create', '--role', 'viewer', '-c', configFile]);
    const exportFile = join(dir, 'audit.jsonl');
    const exported = await runCli(['audit', 'export', '-c', configFile, '-o', exportFile]);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readFileSync(exportFile, 'utf8').trim().split('\n');
    assert.equal(lines.length, 3);
    for (const line of lines) assert.ok(JSON.parse(line).hash);
    const vkey = readFileSync(join(dir, 'data', 'keys', 'audit-verifier-key.txt'), 'utf8').trim();
    const offline = await runCli([
      'audit',
      'verify',
      '--export',
      exportFile,
      '--key',
      vkey,
      '-c',
      configFile,
    ]);
    assert.equal(offline.code, 0, offline.stdout + offline.stderr);
    assert.match(offline.stdout, /OK: the audit log is intact/);

    writeFileSync(exportFile, `${[lines[0], lines[2]].join('\n')}\n`);
    const gap = await runCli([
      'audit',
      'verify',
      '--export',
      exportFile,
      '--key',
      vkey,
      '-c',
      configFile,
      '--json',
    ]);
    assert.equal(gap.code, 1);
    assert.equal(JSON.parse(gap.stdout).firstBrokenIndex, 1);

    // edit record 1 in the database itself (triggers dropped to simulate an attacker with file access)
    const db = openSqlite(join(dir, 'data', 'maos.db'));
    try {
      await sql`DROP TRIGGER audit_log_no_update`.execute(db);
      await sql`UPDATE audit_log SET event = replace(event, 'keys:revoke', 'keys:rotate') WHERE seq = 1`.execute(
        db,
      );
    } finally {
      await db.destroy();
    }
    const edited = await runCli(['audit', 'verify', '-c', configFile, '--key', vkey, '--json']);
    assert.equal(edited.code, 1);
    assert.equal(JSON.parse(edited.stdout).firstBrokenIndex, 1);
  });

  test('a deleted tail is reported against the exported checkpoint', async () => {
    const vkey = readFileSync(join(dir, 'data', 'keys', 'audit-verifier-key.txt'), 'utf8').trim();
    const db = openSqlite(join(dir, 'data', 'maos.db'));
    try {
      await sql`DROP TRIGGER audit_log_no_delete`.execute(db);
      await sql`DROP TRIGGER audit_checkpoints_no_delete`.execute(db);
      await sql`DELETE FROM audit_log WHERE seq >= 2`.execute(db);
      await sql`DELETE FROM audit_checkpoints`.execute(db);
    } finally {
      await db.destroy();
    }
    const result = await runCli(['audit', 'verify', '-c', configFile, '--key', vkey]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /truncated tail/);
  });
});

describe('audit records of a tenant', { timeout: 60_000 }, () => {
  test("the API listing and `maos audit export --tenant` pick the same records: the actor's tenant, else the target's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-audit-tenant-'));
    const config = configSchema.parse({ dataDir: dir, auth: { mode: 'apikey' } });
    const handle = createDatabase(config);
    await migrateToLatest(handle.db);
    const logger = createLogger({ level: 'silent' });
    const security = createSecurity({ config, db: handle.db as never, logger });
    const app = await buildHttpServer({
      config,
      service: createFakeSessionService(),
      logger,
      readiness: async () => ({}),
      listRoles: () => [],
      authenticate: security.http.authenticate,
      plugins: [
        security.http.plugin,
        createSecurityRoutesPlugin({
          db: handle.db as never,
          security,
          maxPageSize: config.http.maxPageSize,
        }),
      ],
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const configFile = join(dir, 'maos.json');
      writeFileSync(configFile, JSON.stringify({ dataDir: dir }));
      // Recorded with the local operator of tenant acme as the actor.
      const key = JSON.parse(
        (await runCli(['keys', 'create', '--role', 'admin', '--tenant', 'acme', '-c', configFile, '--json']))
          .stdout,
      ).key as string;
      const system = {
        type: 'system',
        id: 'maos:system',
        ip: null,
        user_agent: null,
        auth_method: null,
      } as const;
      const target = (tenant: string | null) => ({ type: 'session', id: 's1', tenant });
      // No actor tenant: the target's. An actor tenant: that one, whatever the target's.
      await security.auditLog.append({
        action: 'sessions:purge',
        actor: { ...system, tenant: null },
        target: target('acme'),
        outcome: 'success',
      });
      await security.auditLog.append({
        action: 'sessions:purge',
        actor: { ...system, tenant: 'other' },
        target: target('acme'),
        outcome: 'success',
      });
      await security.auditLog.append({
        action: 'sessions:purge',
        actor: { ...system, tenant: null },
        target: target(null),
        outcome: 'success',
      });
      await security.auditLog.append({
        action: 'sessions:purge',
        actor: { ...system, tenant: null },
        target: target('other'),
        outcome: 'success',
      });

      const response = await fetch(`${url}/v1/audit?limit=100`, {
        headers: { authorization: `Bearer ${key}` },
      });
      assert.equal(response.status, 200);
      const listed = ((await response.json()) as { items: Array<{ seq: number }> }).items.map(
        (item) => item.seq,
      );
      // The key creation (seq 0) and the record that names no actor tenant but acme's session.
      assert.deepEqual(listed, [0, 1]);

      const exported = await runCli(['audit', 'export', '--tenant', 'acme', '-c', configFile]);
      assert.equal(exported.code, 0, exported.stderr);
      const seqs = exported.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { seq: number }).seq);
      assert.deepEqual(seqs, listed);
    } finally {
      await app.close();
      await security.close();
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('maos login', { timeout: 60_000 }, () => {
  test('stores a credential the server accepts (0600) and refuses one it rejects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-login-'));
    const config = configSchema.parse({ dataDir: dir, auth: { mode: 'apikey' } });
    const handle = createDatabase(config);
    await migrateToLatest(handle.db);
    const logger = createLogger({ level: 'silent' });
    const security = createSecurity({ config, db: handle.db as never, logger });
    const app = await buildHttpServer({
      config,
      service: createFakeSessionService(),
      logger,
      readiness: async () => ({}),
      listRoles: () => [],
      authenticate: security.http.authenticate,
      plugins: [security.http.plugin],
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const configFile = join(dir, 'maos.json');
      writeFileSync(configFile, JSON.stringify({ dataDir: dir }));
      const key = JSON.parse(
        (await runCli(['keys', 'create', '--role', 'viewer', '-c', configFile, '--json'])).stdout,
      ).key as string;
      const credentials = join(dir, 'creds', 'credentials.json');
      const ok = await runCli(['login', '--server', url, '--token', key, '--credentials', credentials]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(readStoredToken(`${url}/`, credentials), key);
      assert.equal(statSync(credentials).mode & 0o777, 0o600);
      const bad = await runCli([
        'login',
        '--server',
        url,
        '--token',
        'maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        '--credentials',
        credentials,
      ]);
      assert.equal(bad.code, 5, bad.stderr);
      const out = await runCli(['logout', '--server', url, '--credentials', credentials]);
      assert.equal(out.code, 0);
      assert.equal(readStoredToken(url, credentials), undefined);
      const unreachable = await runCli([
        'login',
        '--server',
        `http://127.0.0.1:${await freePort()}`,
        '--token',
        key,
        '--credentials',
        credentials,
      ]);
      assert.equal(unreachable.code, 3);
    } finally {
      await app.close();
      await security.close();
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('maos secrets rewrap', { timeout: 60_000 }, () => {
  test('re-wraps stored secrets under the new KEK so the old one can be retired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-rewrap-'));
    try {
      const k1 = generateKekEntry('k1');
      const k2 = generateKekEntry('k2');
      writeFileSync(join(dir, 'ring-old'), k1);
      writeFileSync(join(dir, 'ring-both'), `${k2},${k1}`);
      const configOld = join(dir, 'old.json');
      const configBoth = join(dir, 'both.json');
      writeFileSync(
        configOld,
        JSON.stringify({ dataDir: dir, secrets: { kekRing_FILE: join(dir, 'ring-old') } }),
      );
      writeFileSync(
        configBoth,
        JSON.stringify({ dataDir: dir, secrets: { kekRing_FILE: join(dir, 'ring-both') } }),
      );
      const handle = createDatabase(configSchema.parse({ dataDir: dir }));
      await migrateToLatest(handle.db);
      await createSecretStore(handle.db as never, parseKekRing(k1)).put('acme', 'openai', 'sk-1');
      await handle.close();

      const result = await runCli(['secrets', 'rewrap', '-c', configBoth, '--json']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { activeKek: 'k2', rewrapped: 1 });
      const reopened = createDatabase(configSchema.parse({ dataDir: dir }));
      try {
        assert.equal(
          await createSecretStore(reopened.db as never, parseKekRing(k2)).get('acme', 'openai'),
          'sk-1',
        );
      } finally {
        await reopened.close();
      }
      const again = await runCli(['secrets', 'rewrap', '-c', configBoth, '--json']);
      assert.equal(JSON.parse(again.stdout).rewrapped, 0);
      // a ring without the KEK a value is wrapped with cannot touch it
      const stale = await runCli(['secrets', 'rewrap', '-c', configOld]);
      assert.equal(stale.code, 7);
      assert.match(stale.stderr, /KEK k2 is not in the keyring/);
      // It names the secret it could not read (tenant and name, never the value), and is audited.
      assert.match(stale.stderr, /tenant acme, openai: KEK k2 is not in the keyring/);
      assert.ok(!stale.stderr.includes('sk-1'));
      const audited = createDatabase(configSchema.parse({ dataDir: dir }));
      try {
        const events = (
          await (audited.db as unknown as SecurityDb)
            .selectFrom('audit_log')
            .select('event')
            .orderBy('seq')
            .execute()
        ).map((row) => JSON.parse(row.event) as { action: string; outcome: string; reason: string | null });
        const last = events.filter((event) => event.action === 'secrets:rewrap').at(-1);
        assert.equal(last?.outcome, 'failure');
        assert.match(last?.reason ?? '', /tenant acme, openai: KEK k2 is not in the keyring/);
      } finally {
        await audited.close();
      }
      const noRing = join(dir, 'none.json');
      writeFileSync(noRing, JSON.stringify({ dataDir: dir }));
      assert.equal((await runCli(['secrets', 'rewrap', '-c', noRing])).code, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('maos audit verify and the block roots stored for the proofs', { timeout: 60_000 }, () => {
  test('a stored root changed fails verify, naming its block; a database from before the table verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-cli-subtrees-'));
    const configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data') }));
    const handle = createDatabase(configSchema.parse({ dataDir: join(dir, 'data') }));
    const db = handle.db as unknown as SecurityDb;
    try {
      await migrateToLatest(handle.db);
      const log = createAuditLog({ db, origin: 'maos.local/audit' });
      for (let i = 0; i < 1030; i += 103) {
        await Promise.all(Array.from({ length: 103 }, (_, j) => log.append(serviceAuditEvent(i + j))));
      }
      // Stores the root of records 0..1023.
      await log.inclusionProof(3, 1030);
      await log.close();
      const verify = async () => {
        const result = await runCli(['audit', 'verify', '-c', configFile, '--json']);
        return {
          code: result.code,
          report: JSON.parse(result.stdout) as { ok: boolean; problems: string[] },
        };
      };
      const intact = await verify();
      assert.deepEqual([intact.code, intact.report.ok], [0, true]);

      await sql`UPDATE audit_subtrees SET root = ${Buffer.alloc(32, 7).toString('base64')}`.execute(db);
      const changed = await verify();
      assert.equal(changed.code, 1);
      assert.deepEqual(changed.report.problems, [
        'the hash of records 0..1023 stored for proofs (audit_subtrees) does not match them: the stored hash was changed',
      ]);

      await sql`DROP TABLE audit_subtrees`.execute(db);
      assert.equal((await verify()).code, 0);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('export of a log with a damaged record', { timeout: 60_000 }, () => {
  test('every record is exported, the damaged one with its stored text; the command names it and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-audit-damaged-'));
    try {
      const configFile = join(dir, 'maos.json');
      writeFileSync(configFile, JSON.stringify({ dataDir: join(dir, 'data') }));
      for (const tenant of ['acme', 'acme', 'beta']) {
        const created = await runCli([
          'keys',
          'create',
          '--role',
          'viewer',
          '--tenant',
          tenant,
          '-c',
          configFile,
        ]);
        assert.equal(created.code, 0, created.stderr);
      }
      // Record 1 cut short by an edit of the database (its target type index reads the JSON: dropped too).
      const db = openSqlite(join(dir, 'data', 'maos.db'));
      try {
        await sql`DROP TRIGGER audit_log_no_update`.execute(db);
        await sql`DROP INDEX audit_log_tenant_target_type_idx`.execute(db);
        await sql`UPDATE audit_log SET event = substr(event, 1, 40) WHERE seq = 1`.execute(db);
      } finally {
        await db.destroy();
      }
      // It stopped the export there as an INTERNAL error (exit 7) quoting JSON.parse, naming no
      // record, with the records after it not exported.
      const exportFile = join(dir, 'audit.jsonl');
      const exported = await runCli(['audit', 'export', '-c', configFile, '-o', exportFile]);
      assert.equal(exported.code, 1, exported.stderr);
      assert.match(exported.stderr, /1 record\(s\) could not be read as records \(seq 1\)/);
      const lines = readFileSync(exportFile, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { seq: number; unreadable_event?: string; hash: string });
      assert.deepEqual(
        lines.map((line) => line.seq),
        [0, 1, 2],
      );
      assert.equal(lines[1]?.unreadable_event?.length, 40);
      // Verified offline, the export is broken at the damaged record, and only there.
      const vkey = readFileSync(join(dir, 'data', 'keys', 'audit-verifier-key.txt'), 'utf8').trim();
      const offline = await runCli([
        'audit',
        'verify',
        '--export',
        exportFile,
        '--key',
        vkey,
        '-c',
        configFile,
        '--json',
      ]);
      assert.equal(offline.code, 1, offline.stderr);
      const report = JSON.parse(offline.stdout) as {
        size: number;
        firstBrokenIndex: number;
        problems: string[];
      };
      assert.equal(report.size, 3);
      assert.equal(report.firstBrokenIndex, 1);
      assert.match(report.problems[0] ?? '', /record 1 does not match its hash/);
      // By tenant: the damaged record goes by its stored tenant column, as GET /v1/audit lists it.
      const acme = await runCli(['audit', 'export', '--tenant', 'acme', '-c', configFile]);
      assert.equal(acme.code, 1, acme.stderr);
      assert.deepEqual(
        acme.stdout
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { seq: number }).seq),
        [0, 1],
      );
      const beta = await runCli(['audit', 'export', '--tenant', 'beta', '-c', configFile]);
      assert.equal(beta.code, 0, beta.stderr);
      assert.deepEqual(
        beta.stdout
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { seq: number }).seq),
        [2],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
