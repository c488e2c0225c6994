// Signed audit checkpoints in the C2SP tlog-checkpoint / signed-note format with Ed25519:
// body `<origin>\n<size>\n<base64 root>\n`, a blank line, then `— <name> <base64(keyhash‖sig)>`.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { AppError } from '../../errors/app-error.ts';

/** Signature type byte of Ed25519 in the signed-note key hash (C2SP signed-note). */
const ED25519_TYPE = 0x01;
const SIGNATURE_PREFIX = '\u2014 ';

/** A checkpoint's content: which log, how many records, and the RFC 6962 root over them. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

/** The Ed25519 key that signs checkpoints. */
export interface CheckpointSigner {
  name: string;
  privateKey: KeyObject;
  publicKey: Buffer;
}

/** The public half, enough to verify checkpoints offline. */
export interface CheckpointVerifier {
  name: string;
  publicKey: Buffer;
}

/** Creates a new Ed25519 private key, PKCS#8 PEM (for `audit.signingKey` / its `_FILE`). */
export function generateSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** Loads a signer from a PKCS#8 PEM Ed25519 private key. Throws CONFIG_INVALID on anything else. */
export function loadCheckpointSigner(name: string, pem: string): CheckpointSigner {
  validateKeyName(name);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new AppError('CONFIG_INVALID', 'audit.signingKey is not a readable PEM private key', {
      cause: error,
    });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new AppError('CONFIG_INVALID', 'audit.signingKey must be an Ed25519 key');
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return { name, privateKey, publicKey: Buffer.from(jwk.x as string, 'base64url') };
}

/** The 4-byte key id: SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[:4]. */
export function computeKeyHash(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update('\n')
    .update(Uint8Array.of(ED25519_TYPE))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** Verifier key text `<name>+<hex keyhash>+<base64(0x01‖pubkey)>`, to hand to `maos audit verify`. */
export function formatVerifierKey(key: CheckpointVerifier): string {
  const encoded = Buffer.concat([Uint8Array.of(ED25519_TYPE), key.publicKey]).toString('base64');
  return `${key.name}+${computeKeyHash(key.name, key.publicKey).toString('hex')}+${encoded}`;
}

/** Parses a verifier key text; throws VALIDATION_FAILED when it is malformed or its hash is wrong. */
export function parseVerifierKey(text: string): CheckpointVerifier {
  // The base64 key may itself contain '+': only the first two separate fields.
  const trimmed = text.trim();
  const first = trimmed.indexOf('+');
  const second = first < 0 ? -1 : trimmed.indexOf('+', first + 1);
  if (first <= 0 || second < 0) throw badKey('expected <name>+<keyhash>+<key>');
  const name = trimmed.slice(0, first);
  const hash = trimmed.slice(first + 1, second);
  const encoded = trimmed.slice(second + 1);
  const raw = Buffer.from(encoded, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519_TYPE) throw badKey('not an Ed25519 key');
  const publicKey = raw.subarray(1);
  if (computeKeyHash(name, publicKey).toString('hex') !== hash.toLowerCase()) {
    throw badKey('key hash does not match the key');
  }
  return { name, publicKey };
}

/** The note body that is signed. */
export function formatCheckpointBody(checkpoint: Checkpoint): string {
  if (checkpoint.origin.includes('\n') || checkpoint.origin.length === 0) {
    throw new AppError('VALIDATION_FAILED', 'checkpoint origin must be one non-empty line');
  }
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.root.toString('base64')}\n`;
}

/** Signs a checkpoint and returns the complete signed note. */
export function signCheckpoint(checkpoint: Checkpoint, signer: CheckpointSigner): string {
  const body = formatCheckpointBody(checkpoint);
  const signature = sign(null, Buffer.from(body, 'utf8'), signer.privateKey);
  const blob = Buffer.concat([computeKeyHash(signer.name, signer.publicKey), signature]);
  return `${body}\n${SIGNATURE_PREFIX}${signer.name} ${blob.toString('base64')}\n`;
}

/**
 * Parses a signed note and verifies it with `verifier`; throws VALIDATION_FAILED when the note is
 * malformed or carries no valid signature by that key. Signatures by other keys are ignored.
 */
export function openCheckpoint(note: string, verifier: CheckpointVerifier): Checkpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw badNote('no signature block');
  const body = note.slice(0, split + 1);
  const lines = body.split('\n');
  const [origin, sizeText, rootText] = lines;
  if (lines.length < 4 || !origin || !sizeText || !rootText || !/^(0|[1-9][0-9]*)$/.test(sizeText)) {
    throw badNote('malformed body');
  }
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32) throw badNote('root is not a SHA-256 hash');
  const wantHash = computeKeyHash(verifier.name, verifier.publicKey);
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: verifier.publicKey.toString('base64url') },
    format: 'jwk',
  });
  const signatureLines = note
    .slice(split + 2)
    .split('\n')
    .filter((line) => line.length > 0);
  for (const line of signatureLines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw badNote('malformed signature line');
    const [name, encoded] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    if (name !== verifier.name || !encoded) continue;
    const blob = Buffer.from(encoded, 'base64');
    if (blob.length !== 68 || !blob.subarray(0, 4).equals(wantHash)) continue;
    if (verify(null, Buffer.from(body, 'utf8'), publicKey, blob.subarray(4))) {
      return { origin, size: Number(sizeText), root };
    }
  }
  throw badNote(`no valid signature by key ${verifier.name}`);
}

function validateKeyName(name: string): void {
  if (!/^[^\s+]+$/.test(name)) {
    throw new AppError('CONFIG_INVALID', 'audit key name must be non-empty, without spaces or "+"');
  }
}

function badKey(reason: string): AppError {
  return new AppError('VALIDATION_FAILED', `Invalid verifier key: ${reason}`);
}

function badNote(reason: string): AppError {
  return new AppError('VALIDATION_FAILED', `Invalid checkpoint: ${reason}`);
}
