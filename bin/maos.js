#!/usr/bin/env node
// Entry for the `maos` command: Node 24 runs the TypeScript sources directly. The compile cache
// keeps start-up fast after the first run (it stores V8 code caches in the OS temp directory).
import module from 'node:module';

module.enableCompileCache?.();
await import('../src/cli/index.ts');
