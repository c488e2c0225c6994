// Drift guard: the configuration reference is generated from the schema and must match it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigDocs } from '../../scripts/gen-config-docs.ts';

test('docs/configuration.md matches the config schema (run `node scripts/gen-config-docs.ts`)', () => {
  const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(committed, renderConfigDocs());
});
