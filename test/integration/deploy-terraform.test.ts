// The Terraform module and example parse as HCL (HashiCorp's parser, compiled to WebAssembly), every
// variable is typed and documented, every `var.`/`local.` reference is declared, the example passes
// only inputs the module has (and all it requires), the chart values the module sets exist, and a
// variable limited to a list of values allows exactly the chart schema's enum for the value it feeds.
// Where a `terraform` binary is installed, it evaluates the module's chart values (no providers or
// cluster needed), helm (where installed) accepts them under values.schema.json, and the chart renders
// them into a configuration MAOS accepts. (`terraform validate` needs the providers: not run here.)
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
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
import { installedHelms } from '../../scripts/install-helm.ts';
import { loadConfig } from '../../src/config/load.ts';
import { SECRET_KEY_PATTERN } from '../../src/config/schema.ts';
import { assertConfigUsable } from '../../src/security/config-preflight.ts';
import { renderChart } from '../fixtures/helm-chart.ts';
import {
  assertValidManifest,
  at,
  CHART,
  type Doc,
  groupByKind,
  one,
  serverConfigMap,
} from '../fixtures/helm-manifests.ts';
import { createSelfSignedCert } from '../fixtures/tls-cert.ts';

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

  test('module: a variable that allows a fixed list of values allows exactly the chart schema enum', async () => {
    const { merged } = await parseDir(MODULE);
    const localsBlock = merged.locals?.find((block) => 'values' in block) as Block;
    // Where each variable lands in the chart values: a leaf that is exactly `${var.NAME}`.
    const fedBy = new Map<string, string[]>();
    const walk = (node: unknown, path: string[]) => {
      if (typeof node === 'string') {
        const name = /^\$\{var\.([a-z_]+)\}$/.exec(node)?.[1];
        if (name) fedBy.set(name, path);
      } else if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
        for (const [key, child] of Object.entries(node)) walk(child, [...path, key]);
      }
    };
    walk(localsBlock.values, []);
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    let compared = 0;
    for (const [name, [block]] of Object.entries(merged.variable ?? {})) {
      const condition = JSON.stringify(block?.validation ?? '');
      const allowed = /contains\(\[([^\]]*)\], var\.([a-z_]+)\)/.exec(condition.replaceAll('\\"', '"'));
      if (!allowed || allowed[2] !== name) continue;
      const path = fedBy.get(name);
      assert.ok(path, `var.${name} feeds a chart value`);
      const node = path.reduce(
        (at: Doc | undefined, key) => (at?.properties as Doc | undefined)?.[key] as Doc,
        schema,
      );
      assert.ok(Array.isArray(node?.enum), `the chart schema has an enum for ${path.join('.')}`);
      const values = [...(allowed[1] as string).matchAll(/"([^"]*)"/g)].map((m) => m[1]).sort();
      assert.deepEqual(values, [...(node.enum as string[])].sort(), `var.${name} against ${path.join('.')}`);
      compared++;
    }
    assert.ok(compared >= 2, 'database_mode and auth_mode are compared');
  });

  test("module: var.config names secrets by the server's pattern (SECRET_KEY_PATTERN), not a copy that drifts", () => {
    const text = readFileSync(join(MODULE, 'variables.tf'), 'utf8');
    // In the key check as it is; in the URL-query check with Azure's `api-key` beside `api_key`.
    assert.ok(text.includes(`regex("(?i)${SECRET_KEY_PATTERN.source}", match[0])`), 'the key check');
    assert.ok(
      text.includes(SECRET_KEY_PATTERN.source.replace('api_key|', 'api_key|api-key|')),
      'the query check',
    );
  });

  test('module: audit_checkpoints_persistence allows the access modes and sizes the chart schema allows', async () => {
    const { merged } = await parseDir(MODULE);
    const block = merged.variable?.audit_checkpoints_persistence?.[0];
    assert.ok(block, 'module has var.audit_checkpoints_persistence');
    const conditions = JSON.stringify(block.validation ?? '').replaceAll('\\"', '"');
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const chart = schema.properties.auditCheckpoints.properties.persistence.properties;
    const modes = /contains\(\[([^\]]*)\], mode\)/.exec(conditions)?.[1] ?? '';
    assert.deepEqual(
      [...modes.matchAll(/"([^"]*)"/g)].map((m) => m[1]).sort(),
      [...chart.accessModes.items.enum].sort(),
    );
    // The size pattern, as HCL writes it (a backslash doubled in the string).
    const size = /regex\("((?:[^"\\]|\\.)*)", var\.audit_checkpoints_persistence\.size\)/.exec(
      JSON.parse(JSON.stringify(block.validation))
        .map((v: Block) => v.condition)
        .join('\n'),
    )?.[1];
    assert.equal(size?.replaceAll('\\\\', '\\'), chart.size.pattern);
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

type TerraformRun = SpawnSyncReturns<string>;

/**
 * Runs `use` in a root module of its own (a temporary directory, removed after) holding `mainTf`
 * when given and the module's variables.tf, once `terraform init` there has passed: no providers,
 * no resources, so no download and no cluster, and local state. `use` gets terraform in that
 * directory (no colours, no prompts).
 */
function inRootModule<T>(
  prefix: string,
  mainTf: string | undefined,
  use: (terraform: (args: string[]) => TerraformRun) => T,
): T {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    if (mainTf !== undefined) writeFileSync(join(dir, 'main.tf'), mainTf);
    copyFileSync(join(MODULE, 'variables.tf'), join(dir, 'variables.tf'));
    const env = { ...process.env, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1', TF_INPUT: '0' };
    const terraform = (args: string[]) =>
      spawnSync('terraform', [...args, '-no-color'], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    assertSucceeded(terraform(['init', '-backend=false']), 'init');
    return use(terraform);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertSucceeded(run: TerraformRun, command: string): void {
  assert.equal(run.status, 0, `terraform ${command}:\n${run.stdout}${run.stderr}`);
}

/** `vars` as terraform's `-var name=value` arguments. */
function varArgs(vars: Record<string, string>): string[] {
  return Object.entries(vars).flatMap(([k, v]) => ['-var', `${k}=${v}`]);
}

/** The module's top-level locals block. */
function moduleLocals(): string {
  const locals = /^locals \{\n[\s\S]*?\n\}\n/m.exec(readFileSync(join(MODULE, 'main.tf'), 'utf8'));
  assert.ok(locals, 'main.tf has a top-level locals block');
  return locals[0];
}

/** A plan's exit status and output, one space for every run of white space. */
function planIn(terraform: (args: string[]) => TerraformRun, vars: Record<string, string>) {
  const plan = terraform(['plan', ...varArgs(vars)]);
  return { status: plan.status, output: `${plan.stdout}${plan.stderr}`.replace(/\s+/g, ' ') };
}

/**
 * The chart values the module hands to helm_release, as terraform computes them for `vars`: the
 * module's locals and variables in a root module of their own, applied.
 */
function evaluateModuleValues(vars: Record<string, string>): Doc & { serviceUrl: string } {
  // The module's service_url output too (it reads only locals and variables).
  const serviceUrl = /^output "service_url" \{\n[\s\S]*?\n\}\n/m.exec(
    readFileSync(join(MODULE, 'outputs.tf'), 'utf8'),
  );
  assert.ok(serviceUrl, 'outputs.tf has a service_url output');
  const main = `${moduleLocals()}\noutput "values" {\n  value = local.values\n}\n${serviceUrl[0]}`;
  return inRootModule('maos-tf-', main, (terraform) => {
    assertSucceeded(terraform(['apply', '-auto-approve', ...varArgs(vars)]), 'apply');
    const read = terraform(['output', '-json']);
    assertSucceeded(read, 'output');
    const outputs = JSON.parse(read.stdout);
    return { ...(outputs.values.value as Doc), serviceUrl: outputs.service_url.value as string };
  });
}

/**
 * `terraform apply` output of the module's `check` blocks with its variables (no providers, no
 * resources): the warnings a plan or apply of the module prints for `vars`.
 */
function moduleCheckWarnings(vars: Record<string, string>): string {
  const main = readFileSync(join(MODULE, 'main.tf'), 'utf8');
  const checks = [...main.matchAll(/^check "[a-z_]+" \{\n[\s\S]*?\n\}\n/gm)].map((m) => m[0]);
  assert.ok(checks.length > 0, 'main.tf has check blocks');
  return inRootModule('maos-tf-check-', checks.join('\n'), (terraform) => {
    const apply = terraform(['apply', '-auto-approve', ...varArgs(vars)]);
    assertSucceeded(apply, 'apply');
    // Terraform wraps the message: one space for every run of white space.
    return `${apply.stdout}${apply.stderr}`
      .split('\n')
      .filter((line) => !/CLI configuration/.test(line))
      .join('\n')
      .replace(/\s+/g, ' ');
  });
}

/** `terraform plan` of the module's variables alone with `vars`: its exit status and output. */
function planModuleVariables(vars: Record<string, string>): { status: number | null; output: string } {
  return inRootModule('maos-tf-vars-', undefined, (terraform) => planIn(terraform, vars));
}

/**
 * `terraform plan` of the module's locals and of its outputs that read only locals and variables,
 * with `vars` (no providers, no resources): fails as a plan of the module does on the preconditions
 * of those outputs, which check the inputs before anything is created.
 */
function planModuleOutputs(vars: Record<string, string>): { status: number | null; output: string } {
  const outputs = [
    ...readFileSync(join(MODULE, 'outputs.tf'), 'utf8').matchAll(/^output "[a-z_]+" \{\n[\s\S]*?\n\}\n/gm),
  ]
    .map((m) => m[0])
    .filter((block) => !/\b(resource|data|helm_release|kubernetes_[a-z0-9_]+)\./.test(block));
  assert.ok(
    outputs.some((block) => block.includes('precondition')),
    'an output that reads only inputs has a precondition',
  );
  const main = `${moduleLocals()}\n${outputs.join('\n')}`;
  return inRootModule('maos-tf-outputs-', main, (terraform) => planIn(terraform, vars));
}

describe('Terraform module evaluated by terraform', () => {
  test('audit_checkpoints_persistence: a size or access mode the chart schema refuses fails the plan', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const refused: Array<[string, RegExp]> = [
      ['{enabled = true, size = "1GB"}', /size must be a Kubernetes quantity/],
      ['{enabled = true, access_modes = ["ReadWrite"]}', /access_modes must list one or more of/],
      ['{enabled = true, access_modes = []}', /access_modes must list one or more of/],
    ];
    for (const [value, message] of refused) {
      const { status, output } = planModuleVariables({ audit_checkpoints_persistence: value });
      assert.notEqual(status, 0, value);
      assert.match(output, message, value);
    }
    const accepted = planModuleVariables({
      audit_checkpoints_persistence: '{enabled = true, size = "500Mi", access_modes = ["ReadWriteOnce"]}',
    });
    assert.equal(accepted.status, 0, accepted.output);
  });

  test('replicas or autoscaling values the chart refuses fail the plan, not the apply', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const autoscaling = (fields: string) =>
      `{enabled = true, min = 2, max = 10, cpu_percent = 70, ${fields}}`;
    const refused: Array<[Record<string, string>, RegExp]> = [
      [{ replicas: '-1' }, /replicas must be a whole number, 0 or more/],
      [{ replicas: '1.5' }, /replicas must be a whole number, 0 or more/],
      [
        { autoscaling: autoscaling('min = 0') },
        /autoscaling\.min, max and cpu_percent must be whole numbers, 1 or more/,
      ],
      [
        { autoscaling: autoscaling('max = 2.5') },
        /autoscaling\.min, max and cpu_percent must be whole numbers, 1 or more/,
      ],
      [
        { autoscaling: autoscaling('cpu_percent = 0') },
        /autoscaling\.min, max and cpu_percent must be whole numbers, 1 or more/,
      ],
      [{ autoscaling: autoscaling('min = 11') }, /autoscaling\.min is above autoscaling\.max/],
    ];
    for (const [vars, message] of refused) {
      const { status, output } = planModuleVariables(vars);
      assert.notEqual(status, 0, JSON.stringify(vars));
      assert.match(output, message, JSON.stringify(vars));
    }
    const accepted: Array<Record<string, string>> = [
      { replicas: '0' },
      { replicas: '3' },
      { autoscaling: autoscaling('min = 10') },
      // Off, the chart renders no HPA and does not compare them.
      { autoscaling: '{enabled = false, min = 11, max = 10, cpu_percent = 70}' },
    ];
    for (const vars of accepted) {
      const { status, output } = planModuleVariables(vars);
      assert.equal(status, 0, `${JSON.stringify(vars)}: ${output}`);
    }
    // The chart schema's bounds, which these follow.
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')).properties;
    assert.equal(schema.replicaCount.type, 'integer');
    assert.equal(schema.replicaCount.minimum, 0);
    for (const key of ['minReplicas', 'maxReplicas', 'targetCPUUtilizationPercentage']) {
      assert.equal(schema.autoscaling.properties[key].type, 'integer', key);
      assert.equal(schema.autoscaling.properties[key].minimum, 1, key);
    }
  });

  test('tls_secret and ingress_tls_secret must name a Secret: an empty name fails the plan', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    // tls_secret = "" rendered plain HTTP (the chart's empty tls.secretName) while service_url said https.
    for (const [name, value] of [
      ['tls_secret', ''],
      ['tls_secret', 'Maos_TLS'],
      ['ingress_tls_secret', ''],
    ] as const) {
      const { status, output } = planModuleVariables({ ingress_host: 'maos.example.com', [name]: value });
      assert.notEqual(status, 0, `${name} = "${value}"`);
      assert.match(
        output,
        new RegExp(`${name} must be the name of a kubernetes\\.io/tls Secret .* or null`),
        output,
      );
    }
    const accepted = planModuleVariables({
      tls_secret: 'maos-tls',
      ingress_tls_secret: 'maos.example.com-tls',
    });
    assert.equal(accepted.status, 0, accepted.output);
  });

  test('config holding a secret fails the plan, as the chart refuses it', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    // Each as HCL for -var, and as the chart value it becomes (the chart refuses it too, at apply).
    const refused: Array<[string, Doc, RegExp]> = [
      ['{audit = {signingKey = "pem"}}', { audit: { signingKey: 'pem' } }, /config holds a secret/],
      [
        '{providers = {openai = {type = "openai", apiKey = "sk-1"}}}',
        { providers: { openai: { type: 'openai', apiKey: 'sk-1' } } },
        /config holds a secret/,
      ],
      ['{secrets = {kekRing = "k1:abc"}}', { secrets: { kekRing: 'k1:abc' } }, /config holds a secret/],
      [
        '{providers = {gw = {headers = {Authorization = "Bearer t"}}}}',
        { providers: { gw: { headers: { Authorization: 'Bearer t' } } } },
        /config holds a provider's headers or a runner's env/,
      ],
      [
        '{runners = {npm = {command = ["npm"], env = {NPM_TOKEN = "t"}}}}',
        { runners: { npm: { command: ['npm'], env: { NPM_TOKEN: 't' } } } },
        /config holds a provider's headers or a runner's env/,
      ],
      [
        '{egress = {proxy = {url = "http://maos:pw@proxy.corp:3128"}}}',
        { egress: { proxy: { url: 'http://maos:pw@proxy.corp:3128' } } },
        /config holds a URL with a password/,
      ],
      [
        '{egress = {proxy = {url = "http://:pw@proxy.corp:3128"}}}',
        { egress: { proxy: { url: 'http://:pw@proxy.corp:3128' } } },
        /config holds a URL with a password/,
      ],
      [
        '{egress = {proxy = {url = "http://me@corp:pw@proxy.corp:3128"}}}',
        { egress: { proxy: { url: 'http://me@corp:pw@proxy.corp:3128' } } },
        /config holds a URL with a password/,
      ],
      [
        '{providers = {gw = {baseURL = "https://gw.example/v1?key=AIza-test"}}}',
        { providers: { gw: { baseURL: 'https://gw.example/v1?key=AIza-test' } } },
        /config holds a URL with a secret in its query/,
      ],
      [
        '{providers = {az = {baseURL = "https://az.example/openai?api-version=1&API-KEY=abc"}}}',
        { providers: { az: { baseURL: 'https://az.example/openai?api-version=1&API-KEY=abc' } } },
        /config holds a URL with a secret in its query/,
      ],
    ];
    for (const [hcl, config, message] of refused) {
      const { status, output } = planModuleVariables({ config: hcl });
      assert.notEqual(status, 0, hcl);
      assert.match(output, message, hcl);
      assert.throws(() => renderChart(CHART, { config }), /ConfigMap/, `the chart refuses ${hcl} too`);
    }
    const accepted = planModuleVariables({
      config:
        '{audit = {signingKey_FILE = "/run/secrets/maos/audit-key"}, ' +
        'llm = {budgets = {default = {maxTokens = 1000}}, approval = {tenants = {"token-team" = "required"}}}, ' +
        'runners = {npm = {command = ["npm", "test"], env = {NPM_TOKEN_FILE = "/run/secrets/maos/npm"}}}, ' +
        'egress = {proxy = {url = "http://proxy.corp:3128"}}, webhooks = {secretRotationGraceSeconds = 600}, ' +
        'providers = {az = {baseURL = "https://az.example/openai?api-version=2024-06-01&deployment=d"}}}',
    });
    assert.equal(accepted.status, 0, accepted.output);
  });

  test('a *_FILE key of config or secret_env that is not an absolute path fails the plan, as the chart refuses it', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const secret = 'sk-live-0123456789abcdef';
    const refused: Array<[Record<string, string>, RegExp]> = [
      [
        { config: `{providers = {openai = {type = "openai", apiKey_FILE = "${secret}"}}}` },
        /config holds a \*_FILE key whose value is not an absolute path/,
      ],
      [
        { config: `{providers = {gw = {headers = {Authorization_FILE = "Bearer ${secret}"}}}}` },
        /config holds a \*_FILE key whose value is not an absolute path/,
      ],
      [{ config: '{audit = {signingKey_FILE = "audit-key"}}' }, /config holds a \*_FILE key whose value/],
      [
        { config: '{audit = {checkpointIntervalSeconds_FILE = 300}}' },
        /config holds a \*_FILE key whose value/,
      ],
      [
        { secret_env: `{MAOS_PROVIDERS__OPENAI__API_KEY_FILE = "${secret}"}` },
        /secret_env holds a MAOS_\*_FILE variable whose value is not an absolute path/,
      ],
    ];
    for (const [vars, message] of refused) {
      const { status, output } = planModuleVariables(vars);
      const shown = JSON.stringify(vars);
      assert.notEqual(status, 0, shown);
      assert.match(output, message, shown);
      assert.ok(!output.includes(secret), `the value is shown: ${output}`);
    }
    const accepted = planModuleVariables({
      config: '{providers = {gw = {headers = {Authorization_FILE = "/run/secrets/maos/gw-auth"}}}}',
      secret_env:
        '{MAOS_AUDIT__SIGNING_KEY_FILE = "/run/secrets/maos/audit-key", MAOS_AUDIT__SIGNING_KEY_X = "k"}',
    });
    assert.equal(accepted.status, 0, accepted.output);
  });

  test("extra_values setting secretEnv or database.postgres.url (ignored next to the module's Secret) fails the plan", {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    // The module hands the chart its own Secret (existingSecret): the chart ignores these two.
    for (const values of [
      'secretEnv: {MAOS_AUDIT__SIGNING_KEY: pem}',
      'database: {postgres: {url: "postgres://m:pw@db/m"}}',
    ]) {
      const { status, output } = planModuleVariables({ extra_values: JSON.stringify([values]) });
      assert.notEqual(status, 0, values);
      assert.match(output, /extra_values must not set secretEnv or database\.postgres\.url/, values);
    }
    const labels = planModuleVariables({ extra_values: JSON.stringify(['podLabels: {team: a}']) });
    assert.equal(labels.status, 0, labels.output);
  });

  test('database_url or secret_env next to existing_secret_name (whose Secret the pods read instead) fails the plan', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const url = 'postgres://maos:pw@db:5432/maos';
    const refused = planModuleOutputs({ existing_secret_name: 'maos-env', database_url: url });
    assert.notEqual(refused.status, 0, refused.output);
    assert.match(
      refused.output,
      /database_url is set together with existing_secret_name, whose Secret the pods read instead of the module's: the URL would be ignored/,
    );
    assert.ok(!refused.output.includes('maos:pw'), 'the URL is not shown');
    // Likewise secret_env, which the module writes only into its own Secret.
    const env = planModuleOutputs({
      existing_secret_name: 'maos-env',
      secret_env: '{MAOS_AUDIT__SIGNING_KEY = "pem-s3cret"}',
    });
    assert.notEqual(env.status, 0, env.output);
    assert.match(
      env.output,
      /secret_env is set together with existing_secret_name, .*its variables would be ignored/,
    );
    assert.ok(!env.output.includes('pem-s3cret'), 'the value is not shown');
    const alone: Array<Record<string, string>> = [
      { existing_secret_name: 'maos-env' },
      { database_url: url },
    ];
    for (const vars of alone) {
      const accepted = planModuleOutputs(vars);
      assert.equal(accepted.status, 0, `${JSON.stringify(Object.keys(vars))}: ${accepted.output}`);
    }
  });

  test('a database URL in sqlite mode (the one pod would run on it, the chart cannot see it) fails the plan', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const url = 'postgres://maos:pw@db:5432/maos';
    const refused: Array<[Record<string, string>, RegExp]> = [
      [
        { database_mode: 'sqlite', database_url: url },
        /database_url is set but database_mode is sqlite: the one pod would run on that database while the chart renders SQLite mode/,
      ],
      [
        { database_mode: 'sqlite', secret_env: `{MAOS_STORE__URL = "${url}"}` },
        /secret_env holds MAOS_STORE__URL \(other than a sqlite: path\) or, in postgres mode, MAOS_STORE__URL_FILE: the database URL is database_url/,
      ],
      [
        { database_url: url, secret_env: '{MAOS_STORE__URL_FILE = "/run/secrets/maos/url"}' },
        /secret_env holds MAOS_STORE__URL .* or, in postgres mode, MAOS_STORE__URL_FILE/,
      ],
      // postgres mode: database_url is written over it, without a word.
      [
        { database_url: url, secret_env: '{MAOS_STORE__URL = "postgres://maos:other@db2/maos"}' },
        /secret_env holds MAOS_STORE__URL .* in postgres mode database_url is written over it/,
      ],
    ];
    for (const [vars, message] of refused) {
      const { status, output } = planModuleOutputs(vars);
      assert.notEqual(status, 0, JSON.stringify(vars));
      assert.match(output, message, JSON.stringify(vars));
      assert.ok(!output.includes(':pw@'), `the URL is shown: ${output}`);
    }
    const accepted: Array<Record<string, string>> = [
      { database_mode: 'sqlite' },
      { database_mode: 'sqlite', secret_env: '{MAOS_STORE__URL = "sqlite:/data/other.db"}' },
      // A file the plan cannot read (it may hold a sqlite: path): the pod's check-store reads it.
      { database_mode: 'sqlite', secret_env: '{MAOS_STORE__URL_FILE = "/run/secrets/maos/url"}' },
      { database_url: url, secret_env: '{MAOS_AUDIT__SIGNING_KEY = "pem"}' },
    ];
    for (const vars of accepted) {
      const { status, output } = planModuleOutputs(vars);
      assert.equal(status, 0, `${JSON.stringify(vars)}: ${output}`);
    }
    // The module always hands the chart its Secret as existingSecret: in sqlite mode the pod checks
    // it (the chart's check-store init container), as for any existingSecret.
    const { serviceUrl: _, ...values } = evaluateModuleValues({ database_mode: 'sqlite' });
    const pod = at(
      one(groupByKind(renderChart(CHART, values).manifests.map((m) => m.doc)), 'Deployment'),
      'spec.template.spec',
    );
    assert.equal(at(pod, 'initContainers.0.name'), 'check-store');
  });

  test('extra_values letting the migration Job run as long as the release waits for it fails the plan', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    // helm_release gives up (and rolls back, atomic) after its timeout; the Job would go on.
    const main = readFileSync(join(MODULE, 'main.tf'), 'utf8');
    const timeout = Number(/^\s*timeout\s*=\s*(\d+)$/m.exec(main)?.[1]);
    assert.match(main, /^\s*atomic\s*=\s*true$/m);
    const chartDeadline = parseYaml(readFileSync('deploy/helm/maos/values.yaml', 'utf8')).migration
      .activeDeadlineSeconds;
    assert.ok(chartDeadline < timeout, 'the chart default fits');
    const plan = (seconds: number) =>
      planModuleVariables({
        extra_values: JSON.stringify([`migration: {activeDeadlineSeconds: ${seconds}}`]),
      });
    const refused = plan(timeout);
    assert.notEqual(refused.status, 0, refused.output);
    assert.match(refused.output, /migration\.activeDeadlineSeconds to 900 or more, the release's timeout/);
    assert.ok(refused.output.includes(`to ${timeout} or more`), 'the message names the timeout');
    const accepted = plan(timeout - 1);
    assert.equal(accepted.status, 0, accepted.output);
  });

  test("postgres mode without a shared audit signing key warns, as the chart's install notes do", {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const warning = /without MAOS_AUDIT__SIGNING_KEY in secret_env: every pod signs audit checkpoints/;
    assert.match(moduleCheckWarnings({ database_url: 'postgres://maos:pw@db:5432/maos' }), warning);
    assert.match(
      moduleCheckWarnings({
        database_url: 'postgres://maos:pw@db:5432/maos',
        config: '{audit = {origin = "maos.example.com/audit"}}',
      }),
      warning,
      'another audit setting is no key',
    );
    const quiet: Array<Record<string, string>> = [
      { database_url: 'postgres://maos:pw@db:5432/maos', secret_env: '{MAOS_AUDIT__SIGNING_KEY = "pem"}' },
      { existing_secret_name: 'maos-env' },
      { database_mode: 'sqlite' },
      // A key file every pod mounts (extra_values), as the chart's values.yaml suggests.
      {
        database_url: 'postgres://maos:pw@db:5432/maos',
        config: '{audit = {signingKey_FILE = "/run/secrets/maos/audit-key"}}',
      },
      {
        database_url: 'postgres://maos:pw@db:5432/maos',
        secret_env: '{MAOS_AUDIT__SIGNING_KEY_FILE = "/run/secrets/maos/audit-key"}',
      },
    ];
    for (const vars of quiet) {
      assert.doesNotMatch(moduleCheckWarnings(vars), /Check block assertion failed/, JSON.stringify(vars));
    }
    // The example deploys the cluster with one key for every replica.
    const example = readFileSync(join(EXAMPLE, 'main.tf'), 'utf8');
    assert.match(example, /secret_env\s*=\s*\{\s*MAOS_AUDIT__SIGNING_KEY\s*=/);
  });

  test('a change to the Secret the module writes rolls the pods (they read it only at start)', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const checksumOf = (vars: Record<string, string>) => {
      const { serviceUrl: _, ...values } = evaluateModuleValues(vars);
      const annotations = at(
        one(groupByKind(renderChart(CHART, values).manifests.map((m) => m.doc)), 'Deployment'),
        'spec.template.metadata.annotations',
      );
      return annotations['checksum/secret'] as string | undefined;
    };
    const old = checksumOf({ database_url: 'postgres://maos:old@db:5432/maos' });
    const rotated = checksumOf({ database_url: 'postgres://maos:new@db:5432/maos' });
    assert.match(old ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(rotated, old, 'a rotated database password rolls the pods');
    assert.notEqual(
      checksumOf({
        database_url: 'postgres://maos:old@db:5432/maos',
        secret_env: '{MAOS_AUDIT__SIGNING_KEY = "pem"}',
      }),
      old,
      'so does a new secret_env value',
    );
    // A Secret managed elsewhere: the module cannot see it, so no checksum.
    assert.equal(checksumOf({ existing_secret_name: 'maos-env' }), undefined);
  });

  test('its chart values pass the chart schema and render into a configuration MAOS accepts (defaults, OIDC, TLS)', {
    skip: hasTerraform ? false : TERRAFORM_HINT,
    timeout: 300_000,
  }, () => {
    const cases: Array<{
      vars: Record<string, string>;
      check(config: ReturnType<typeof loadConfig>, byKind: Map<string, Doc[]>, serviceUrl: string): void;
    }> = [
      {
        vars: {},
        check: (config, _, serviceUrl) => {
          assert.equal(config.auth.mode, 'apikey');
          assert.equal(serviceUrl, 'http://maos.maos.svc.cluster.local');
        },
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
      {
        vars: { tls_secret: 'maos-tls', ingress_host: 'maos.example.com' },
        check: (config, byKind, serviceUrl) => {
          const server = at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0');
          assert.equal(server.readinessProbe.httpGet.scheme, 'HTTPS');
          // The Service port (80) speaks HTTPS: the in-cluster URL says so, with its port.
          const service = one(byKind, 'Service');
          const url = new URL(serviceUrl);
          assert.equal(url.protocol, 'https:');
          assert.equal(Number(url.port || 443), at(service, 'spec.ports.0.port'));
          assert.equal(url.hostname, `${at(service, 'metadata.name')}.maos.svc.cluster.local`);
          assert.ok(config.tls.certFile && config.tls.keyFile, 'the server serves HTTPS');
          const annotations = at(one(byKind, 'Ingress'), 'metadata.annotations');
          assert.equal(annotations['nginx.ingress.kubernetes.io/backend-protocol'], 'HTTPS');
        },
      },
      {
        vars: {
          database_url: 'postgres://maos:pw@db:5432/maos',
          audit_checkpoints_persistence: '{enabled = true, storage_class = "nfs", size = "2Gi"}',
        },
        check: (config, byKind) => {
          // The chart's PVC (ReadWriteMany for the two replicas), mounted where the server writes them.
          const claim = (byKind.get('PersistentVolumeClaim') ?? []).find((c) =>
            String(at(c, 'metadata.name')).endsWith('-audit-checkpoints'),
          );
          assert.ok(claim, 'the chart creates the checkpoint PVC');
          assert.equal(at(claim, 'spec.storageClassName'), 'nfs');
          assert.equal(at(claim, 'spec.resources.requests.storage'), '2Gi');
          assert.deepEqual(at(claim, 'spec.accessModes'), ['ReadWriteMany']);
          assert.equal(config.audit.checkpointDir, '/var/lib/maos/audit-checkpoints');
        },
      },
      {
        vars: { audit_checkpoints_persistence: '{enabled = true, existing_claim = "audit-ckpt"}' },
        check: (config, byKind) => {
          const volumes = at(one(byKind, 'Deployment'), 'spec.template.spec.volumes') as Doc[];
          const volume = volumes.find((v) => v.name === 'audit-checkpoints');
          assert.ok(volume, 'the pods mount the checkpoint volume');
          assert.equal(at(volume, 'persistentVolumeClaim.claimName'), 'audit-ckpt');
          assert.equal(config.audit.checkpointDir, '/var/lib/maos/audit-checkpoints');
        },
      },
    ];
    const helm = installedHelms().at(-1);
    for (const { vars, check } of cases) {
      const { serviceUrl, ...values } = evaluateModuleValues(vars);
      if (helm) {
        // helm itself checks the module's values against values.schema.json, then renders them.
        const dir = mkdtempSync(join(tmpdir(), 'maos-tf-helm-'));
        try {
          const file = join(dir, 'values.json');
          writeFileSync(file, JSON.stringify(values));
          const result = spawnSync(helm.path, ['template', 'maos', CHART, '-f', file], {
            encoding: 'utf8',
            timeout: 60_000,
            env: { ...process.env, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir },
          });
          assert.equal(
            result.status,
            0,
            `helm ${helm.version} refuses ${JSON.stringify(vars)}:\n${result.stderr}`,
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      const { manifests } = renderChart(CHART, values);
      for (const { file, doc } of manifests) assertValidManifest(doc, file);
      const byKind = groupByKind(manifests.map((m) => m.doc));
      const dir = mkdtempSync(join(tmpdir(), 'maos-tf-config-'));
      try {
        const configPath = join(dir, 'config.yaml');
        writeFileSync(configPath, String(at(serverConfigMap(byKind), 'data')['config.yaml']));
        const env = Object.fromEntries(
          at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.env').map(
            (e: { name: string; value: string }) => [e.name, e.value],
          ),
        );
        // The pod's TLS files (tls_secret) as files of the test: a self-signed pair.
        for (const [name, file] of Object.entries(env.MAOS_TLS__CERT_FILE ? createSelfSignedCert(dir) : {})) {
          env[name === 'certFile' ? 'MAOS_TLS__CERT_FILE' : 'MAOS_TLS__KEY_FILE'] = file;
        }
        const config = loadConfig({
          configPath,
          env: { ...env, MAOS_DATA_DIR: dir, MAOS_STORE__URL: 'postgres://maos:pw@db:5432/maos' },
        });
        assertConfigUsable(config);
        check(config, byKind, serviceUrl);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
