// The Terraform module and example parse as HCL (HashiCorp's parser, compiled to WebAssembly), every
// variable is typed and documented, every `var.`/`local.` reference is declared, the example passes
// only inputs the module has (and all it requires), and the chart values the module sets exist.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { format } from '@cdktf/hcl-tools';
import { parse } from '@cdktf/hcl2json';
import { parse as parseYaml } from 'yaml';

type Block = Record<string, unknown>;
interface Parsed {
  variable?: Record<string, Block[]>;
  output?: Record<string, Block[]>;
  locals?: Block[];
  module?: Record<string, Block[]>;
  resource?: Record<string, Record<string, Block[]>>;
}

async function parseDir(dir: string): Promise<{ merged: Parsed; text: string }> {
  const merged: Parsed = {};
  let text = '';
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.tf'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    text += `${source}\n`;
    const parsed = (await parse(file, source)) as Parsed;
    merged.variable = { ...merged.variable, ...parsed.variable };
    merged.output = { ...merged.output, ...parsed.output };
    merged.module = { ...merged.module, ...parsed.module };
    merged.resource = { ...merged.resource, ...parsed.resource };
    merged.locals = [...(merged.locals ?? []), ...(parsed.locals ?? [])];
  }
  return { merged, text };
}

/** Names after `prefix.` in the expressions of a parsed tree (comments are already gone). */
function references(tree: unknown, prefix: string): Set<string> {
  const found = new Set<string>();
  const pattern = new RegExp(`\\b${prefix}\\.([a-zA-Z_][a-zA-Z0-9_]*)`, 'g');
  for (const match of JSON.stringify(tree).matchAll(pattern)) found.add(match[1] as string);
  return found;
}

function checkVariables(variables: Record<string, Block[]>, where: string): void {
  for (const [name, [block]] of Object.entries(variables)) {
    assert.ok(
      typeof block?.description === 'string' && block.description.length > 10,
      `${where}: var.${name} is documented`,
    );
    assert.ok(block?.type, `${where}: var.${name} has a type`);
  }
}

const MODULE = 'deploy/terraform/modules/maos';
const EXAMPLE = 'deploy/terraform/examples/basic';

describe('Terraform', () => {
  test('module: variables typed and documented, every reference declared, outputs documented', async () => {
    const { merged } = await parseDir(MODULE);
    const variables = merged.variable ?? {};
    checkVariables(variables, 'module');
    for (const name of [
      'image_repository',
      'image_tag',
      'replicas',
      'database_url',
      'existing_secret_name',
      'oidc_issuer',
      'oidc_audience',
    ]) {
      assert.ok(variables[name], `module has var.${name}`);
    }
    assert.equal(variables.database_url?.[0]?.sensitive, true, 'the database URL is sensitive');
    const undeclared = [...references(merged, 'var')].filter((name) => !variables[name]);
    assert.deepEqual(undeclared, []);
    const locals = new Set(merged.locals?.flatMap((block) => Object.keys(block)));
    const unknownLocals = [...references(merged, 'local')].filter((name) => !locals.has(name));
    assert.deepEqual(unknownLocals, []);
    for (const [name, [block]] of Object.entries(merged.output ?? {})) {
      assert.ok(typeof block?.description === 'string', `output ${name} is documented`);
    }
    assert.ok(merged.resource?.helm_release?.maos, 'deploys the chart with helm_release');
    assert.ok(merged.resource?.kubernetes_secret_v1?.env, 'keeps secrets in a Kubernetes Secret');
  });

  test('module: the default chart path is this repository chart, and the values it sets exist there', async () => {
    const { merged } = await parseDir(MODULE);
    const localsBlock = merged.locals?.find((block) => 'values' in block) as Block;
    assert.match(String(localsBlock.chart), /\$\{path\.module\}\/\.\.\/\.\.\/\.\.\/helm\/maos/);
    assert.ok(statSync(resolve(MODULE, '../../../helm/maos/Chart.yaml')).isFile());
    const chartValues = parseYaml(readFileSync('deploy/helm/maos/values.yaml', 'utf8'));
    const setValues = localsBlock.values as Block;
    const missing: string[] = [];
    const walk = (node: unknown, chart: unknown, path: string[]) => {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
      for (const [key, child] of Object.entries(node)) {
        const chartChild = (chart as Record<string, unknown> | undefined)?.[key];
        if (chart === undefined || !(key in (chart as object))) missing.push([...path, key].join('.'));
        // Free-form maps in the chart (config) accept any keys.
        else if (key !== 'config') walk(child, chartChild, [...path, key]);
      }
    };
    walk(setValues, chartValues, []);
    assert.deepEqual(missing, []);
  });

  test('example: parses, passes only module inputs and every required one', async () => {
    const { merged: module } = await parseDir(MODULE);
    const { merged: example } = await parseDir(EXAMPLE);
    checkVariables(example.variable ?? {}, 'example');
    const call = example.module?.maos?.[0] as Block;
    assert.equal(call.source, '../../modules/maos');
    const inputs = Object.keys(call).filter(
      (key) => !['source', 'version', 'providers', 'depends_on'].includes(key),
    );
    const moduleVariables = module.variable ?? {};
    assert.deepEqual(
      inputs.filter((name) => !moduleVariables[name]),
      [],
      'unknown module inputs',
    );
    const required = Object.entries(moduleVariables).filter(([, [block]]) => block && !('default' in block));
    assert.deepEqual(
      required.map(([name]) => name).filter((name) => !inputs.includes(name)),
      [],
    );
    const undeclared = [...references(example, 'var')].filter((name) => !example.variable?.[name]);
    assert.deepEqual(undeclared, []);
  });

  test('every file is formatted as `terraform fmt` formats it (HashiCorp hclwrite)', async () => {
    for (const dir of [MODULE, EXAMPLE]) {
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.tf'))) {
        const source = readFileSync(join(dir, file), 'utf8');
        assert.equal(await format(source), source, `${dir}/${file} is not formatted`);
      }
    }
    assert.notEqual(await format('a   =  1\n'), 'a   =  1\n', 'the formatter does rewrite');
  });

  test('invalid HCL is rejected by the parser (the checks above are not vacuous)', async () => {
    await assert.rejects(
      parse('broken.tf', 'variable "x" {\n  type = string\n'),
      /Unclosed configuration block/,
    );
  });
});
