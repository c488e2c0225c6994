// `--credentials <file>`: the token `maos login --credentials <file>` stores is the one later
// commands send when given the same file (before or after the command), `maos mcp` included; with
// another file (or none) the server never sees it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { readStoredToken } from '../../src/cli/commands/login.ts';
import { runMaos } from '../fixtures/cli.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));
const TOKEN = 'maos_test_credentials_file_token';

/** A stand-in server whose GET /v1/roles answers only with TOKEN, recording every Authorization. */
async function startRolesServer(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((request, response) => {
    const authorization = request.headers.authorization ?? '';
    seen.push(authorization);
    if (authorization !== `Bearer ${TOKEN}`) {
      response.writeHead(401, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify({ status: 401, code: 'UNAUTHENTICATED', title: 'no valid credential' }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({ items: [{ name: 'qa', description: 'checks things', capabilities: ['test'] }] }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, seen, server };
}

/** Runs node with `args` under a 1 KiB file size limit (`ulimit -f 1`: writes past it fail with EFBIG). */
function runUnderFileSizeLimit(
  args: string[],
  env: Record<string, string>,
  input: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn('bash', ['-c', 'ulimit -f 1 && exec "$@"', 'bash', process.execPath, ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('maos --credentials', { timeout: 120_000 }, () => {
  let dir: string;
  let home: string;
  let credentials: string;
  let roles: Awaited<ReturnType<typeof startRolesServer>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cli-credentials-'));
    // An empty home: the default credentials file does not exist, so only --credentials can help.
    home = join(dir, 'home');
    credentials = join(dir, 'elsewhere', 'credentials.json');
    roles = await startRolesServer();
    const login = await runMaos(['login', '--server', roles.url, '--credentials', credentials], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
  });

  after(async () => {
    await new Promise((resolve) => roles?.server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  test('commands send the token stored in the file given before or after the command', async () => {
    for (const args of [
      ['roles', '--json', '--server', roles.url, '--credentials', credentials],
      ['--credentials', credentials, '--server', roles.url, 'roles', '--json'],
    ]) {
      const result = await runMaos(args, { env: { HOME: home } });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.deepEqual(
        (JSON.parse(result.stdout) as Array<{ name: string }>).map((role) => role.name),
        ['qa'],
      );
    }
    // Without the file the stored token is not found: the server rejects the call.
    const without = await runMaos(['roles', '--server', roles.url], { env: { HOME: home } });
    assert.equal(without.code, 5, without.stderr);
  });

  test('MAOS_CREDENTIALS names the file for login and for every command', async () => {
    const viaEnv = join(dir, 'env', 'credentials.json');
    const env = { HOME: home, MAOS_CREDENTIALS: viaEnv };
    const login = await runMaos(['login', '--server', roles.url], { env, input: `${TOKEN}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout + login.stderr, new RegExp(viaEnv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const listed = await runMaos(['roles', '--json', '--server', roles.url], { env });
    assert.equal(listed.code, 0, listed.stderr);
    // --credentials wins over the variable.
    const flag = await runMaos(['roles', '--server', roles.url, '--credentials', join(dir, 'none.json')], {
      env,
    });
    assert.equal(flag.code, 5, flag.stderr);
  });

  test('login and logout refuse a credentials file they cannot read, instead of replacing it', async () => {
    const other = join(dir, 'other', 'credentials.json');
    mkdirSync(join(dir, 'other'));
    // Cut short (a write interrupted, a hand edit): the other servers' tokens are still in it.
    const damaged =
      '{"servers": {"https://maos.example": {"token": "maos_other_server_token", "savedAt": "x"}}';
    for (const content of [damaged, '[]', '{"servers": "none"}']) {
      writeFileSync(other, content);
      const login = await runMaos(['login', '--server', roles.url, '--credentials', other], {
        env: { HOME: home },
        input: `${TOKEN}\n`,
      });
      assert.equal(login.code, 2, login.stdout + login.stderr);
      assert.match(
        login.stderr,
        /^error VALIDATION_FAILED: the credentials file .+ is not one `maos login` wrote .*left unchanged/m,
      );
      assert.equal(readFileSync(other, 'utf8'), content);
      const logout = await runMaos(['logout', '--server', roles.url, '--credentials', other]);
      assert.equal(logout.code, 2, logout.stdout + logout.stderr);
      assert.equal(readFileSync(other, 'utf8'), content);
      // Other commands go on without a stored token (the server then says what it needs).
      assert.equal(readStoredToken('https://maos.example', other), undefined);
    }
  });

  test('a login whose write fails midway (file size limit) leaves every stored token in place', async () => {
    const limited = join(dir, 'limited');
    mkdirSync(limited);
    const file = join(limited, 'credentials.json');
    // Over 1 KiB, the file size limit the login runs under: an in-place rewrite is cut short.
    const servers: Record<string, { token: string; savedAt: string }> = {};
    for (const name of ['a', 'b', 'c']) {
      servers[`https://${name}.example`] = { token: `maos_${name}_${'x'.repeat(600)}`, savedAt: 'then' };
    }
    const previous = `${JSON.stringify({ servers }, null, 2)}\n`;
    writeFileSync(file, previous, { mode: 0o600 });
    const login = await runUnderFileSizeLimit(
      [MAOS_BIN, 'login', '--server', roles.url],
      { PATH: process.env.PATH ?? '', HOME: home, MAOS_CREDENTIALS: file },
      `${TOKEN}\n`,
    );
    assert.equal(login.status, 2, login.stdout + login.stderr);
    assert.match(
      login.stderr,
      /^error VALIDATION_FAILED: cannot write the credentials file .+ \(EFBIG\); it was left unchanged/m,
    );
    assert.equal(readFileSync(file, 'utf8'), previous);
    assert.deepEqual(readdirSync(limited), ['credentials.json'], 'no temporary file left');

    // Without the limit the file is replaced whole: the new server added, the others kept, 0600.
    const unlimited = await runMaos(['login', '--server', roles.url, '--credentials', file], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    });
    assert.equal(unlimited.code, 0, unlimited.stderr);
    assert.equal(readStoredToken('https://b.example', file), servers['https://b.example']?.token);
    assert.equal(readStoredToken(roles.url, file), TOKEN);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(limited), ['credentials.json']);
  });

  test("logins and logouts run at once each keep the others' servers: none is lost", async (t) => {
    // Slow to answer, so that every login has read the file before any writes it back.
    const slow = createServer((request, response) => {
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ items: [] }));
      }, 300);
      request.resume();
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => slow.close(resolve)));
    const address = slow.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    // One server under four base paths: four entries of the file.
    const servers = ['a', 'b', 'c', 'd'].map((path) => `http://127.0.0.1:${address.port}/${path}`);
    const file = join(dir, 'parallel', 'credentials.json');
    const logins = await Promise.all(
      servers.map((server, i) =>
        runMaos(['login', '--server', server, '--credentials', file], {
          env: { HOME: home },
          input: `token-${i}\n`,
        }),
      ),
    );
    for (const login of logins) assert.equal(login.code, 0, login.stderr);
    servers.forEach((server, i) => {
      assert.equal(readStoredToken(server, file), `token-${i}`, `the token of ${server}`);
    });
    const logouts = await Promise.all(
      servers
        .slice(0, 3)
        .map((server) =>
          runMaos(['logout', '--server', server, '--credentials', file], { env: { HOME: home } }),
        ),
    );
    for (const logout of logouts) assert.equal(logout.code, 0, logout.stderr);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, 'utf8')).servers), [servers[3]]);
    assert.deepEqual(readdirSync(join(dir, 'parallel')), ['credentials.json'], 'no lock left behind');
  });

  test('a symlinked credentials file stays a link: its target is replaced', async () => {
    const linked = join(dir, 'linked');
    mkdirSync(linked);
    const target = join(linked, 'real.json');
    writeFileSync(target, '{"servers": {}}\n', { mode: 0o600 });
    const link = join(linked, 'credentials.json');
    symlinkSync(target, link);
    const login = await runMaos(['login', '--server', roles.url, '--credentials', link], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(lstatSync(link).isSymbolicLink(), true);
    assert.equal(readStoredToken(roles.url, target), TOKEN);
    assert.deepEqual(readdirSync(linked).sort(), ['credentials.json', 'real.json']);
  });

  test('a login through a symlink takes turns with one naming its target: neither token is lost', async () => {
    const linked = join(dir, 'linked-lock');
    mkdirSync(linked);
    const target = join(linked, 'real.json');
    writeFileSync(target, '{"servers": {}}\n', { mode: 0o600 });
    const link = join(linked, 'credentials.json');
    symlinkSync(target, link);
    // Another login naming the target holds its lock: it read the file, and writes it back later.
    const lock = `${target}.lock`;
    writeFileSync(lock, '');
    const readByOther = JSON.parse(readFileSync(target, 'utf8'));
    roles.seen.length = 0;
    let exited = false;
    const login = runMaos(['login', '--server', roles.url, '--credentials', link], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    }).finally(() => {
      exited = true;
    });
    // Past the login's question to the server, give it time to write (a login that does not wait for
    // the lock ends meanwhile), then the other login writes back what it read and lets go.
    while (roles.seen.length === 0 && !exited) await new Promise((resolve) => setTimeout(resolve, 10));
    for (let waited = 0; waited < 2000 && !exited; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    readByOther.servers['https://other.example'] = { token: 'other', savedAt: new Date().toISOString() };
    writeFileSync(target, `${JSON.stringify(readByOther)}\n`);
    rmSync(lock);
    const result = await login;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readStoredToken('https://other.example', target), 'other');
    assert.equal(readStoredToken(roles.url, target), TOKEN, "the login's token is kept");
    assert.deepEqual(readdirSync(linked).sort(), ['credentials.json', 'real.json']);
  });

  test('a login waits for a held lock and exits 6 (CONFLICT) after 10 s; a stale lock is taken over', async () => {
    const locked = join(dir, 'held-lock');
    mkdirSync(locked);
    const file = join(locked, 'credentials.json');
    writeFileSync(file, '{"servers": {}}\n', { mode: 0o600 });
    // Another login holds the lock (made just now): this one gives up and changes nothing.
    writeFileSync(`${file}.lock`, '');
    const waited = await runMaos(['login', '--server', roles.url, '--credentials', file], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    });
    assert.equal(waited.code, 6, waited.stderr);
    assert.match(waited.stderr, /CONFLICT: another maos login or logout is updating the credentials file/);
    assert.equal(readStoredToken(roles.url, file), undefined);
    assert.equal(existsSync(`${file}.lock`), true, "the holder's lock stays");
    // Left by a login that died a minute ago: taken over.
    const then = new Date(Date.now() - 60_000);
    utimesSync(`${file}.lock`, then, then);
    const login = await runMaos(['login', '--server', roles.url, '--credentials', file], {
      env: { HOME: home },
      input: `${TOKEN}\n`,
    });
    assert.equal(login.code, 0, login.stderr);
    assert.equal(readStoredToken(roles.url, file), TOKEN);
    assert.deepEqual(readdirSync(locked), ['credentials.json'], 'no lock left behind');
  });

  test('maos mcp in remote mode sends the token stored in the file', async (t) => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [MAOS_BIN, 'mcp', '--server', roles.url, '--credentials', credentials],
      env: { PATH: process.env.PATH ?? '', HOME: home },
      stderr: 'pipe',
    });
    const client = new Client({ name: 'maos-credentials-test', version: '1.0.0' });
    await client.connect(transport);
    t.after(() => client.close());
    roles.seen.length = 0;
    const result = await client.readResource({ uri: 'maos://roles' });
    const first = result.contents[0];
    assert.match(first && 'text' in first ? first.text : '', /"qa"/);
    assert.deepEqual(roles.seen, [`Bearer ${TOKEN}`]);
  });
});
