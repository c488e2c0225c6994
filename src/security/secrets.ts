// Secrets at rest: AES-256-GCM envelope encryption. A fresh data key (DEK) per value, wrapped by a
// versioned key-encryption key (KEK) from the keyring; rotation re-wraps DEKs without touching data.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../errors/app-error.ts';

const VERSION = 'v1';
const KEY_BYTES = 32;
// 96-bit random IVs (NIST SP 800-38D §8.2.2). Each DEK encrypts exactly one value, and a KEK should
// wrap fewer than 2^32 DEKs before it is rotated (§8.3): rotate by count, not only by calendar.
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEK_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Versioned KEKs; `activeId` encrypts new values, the others only decrypt. */
export interface KekRing {
  activeId: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** What a secret belongs to; bound into the ciphertext as additional authenticated data. */
export interface SecretContext {
  tenantId: string;
  /** Kind of secret, e.g. `provider_api_key`. */
  type: string;
  /** Name or id of the secret within the tenant. */
  id: string;
}

/**
 * Parses a keyring text: `<kek_id>:<base64 32-byte key>` entries separated by commas or newlines.
 * The first entry is the active KEK. Throws CONFIG_INVALID naming the bad entry (never the key).
 */
export function parseKekRing(text: string): KekRing {
  const entries = text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (entries.length === 0) throw new AppError('CONFIG_INVALID', 'secrets.kekRing is empty');
  const keys = new Map<string, Buffer>();
  for (const [position, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEK_ID_PATTERN.test(id)) {
      throw new AppError(
        'CONFIG_INVALID',
        `secrets.kekRing entry ${position + 1}: expected <id>:<base64 key> with id of [A-Za-z0-9_-]`,
      );
    }
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== KEY_BYTES) {
      throw new AppError('CONFIG_INVALID', `secrets.kekRing key ${id}: must be 32 bytes (base64)`);
    }
    if (keys.has(id)) throw new AppError('CONFIG_INVALID', `secrets.kekRing: duplicate key id ${id}`);
    keys.set(id, key);
  }
  return { activeId: entries[0]?.split(':')[0] as string, keys };
}

/** A new random KEK entry `<id>:<base64>` for the keyring. */
export function generateKekEntry(id: string): string {
  if (!KEK_ID_PATTERN.test(id)) throw new AppError('VALIDATION_FAILED', 'invalid KEK id');
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}

/** Encrypts `plaintext` for `context`: `v1.<kek_id>.<iv>.<wrapped_dek>.<ct>.<tag>` (base64url parts). */
export function encryptSecret(ring: KekRing, plaintext: string, context: SecretContext): string {
  const dek = randomBytes(KEY_BYTES);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(dataAad(context));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  const wrapped = wrapDek(ring, ring.activeId, dek, context);
  dek.fill(0);
  return [VERSION, ring.activeId, iv, wrapped, ct, tag]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.');
}

/** Decrypts an envelope; throws SECRET_UNREADABLE when it was altered, moved or its KEK is gone. */
export function decryptSecret(ring: KekRing, envelope: string, context: SecretContext): string {
  const parts = parseEnvelope(envelope);
  const dek = unwrapDek(ring, parts.kekId, parts.wrapped, context);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek, parts.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(dataAad(context));
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ct), decipher.final()]).toString('utf8');
  } catch (error) {
    throw unreadable('authentication failed', error);
  } finally {
    dek.fill(0);
  }
}

/** Re-wraps the envelope's DEK under the active KEK; the data ciphertext is kept as is. */
export function rewrapSecret(ring: KekRing, envelope: string, context: SecretContext): string {
  const parts = parseEnvelope(envelope);
  if (parts.kekId === ring.activeId) return envelope;
  const dek = unwrapDek(ring, parts.kekId, parts.wrapped, context);
  try {
    const wrapped = wrapDek(ring, ring.activeId, dek, context);
    return [VERSION, ring.activeId, parts.iv, wrapped, parts.ct, parts.tag]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  } finally {
    dek.fill(0);
  }
}

/** The KEK id an envelope is wrapped with (to find values still on an old KEK). */
export function readEnvelopeKekId(envelope: string): string {
  return parseEnvelope(envelope).kekId;
}

interface EnvelopeParts {
  kekId: string;
  iv: Buffer;
  wrapped: Buffer;
  ct: Buffer;
  tag: Buffer;
}

function parseEnvelope(envelope: string): EnvelopeParts {
  const parts = envelope.split('.');
  if (parts.length !== 6 || parts[0] !== VERSION) throw unreadable('not a v1 envelope');
  const [, kekId, iv, wrapped, ct, tag] = parts as [string, string, string, string, string, string];
  const decoded = {
    kekId,
    iv: Buffer.from(iv, 'base64url'),
    wrapped: Buffer.from(wrapped, 'base64url'),
    ct: Buffer.from(ct, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
  if (decoded.iv.length !== IV_BYTES || decoded.tag.length !== TAG_BYTES) {
    throw unreadable('malformed envelope');
  }
  if (decoded.wrapped.length !== IV_BYTES + KEY_BYTES + TAG_BYTES) throw unreadable('malformed key');
  return decoded;
}

// The data AAD binds the value to its owner (a ciphertext copied to another tenant or name fails).
// The KEK id is bound in the wrap AAD instead, so re-wrapping never re-encrypts the data.
function dataAad(context: SecretContext): Buffer {
  return Buffer.from(`${context.tenantId}|${context.type}|${context.id}`, 'utf8');
}

function wrapAad(context: SecretContext, kekId: string): Buffer {
  return Buffer.from(`${context.tenantId}|${context.type}|${context.id}|${kekId}`, 'utf8');
}

function wrapDek(ring: KekRing, kekId: string, dek: Buffer, context: SecretContext): Buffer {
  const kek = ring.keys.get(kekId);
  if (!kek) throw unreadable(`KEK ${kekId} is not in the keyring`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(context, kekId));
  const ct = Buffer.concat([cipher.update(dek), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]);
}

function unwrapDek(ring: KekRing, kekId: string, wrapped: Buffer, context: SecretContext): Buffer {
  const kek = ring.keys.get(kekId);
  if (!kek) throw unreadable(`KEK ${kekId} is not in the keyring`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(wrapAad(context, kekId));
    decipher.setAuthTag(wrapped.subarray(IV_BYTES + KEY_BYTES));
    return Buffer.concat([
      decipher.update(wrapped.subarray(IV_BYTES, IV_BYTES + KEY_BYTES)),
      decipher.final(),
    ]);
  } catch (error) {
    throw unreadable('data key authentication failed', error);
  }
}

function unreadable(reason: string, cause?: unknown): AppError {
  return new AppError('SECRET_UNREADABLE', `Stored secret cannot be decrypted: ${reason}`, { cause });
}
