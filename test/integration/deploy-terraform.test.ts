// The Terraform module and example parse as HCL (HashiCorp's parser, compiled to WebAssembly), every
// variable is typed and documented, every `var.`/`local.` reference is declared, the example passes
// only inputs the module has (and all it requires), and the chart values the module sets exist.
// Where a `terraform` binary is installed, it evaluates the module's chart values (no providers or
// cluster needed) and the chart renders them into a configuration MAOS accepts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { format } from '@cdktf/hcl-tools';
import { parse } from '@cdktf/hcl2json';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { assertConfigUsable } from '../../src/security/config-preflight.ts';
import { renderChart } from '../fixtures/helm-chart.ts';
import { assertValidManifest, at, CHART, type Doc, groupByKind, one } from '../fixtures/helm-manifests.ts';

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

const TERRAFORM_HINT = 'terraform not found: put a terraform >= 1.5 binary on PATH to evaluate the module';
const hasTerraform = spawnSync('terraform', ['version'], { stdio: 'ignore' }).status === 0;

/**
 * The chart values the module hands to helm_release, as terraform computes them for `vars`: the
 * module's locals and variables in a root module of their own (no providers, no resources, so no
 * download and no cluster), applied with local state in a temporary directory.
 */
function evaluateModuleValues(vars: Record<string, string>): Doc {
  const dir = mkdtempSync(join(tmpdir(), 'maos-tf-'));
  try {
    const main = readFileSync(join(MODULE, 'main.tf'), 'utf8');
    const locals = /^locals \{\n[\s\S]*?\n\}\n/m.exec(main);
    assert.ok(locals, 'main.tf has a top-level locals block');
    writeFileSync(join(dir, 'main.tf'), `${locals[0]}\noutput "values" {\n  value = local.values\n}\n`);
    copyFileSync(join(MODULE, 'variables.tf'), join(dir, 'variables.tf'));
    const env = { ...process.env, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' };
    const run = (args: string[]) => {
      const result = spawnSync('terraform', [...args, '-no-color'], {
        cwd: dir,
        env,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(result.status, 0, `terraform ${args[0]}:\n${result.stdout}${result.stderr}`);
      return result.stdout;
    };
    run(['init', '-backend=false']);
    run(['apply', '-auto-approve', ...Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${v}`])]);
    return JSON.parse(run(['output', '-json'])).values.value as Doc;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('Terraform module evaluated by terraform', () => {
  test('its chart values render into a configuration MAOS accepts, with and without OIDC', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const cases: Array<{ vars: Record<string, string>; check(config: ReturnType<typeof loadConfig>): void }> =
      [
        {
          vars: {},
          check: (config) => assert.equal(config.auth.mode, 'apikey'),
        },
        {
          vars: {
            auth_mode: 'oidc',
            oidc_issuer: 'https://idp.example.com/realms/main',
            oidc_audience: 'https://maos.example.com',
            oidc_console_client_id: 'maos-console',
            oidc_console_token_endpoint_origin: 'https://login.example.net',
            oidc_role_mapping: '{"maos-admins" = ["admin"]}',
            ingress_host: 'maos.example.com',
            ingress_tls_secret: 'maos-tls',
          },
          check: (config) => {
            assert.equal(config.auth.mode, 'oidc');
            assert.equal(config.auth.oidc.issuer, 'https://idp.example.com/realms/main');
            assert.equal(config.auth.oidc.console.clientId, 'maos-console');
            assert.equal(config.auth.oidc.console.tokenEndpointOrigin, 'https://login.example.net');
            assert.deepEqual(config.auth.oidc.roleMapping, { 'maos-admins': ['admin'] });
          },
        },
      ];
    for (const { vars, check } of cases) {
      const values = evaluateModuleValues(vars);
      const { manifests } = renderChart(CHART, values);
      for (const { file, doc } of manifests) assertValidManifest(doc, file);
      const byKind = groupByKind(manifests.map((m) => m.doc));
      const dir = mkdtempSync(join(tmpdir(), 'maos-tf-config-'));
      try {
        const configPath = join(dir, 'config.yaml');
        writeFileSync(configPath, String(at(one(byKind, 'ConfigMap'), 'data')['config.yaml']));
        const env = Object.fromEntries(
          at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.env').map(
            (e: { name: string; value: string }) => [e.name, e.value],
          ),
        );
        const config = loadConfig({
          configPath,
          env: { ...env, MAOS_DATA_DIR: dir, MAOS_STORE__URL: 'postgres://maos:pw@db:5432/maos' },
        });
        assertConfigUsable(config);
        check(config);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
