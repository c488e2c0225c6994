#!/usr/bin/env node
// Entry for the `maos` command: Node 24 runs the TypeScript sources directly. The compile cache
// keeps start-up fast after the first run (it stores V8 code caches in the OS temp directory).
import module from 'node:module';

// Older Node versions fail on the first `.ts` import with ERR_UNKNOWN_FILE_EXTENSION, which says
// nothing about the cause; say it instead (kept in plain JavaScript that any Node version parses).
// 24.5: http.Agent's `proxyEnv`, which sends OTLP trace export through the egress proxy; earlier
// 24.x releases ignore it and would send traces around the proxy without a word.
const MIN_NODE = [24, 5];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
  process.stderr.write(
    `error NODE_TOO_OLD: maos needs Node.js ${MIN_NODE.join('.')} or newer; ${process.execPath} is Node.js ${process.versions.node}\n`,
  );
  process.exit(7);
}

module.enableCompileCache?.();
await import('../src/cli/index.ts');
