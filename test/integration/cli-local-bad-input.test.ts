// Local commands (`maos keys`, `maos audit`) given bad arguments: one `error CODE: message` line and
// exit 2, never an INTERNAL error (exit 7) from a file or parser, nor a key stored for no tenant.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runMaos } from '../fixtures/cli.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'maos-cli-bad-input-'));
const config = join(dir, 'maos.json');

before(async () => {
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), logLevel: 'silent' }));
  // Creates the database with its audit log.
  const migrated = await runMaos(['migrate', '--config', config]);
  assert.equal(migrated.code, 0, migrated.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function assertUsage(result: { code: number | null; stderr: string }, message: RegExp): void {
  assert.equal(result.code, 2, result.stderr);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('error '));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0] as string, /^error USAGE: /);
  assert.match(errors[0] as string, message);
  assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

describe('maos audit', () => {
  test('verify without --key where the installation has no audit key generates none: the chain is checked, the checkpoints are not', async () => {
    const copied = join(dir, 'copied-data');
    mkdirSync(copied);
    const backup = await runMaos(['backup', '--config', config, join(copied, 'maos.db')]);
    assert.equal(backup.code, 0, backup.stderr);
    const copiedConfig = join(dir, 'copied.json');
    writeFileSync(copiedConfig, JSON.stringify({ dataDir: copied, logLevel: 'silent' }));
    const result = await runMaos(['audit', 'verify', '--config', copiedConfig]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^checkpoint {3}not checked \(no verifier key\)$/m);
    assert.doesNotMatch(result.stdout, /rejected/);
    assert.match(result.stderr, /no --key given and this installation has no audit key/);
    const json = await runMaos(['audit', 'verify', '--config', copiedConfig, '--json']);
    assert.equal((JSON.parse(json.stdout) as { checkpointsChecked: boolean }).checkpointsChecked, false);
    assert.deepEqual(readdirSync(copied), ['maos.db'], 'no key written');
  });

  test("verify with an empty --key (a key file that was not found) is refused, not run with this installation's key", async () => {
    for (const key of ['', ' ']) {
      const result = await runMaos(['audit', 'verify', '--config', config, '--key', key]);
      assertUsage(result, /--key is empty/);
      assert.doesNotMatch(result.stdout, /intact/);
    }
  });

  test('export to a folder that does not exist, or onto a folder: exit 2 naming --output', async () => {
    const missing = await runMaos(['audit', 'export', '--config', config, '-o', join(dir, 'no', 'x.jsonl')]);
    assertUsage(missing, /cannot write --output .*x\.jsonl \(ENOENT\)/);
    const folder = await runMaos(['audit', 'export', '--config', config, '-o', dir]);
    assertUsage(folder, /cannot write --output .* \(EISDIR\)/);
  });

  test('export onto a full disk, through stdout or --output: exit 7 in one line, no stack trace', async (t) => {
    if (!existsSync('/dev/full')) return t.skip('no /dev/full here');
    const created = await runMaos([
      'keys',
      'create',
      '--config',
      config,
      '--role',
      'admin',
      '--tenant',
      't1',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const full = openSync('/dev/full', 'w');
    t.after(() => closeSync(full));
    const child = spawn(process.execPath, [BIN, 'audit', 'export', '--config', config], {
      stdio: ['ignore', full, 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const [code] = (await once(child, 'close')) as [number | null];
    for (const result of [
      { code, stderr },
      await runMaos(['audit', 'export', '--config', config, '-o', '/dev/full']),
    ]) {
      assert.equal(result.code, 7, result.stderr);
      assert.match(result.stderr, /^error INTERNAL: .*ENOSPC/);
      assert.equal(result.stderr.split('\n').filter((line) => line.startsWith('error ')).length, 1);
      assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
    }
  });

  test('verify --export of a file that is not a JSONL export, or of a folder: exit 2', async () => {
    const notJsonl = join(dir, 'notes.txt');
    writeFileSync(notJsonl, 'these are not audit records\n');
    const text = await runMaos(['audit', 'verify', '--config', config, '--export', notJsonl]);
    assertUsage(text, /notes\.txt is not a JSONL audit export/);
    const folder = join(dir, 'a-folder');
    mkdirSync(folder);
    const dirResult = await runMaos(['audit', 'verify', '--config', config, '--export', folder]);
    assertUsage(dirResult, /a-folder is not a JSONL audit export/);
  });

  test('verify --checkpoint-dir that is missing or not a folder is an error, not "no checkpoints"', async () => {
    const missing = await runMaos([
      'audit',
      'verify',
      '--config',
      config,
      '--checkpoint-dir',
      join(dir, 'no-such-ckpts'),
    ]);
    assert.equal(missing.code, 4, missing.stdout + missing.stderr);
    assert.match(missing.stderr, /^error NOT_FOUND: no such checkpoint directory: .*no-such-ckpts$/m);
    assert.doesNotMatch(missing.stdout, /intact/);
    const file = join(dir, 'ckpt-file.txt');
    writeFileSync(file, 'not a folder\n');
    const notDir = await runMaos(['audit', 'verify', '--config', config, '--checkpoint-dir', file]);
    assertUsage(notDir, /cannot read --checkpoint-dir .*ckpt-file\.txt \(ENOTDIR\)/);
  });

  test('export --tenant with an empty value is refused, not an export of every tenant', async () => {
    const file = join(dir, 'tenant.jsonl');
    for (const tenant of ['', ' ']) {
      const exported = await runMaos(['audit', 'export', '--config', config, '--tenant', tenant, '-o', file]);
      assertUsage(exported, /--tenant must not be empty/);
      assert.equal(existsSync(file), false, 'no export file is written');
    }
  });

  test('verify --export or export --output given empty is refused, not the database verified or the records on stdout', async () => {
    for (const value of ['', ' ']) {
      const verified = await runMaos(['audit', 'verify', '--config', config, '--export', value]);
      assertUsage(verified, /--export must not be empty/);
      assert.doesNotMatch(verified.stdout, /intact/);
      const exported = await runMaos(['audit', 'export', '--config', config, '-o', value]);
      assertUsage(exported, /--output must not be empty/);
      assert.equal(exported.stdout, '', 'no records on stdout');
    }
  });

  test('export --tenant padded with spaces is refused, not an empty export of a tenant that reads the same', async () => {
    const exported = await runMaos(['audit', 'export', '--config', config, '--tenant', ' default']);
    assertUsage(exported, /--tenant " default" must not start or end with spaces/);
  });

  test('verify with both --key and --key-file is refused: one of them went unused', async () => {
    const keyFile = join(dir, 'verifier-key.txt');
    writeFileSync(keyFile, 'maos.local/audit+00000000+AAAA\n');
    const result = await runMaos([
      'audit',
      'verify',
      '--config',
      config,
      '--key',
      'maos.local/audit+00000000+AAAA',
      '--key-file',
      keyFile,
    ]);
    assertUsage(result, /--key and --key-file cannot be combined/);
  });

  test('a real export still verifies (exit 0)', async () => {
    const file = join(dir, 'good.jsonl');
    const exported = await runMaos(['audit', 'export', '--config', config, '-o', file]);
    assert.equal(exported.code, 0, exported.stderr);
    // With --json and a file: one JSON document on stdout, as every command prints.
    const again = join(dir, 'again.jsonl');
    const json = await runMaos(['audit', 'export', '--config', config, '-o', again, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const { output, records } = JSON.parse(json.stdout) as { output: string; records: number };
    assert.equal(output, again);
    assert.equal(records, readFileSync(again, 'utf8').split('\n').filter(Boolean).length);
    const verified = await runMaos(['audit', 'verify', '--config', config, '--export', file]);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('export --output: an existing file is refused unless --force, and the file written is owner-only (0600) either way', async () => {
    const existing = join(dir, 'shared.jsonl');
    writeFileSync(existing, 'keep me\n', { mode: 0o644 });
    chmodSync(existing, 0o644);
    const refused = await runMaos(['audit', 'export', '--config', config, '-o', existing]);
    assertUsage(refused, /--output .*shared\.jsonl exists: choose another file, or replace it with --force/);
    assert.equal(readFileSync(existing, 'utf8'), 'keep me\n', 'left as it was');
    assert.equal(statSync(existing).mode & 0o777, 0o644);
    // It kept the file's 0644: the actor ids and addresses of the log readable by every local user.
    const forced = await runMaos(['audit', 'export', '--config', config, '-o', existing, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(statSync(existing).mode & 0o777, 0o600);
    const lines = readFileSync(existing, 'utf8').trim().split('\n');
    assert.ok(lines.length > 0);
    for (const line of lines) assert.equal(typeof (JSON.parse(line) as { hash: string }).hash, 'string');
    const fresh = join(dir, 'fresh.jsonl');
    const created = await runMaos(['audit', 'export', '--config', config, '-o', fresh]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    // --force never empties the database the export reads.
    const database = join(dir, 'data', 'maos.db');
    const size = statSync(database).size;
    const ontoDatabase = await runMaos(['audit', 'export', '--config', config, '-o', database, '--force']);
    assertUsage(ontoDatabase, /is the database the export reads, or a file SQLite keeps beside it/);
    assert.equal(statSync(database).size, size);
  });
});

describe('maos keys', () => {
  test('create with an audit.signingKey that is no Ed25519 PEM key: exit 2, and no data directory or database made', async () => {
    const fresh = join(dir, 'fresh-data');
    const badKey = join(dir, 'bad-key.json');
    writeFileSync(
      badKey,
      JSON.stringify({ dataDir: fresh, logLevel: 'silent', audit: { signingKey: 'garbage' } }),
    );
    const result = await runMaos(['keys', 'create', '--config', badKey, '--role', 'admin']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^error CONFIG_INVALID: audit\.signingKey is not a readable PEM private key/m,
    );
    assert.equal(result.stdout, '', 'no key printed');
    assert.equal(existsSync(fresh), false, 'nothing created');
  });

  test('create with an unknown --role or an --expires not in the future: exit 2, and no data directory or database made', async () => {
    const fresh = join(dir, 'fresh-typo-data');
    const freshConfig = join(dir, 'fresh-typo.json');
    writeFileSync(freshConfig, JSON.stringify({ dataDir: fresh, logLevel: 'silent' }));
    const cases: Array<[string[], RegExp]> = [
      [['--role', 'admn'], /^error VALIDATION_FAILED: Unknown role\(s\): admn$/m],
      [['--role', 'admin', '--role', 'nope'], /^error VALIDATION_FAILED: Unknown role\(s\): nope$/m],
      [
        ['--role', 'admin', '--expires', '0d'],
        /^error VALIDATION_FAILED: --expires .*must be in the future/m,
      ],
      [
        ['--role', 'admin', '--expires', '2020-01-01'],
        /^error VALIDATION_FAILED: --expires .*must be in the future/m,
      ],
    ];
    for (const [options, message] of cases) {
      const result = await runMaos(['keys', 'create', '--config', freshConfig, ...options]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '', 'no key printed');
      assert.equal(existsSync(fresh), false, `nothing created for ${options.join(' ')}`);
    }
  });

  test('an empty --tenant is refused before any key is stored', async () => {
    const created = await runMaos(['keys', 'create', '--config', config, '--role', 'viewer', '--tenant', '']);
    assertUsage(created, /--tenant must not be empty/);
    const listed = await runMaos(['keys', 'list', '--config', config, '--tenant', ' ']);
    assertUsage(listed, /--tenant must not be empty/);
  });

  test('a --tenant padded with spaces is refused, not a key of another tenant', async () => {
    for (const tenant of [' default', 'default ']) {
      const created = await runMaos([
        'keys',
        'create',
        '--config',
        config,
        '--role',
        'viewer',
        '--tenant',
        tenant,
      ]);
      assertUsage(created, /--tenant ".+" must not start or end with spaces/);
    }
    const listed = await runMaos(['keys', 'list', '--config', config, '--tenant', ' default', '--json']);
    assertUsage(listed, /must not start or end with spaces/);
  });

  test('tenants purge and export refuse an empty tenant, and a padded one no tenant has, erasing and writing nothing', async () => {
    for (const command of [
      ['tenants', 'purge', '--yes'],
      ['tenants', 'export', '--output', join(dir, 'never.tar')],
    ]) {
      assertUsage(await runMaos([...command, '--config', config, ' ']), /the tenant must not be empty/);
      assertUsage(
        await runMaos([...command, '--config', config, 'default ']),
        /the tenant "default " must not start or end with spaces \(no tenant of exactly that id is stored\)/,
      );
    }
    assert.equal(existsSync(join(dir, 'never.tar')), false, 'nothing written');
  });

  test('tenants export onto a folder is refused before anything is exported, with --force too', async () => {
    const folder = join(dir, 'export-folder');
    mkdirSync(folder);
    for (const force of [[], ['--force']]) {
      const result = await runMaos([
        'tenants',
        'export',
        'default',
        '--config',
        config,
        '--output',
        folder,
        ...force,
      ]);
      assertUsage(result, /--output .*export-folder is a folder: name the tar file to write/);
    }
    assert.deepEqual(readdirSync(folder), [], 'nothing written into it');
  });

  test('tenants export onto a pipe or device is refused, with --force too: the archive would replace it', async () => {
    const pipe = join(dir, 'export-pipe');
    execFileSync('mkfifo', [pipe]);
    for (const force of [[], ['--force']]) {
      const result = await runMaos([
        'tenants',
        'export',
        'default',
        '--config',
        config,
        '--output',
        pipe,
        ...force,
      ]);
      assertUsage(result, /--output .*export-pipe is no regular file \(a device or a pipe\)/);
    }
    assert.ok(lstatSync(pipe).isFIFO(), 'the pipe is still there');
  });

  test('a --name with control characters, blank or too long is refused (exit 2), as the API refuses it', async () => {
    const cases: Array<[string, RegExp]> = [
      ['deploy\nbot', /--name must not contain control characters/],
      ['red\u001b[31mbot', /--name must not contain control characters/],
      ['tab\tbot', /--name must not contain control characters/],
      [' ', /--name must not be blank/],
      ['x'.repeat(201), /--name must be at most 200 characters/],
    ];
    for (const [name, message] of cases) {
      for (const json of [[], ['--json']]) {
        const result = await runMaos([
          'keys',
          'create',
          '--config',
          config,
          '--role',
          'viewer',
          '--tenant',
          'named',
          '--name',
          name,
          ...json,
        ]);
        assert.equal(result.code, 2, `${JSON.stringify(name)}: ${result.stdout}${result.stderr}`);
        assert.equal(result.stdout, '', 'no key printed');
        assert.match(result.stderr, /^error VALIDATION_FAILED: --name /m);
        assert.match(result.stderr, message);
      }
    }
    const listed = await runMaos(['keys', 'list', '--config', config, '--tenant', 'named', '--json']);
    assert.deepEqual(JSON.parse(listed.stdout).items, [], 'no key stored');
  });

  test('revoke takes an id or prefix pasted with spaces around it', async () => {
    const created = await runMaos([
      'keys',
      'create',
      '--config',
      config,
      '--role',
      'viewer',
      '--tenant',
      'padded',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const { prefix } = JSON.parse(created.stdout) as { prefix: string };
    const revoked = await runMaos([
      'keys',
      'revoke',
      '--config',
      config,
      '--tenant',
      'padded',
      ` ${prefix} `,
      '--json',
    ]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.ok(JSON.parse(revoked.stdout).revokedAt);
  });

  test('revoke with an empty id is a usage error', async () => {
    const revoked = await runMaos(['keys', 'revoke', '--config', config, '']);
    assertUsage(revoked, /key id or prefix must not be empty/);
  });

  test('an --expires that is neither an RFC 3339 time nor a duration is refused, not read as a date', async () => {
    // Were taken: a time without offset (as local time), `2030` (as a year); `5` (days meant, read
    // as 2001-05-01) was refused as a time in the past.
    // And a day its month does not have, which Date.parse rolls over into the next month. And an
    // empty one (`--expires "$TTL"` with TTL unset), which made a key that never expires.
    for (const expires of ['2030-01-01T00:00:00', '2030', '5', '2030-02-30', '2030-04-31T12:00:00Z', '']) {
      const result = await runMaos([
        'keys',
        'create',
        '--config',
        config,
        '--role',
        'viewer',
        '--expires',
        expires,
      ]);
      assert.equal(result.code, 2, `--expires ${expires}: ${result.stdout}${result.stderr}`);
      assert.match(
        result.stderr,
        /^error VALIDATION_FAILED: --expires(: ".+" is neither an RFC 3339 time .* nor a duration| is empty: )/m,
      );
    }
    const listed = await runMaos(['keys', 'list', '--config', config, '--json']);
    assert.deepEqual(JSON.parse(listed.stdout).items, [], 'no key stored');
    const dated = await runMaos([
      'keys',
      'create',
      '--config',
      config,
      '--role',
      'viewer',
      '--expires',
      '2999-01-31',
      '--json',
    ]);
    assert.equal(dated.code, 0, dated.stderr);
    assert.equal(JSON.parse(dated.stdout).expiresAt, '2999-01-31T00:00:00.000Z');
  });
});

describe('maos doctor', () => {
  test('a --server or MAOS_SERVER that is no http(s) URL is a usage error (exit 2), before any check', async () => {
    for (const [args, env] of [
      [['--server', 'foo'], {}],
      [['--server', 'ftp://127.0.0.1:7070'], {}],
      [[], { MAOS_SERVER: 'localhost:7070' }],
    ] as const) {
      const result = await runMaos(['doctor', '--config', config, ...args], { env });
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, /^error INVALID_SERVER_URL: /m);
      assert.equal(result.stdout, '', 'no check ran');
    }
  });

  test('a flag value that is not a number is a usage error, not silently the default', async () => {
    for (const args of [
      ['--min-free-mb', 'lots'],
      ['--max-clock-skew', '-5'],
    ]) {
      const result = await runMaos(['doctor', '--config', config, ...args]);
      assertUsage(result, new RegExp(`${args[0]} must be a number`));
      assert.equal(result.stdout, '', 'no report printed');
    }
  });
});

describe('maos serve', () => {
  test('a --port that is no port number is a usage error naming --port, before anything starts', async () => {
    for (const port of ['-1', '1.5', 'http', '65536', '']) {
      const result = await runMaos(['serve', '--config', config, '--port', port]);
      assertUsage(
        result,
        new RegExp(`--port must be a whole number from 0 to 65535 \\(got "${port.replace('.', '\\.')}"\\)`),
      );
    }
  });
});

describe('maos backup', () => {
  test('a backup file in a "folder" that is a file is refused as bad input (exit 2), not an internal error', async () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    const result = await runMaos(['backup', '--config', config, join(file, 'maos.db')]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: .*not-a-folder is not a directory/m);
    assert.ok(!existsSync(`${join(file, 'maos.db')}.partial`));
  });

  test('a backup file name that ends in a space is refused: no restore could open it by that name', async () => {
    const file = join(dir, 'trailing.db ');
    const result = await runMaos(['backup', '--config', config, file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: .*trailing\.db {2}ends in whitespace/m);
    assert.ok(!existsSync(file) && !existsSync(`${file}.partial`));
  });

  test('an empty backup file name is refused as bad input (exit 2), not a failed backup', async () => {
    const result = await runMaos(['backup', '--config', config, '']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: the backup file name is empty/m);
  });
});

describe('maos restore', () => {
  test('a folder given as the backup file is refused as bad input (exit 2), not a database failure', async () => {
    const result = await runMaos(['restore', '--config', config, dir, '--force']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: .+ is not a file; name the backup file/m);
  });

  test('an empty backup file name is refused as bad input (exit 2), not a file that does not exist', async () => {
    const result = await runMaos(['restore', '--config', config, '']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: the backup file name is empty/m);
  });

  test('a backup file name that ends in a space is refused, not read as the file without the space', async () => {
    const plain = join(dir, 'twin.db');
    const made = await runMaos(['backup', '--config', config, plain]);
    assert.equal(made.code, 0, made.stderr);
    writeFileSync(`${plain} `, readFileSync(plain));
    const target = join(dir, 'twin-restore.json');
    writeFileSync(target, JSON.stringify({ dataDir: join(dir, 'twin-data'), logLevel: 'silent' }));
    const result = await runMaos(['restore', '--config', target, `${plain} `]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error VALIDATION_FAILED: .*twin\.db {2}ends in whitespace/m);
    assert.ok(!existsSync(join(dir, 'twin-data', 'maos.db')));
  });

  test('a data directory that is a file (or under one) is refused as bad input (exit 2), before anything is written', async () => {
    const backup = join(dir, 'restore-source.db');
    const made = await runMaos(['backup', '--config', config, backup]);
    assert.equal(made.code, 0, made.stderr);
    const file = join(dir, 'data-dir-file');
    writeFileSync(file, 'x');
    for (const dataDir of [file, join(file, 'sub')]) {
      const target = join(dir, `restore-${dataDir === file ? 'file' : 'under'}.json`);
      writeFileSync(target, JSON.stringify({ dataDir, logLevel: 'silent' }));
      const result = await runMaos(['restore', '--config', target, backup]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^error VALIDATION_FAILED: .*data-dir-file is not a directory/m);
      assert.equal(readFileSync(file, 'utf8'), 'x');
    }
  });
});

describe('maos support-bundle', () => {
  test('an --output in a missing folder, or onto a folder, is a usage error before anything is collected', async () => {
    const missing = await runMaos(['support-bundle', '--config', config, '-o', join(dir, 'no', 'b.tar.gz')]);
    assertUsage(missing, /cannot write --output .*b\.tar\.gz \(ENOENT\)/);
    const folder = await runMaos(['support-bundle', '--config', config, '-o', dir]);
    assertUsage(folder, /cannot write --output .* \(EISDIR/);
  });

  test('a --server or MAOS_SERVER that is no usable http(s) URL is a usage error, as for doctor: not a note in the bundle', async () => {
    const output = join(dir, 'server-bundle.tar.gz');
    for (const [args, env] of [
      [['--server', 'ftp://127.0.0.1:7070'], {}],
      [[], { MAOS_SERVER: 'localhost:7070' }],
      // Its password went into the bundle's notes, for support to read.
      [['--server', 'http://deploy:s3cret@127.0.0.1:7070'], {}],
    ] as const) {
      const result = await runMaos(['support-bundle', '--config', config, '-o', output, ...args], { env });
      assert.equal(result.code, 2, result.stdout + result.stderr);
      assert.match(result.stderr, /^error INVALID_SERVER_URL: /m);
      assert.doesNotMatch(result.stderr, /s3cret/);
      assert.equal(existsSync(output), false, 'no bundle written');
    }
  });
});
