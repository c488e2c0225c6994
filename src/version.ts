// Build identity, reported by `maos --version`, logs and maos_build_info.
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Semantic version of this build, from package.json. */
export const VERSION: string = manifest.version;
