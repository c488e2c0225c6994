// Drift guards for the docs: the configuration reference is generated from the schema and must
// match it, and what the guides name (links, config keys, env variables, error codes, metrics) exists.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { renderConfigDocs } from '../../scripts/gen-config-docs.ts';
import { buildRequest } from '../../src/cli/commands/run.ts';
import type { ActionFactory, CliIo } from '../../src/cli/context.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { createProgram } from '../../src/cli/program.ts';
import { CLIENT_ENV_NAMES } from '../../src/config/client-env.ts';
import { findUnpricedModels } from '../../src/config/llm-schema.ts';
import { configPathOfEnvName, loadConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { isConfigPath } from '../../src/config/schema-paths.ts';
import { ERROR_CODES } from '../../src/errors/app-error.ts';
import { METRIC_LABELS } from '../../src/observability/metric-labels.ts';
import { assertAuthConfigAllowed } from '../../src/security/authenticate.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { shellWords } from '../fixtures/shell-words.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** README.md, every Markdown file under docs/, the READMEs under deploy/ and bench/README.md, relative to the checkout. */
function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string, wanted: (name: string) => boolean): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path, wanted);
      else if (wanted(entry.name)) files.push(path);
    }
  };
  walk('docs', (name) => name.endsWith('.md'));
  walk('deploy', (name) => name === 'README.md');
  files.push('bench/README.md');
  return files;
}

/** The guides a newcomer reads first; their config keys are checked against the schema. */
const USER_GUIDES = [
  'README.md',
  'docs/index.md',
  'docs/user-guide.md',
  'docs/api.md',
  'docs/mcp.md',
  'docs/llm-providers.md',
  'docs/security.md',
  'docs/troubleshooting.md',
];

const withoutCodeBlocks = (text: string): string => text.replace(/^```[\s\S]*?^```/gm, '');

/** Spans in `backticks`, where the docs name keys, codes, variables and metrics. */
const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] as string);

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens. */
const anchorOf = (heading: string): string =>
  heading
    .replace(/`/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

/** GitHub's heading anchors of a file, repeats numbered. */
function anchorsOf(path: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of withoutCodeBlocks(readFileSync(path, 'utf8')).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = anchorOf(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

test('docs/configuration.md matches the config schema (run `node scripts/gen-config-docs.ts`)', () => {
  const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(committed, renderConfigDocs());
});

test('the `@defaultValue` of a config key in the schema is its real default', () => {
  // The generator strips `@defaultValue` from the descriptions, so a stale one is only seen by readers
  // of the schema (and of editors showing it): compare it with the default the schema applies.
  interface Node {
    description?: string;
    default?: unknown;
    properties?: Record<string, Node>;
    additionalProperties?: Node | boolean;
  }
  const stale: string[] = [];
  let checked = 0;
  const walk = (node: Node, path: string): void => {
    const stated = /@defaultValue\s+(.+)$/.exec(node.description ?? '')?.[1];
    if (stated !== undefined && ['number', 'string', 'boolean'].includes(typeof node.default)) {
      checked += 1;
      if (stated !== String(node.default))
        stale.push(`${path}: @defaultValue ${stated}, default ${node.default}`);
    }
    for (const [key, child] of Object.entries(node.properties ?? {}))
      walk(child, path ? `${path}.${key}` : key);
    if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, `${path}.<name>`);
  };
  walk(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node, '');
  assert.ok(checked > 50, 'the schema states its defaults');
  assert.deepEqual(stale, []);
});

test('every variable in docs/configuration.md sets the key it is listed for', () => {
  const rows = [...read('docs/configuration.md').matchAll(/^\| `([^`]+)` \|.*\| `(MAOS_[^`]+)` \|/gm)];
  assert.ok(rows.length > 50, 'the reference lists the keys');
  for (const [, key, env] of rows) {
    const path = (key as string).split('.').map((part) => (part.startsWith('<') ? 'x' : part));
    const name = (env as string).replace(/<[A-Z]+>/g, 'X');
    assert.deepEqual(configPathOfEnvName(name), path, `${env} sets ${key}`);
  }
});

test('the range of each numeric key in docs/configuration.md is the one the schema holds it to', () => {
  // The problems CONFIG_INVALID names for `key` (or an entry of it) when only it is set to `value`.
  const problemsOf = (key: string, value: number | number[]): string[] => {
    const overrides: Record<string, unknown> = {};
    const parts = key.split('.');
    let node = overrides;
    for (const part of parts.slice(0, -1)) node = node[part] = {} as Record<string, unknown>;
    node[parts.at(-1) as string] = value;
    try {
      loadConfig({ env: {}, overrides });
      return [];
    } catch (error) {
      const details = (error as { details?: unknown }).details;
      return (Array.isArray(details) ? (details as string[]) : []).filter(
        (p) => p.startsWith(`${key}:`) || p.startsWith(`${key}.`),
      );
    }
  };
  const wrong: string[] = [];
  // A key without a range says it takes any number; a list's range is that of each entry.
  const rows = [
    ...read('docs/configuration.md').matchAll(
      /^\| `([^`<]+)` \| (integer|number)(\[\])?(?: \((?:each )?([^)]*)\))? \|/gm,
    ),
  ];
  assert.ok(rows.length > 20, 'the reference lists numeric keys');
  for (const [, key, type, list, range = '…–…'] of rows) {
    const [low = '', high = ''] = range.split('–');
    const step = type === 'integer' ? 1 : 0.5;
    const probe = (value: number) => problemsOf(key as string, list ? [value] : value).length === 0;
    const says = `${key} (${type}${list ?? ''} ${range})`;
    if (low === '…') {
      if (!probe(-1_000_000)) wrong.push(`${says} refuses -1000000`);
    } else if (low.startsWith('>')) {
      if (probe(Number(low.slice(1)))) wrong.push(`${says} takes ${low.slice(1)}`);
      if (!probe(Number(low.slice(1)) + step)) wrong.push(`${says} refuses ${Number(low.slice(1)) + step}`);
    } else {
      if (probe(Number(low) - step)) wrong.push(`${says} takes ${Number(low) - step}`);
      if (!probe(Number(low))) wrong.push(`${says} refuses ${low}`);
    }
    if (high !== '…') {
      if (!probe(Number(high))) wrong.push(`${says} refuses ${high}`);
      if (probe(Number(high) + step)) wrong.push(`${says} takes ${Number(high) + step}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('links between the docs resolve to files and headings', () => {
  const broken: string[] = [];
  for (const file of markdownFiles()) {
    const text = withoutCodeBlocks(read(file));
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = match[1] as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue;
      const [target = '', anchor] = href.split('#');
      const path = target === '' ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), target);
      if (!existsSync(path)) broken.push(`${file}: ${href} (no such file)`);
      else if (anchor && statSync(path).isFile() && !anchorsOf(path).has(anchor))
        broken.push(`${file}: ${href} (no such heading in ${relative(ROOT, path)})`);
    }
  }
  assert.deepEqual(broken, []);
});

test('a page with a contents list lists every one of its sections, in order, by their headings', () => {
  let pages = 0;
  for (const file of markdownFiles()) {
    const text = withoutCodeBlocks(read(file));
    const intro = text.slice(0, Math.max(text.search(/^## /m), 0));
    const contents = [...intro.matchAll(/^- \[([^\]]+)\]\(#([^)]+)\)/gm)].map(([, label, anchor]) => ({
      label,
      anchor,
    }));
    if (contents.length === 0) continue;
    pages += 1;
    const sections = [...text.matchAll(/^## (.+)$/gm)].map(([, heading]) => ({
      label: heading,
      anchor: anchorOf(heading as string),
    }));
    assert.deepEqual(contents, sections, `the contents list of ${file}`);
  }
  assert.ok(pages >= 2, `found ${pages} contents lists`);
});

test("config keys named in the docs exist in the config schema (or the Helm chart's values)", () => {
  // The operations docs also name the chart's values (`tls.secretName`, `metrics.serviceMonitor.enabled`,
  // `config.http.bodyLimitBytes` for the server's `http.bodyLimitBytes`), the files of a
  // kubernetes.io/tls Secret and OpenTelemetry or ECS attribute names, some of which start like a key.
  const values = parseYaml(read('deploy/helm/maos/values.yaml')) as Record<string, unknown>;
  const isValuesPath = (parts: string[]): boolean => {
    let node: unknown = values;
    for (const part of parts) {
      if (typeof node !== 'object' || node === null || !(part in node)) return false;
      node = (node as Record<string, unknown>)[part];
    }
    return true;
  };
  const notKeys =
    /^(tls\.(crt|key|server\..*)|http\.(route|request\..*)|mcp\.(method|session|protocol|server)\..*|service\.(name|version|environment|node\.name))$/;
  const unknown: string[] = [];
  for (const file of markdownFiles()) {
    for (const span of codeSpans(read(file))) {
      for (const match of span.matchAll(/(?<![\w/.-])([a-z][A-Za-z]*(?:\.(?:[A-Za-z0-9_*-]+|<[^>]+>))+)/g)) {
        const name = match[1] as string;
        // The chart's value `config` is the server's configuration.
        const inChartConfig = name.startsWith('config.');
        const parts = name.split('.').slice(inChartConfig ? 1 : 0);
        if (!isConfigPath(parts.slice(0, 1))) continue;
        // File names (`secret-store.ts`) and database columns (`tasks.agent_id`) are not config keys.
        if (/\.(ts|md|json|ya?ml|txt|pem|jsonl)$/.test(name) || notKeys.test(name)) continue;
        const path = parts.map((part) => part.replace(/_FILE$/, ''));
        if (path.some((part) => part.includes('_'))) continue;
        const wildcard = path.indexOf('*');
        const key = wildcard < 0 ? path : path.slice(0, wildcard);
        if (!isConfigPath(key) && (inChartConfig || !isValuesPath(key))) unknown.push(`${file}: ${name}`);
      }
    }
  }
  assert.deepEqual(unknown, []);
});

test('MAOS_* variables named in the docs are read: configuration, the CLI or a runner', () => {
  const runtime = read('src/agents/runtimes/command/command-runtime.ts');
  const runnerVars = new Set([...runtime.matchAll(/\b(MAOS_[A-Z_]+):/g)].map((m) => m[1] as string));
  assert.ok(runnerVars.has('MAOS_TASK'), 'runner variables found');
  const client = new Set<string>(CLIENT_ENV_NAMES);
  const unknown: string[] = [];
  for (const file of markdownFiles()) {
    for (const match of read(file).matchAll(/\bMAOS_(?:[A-Z0-9_]|<[A-Z]+>)+/g)) {
      const name = match[0].replace(/<[A-Z]+>/g, 'X');
      if (client.has(name) || runnerVars.has(name)) continue;
      const path = configPathOfEnvName(name);
      const key = path?.map((part) => part.replace(/_FILE$/, ''));
      if (!key || !isConfigPath(key)) unknown.push(`${file}: ${match[0]}`);
    }
  }
  assert.deepEqual([...new Set(unknown)], []);
});

test('error codes named in the docs exist (AppError codes, or the CLI’s own)', () => {
  const cliCodes = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts'))
        for (const m of read(path).matchAll(/CliError\(\s*'([A-Z_]+)'/g)) cliCodes.add(m[1] as string);
    }
  };
  walk('src/cli');
  assert.ok(cliCodes.has('USAGE') && cliCodes.has('UNREACHABLE'), 'CLI codes found');
  // Upper-case names in the docs that are not error codes: other tools' variables, SQLite's codes,
  // Node's network and TLS error codes and the egress proxy's (a failed fetch's cause) and
  // constants of the source.
  const notCodes =
    /^(OTEL_\w+|METRIC_LABELS|ERROR_CODES|NO_COLOR|NODE_EXTRA_CA_CERTS|ANTHROPIC_API_KEY|OPENAI_API_KEY|DATABASE_URL|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD|HTTPS?_PROXY|NO_PROXY|SQLITE_\w+|UND_ERR_\w+|EGRESS_PROXY_\w+|ERR_TLS_\w+|CERT_HAS_EXPIRED|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/;
  const unknown: string[] = [];
  for (const file of markdownFiles()) {
    for (const span of codeSpans(read(file))) {
      for (const match of span.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)) {
        const name = match[0];
        if (name.startsWith('MAOS_') || notCodes.test(name)) continue;
        if (!(name in ERROR_CODES) && !cliCodes.has(name)) unknown.push(`${file}: ${name}`);
      }
    }
  }
  assert.deepEqual([...new Set(unknown)], []);
});

test('docs/api.md names every error code the source raises, with its status in the table', () => {
  // A code only declared in ERROR_CODES is not something a caller can meet; every raised one is.
  const raised = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (
        entry.name.endsWith('.ts') &&
        !entry.name.endsWith('.test.ts') &&
        path !== 'src/errors/app-error.ts'
      )
        for (const m of read(path).matchAll(/'([A-Z][A-Z0-9_]+)'/g))
          if ((m[1] as string) in ERROR_CODES) raised.add(m[1] as string);
    }
  };
  walk('src');
  assert.ok(raised.has('VALIDATION_FAILED') && raised.has('PORT_IN_USE'), 'raised codes found');
  const api = read('docs/api.md');
  const named = new Set(codeSpans(api));
  assert.deepEqual(
    [...raised].filter((code) => !named.has(code)).sort(),
    [],
    'codes missing from docs/api.md',
  );
  const rows = [...api.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)];
  assert.ok(rows.length > 20, 'the error table is found');
  for (const [, code, status] of rows)
    assert.equal(Number(status), ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, `status of ${code}`);
});

test('every page under docs/ is reached by links from the README (a folder link opens its README.md)', () => {
  // GitHub shows a folder's README.md under its listing: a link to a folder with one reaches that
  // index, and only the pages it links; a folder without one shows every file (docs/runbooks/).
  const isMarkdown = (path: string): boolean => path.endsWith('.md') && statSync(path).isFile();
  const reached = new Set<string>();
  const queue = [join(ROOT, 'README.md')];
  while (queue.length > 0) {
    const file = queue.shift() as string;
    if (reached.has(file)) continue;
    reached.add(file);
    for (const match of withoutCodeBlocks(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = match[1] as string;
      const target = href.split('#')[0] as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(href) || target === '') continue;
      const path = resolve(dirname(file), target);
      if (!path.startsWith(ROOT) || !existsSync(path)) continue;
      if (!statSync(path).isDirectory()) {
        if (isMarkdown(path)) queue.push(path);
      } else if (existsSync(join(path, 'README.md'))) queue.push(join(path, 'README.md'));
      else
        queue.push(
          ...readdirSync(path)
            .map((name) => join(path, name))
            .filter(isMarkdown),
        );
    }
  }
  const pages = markdownFiles().filter((file) => file.startsWith('docs/'));
  assert.ok(pages.length > 30, `found ${pages.length} pages`);
  assert.deepEqual(
    pages.filter((file) => !reached.has(join(ROOT, file))),
    [],
    'pages no link from README.md leads to',
  );
});

test('docs/adr/README.md lists every ADR with its title and status, numbered without gaps or repeats', () => {
  const records = readdirSync(join(ROOT, 'docs/adr'))
    .filter((name) => name !== 'README.md')
    .sort()
    .map((name) => {
      const text = read(`docs/adr/${name}`);
      return {
        name,
        number: /^(\d{4})-[a-z0-9-]+\.md$/.exec(name)?.[1],
        heading: /^# ADR (\d{4}): (.+)$/m.exec(text),
        status: /^Status: (.+)$/m.exec(text)?.[1],
      };
    });
  assert.ok(records.length >= 12, `found ${records.length} ADRs`);
  const problems: string[] = [];
  records.forEach(({ name, number, heading, status }, index) => {
    const expected = String(index + 1).padStart(4, '0');
    if (number === undefined) problems.push(`${name}: not named NNNN-title.md`);
    else if (number !== expected) problems.push(`${name}: number ${number} where ${expected} comes next`);
    if (heading?.[1] !== number) problems.push(`${name}: heading "# ADR ${number}: <title>" missing`);
    if (status === undefined) problems.push(`${name}: no "Status:" line`);
  });
  const rows = [...read('docs/adr/README.md').matchAll(/^\| \[(\d{4})\]\(([^)]+)\) \| (.+?) \| (.+?) \|$/gm)];
  assert.deepEqual(
    rows.map(([, number, file, title, status]) => ({ number, file, title, status })),
    records.map(({ name, number, heading, status }) => ({
      number,
      file: name,
      title: heading?.[2],
      status: status?.toLowerCase(),
    })),
    'the rows of docs/adr/README.md, in order',
  );
  assert.deepEqual(problems, []);
});

test("the README's layout describes every folder of the checkout and of src/, and names only what exists", () => {
  // The block under `## Layout`: `name/   what it holds`, children indented by two spaces under their
  // folder; `main.ts, app.ts` names several, `web/console/` a folder below another.
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Layout'));
  const block = /^```\n([\s\S]*?)^```/m.exec(section)?.[1] ?? '';
  const described = new Map<string, string>();
  const folders: Array<{ indent: number; path: string }> = [];
  for (const line of block.split('\n').filter((text) => text.trim() !== '')) {
    const indent = line.length - line.trimStart().length;
    const [names = '', description = ''] = line.trim().split(/\s{2,}/);
    while (folders.length > 0 && (folders.at(-1) as { indent: number }).indent >= indent) folders.pop();
    const parent = folders.at(-1)?.path ?? '';
    for (const name of names.split(', ')) {
      const path = `${parent}${name}`;
      described.set(path, description);
      if (name.endsWith('/')) folders.push({ indent, path });
    }
  }
  assert.ok(described.size > 20, `found ${described.size} entries`);
  const problems: string[] = [];
  const isParent = (path: string): boolean =>
    [...described.keys()].some((other) => other !== path && other.startsWith(path));
  for (const [path, description] of described) {
    if (!existsSync(join(ROOT, path))) problems.push(`${path}: no such file or folder`);
    if (description === '' && !isParent(path)) problems.push(`${path}: no description`);
  }
  // Every folder of the checkout, and every entry of a folder whose contents the layout lists.
  const source = (name: string): boolean =>
    !name.startsWith('.') &&
    name !== 'node_modules' &&
    !/\.test\.ts$|test-support\.ts$/.test(name) &&
    (!name.includes('.') || /\.[jt]s$/.test(name));
  const topFolders = readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && source(entry.name))
    .map((entry) => `${entry.name}/`);
  for (const folder of topFolders)
    if (!described.has(folder) && !isParent(folder)) problems.push(`${folder}: not described`);
  for (const folder of [...described.keys()].filter((path) => path.endsWith('/') && isParent(path))) {
    for (const entry of readdirSync(join(ROOT, folder), { withFileTypes: true })) {
      const path = `${folder}${entry.name}${entry.isDirectory() ? '/' : ''}`;
      if (source(entry.name) && !described.has(path)) problems.push(`${path}: not described`);
    }
  }
  assert.deepEqual(problems, []);
});

test('docs/index.md links every guide, and docs/observability.md names every shipped alert', () => {
  const index = read('docs/index.md');
  const pages = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md') && name !== 'index.md');
  assert.deepEqual(
    pages.filter((page) => !index.includes(`](${page}`)),
    [],
    'pages docs/index.md does not link',
  );
  // `MaosApi{Availability,Latency}FastBurn` names two alerts.
  const expand = (name: string): string[] => {
    const match = /\{([^}]+)\}/.exec(name);
    if (!match) return [name];
    return (match[1] as string).split(',').flatMap((part) => expand(name.replace(match[0], part)));
  };
  const named = new Set(codeSpans(read('docs/observability.md')).flatMap(expand));
  const alerts = [...read('deploy/prometheus/rules/maos-alerts.yml').matchAll(/^\s*- alert: (\w+)/gm)].map(
    (m) => m[1] as string,
  );
  assert.ok(alerts.length > 10, 'alerts found');
  assert.deepEqual(
    alerts.filter((alert) => !named.has(alert)),
    [],
    'alerts docs/observability.md does not name',
  );
});

test('the exit-code table of docs/user-guide.md lists every exit code of the CLI', () => {
  const guide = read('docs/user-guide.md');
  const table = guide.slice(guide.indexOf('## Exit codes'), guide.indexOf('## Scripting with'));
  const listed = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
  assert.deepEqual(
    listed.sort((a, b) => a - b),
    Object.values(EXIT).sort((a, b) => a - b),
  );
});

test('the table of `maos doctor` in docs/operations.md lists every check the doctor prints', () => {
  // Check names are literals in the doctor's sources (`name: 'data-dir'`, `name = 'server-readiness'`,
  // `provider:${name}`); the skip line of no providers at all is the `provider:<name>` row.
  const printed = new Set<string>();
  for (const path of [
    ...readdirSync(join(ROOT, 'src/cli/ops'))
      .filter((name) => name.startsWith('doctor') && !name.endsWith('.test.ts'))
      .map((name) => `src/cli/ops/${name}`),
    'src/agents/providers/check-providers.ts',
  ]) {
    for (const m of read(path).matchAll(/\bname(?::| =) ['`]([a-z-]+(?::\$\{name\})?)['`]/g))
      printed.add(
        (m[1] as string).replace(/\$\{name\}$/, '<name>').replace(/^providers$/, 'provider:<name>'),
      );
  }
  assert.ok(printed.has('data-dir') && printed.has('provider:<name>'), 'check names found');
  const guide = read('docs/operations.md');
  const section = guide.slice(guide.indexOf('## 7. `maos doctor`'), guide.indexOf('## 8.'));
  const rows = new Set([...section.matchAll(/^\| `([^`]+)` +\|/gm)].map((m) => m[1] as string));
  assert.deepEqual(
    [...printed].filter((name) => !rows.has(name)),
    [],
    'checks missing from the table of docs/operations.md §7',
  );
});

test('alerts named in the docs are shipped, and each has its runbook', () => {
  const alerts = new Set(
    [...read('deploy/prometheus/rules/maos-alerts.yml').matchAll(/^\s*- alert: (\w+)/gm)].map(
      (m) => m[1] as string,
    ),
  );
  const runbooks = readdirSync(join(ROOT, 'docs/runbooks')).map((name) => name.replace(/\.md$/, ''));
  assert.deepEqual(
    runbooks.filter((name) => !alerts.has(name)),
    [],
    'runbooks of no alert',
  );
  assert.deepEqual(
    [...alerts].filter((name) => !runbooks.includes(name)),
    [],
    'alerts without a runbook',
  );
  const unknown: string[] = [];
  for (const file of markdownFiles()) {
    // `MaosApi{Availability,Latency}FastBurn` and `MaosApi*` name several.
    for (const match of read(file).matchAll(/\bMaos[A-Z]\w*(?![\w{*])/g))
      if (!alerts.has(match[0])) unknown.push(`${file}: ${match[0]}`);
  }
  assert.deepEqual([...new Set(unknown)], []);
});

test('repository files and folders named in the docs exist', () => {
  // `deploy/helm/maos/examples/values-canary.yaml`, `bench/store-copy.ts`, `test/e2e/console-*.test.ts`
  // (a `*` in the last part matches any file of that folder). `deploy/maos` alone is kubectl's
  // Deployment of a release, not a folder.
  const missing: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    for (const match of read(file).matchAll(
      /(?<![\w/.:-])((?:bench|bin|deploy|docs|scripts|src|test|web)\/[\w./*-]*[\w/*])/g,
    )) {
      const path = match[1] as string;
      if (/^deploy\/[\w-]+$/.test(path)) continue;
      checked += 1;
      if (!path.includes('*')) {
        if (!existsSync(join(ROOT, path))) missing.push(`${file}: ${path}`);
        continue;
      }
      const folder = dirname(path);
      const pattern = new RegExp(
        `^${path
          .slice(folder.length + 1)
          .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')}$`,
      );
      if (
        !existsSync(join(ROOT, folder)) ||
        !readdirSync(join(ROOT, folder)).some((name) => pattern.test(name))
      )
        missing.push(`${file}: ${path}`);
    }
  }
  assert.ok(checked > 50, `checked ${checked} paths`);
  assert.deepEqual(missing, []);
});

test('migrations named in the docs and the bench scripts exist, by number and by name', () => {
  // `migration 0026`, migration `0013_tenant_usage_days`; a bench script's before/after baseline
  // is the schema up to a migration it names ('0026_tenant_export_indexes').
  const names = new Set(MIGRATIONS.map((migration) => migration.name));
  const numbers = new Set(MIGRATIONS.map((migration) => migration.name.slice(0, 4)));
  const benchScripts = readdirSync(join(ROOT, 'bench'))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `bench/${name}`);
  const unknown: string[] = [];
  let checked = 0;
  for (const file of [...markdownFiles(), ...benchScripts]) {
    const text = read(file);
    const named = [
      ...text.matchAll(/\bmigrations? `?(\d{4})(_[a-z0-9_]+)?/gi),
      ...(file.endsWith('.ts') ? text.matchAll(/'(\d{4})(_[a-z0-9_]+)'/g) : []),
    ];
    for (const [, number, rest] of named) {
      checked += 1;
      const known = rest === undefined ? numbers.has(number as string) : names.has(`${number}${rest}`);
      if (!known) unknown.push(`${file}: ${number}${rest ?? ''}`);
    }
  }
  assert.ok(checked > 10, `checked ${checked} migrations`);
  assert.deepEqual([...new Set(unknown)], []);
});

test("maos_* metrics in the docs' queries (code blocks too) exist with the labels and values they match", () => {
  // Labels the scrape adds (and `le` of histograms) are not the metric's own.
  const scrapeLabels = new Set(['job', 'namespace', 'instance', 'pod', 'service', 'le', 'maos_target']);
  // `maos_wake` is the PostgreSQL notification channel, `maos_target` the target label of MAOS's
  // scrape configs, `maos_mcp` the HAProxy backend of the cluster guide's example: not metrics.
  const notMetrics = new Set(['maos_wake', 'maos_target', 'maos_mcp']);
  const problems: string[] = [];
  let matchers = 0;
  for (const file of markdownFiles()) {
    for (const match of read(file).matchAll(/\b(maos_[a-z0-9_]*[a-z0-9])(?![<\w])(?:\{([^}]*)\})?/g)) {
      const raw = match[1] as string;
      const name = raw.replace(/_(bucket|sum|count)$/, '');
      if (notMetrics.has(name)) continue;
      const labels =
        (METRIC_LABELS as Record<string, Record<string, unknown>>)[name] ??
        (METRIC_LABELS as Record<string, Record<string, unknown>>)[raw];
      if (!labels) {
        problems.push(`${file}: ${raw} is no metric`);
        continue;
      }
      for (const [, label = '', op, value = ''] of (match[2] ?? '').matchAll(
        /(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g,
      )) {
        if (scrapeLabels.has(label)) continue;
        matchers += 1;
        const rule = labels[label];
        if (rule === undefined) problems.push(`${file}: ${raw} has no label ${label}`);
        else if (Array.isArray(rule) && (op === '=' || op === '=~'))
          for (const alternative of op === '=' ? [value] : value.split('|'))
            if (!/[.*+?()[\]\\]/.test(alternative) && !rule.includes(alternative))
              problems.push(`${file}: ${raw}{${label}="${alternative}"} is never reported`);
      }
    }
  }
  assert.ok(matchers > 10, `checked ${matchers} label matchers`);
  assert.deepEqual([...new Set(problems)], []);
});

/** `key_FILE: path` becomes `key: <placeholder>`: the docs point at secret files of the reader's machine. */
function withoutFileReferences(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutFileReferences);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) =>
      key.endsWith('_FILE')
        ? [key.slice(0, -'_FILE'.length), 'secret-from-file']
        : [key, withoutFileReferences(child)],
    ),
  );
}

test('YAML config examples in the user guides pass `maos config check` without warnings', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-docs-yaml-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let checked = 0;
  for (const file of USER_GUIDES) {
    for (const match of read(file).matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
      const example = parseYaml(match[1] as string) as Record<string, unknown>;
      // Only whole server configs: every top-level key a config section (not chart values, say).
      if (!Object.keys(example).every((key) => isConfigPath([key.replace(/_FILE$/, '')]))) continue;
      const path = join(dir, `example-${checked}.yaml`);
      writeFileSync(path, stringifyYaml(withoutFileReferences(example)));
      const where = `${file}, example starting "${(match[1] as string).split('\n')[0]}"`;
      const config = loadConfig({ configPath: path, env: {} });
      assert.doesNotThrow(() => assertAuthConfigAllowed(config.auth, config.host), where);
      assert.deepEqual(findUnpricedModels(config.providers, config.llm), [], `${where}: every model priced`);
      checked += 1;
    }
  }
  assert.ok(checked >= 5, `checked ${checked} examples`);
});

/**
 * The `maos …` command lines of the docs' shell and console blocks, continuation lines joined, with
 * the shell around them cut off (`| jq`, `> file`, `$(…)`, comments). Placeholders like `<id>` stay.
 */
function cliExamples(): Array<{ file: string; line: string; inline?: boolean }> {
  const examples: Array<{ file: string; line: string; inline?: boolean }> = [];
  for (const file of markdownFiles()) {
    // Fences toggle: a block is shell when its opening fence names no language or a shell.
    let block: string | undefined;
    let shell = false;
    const lines: string[] = [];
    for (const text of read(file).split('\n')) {
      const fence = /^```(\S*)/.exec(text);
      if (fence) {
        if (block === undefined) {
          block = fence[1] as string;
          shell = ['', 'bash', 'console', 'sh', 'shell'].includes(block);
        } else block = undefined;
        continue;
      }
      if (block !== undefined && shell) lines.push(text);
      else if (lines.length > 0 && lines[lines.length - 1] !== '') lines.push('');
    }
    for (const raw of lines
      .join('\n')
      .replace(/\\\n\s*/g, ' ')
      .split('\n')) {
      const line = raw
        .replace(/^\$ /, '')
        .replace(/\s#\s.*$/, '')
        .replace(/\$\((?!\s*(?:npx\s+)?maos\b)[^)]*\)/g, 'X');
      // `node bin/maos.js …` wherever it stands (`kubectl exec deploy/maos -- node bin/maos.js doctor`).
      const match =
        /(?:^|\s)node\s+\S*bin\/maos\.js\s+(.*)$/.exec(line.trim()) ??
        /(?:^|[|;]\s*|&&\s*|\$\(|\b(?:then|if)\s+)(?:[A-Z_]+=\S+\s+)*(?:npx\s+)?maos\s+(.*)$/.exec(
          line.trim(),
        );
      if (!match) continue;
      const command = (match[1] as string).replace(/\s+(?:\||>|;\s*then\b).*$|\)\s*$/, '').trim();
      // `maos [global options] <command> [options]` is a synopsis, not an example.
      if (!command.startsWith('[')) examples.push({ file, line: command });
    }
    // Commands named in the text (`maos keys create --role admin`, `maos logs -f`): their commands and
    // options must exist, their arguments may be left out. Elided ones (`maos run …`) are sketches.
    for (const span of codeSpans(withoutCodeBlocks(read(file)))) {
      const inline = /^(?:[A-Z_]+=\S+\s+)*(?:(?:npx\s+)?maos|node\s+\S*bin\/maos\.js)\s+(.*)$/.exec(
        span.trim(),
      );
      if (inline && !/…|\.\.\.|[|[]|\/--|<[^>]*\s[^>]*>/.test(inline[1] as string))
        examples.push({ file, line: inline[1] as string, inline: true });
    }
  }
  return examples;
}

test('maos commands in the docs parse with the real CLI, and `maos run` examples build valid requests', async () => {
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  const io: CliIo = { stdout: sink, stderr: sink, env: { noColor: true } };
  const examples = cliExamples();
  assert.ok(examples.length >= 40, `found ${examples.length} examples`);
  const problems: string[] = [];
  // What a command named in the text may leave out: its arguments, option values, required options
  // and, for a group such as `maos keys`, the subcommand.
  const omissible = new Set([
    'commander.missingArgument',
    'commander.optionMissingArgument',
    'commander.missingMandatoryOptionValue',
    'commander.help',
  ]);
  for (const { file, line, inline } of examples) {
    let ran: Command | undefined;
    const record = async (...args: unknown[]) => {
      ran = args[args.length - 1] as Command;
    };
    const act: ActionFactory = () => record;
    // A fresh program each time: commander keeps parsed option values on its commands.
    const program = await createProgram(io, act);
    for (const command of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
      command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
      // Every command only records that it was chosen (some register their own handler, not `act`).
      if (command.commands.length === 0) command.action(record);
    }
    try {
      await program.parseAsync(shellWords(line), { from: 'user' });
    } catch (error) {
      // --help ends through exitOverride with exit code 0.
      const { exitCode, code } = error as { exitCode?: number; code?: string };
      if (exitCode !== 0 && !(inline && code !== undefined && omissible.has(code)))
        problems.push(`${file}: maos ${line}: ${(error as Error).message}`);
      continue;
    }
    if (ran === undefined) {
      problems.push(`${file}: maos ${line}: names no command that runs`);
      continue;
    }
    if (ran.name() === 'run') {
      // The objective comes from the argument, stdin (`-`) or --objective-file; the text may leave
      // it out (`maos run --thread <id>`, a sketch not checked further), an example may not.
      const objective = ran.processedArgs[0] as string | undefined;
      const fromInput = objective === '-' || ran.opts().objectiveFile !== undefined;
      if (objective === undefined && !fromInput) {
        if (!inline) problems.push(`${file}: maos ${line}: names no objective`);
        continue;
      }
      try {
        buildRequest(fromInput ? 'An objective' : (objective as string), ran.opts());
      } catch (error) {
        problems.push(`${file}: maos ${line}: ${(error as Error).message}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

/** Each `curl …` command of a Markdown text with its continuation lines (`\` or an open '…' quote). */
function curlCommands(text: string): Array<{ line: number; command: string }> {
  const lines = text.split('\n');
  const commands: Array<{ line: number; command: string }> = [];
  lines.forEach((first, index) => {
    if (!/^\s*(\$ )?curl\b/.test(first)) return;
    let command = first;
    let next = index + 1;
    while ((command.trimEnd().endsWith('\\') || command.split("'").length % 2 === 0) && next < lines.length)
      command += `\n${lines[next++]}`;
    commands.push({ line: index + 1, command });
  });
  return commands;
}

test('curl examples of /v1 routes send credentials (the README quick start runs on `auth.mode: none`)', () => {
  // A copied example that answers 401 on a default server (auth.mode apikey) sends the reader astray.
  const missing = markdownFiles()
    .filter((file) => file !== 'README.md')
    .flatMap((file) =>
      curlCommands(read(file))
        .filter(({ command }) => command.includes('/v1/') && !/Authorization:|X-API-Key:/i.test(command))
        .map(({ line, command }) => `${file}:${line}: ${command.split('\n')[0]}`),
    );
  assert.deepEqual(missing, []);
});
