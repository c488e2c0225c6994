// Time-ordered ids (UUIDv7, RFC 9562): 48-bit Unix milliseconds, then random bits. Random bytes come
// from a pooled crypto buffer, because a session creates a dozen ids and per-call random draws showed
// up in the submission profile.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 16 * 512;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** A new UUIDv7 string, e.g. `01936f0e-8c4a-7b3d-9f12-3456789abcde`. */
export function newId(now: number = Date.now()): string {
  if (offset + 10 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const b = new Array<string>(16);
  // 48-bit big-endian timestamp (split because bitwise operators are 32-bit).
  const high = Math.floor(now / 0x1_0000_0000);
  const low = now >>> 0;
  b[0] = HEX[(high >>> 8) & 0xff]!;
  b[1] = HEX[high & 0xff]!;
  b[2] = HEX[(low >>> 24) & 0xff]!;
  b[3] = HEX[(low >>> 16) & 0xff]!;
  b[4] = HEX[(low >>> 8) & 0xff]!;
  b[5] = HEX[low & 0xff]!;
  b[6] = HEX[0x70 | (pool[offset]! & 0x0f)]!;
  b[7] = HEX[pool[offset + 1]!]!;
  b[8] = HEX[0x80 | (pool[offset + 2]! & 0x3f)]!;
  for (let i = 9; i < 16; i++) b[i] = HEX[pool[offset + i - 6]!]!;
  offset += 10;
  return `${b[0]}${b[1]}${b[2]}${b[3]}-${b[4]}${b[5]}-${b[6]}${b[7]}-${b[8]}${b[9]}-${b[10]}${b[11]}${b[12]}${b[13]}${b[14]}${b[15]}`;
}
