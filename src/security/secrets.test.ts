import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import {
  decryptSecret,
  encryptSecret,
  generateKekEntry,
  parseKekRing,
  readEnvelopeKekId,
  rewrapSecret,
} from './secrets.ts';

const ctx = { tenantId: 'acme', type: 'provider_api_key', id: 'openai' };
const k1 = generateKekEntry('k1');
const k2 = generateKekEntry('k2');
const unreadable = (e: unknown) => e instanceof AppError && e.code === 'SECRET_UNREADABLE';

function flipBase64urlChar(envelope: string, partIndex: number, at = 3): string {
  const parts = envelope.split('.');
  const part = parts[partIndex] as string;
  const bytes = Buffer.from(part, 'base64url');
  bytes[at % bytes.length] = (bytes[at % bytes.length] as number) ^ 0x01;
  parts[partIndex] = bytes.toString('base64url');
  return parts.join('.');
}

describe('envelope encryption', () => {
  const ring = parseKekRing(k1);

  test('round trip, format v1.<kek_id>.<iv>.<wrapped_dek>.<ct>.<tag>', () => {
    const envelope = encryptSecret(ring, 'sk-secret-ü', ctx);
    const parts = envelope.split('.');
    assert.equal(parts.length, 6);
    assert.equal(parts[0], 'v1');
    assert.equal(parts[1], 'k1');
    assert.equal(Buffer.from(parts[2] as string, 'base64url').length, 12);
    assert.equal(Buffer.from(parts[5] as string, 'base64url').length, 16);
    assert.ok(!envelope.includes('sk-secret'));
    assert.equal(decryptSecret(ring, envelope, ctx), 'sk-secret-ü');
  });

  test('a flipped bit in iv, wrapped key, ciphertext or tag is refused', () => {
    const envelope = encryptSecret(ring, 'value', ctx);
    for (const part of [2, 3, 4, 5]) {
      assert.throws(
        () => decryptSecret(ring, flipBase64urlChar(envelope, part), ctx),
        unreadable,
        `part ${part}`,
      );
    }
  });

  test('AAD binds tenant, type and id: a moved ciphertext does not decrypt', () => {
    const envelope = encryptSecret(ring, 'value', ctx);
    assert.throws(() => decryptSecret(ring, envelope, { ...ctx, tenantId: 'other' }), unreadable);
    assert.throws(() => decryptSecret(ring, envelope, { ...ctx, type: 'webhook' }), unreadable);
    assert.throws(() => decryptSecret(ring, envelope, { ...ctx, id: 'anthropic' }), unreadable);
    // relabelling the KEK id in the envelope is refused too
    const relabelled = envelope.replace('.k1.', '.k2.');
    assert.throws(() => decryptSecret(parseKekRing(`${k2},${k1}`), relabelled, ctx), unreadable);
  });

  test('IVs and ciphertexts are unique across encryptions of the same value', () => {
    const ivs = new Set<string>();
    const cts = new Set<string>();
    for (let i = 0; i < 500; i += 1) {
      const parts = encryptSecret(ring, 'same', ctx).split('.');
      ivs.add(parts[2] as string);
      cts.add(parts[4] as string);
    }
    assert.equal(ivs.size, 500);
    assert.equal(cts.size, 500);
  });

  test('rotation: re-wrap under the new KEK keeps the data, then the old KEK can be retired', () => {
    const old = encryptSecret(ring, 'rotate me', ctx);
    const rotated = parseKekRing(`${k2}\n${k1}`);
    assert.equal(rotated.activeId, 'k2');
    assert.equal(decryptSecret(rotated, old, ctx), 'rotate me');
    const rewrapped = rewrapSecret(rotated, old, ctx);
    assert.equal(readEnvelopeKekId(rewrapped), 'k2');
    // data ciphertext and tag are unchanged: only the DEK was re-wrapped
    assert.equal(rewrapped.split('.')[4], old.split('.')[4]);
    assert.equal(rewrapped.split('.')[5], old.split('.')[5]);
    const retired = parseKekRing(k2);
    assert.equal(decryptSecret(retired, rewrapped, ctx), 'rotate me');
    assert.throws(() => decryptSecret(retired, old, ctx), /KEK k1 is not in the keyring/);
  });

  test('keyring parsing refuses bad entries without echoing key material', () => {
    const invalid = (e: unknown) => e instanceof AppError && e.code === 'CONFIG_INVALID';
    assert.throws(() => parseKekRing(''), invalid);
    assert.throws(() => parseKekRing('k1:c2hvcnQ='), invalid);
    assert.throws(() => parseKekRing(`bad.id:${k1.split(':')[1]}`), invalid);
    assert.throws(() => parseKekRing(`${k1},${k1}`), invalid);
    try {
      parseKekRing('k9:c2hvcnQ=');
    } catch (e) {
      assert.ok(!(e as Error).message.includes('c2hvcnQ'));
    }
    assert.throws(() => decryptSecret(ring, 'v2.k1.a.b.c.d', ctx), unreadable);
  });
});
