// The VCS revision reported as maos_build_info{revision}: from a REVISION file next to package.json
// (written by the container build), else from the git checkout, else `unknown`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHA = /^[0-9a-f]{7,40}$/;
/** Long enough to be unique in practice, short enough to read on a dashboard. */
const SHORT_LENGTH = 12;

/** Reads the revision once at start; never throws. */
export function readBuildRevision(root: string = PACKAGE_ROOT): string {
  const fromFile = readText(join(root, 'REVISION'))?.trim().toLowerCase();
  if (fromFile && SHA.test(fromFile)) return fromFile.slice(0, SHORT_LENGTH);
  const head = readText(join(root, '.git', 'HEAD'))?.trim();
  if (head === undefined) return 'unknown';
  if (SHA.test(head)) return head.slice(0, SHORT_LENGTH);
  const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
  if (ref === undefined) return 'unknown';
  const loose = readText(join(root, '.git', ref))?.trim();
  if (loose && SHA.test(loose)) return loose.slice(0, SHORT_LENGTH);
  const packed = readText(join(root, '.git', 'packed-refs'))
    ?.split('\n')
    .find((line) => line.endsWith(` ${ref}`))
    ?.split(' ')[0];
  return packed && SHA.test(packed) ? packed.slice(0, SHORT_LENGTH) : 'unknown';
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
