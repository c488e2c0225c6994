// The credentials file of `maos login` is read once by a command sent without a token (for the
// stored token, and for the servers to name when there is none), and not at all by one that never
// talks to the server. Reads are counted by the bytes this process read (Linux's /proc/self/io),
// with a credentials file far larger than anything else read meanwhile.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { type CliIo, createContext } from './context.ts';

/** Bytes read by this process so far, or null where the kernel does not say. */
function bytesRead(): number | null {
  try {
    const match = /^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The context of a command run with `args` and MAOS_CREDENTIALS=`path`. */
function contextOf(path: string, args: string[] = []) {
  const program = new Command('maos')
    .option('--server <url>')
    .option('--token <token>')
    .option('--credentials <file>')
    .exitOverride();
  program.parse(args, { from: 'user' });
  const io: CliIo = {
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    env: { noColor: true, credentialsPath: path },
  };
  return createContext(program, io);
}

describe('the credentials file of a command', { skip: bytesRead() === null }, () => {
  let dir: string;
  let path: string;
  // JSON after 4 MiB of white space: one read of it outweighs anything else read meanwhile.
  const size = 4 * 1024 * 1024;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-credentials-'));
    path = join(dir, 'credentials.json');
    const content = JSON.stringify({
      servers: { 'https://other.example': { token: 'maos_other', savedAt: '2026-01-01T00:00:00.000Z' } },
    });
    writeFileSync(path, content.padStart(size, ' '));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** How many times `use` read the credentials file. */
  const readsOf = (use: () => void): number => {
    const start = bytesRead() as number;
    use();
    return Math.round(((bytesRead() as number) - start) / size);
  };

  test('is read once by a command without a stored token for its server', () => {
    const reads = readsOf(() => {
      const ctx = contextOf(path, ['--server', 'https://maos.example']);
      ctx.client();
      ctx.client();
      ctx.dispose();
    });
    assert.equal(reads, 1);
  });

  test('is not read by a command that never talks to the server, nor when a token is given', () => {
    const reads = readsOf(() => {
      contextOf(path).dispose();
      const given = contextOf(path, ['--token', 'maos_given']);
      given.client();
      given.dispose();
    });
    assert.equal(reads, 0);
  });
});
