import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../errors/app-error.ts';
import {
  computeKeyHash,
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
  openCheckpoint,
  parseVerifierKey,
  signCheckpoint,
} from './checkpoint.ts';
import { EMPTY_ROOT, hashLeaf } from './merkle.ts';

const signer = loadCheckpointSigner('example.com/log', generateSigningKeyPem());
const verifier = parseVerifierKey(formatVerifierKey(signer));
const root = hashLeaf(Buffer.from('x'));

describe('signed checkpoints (C2SP tlog-checkpoint)', () => {
  test('note layout: body, blank line, em-dash signature line with 4-byte key hash + 64-byte sig', () => {
    const note = signCheckpoint({ origin: 'example.com/log', size: 7, root }, signer);
    const [body, sig] = note.split('\n\n');
    assert.equal(body, `example.com/log\n7\n${root.toString('base64')}`);
    const match = /^\u2014 example\.com\/log (\S+)\n$/.exec(sig as string);
    assert.ok(match, sig);
    const blob = Buffer.from(match[1] as string, 'base64');
    assert.equal(blob.length, 68);
    assert.ok(blob.subarray(0, 4).equals(computeKeyHash('example.com/log', signer.publicKey)));
  });

  test('round trip, and tampering with size, root or signature is refused', () => {
    const note = signCheckpoint({ origin: 'example.com/log', size: 7, root }, signer);
    const opened = openCheckpoint(note, verifier);
    assert.equal(opened.size, 7);
    assert.ok(opened.root.equals(root));
    const isInvalid = (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED';
    assert.throws(() => openCheckpoint(note.replace('\n7\n', '\n8\n'), verifier), isInvalid);
    assert.throws(
      () => openCheckpoint(note.replace(root.toString('base64'), EMPTY_ROOT.toString('base64')), verifier),
      isInvalid,
    );
    const sigStart = note.lastIndexOf(' ') + 10;
    const flipped = note.slice(0, sigStart) + (note[sigStart] === 'A' ? 'B' : 'A') + note.slice(sigStart + 1);
    assert.throws(() => openCheckpoint(flipped, verifier), isInvalid);
  });

  test('a note signed by another key is refused', () => {
    const other = loadCheckpointSigner('example.com/log', generateSigningKeyPem());
    const note = signCheckpoint({ origin: 'example.com/log', size: 1, root }, other);
    assert.throws(() => openCheckpoint(note, verifier), /no valid signature/);
  });

  test('verifier keys: format is name+hash+key; a wrong hash or type is refused', () => {
    const text = formatVerifierKey(signer);
    assert.match(text, /^example\.com\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    const [, name, key] = /^([^+]+)\+[0-9a-f]{8}\+(.+)$/.exec(text) as unknown as [string, string, string];
    assert.throws(() => parseVerifierKey(`${name}+00000000+${key}`), /key hash/);
    // base64 key data may contain '+': such keys still round-trip
    let withPlus = 0;
    for (let i = 0; i < 40; i += 1) {
      const other = loadCheckpointSigner('n', generateSigningKeyPem());
      const vkey = formatVerifierKey(other);
      if (vkey.split('+').length > 3) withPlus += 1;
      assert.ok(parseVerifierKey(vkey).publicKey.equals(other.publicKey));
    }
    assert.ok(withPlus > 0, 'no generated key exercised the + case');
    assert.throws(() => parseVerifierKey('nonsense'), /Invalid verifier key/);
  });

  test('signing key must be an Ed25519 PEM', () => {
    assert.throws(
      () => loadCheckpointSigner('n', 'not a key'),
      (e: unknown) => e instanceof AppError && e.code === 'CONFIG_INVALID',
    );
    assert.throws(() => loadCheckpointSigner('has space', generateSigningKeyPem()), /key name/);
  });
});
