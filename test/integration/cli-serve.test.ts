// `maos serve` as a supervisor sees it: once the banner appears, SIGTERM shuts the server down
// gracefully (exit 0) however soon it comes; `--json`, before or after the command, makes the banner
// one JSON line.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSigningKeyPem } from '../../src/security/audit/checkpoint.ts';
import { type CliResult, runMaos } from '../fixtures/cli.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

interface ServeBanner {
  url: string;
  dataDir: string;
  authMode: string;
}

/** The banner among the complete lines on stdout (log lines are JSON too, but carry no authMode). */
function findBanner(stdout: string): ServeBanner | undefined {
  for (const line of stdout.split('\n').slice(0, -1)) {
    let parsed: Partial<ServeBanner>;
    try {
      parsed = JSON.parse(line) as Partial<ServeBanner>;
    } catch {
      continue; // not JSON: the assertion on the missing banner shows stdout
    }
    if (typeof parsed.url === 'string' && typeof parsed.authMode === 'string') return parsed as ServeBanner;
  }
  return undefined;
}

/** A config for a server on a free port with auth off and only warnings logged. */
function tempServeArgs(dir: string, name: string): string[] {
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'warn' }));
  return ['--config', config, '--port', '0', '--data-dir', join(dir, name)];
}

/**
 * Runs `maos <args>` and sends SIGTERM once, as soon as `isAnnounced(output so far)` holds for the
 * stream the banner is on (stdout for `--json`, stderr for the text banner).
 */
function serveUntilAnnounced(
  args: string[],
  isAnnounced: (output: string) => boolean,
  stream: 'stdout' | 'stderr' = 'stdout',
  cwd?: string,
  env?: Record<string, string>,
): Promise<CliResult> {
  let seen = '';
  let stopped = false;
  const watch = (chunk: string, child: ChildProcess) => {
    seen += chunk;
    // Once only: a second signal makes serve exit 130 without waiting for the shutdown.
    if (!stopped && isAnnounced(seen)) stopped = child.kill('SIGTERM');
  };
  return runMaos(args, {
    timeoutMs: 90_000,
    ...(cwd === undefined ? {} : { cwd }),
    ...(env === undefined ? {} : { env }),
    ...(stream === 'stdout' ? { onStdout: watch } : { onStderr: watch }),
  });
}

/**
 * Runs `line` with sh in `cwd`, with the node running the tests first on PATH and no MAOS_* variable
 * but those of `extra`.
 */
function runInShell(line: string, cwd: string, extra: Record<string, string> = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env))
    if (value !== undefined && !key.startsWith('MAOS_')) env[key] = value;
  Object.assign(env, extra);
  env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}`;
  return new Promise((resolve) => {
    execFile('sh', ['-c', line], { cwd, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        stdout,
        stderr,
      }),
    );
  });
}

describe('maos serve', { timeout: 300_000 }, () => {
  test('SIGTERM right after the first banner line still shuts down gracefully', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // The race it guards against is narrow: a few rounds make it show without the fix.
    for (let round = 0; round < 4; round++) {
      const result = await serveUntilAnnounced(
        ['serve', ...tempServeArgs(dir, `race-${round}`)],
        (stderr) => /MAOS listening on/.test(stderr),
        'stderr',
      );
      assert.equal(result.code, 0, `round ${round}: killed before its shutdown handler\n${result.stderr}`);
    }
  });

  for (const order of [
    ['serve', '--json'],
    ['--json', 'serve'],
  ]) {
    test(`maos ${order.join(' ')} prints one JSON line with url, dataDir and authMode`, async (t) => {
      const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const result = await serveUntilAnnounced([...order, ...tempServeArgs(dir, 'data')], (stdout) =>
        Boolean(findBanner(stdout)),
      );
      assert.equal(result.code, 0, result.stderr);
      const banner = findBanner(result.stdout);
      assert.ok(banner, `no banner line in:\n${result.stdout}`);
      assert.match(banner.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(banner.dataDir, join(dir, 'data'));
      assert.equal(banner.authMode, 'none');
      assert.doesNotMatch(result.stdout, /MAOS listening on/);
    });
  }

  test('the text banner is on stderr: stdout carries only JSON log lines', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const result = await serveUntilAnnounced(
      ['serve', ...tempServeArgs(dir, 'data')],
      (stderr) => /API docs:/.test(stderr),
      'stderr',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /MAOS listening on http:\/\/127\.0\.0\.1:\d+/);
    for (const line of result.stdout.split('\n').filter((text) => text.trim() !== '')) {
      assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line: ${line}`);
    }
  });

  test('on a fresh install with API keys the banner prints the command that creates the first admin key', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    // auth.mode apikey (the default) and dataDir ./.maos (the default), relative to where serve runs.
    const config = join(dir, 'keys.json');
    writeFileSync(config, JSON.stringify({ logLevel: 'warn' }));
    const args = ['serve', '--config', config, '--port', '0'];
    const fresh = await serveUntilAnnounced(args, (stderr) => /API docs:.*\n/.test(stderr), 'stderr', dir);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stderr, /auth mode: {6}apikey\n/);
    // maos as it was started here: node and the script, absolute (not a `maos` the shell may not know).
    const command = /^ {4}(MAOS_DATA_DIR=(\S+) node (\S+) (keys create .*))$/m.exec(fresh.stderr);
    assert.ok(command, `no key command in:\n${fresh.stderr}`);
    assert.equal(command[2], join(dir, '.maos'));
    assert.equal(command[3], BIN);
    assert.equal(
      command[4],
      `keys create --role admin --tenant default --name first-admin --config ${config}`,
    );

    // The command as printed, run by a shell in another directory, creates the key on this server's
    // database: the note names it, and the next start is quiet.
    const created = await runInShell(command[1] as string, elsewhere);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^maos_/);
    assert.ok(
      created.stderr.includes(
        `stored in ${join(dir, '.maos', 'maos.db')} (a server on another database refuses it`,
      ),
      created.stderr,
    );
    assert.equal(existsSync(join(elsewhere, '.maos')), false);
    // The banner says it before its last line, so a run stopped at that line has decided.
    const again = await serveUntilAnnounced(args, (stderr) => /API docs:.*\n/.test(stderr), 'stderr', dir);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /no API key yet/);
  });

  test('the first-key command carries a config given through a relative MAOS_CONFIG, made absolute', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // The config names the data directory: a `maos keys create` without it would use ./.maos.
    writeFileSync(join(dir, 'env.json'), JSON.stringify({ logLevel: 'warn', dataDir: 'env-data' }));
    const fresh = await serveUntilAnnounced(
      ['serve', '--port', '0'],
      (stderr) => /API docs:.*\n/.test(stderr),
      'stderr',
      dir,
      { MAOS_CONFIG: 'env.json' },
    );
    assert.equal(fresh.code, 0, fresh.stderr);
    const command = /^ {4}MAOS_DATA_DIR=(\S+) node \S+ (keys create .*)$/m.exec(fresh.stderr);
    assert.ok(command, `no key command in:\n${fresh.stderr}`);
    assert.equal(command[1], join(dir, 'env-data'));
    assert.equal(
      command[2],
      `keys create --role admin --tenant default --name first-admin --config ${join(dir, 'env.json')}`,
    );
  });

  test('the first-key command carries the store and audit key the server took from its environment, paths made absolute', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    mkdirSync(join(dir, 'db'));
    writeFileSync(join(dir, 'audit.pem'), generateSigningKeyPem());
    writeFileSync(join(dir, 'keys.json'), JSON.stringify({ logLevel: 'warn' }));
    // Relative, as the server's working directory reads them; none of them is in the other shell.
    const env = {
      MAOS_STORE__URL: 'sqlite:db/shared.db',
      MAOS_AUDIT__SIGNING_KEY_FILE: 'audit.pem',
      MAOS_AUDIT__ORIGIN: 'example.test/audit',
    };
    const args = ['serve', '--config', join(dir, 'keys.json'), '--port', '0'];
    const announced = (stderr: string) => /API docs:.*\n/.test(stderr);
    const fresh = await serveUntilAnnounced(args, announced, 'stderr', dir, env);
    assert.equal(fresh.code, 0, fresh.stderr);
    const command = /^ {4}(MAOS_DATA_DIR=\S+ .*keys create .*)$/m.exec(fresh.stderr);
    assert.ok(command, `no key command in:\n${fresh.stderr}`);
    assert.match(
      command[1] as string,
      new RegExp(
        `^MAOS_DATA_DIR=\\S+ MAOS_AUDIT__ORIGIN=example\\.test/audit MAOS_AUDIT__SIGNING_KEY_FILE=${join(dir, 'audit.pem')} MAOS_STORE__URL=sqlite:${join(dir, 'db', 'shared.db')} node `,
      ),
    );
    assert.doesNotMatch(fresh.stderr, /values not shown/, 'no secret value was given by the environment');
    // The server's log line names them too (a container's log has no banner).
    const hint = fresh.stdout.split('\n').find((line) => line.includes('No API key exists yet'));
    assert.ok(hint, fresh.stdout);
    assert.ok(
      hint.includes(
        'with MAOS_AUDIT__ORIGIN, MAOS_AUDIT__SIGNING_KEY_FILE, MAOS_STORE__URL set as for this server',
      ),
      hint,
    );

    const created = await runInShell(command[1] as string, elsewhere);
    assert.equal(created.code, 0, created.stderr);
    assert.ok(created.stderr.includes(`stored in ${join(dir, 'db', 'shared.db')} (`), created.stderr);
    assert.equal(existsSync(join(elsewhere, '.maos', 'maos.db')), false);
    const again = await serveUntilAnnounced(args, announced, 'stderr', dir, env);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /no API key yet/);
  });

  test('a secret the server took from its environment is named in the first-key command, never printed', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(dir, 'keys.json'), JSON.stringify({ logLevel: 'warn', dataDir: 'data' }));
    const pem = generateSigningKeyPem();
    const secretLine = pem.split('\n')[1] as string;
    const args = ['serve', '--config', join(dir, 'keys.json'), '--port', '0'];
    const fresh = await serveUntilAnnounced(args, (stderr) => /API docs:.*\n/.test(stderr), 'stderr', dir, {
      MAOS_AUDIT__SIGNING_KEY: pem,
    });
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.ok(
      !fresh.stderr.includes(secretLine) && !fresh.stdout.includes(secretLine),
      'the key was printed',
    );
    const command =
      /^ {4}(MAOS_DATA_DIR=\S+ MAOS_AUDIT__SIGNING_KEY="\$MAOS_AUDIT__SIGNING_KEY" .*keys create .*)$/m.exec(
        fresh.stderr,
      );
    assert.ok(command, `no key command naming the variable in:\n${fresh.stderr}`);
    assert.match(
      fresh.stderr,
      /\(with MAOS_AUDIT__SIGNING_KEY set in that shell as for this server; values not shown\)/,
    );

    // Pasted into a shell without it: refused, naming the variable, nothing created.
    const without = await runInShell(command[1] as string, elsewhere);
    assert.equal(without.code, 2, without.stderr);
    assert.match(without.stderr, /audit\.signingKey: .*\(from the environment: MAOS_AUDIT__SIGNING_KEY\)/);
    // With it: the key is made on the server's database, signed as the server signs.
    const created = await runInShell(command[1] as string, elsewhere, { MAOS_AUDIT__SIGNING_KEY: pem });
    assert.equal(created.code, 0, created.stderr);
    assert.ok(created.stderr.includes(`stored in ${join(dir, 'data', 'maos.db')} (`), created.stderr);
  });

  test('started by npx or npm exec, the first-key command is npx on the project, from any directory', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'keys.json'), JSON.stringify({ logLevel: 'warn', dataDir: 'data' }));
    // What npm exec (npx) sets for the commands it runs.
    const npx = { npm_command: 'exec', npm_config_local_prefix: join(dir, 'project') };
    const args = ['serve', '--config', join(dir, 'keys.json'), '--port', '0'];
    const fresh = await serveUntilAnnounced(
      args,
      (stderr) => /API docs:.*\n/.test(stderr),
      'stderr',
      dir,
      npx,
    );
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.ok(
      fresh.stderr.includes(
        `    MAOS_DATA_DIR=${join(dir, 'data')} npx --prefix ${join(dir, 'project')} maos keys create --role admin`,
      ),
      fresh.stderr,
    );
  });

  test('an address this machine does not have is CONFIG_INVALID (exit 2), naming the address and its setting', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // TEST-NET-1 (RFC 5737): never a local address, and a failed bind sends nothing anywhere.
    const host = '192.0.2.1';
    const local = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
    if (local.some((entry) => entry.address === host)) return t.skip(`${host} is a local address here`);
    const config = join(dir, 'remote-host.json');
    writeFileSync(config, JSON.stringify({ auth: { mode: 'apikey' }, logLevel: 'warn', host }));
    const result = await runMaos([
      'serve',
      '--config',
      config,
      '--port',
      '0',
      '--data-dir',
      join(dir, 'data'),
    ]);
    // Unlike a taken port (PORT_IN_USE), the listen address is the config's to fix; found before
    // the data directory is created.
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /error CONFIG_INVALID: Cannot listen on 192\.0\.2\.1:0 for the API \(setting `port`\): the address is not available \(EADDRNOTAVAIL\)/,
    );
    assert.equal(existsSync(join(dir, 'data')), false);
  });

  test('a host name that resolves to no address is CONFIG_INVALID (exit 2), not an internal error', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // `.invalid` (RFC 6761) never resolves; 999.1.1.1 is no IPv4 address, so it is looked up as a name.
    for (const host of ['maos-no-such-host.invalid', '999.1.1.1']) {
      const config = join(dir, `${host}.json`);
      writeFileSync(config, JSON.stringify({ auth: { mode: 'apikey' }, logLevel: 'warn', host }));
      const result = await runMaos([
        'serve',
        '--config',
        config,
        '--port',
        '0',
        '--data-dir',
        join(dir, 'data'),
      ]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `error CONFIG_INVALID: Cannot listen on ${host.replaceAll('.', '\\.')}:0 for the API \\(setting \`port\`\\): the host name (resolves to no address \\(ENOTFOUND\\)|could not be resolved now \\(EAI_AGAIN\\))`,
        ),
      );
      assert.doesNotMatch(result.stderr, /INTERNAL/);
    }
  });
});
