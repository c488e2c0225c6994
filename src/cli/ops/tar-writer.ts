// A minimal ustar (POSIX tar) writer for the support bundle: regular files only, gzip-compressed
// with node:zlib. Enough for text files of any size; no dependency needed.
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** Path inside the archive (relative, `/`-separated, at most 100 bytes for the name part). */
  name: string;
  content: string | Buffer;
  /** Unix permission bits. @defaultValue 0o644 */
  mode?: number;
  mtime?: Date;
}

const BLOCK = 512;

/** Builds a .tar.gz holding `entries` in order. */
export function createTarGz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = typeof entry.content === 'string' ? Buffer.from(entry.content, 'utf8') : entry.content;
    blocks.push(createHeader(entry, data.length), data);
    const padding = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (padding > 0) blocks.push(Buffer.alloc(padding));
  }
  // The archive ends with two zero blocks.
  blocks.push(Buffer.alloc(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks));
}

function createHeader(entry: TarEntry, size: number): Buffer {
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
