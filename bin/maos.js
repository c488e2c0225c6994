#!/usr/bin/env node
// Entry for the `maos` command: Node 24 runs the TypeScript sources directly.
import '../src/cli/index.ts';
