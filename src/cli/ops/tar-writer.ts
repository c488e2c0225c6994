// A minimal ustar (POSIX tar) writer: regular files only. The support bundle builds a gzip-compressed
// archive in memory (createTarGz); the tenant export streams a plain one to a file, writing each
// entry's header once its size is known (tarHeader, tarPadding, TAR_END). No dependency needed.
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** Path inside the archive (relative, `/`-separated, at most 100 bytes for the name part). */
  name: string;
  content: string | Buffer;
  /** Unix permission bits. @defaultValue 0o644 */
  mode?: number;
  mtime?: Date;
}

/** Size of a tar block: a header is one, an entry's content is padded to whole ones. */
export const TAR_BLOCK = 512;
const BLOCK = TAR_BLOCK;

/** The end of an archive: two zero blocks. */
export const TAR_END: Buffer = Buffer.alloc(TAR_BLOCK * 2);

/** Builds a .tar.gz holding `entries` in order. */
export function createTarGz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = typeof entry.content === 'string' ? Buffer.from(entry.content, 'utf8') : entry.content;
    blocks.push(tarHeader(entry, data.length), data, tarPadding(data.length));
  }
  blocks.push(TAR_END);
  return gzipSync(Buffer.concat(blocks));
}

/** Zero bytes that fill an entry of `size` bytes up to a whole block (none when it fills one). */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header block of an entry of `size` bytes (a regular file). */
export function tarHeader(entry: Omit<TarEntry, 'content'>, size: number): Buffer {
  const { name, prefix } = splitName(entry.name);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  writeOctal(header, entry.mode ?? 0o644, 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, size, 124, 12);
  writeOctal(header, Math.floor((entry.mtime ?? new Date()).getTime() / 1000), 136, 12);
  header.fill(' ', 148, 156); // checksum field counts as spaces while summing
  header.write('0', 156, 1, 'ascii'); // regular file
  header.write('ustar\u000000', 257, 8, 'binary');
  header.write('maos', 265, 32, 'utf8');
  header.write('maos', 297, 32, 'utf8');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'binary');
  return header;
}

function splitName(path: string): { name: string; prefix: string } {
  if (path.startsWith('/') || path.split('/').includes('..')) throw new Error(`unsafe tar path: ${path}`);
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const cut = path.lastIndexOf('/', 155);
  const name = path.slice(cut + 1);
  const prefix = path.slice(0, cut);
  if (cut <= 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
    throw new Error(`tar path too long: ${path}`);
  }
  return { name, prefix };
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'ascii');
}
