// The chart's migration steps run as the kubelet runs them (without a cluster): the SQLite init
// container and the PostgreSQL pre-install/pre-upgrade Job start `maos migrate` with the container's
// environment (env, envFrom, secretKeyRef) and volumes, so they must load the configuration the server
// loads. A secret the config needs (a provider's API key) given through extraEnv or existingSecret,
// beside the provider in `config`, must not stop them with CONFIG_INVALID.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { renderChart } from '../fixtures/helm-chart.ts';
import { at, CHART, type Doc, groupByKind, one } from '../fixtures/helm-manifests.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A provider whose API key must come from the environment (the chart refuses it in config). */
const OPENAI_CONFIG = { providers: { openai: { type: 'openai', model: 'gpt-4o' } } };
const KEY_FROM_SECRET = {
  name: 'MAOS_PROVIDERS__OPENAI__API_KEY',
  valueFrom: { secretKeyRef: { name: 'llm-keys', key: 'openai' } },
};

type Secrets = Record<string, Record<string, string>>;

/**
 * Runs `node bin/maos.js <args>` (or the `command` given) of `container` as the kubelet would: envFrom Secrets, then env (plain
 * values and secretKeyRef), the ConfigMap, Secret and emptyDir/PVC volumes it mounts as directories
 * of `dir`, and every path under a mount point mapped to that directory.
 */
function runContainer(
  container: Doc,
  pod: Doc,
  manifests: Doc[],
  secrets: Secrets,
  dir: string,
): { status: number | null; stdout: string; stderr: string } {
  const allSecrets: Secrets = { ...secrets };
  for (const doc of manifests.filter((d) => d.kind === 'Secret')) {
    allSecrets[at(doc, 'metadata.name')] = { ...(doc.stringData as Record<string, string>) };
  }
  const mounts = new Map<string, string>();
  for (const mount of (container.volumeMounts ?? []) as Doc[]) {
    const local = join(dir, String(mount.name));
    mkdirSync(local, { recursive: true });
    mounts.set(String(mount.mountPath), local);
    const volume = (pod.volumes as Doc[]).find((v) => v.name === mount.name) as Doc;
    assert.ok(volume, `the pod has the volume ${mount.name}`);
    const configMap = at(volume, 'configMap.name');
    const secret = at(volume, 'secret.secretName');
    const files: Record<string, string> = configMap
      ? at(
          manifests.find((d) => d.kind === 'ConfigMap' && at(d, 'metadata.name') === configMap) ??
            assert.fail(`no ConfigMap ${configMap} in the release`),
          'data',
        )
      : secret
        ? (allSecrets[secret] ?? assert.fail(`no Secret ${secret}`))
        : {};
    for (const [name, text] of Object.entries(files)) writeFileSync(join(local, name), text);
  }
  // A path under a mount point, also as a `sqlite:` URL: this machine's directory of that volume.
  const toLocal = (value: string) => {
    const scheme = value.startsWith('sqlite:') ? 'sqlite:' : '';
    const path = value.slice(scheme.length);
    for (const [mountPath, local] of mounts) {
      if (path === mountPath || path.startsWith(`${mountPath}/`))
        return scheme + local + path.slice(mountPath.length);
    }
    return value;
  };
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir };
  for (const from of (container.envFrom ?? []) as Doc[]) {
    const secret = allSecrets[at(from, 'secretRef.name')];
    assert.ok(secret, `envFrom names the Secret ${at(from, 'secretRef.name')}`);
    for (const [name, value] of Object.entries(secret)) env[name] = toLocal(value);
  }
  for (const variable of (container.env ?? []) as Doc[]) {
    const ref = at(variable, 'valueFrom.secretKeyRef');
    const value = ref ? allSecrets[ref.name]?.[ref.key] : at(variable, 'value');
    assert.ok(value !== undefined, `${variable.name}: the kubelet would refuse to start the container`);
    env[String(variable.name)] = toLocal(String(value));
  }
  // The image's entrypoint runs `node bin/maos.js <args>`; a container's `command` replaces it
  // (`node -e <script>`: node is the image's one program).
  const command = (container.command ?? ['node', 'bin/maos.js']) as string[];
  assert.equal(command[0], 'node', 'the image runs node');
  const result = spawnSync(process.execPath, [...command.slice(1), ...(container.args as string[])], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("the chart's migration steps load the server's configuration", () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-chart-migrate-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('SQLite init container: a secret the config needs, from extraEnv (secretKeyRef)', () => {
    const { manifests } = renderChart(CHART, { config: OPENAI_CONFIG, extraEnv: [KEY_FROM_SECRET] });
    const docs = manifests.map((m) => m.doc);
    const pod = at(one(groupByKind(docs), 'Deployment'), 'spec.template.spec');
    const init = pod.initContainers[0];
    const work = join(dir, 'sqlite');
    const result = runContainer(init, pod, docs, { 'llm-keys': { openai: 'sk-test' } }, work);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /applied/);
  });

  describe('SQLite mode with existingSecret holding a PostgreSQL URL', () => {
    let database: TestDatabase | undefined;
    before(async () => {
      database = await createTestDatabase({ empty: true });
    });
    after(async () => {
      await database?.drop();
    });

    /** The pod's init containers in order, as the kubelet runs them: up to the first that fails. */
    const startPod = (secrets: Secrets, name: string, values: Doc = {}) => {
      const docs = renderChart(CHART, { existingSecret: 'maos-env', ...values }).manifests.map((m) => m.doc);
      const deployment = one(groupByKind(docs), 'Deployment');
      assert.equal(at(deployment, 'spec.strategy.type'), 'Recreate', 'shaped for SQLite');
      const pod = at(deployment, 'spec.template.spec');
      const ran: { name: string; status: number | null; stderr: string }[] = [];
      for (const init of pod.initContainers as Doc[]) {
        const result = runContainer(init, pod, docs, secrets, join(dir, name));
        ran.push({ name: String(init.name), status: result.status, stderr: result.stderr });
        if (result.status !== 0) break;
      }
      return ran;
    };

    test('the pod stops in its first init container, naming the key, before anything runs on that database', async () => {
      const url = database?.url as string;
      const ran = startPod({ 'maos-env': { MAOS_STORE__URL: url } }, 'sqlite-pg-url');
      const failed = ran.find((step) => step.status !== 0);
      assert.ok(
        failed,
        `every init container passed (${ran.map((s) => s.name).join(', ')}): the server would run on PostgreSQL in a pod shaped for SQLite`,
      );
      assert.equal(failed.name, ran[0]?.name, 'the first init container');
      assert.match(
        failed.stderr,
        /MAOS_STORE__URL in existingSecret maos-env gives a database URL other than a sqlite: path \(not shown\), but database\.mode is sqlite: .*Set database\.mode=postgres to run on it/,
      );
      assert.ok(!failed.stderr.includes(url), 'the URL is not shown');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const tables = await client.query(
          'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = current_schema()',
        );
        assert.equal(tables.rows[0].n, 0, 'nothing was migrated on the PostgreSQL database');
      } finally {
        await client.end();
      }
    });

    test('a Secret without a database URL, or with a sqlite: path, starts as before', () => {
      for (const [name, secret] of [
        ['sqlite-no-url', { MAOS_LOG_LEVEL: 'debug' }],
        ['sqlite-path', { MAOS_STORE__URL: 'sqlite:/data/other.db' }],
      ] as const) {
        const ran = startPod({ 'maos-env': { ...secret } }, name);
        assert.deepEqual(
          ran.map((step) => [step.name, step.status]),
          [
            ['check-store', 0],
            ['migrate', 0],
          ],
          ran.map((step) => step.stderr).join('\n'),
        );
      }
    });
    // The secret-file convention: the URL in a file of a mounted Secret, named by MAOS_STORE__URL_FILE
    // (in existingSecret or extraEnv). The server reads the file: a sqlite: path there is SQLite.
    test('a database URL file (MAOS_STORE__URL_FILE) is read as the server reads it', async () => {
      const files = {
        extraVolumes: [{ name: 'files', secret: { secretName: 'maos-files' } }],
        extraVolumeMounts: [{ name: 'files', mountPath: '/run/secrets/maos', readOnly: true }],
      };
      const sqliteFile = (name: string) => `sqlite:${join(dir, name, 'data', 'other.db')}\n`;
      const inSecret = startPod(
        {
          'maos-env': { MAOS_STORE__URL_FILE: '/run/secrets/maos/url' },
          'maos-files': { url: sqliteFile('sqlite-url-file') },
        },
        'sqlite-url-file',
        files,
      );
      assert.deepEqual(
        inSecret.map((step) => [step.name, step.status]),
        [
          ['check-store', 0],
          ['migrate', 0],
        ],
        inSecret.map((step) => step.stderr).join('\n'),
      );
      assert.ok(existsSync(join(dir, 'sqlite-url-file', 'data', 'other.db')), 'migrated the file it names');
      // From extraEnv, beside the chart's own Secret: checked in the pod too.
      const docs = renderChart(CHART, {
        ...files,
        extraEnv: [{ name: 'MAOS_STORE__URL_FILE', value: '/run/secrets/maos/url' }],
      }).manifests.map((m) => m.doc);
      const pod = at(one(groupByKind(docs), 'Deployment'), 'spec.template.spec');
      assert.deepEqual(
        (pod.initContainers as Doc[]).map((c) => c.name),
        ['check-store', 'migrate'],
      );
      const local = join(dir, 'sqlite-url-file-env');
      const extra = runContainer(
        pod.initContainers[0],
        pod,
        docs,
        { 'maos-files': { url: sqliteFile('x') } },
        local,
      );
      assert.equal(extra.status, 0, extra.stderr);
      // A PostgreSQL URL in the file: stopped before anything runs on it, the URL not shown.
      const url = database?.url as string;
      const ran = startPod(
        { 'maos-env': { MAOS_STORE__URL_FILE: '/run/secrets/maos/url' }, 'maos-files': { url: `${url}\n` } },
        'pg-url-file',
        files,
      );
      assert.deepEqual(
        ran.map((step) => [step.name, step.status]),
        [['check-store', 1]],
      );
      assert.match(
        ran[0]?.stderr ?? '',
        /MAOS_STORE__URL_FILE in existingSecret maos-env gives a database URL other than a sqlite: path \(not shown\), but database\.mode is sqlite/,
      );
      assert.ok(!ran[0]?.stderr.includes(url), 'the URL is not shown');
    });
  });

  describe('PostgreSQL hook Job', () => {
    let database: TestDatabase | undefined;
    before(async () => {
      database = await createTestDatabase({ empty: true });
    });
    after(async () => {
      await database?.drop();
    });

    const runJob = (values: Doc, secrets: Secrets, name: string) => {
      const docs = renderChart(CHART, values).manifests.map((m) => m.doc);
      const pod = at(one(groupByKind(docs), 'Job'), 'spec.template.spec');
      return runContainer(pod.containers[0], pod, docs, secrets, join(dir, name));
    };

    test('existingSecret holding the database URL and the API key of a provider in config', () => {
      const url = database?.url as string;
      const result = runJob(
        { database: { mode: 'postgres' }, existingSecret: 'maos-env', config: OPENAI_CONFIG },
        { 'maos-env': { MAOS_STORE__URL: url, MAOS_PROVIDERS__OPENAI__API_KEY: 'sk-test' } },
        'existing-secret',
      );
      assert.equal(result.status, 0, result.stderr);
    });

    test('the chart Secret with the database URL and the API key (secretEnv)', () => {
      const url = database?.url as string;
      const result = runJob(
        {
          database: { mode: 'postgres', postgres: { url } },
          config: OPENAI_CONFIG,
          secretEnv: { MAOS_PROVIDERS__OPENAI__API_KEY: 'sk-test' },
        },
        {},
        'secret-env',
      );
      assert.equal(result.status, 0, result.stderr);
    });

    test('the chart Secret with the database URL, the API key from extraEnv (secretKeyRef)', () => {
      const url = database?.url as string;
      const result = runJob(
        {
          database: { mode: 'postgres', postgres: { url } },
          config: OPENAI_CONFIG,
          extraEnv: [KEY_FROM_SECRET],
        },
        { 'llm-keys': { openai: 'sk-test' } },
        'chart-secret',
      );
      assert.equal(result.status, 0, result.stderr);
    });
  });
});
