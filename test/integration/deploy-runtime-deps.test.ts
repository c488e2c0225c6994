// The container installs production dependencies only (`npm ci --omit=dev`), so every package the
// runtime code imports must be in `dependencies`, or the image crashes on start while tests pass.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(path));
    else if (/\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

test('everything the runtime imports is a production dependency', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const builtins = new Set(builtinModules);
  const offenders: string[] = [];
  let imports = 0;
  for (const file of [...listSources('src'), ...listSources('bin'), 'deploy/docker/healthcheck.mjs']) {
    const text = readFileSync(file, 'utf8');
    const pattern =
      /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;
    for (const match of text.matchAll(pattern)) {
      const specifier = (match[1] ?? match[2] ?? match[3]) as string;
      if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) continue;
      imports += 1;
      const name = packageName(specifier);
      if (!pkg.dependencies[name])
        offenders.push(`${file}: ${specifier}${pkg.devDependencies[name] ? ' (devDependency)' : ''}`);
    }
  }
  assert.ok(imports > 20, 'the scan found the imports');
  assert.deepEqual(offenders, []);
});
