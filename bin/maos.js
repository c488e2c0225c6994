#!/usr/bin/env node
// Entry for the `maos` command: Node 24 runs the TypeScript sources directly. The compile cache
// keeps start-up fast after the first run (it stores V8 code caches in the OS temp directory).
import module from 'node:module';

// Older Node versions fail on the first `.ts` import with ERR_UNKNOWN_FILE_EXTENSION, which says
// nothing about the cause; say it instead (kept in plain JavaScript that any Node version parses).
const MIN_NODE_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
  process.stderr.write(
    `error NODE_TOO_OLD: maos needs Node.js ${MIN_NODE_MAJOR} or newer; ${process.execPath} is Node.js ${process.versions.node}\n`,
  );
  process.exit(7);
}

module.enableCompileCache?.();
await import('../src/cli/index.ts');
