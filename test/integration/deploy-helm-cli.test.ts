// The Helm chart under the real `helm` (3 and 4, pinned official binaries that `npm test` installs with
// scripts/install-helm.ts): lint --strict, template with default and production values, values
// rejected by values.schema.json and the chart's own checks, the packaged chart, and the test
// renderer (test/fixtures/helm-chart.ts) producing exactly helm's manifests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { installedHelms } from '../../scripts/install-helm.ts';
import { configSchema } from '../../src/config/schema.ts';
import { renderChart } from '../fixtures/helm-chart.ts';
import {
  assertValidManifest,
  at,
  CHART,
  type Doc,
  documentedAlertChanges,
  ENTRA_LIKE_AUTH,
  groupByKind,
  one,
  POSTGRES,
  POSTGRES_FULL,
  renderedDashboards,
  serverConfigMap,
  shippedDashboards,
} from '../fixtures/helm-manifests.ts';

const INSTALL_HINT =
  'helm not found: run `node scripts/install-helm.ts` (npm test does) or put helm 3+ on PATH';
const PRODUCTION_VALUES = join(CHART, 'examples/values-postgres.yaml');

interface Helm {
  version: string;
  path: string;
}

/** The pinned binaries, else a helm on PATH. */
function findHelms(): Helm[] {
  const pinned = installedHelms();
  if (pinned.length > 0) return pinned;
  const onPath = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
  return onPath.status === 0 ? [{ version: onPath.stdout.trim(), path: 'helm' }] : [];
}

interface Rendered {
  /** Every manifest with the template file it came from (`# Source:` of helm's output). */
  manifests: { file: string; doc: Doc }[];
  byKind: Map<string, Doc[]>;
}

/** Splits `helm template` output into manifests, by source file. */
function parseTemplateOutput(text: string): Rendered {
  const manifests: Rendered['manifests'] = [];
  for (const chunk of text.split(/^---\s*$/m)) {
    const source = /^# Source: [^/]+\/templates\/(.+)$/m.exec(chunk);
    const doc = parseYaml(chunk, { version: '1.1' }) as Doc | null;
    if (!doc) continue;
    assert.ok(source, `a manifest without a # Source line:\n${chunk}`);
    manifests.push({ file: source[1] as string, doc });
  }
  return { manifests, byKind: groupByKind(manifests.map((m) => m.doc)) };
}

/** The rule groups of deploy/prometheus/rules (the promtool-tested files), by name. */
function shippedRuleGroups(): Doc[] {
  return readdirSync('deploy/prometheus/rules')
    .filter((f) => f.endsWith('.yml'))
    .flatMap((f) => parseYaml(readFileSync(join('deploy/prometheus/rules', f), 'utf8')).groups as Doc[])
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

/** The cluster values with HTTPS served by MAOS itself (probes, Service, Ingress and the Secret mount). */
const TLS_FULL: Doc = { ...POSTGRES_FULL, tls: { secretName: 'maos-tls' } };

const helms = findHelms();

if (helms.length === 0) {
  // Under CI the suite must really run helm: a missing binary fails instead of skipping.
  test('helm is installed', { skip: process.env.CI === 'true' ? false : INSTALL_HINT }, () => {
    assert.fail(INSTALL_HINT);
  });
}

for (const helm of helms) {
  describe(`Helm chart under helm ${helm.version}`, () => {
    let work = '';
    let env: NodeJS.ProcessEnv = {};

    before(() => {
      work = mkdtempSync(join(tmpdir(), 'maos-helm-'));
      // Keep helm's cache, config and data out of the user's home.
      env = {
        ...process.env,
        HELM_CACHE_HOME: join(work, 'cache'),
        HELM_CONFIG_HOME: join(work, 'config'),
        HELM_DATA_HOME: join(work, 'data'),
      };
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    const run = (args: string[]) => {
      const result = spawnSync(helm.path, args, { encoding: 'utf8', env, timeout: 60_000 });
      assert.ifError(result.error);
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    };
    let files = 0;
    /** Writes values to a file for `-f` (JSON is YAML). */
    const valuesFile = (values: Doc) => {
      const file = join(work, `values-${files++}.yaml`);
      writeFileSync(file, JSON.stringify(values));
      return file;
    };
    const template = (...args: string[]): Rendered => {
      const result = run(['template', 'maos', ...args]);
      assert.equal(result.status, 0, result.stderr);
      const rendered = parseTemplateOutput(result.stdout);
      for (const { file, doc } of rendered.manifests) assertValidManifest(doc, file);
      return rendered;
    };
    const assertRejected = (args: string[], message: RegExp) => {
      const result = run(['template', 'maos', CHART, ...args]);
      assert.notEqual(result.status, 0, `accepted: ${args.join(' ')}`);
      assert.match(result.stderr, message);
    };

    test('helm lint --strict passes with the default, example and cluster values', () => {
      const sets = [
        [],
        ...readdirSync(join(CHART, 'examples')).map((f) => ['-f', join(CHART, 'examples', f)]),
        ['-f', valuesFile(POSTGRES_FULL)],
        ['-f', valuesFile(TLS_FULL)],
      ];
      for (const args of sets) {
        const lint = run(['lint', CHART, '--strict', ...args]);
        assert.equal(lint.status, 0, `${args.join(' ')}\n${lint.stdout}${lint.stderr}`);
        assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
        assert.doesNotMatch(lint.stdout, /\[(WARNING|ERROR)\]/);
      }
      const bad = run(['lint', CHART, '--strict', '--set', 'replicaCount=two']);
      assert.notEqual(bad.status, 0, 'lint checks the values against values.schema.json');
    });

    test('default values: SQLite on a kept PVC, one Recreate pod migrated by an init container', () => {
      const { byKind } = template(CHART);
      assert.deepEqual([...byKind.keys()].sort(), [
        'ConfigMap',
        'Deployment',
        'NetworkPolicy',
        'PersistentVolumeClaim',
        'Secret',
        'Service',
        'ServiceAccount',
      ]);
      const deployment = one(byKind, 'Deployment');
      assert.equal(at(deployment, 'spec.replicas'), 1);
      assert.equal(at(deployment, 'spec.strategy.type'), 'Recreate');
      const pod = at(deployment, 'spec.template.spec');
      assert.deepEqual(at(pod, 'initContainers.0.args'), ['migrate']);
      const pvc = one(byKind, 'PersistentVolumeClaim');
      assert.equal(at(pvc, 'metadata.annotations')['helm.sh/resource-policy'], 'keep');
      const data = pod.volumes.find((v: Doc) => v.name === 'data');
      assert.equal(data.persistentVolumeClaim.claimName, at(pvc, 'metadata.name'));
      assert.deepEqual(Object.keys(at(one(byKind, 'Secret'), 'stringData') ?? {}), []);
      const config = parseYaml(String(at(serverConfigMap(byKind), 'data')['config.yaml']));
      assert.equal(config.auth.mode, 'apikey');
      for (const doc of [...byKind.values()].flat()) {
        assert.equal(at(doc, 'metadata.labels')['app.kubernetes.io/managed-by'], 'Helm');
      }
    });

    test('production values (cluster mode: PostgreSQL, KEDA, OIDC, TLS ingress, monitoring)', () => {
      const { byKind } = template(CHART, '-f', PRODUCTION_VALUES);
      const deployment = one(byKind, 'Deployment');
      const name = at(deployment, 'metadata.name');
      assert.equal(at(deployment, 'spec.replicas'), undefined, 'KEDA owns the replica count');
      assert.equal(at(deployment, 'spec.strategy.rollingUpdate.maxUnavailable'), 0);
      const pod = at(deployment, 'spec.template.spec');
      assert.equal(pod.initContainers, undefined);
      assert.equal(at(pod, 'containers.0.envFrom.0.secretRef.name'), 'maos-env');
      assert.ok(pod.volumes.find((v: Doc) => v.name === 'data').emptyDir, 'no state in the pods');
      assert.equal(byKind.has('Secret'), false, 'existingSecret: the chart creates no Secret');
      assert.equal(byKind.has('PersistentVolumeClaim'), false);
      assert.equal(byKind.has('HorizontalPodAutoscaler'), false, 'KEDA replaces the HPA');
      const scaled = one(byKind, 'ScaledObject');
      assert.equal(at(scaled, 'spec.scaleTargetRef.name'), name);
      assert.equal(at(scaled, 'spec.minReplicaCount'), 2);
      assert.equal(at(scaled, 'spec.maxReplicaCount'), 20);
      assert.equal(at(scaled, 'spec.triggers.0.type'), 'prometheus');
      assert.equal(at(one(byKind, 'PodDisruptionBudget'), 'spec.minAvailable'), 1);
      const job = one(byKind, 'Job');
      assert.equal(at(job, 'metadata.annotations')['helm.sh/hook'], 'pre-install,pre-upgrade');
      assert.deepEqual(at(job, 'spec.template.spec.containers.0.args'), ['migrate']);
      assert.equal(at(job, 'spec.template.spec.containers.0.envFrom.0.secretRef.name'), 'maos-env');
      const ingress = one(byKind, 'Ingress');
      assert.deepEqual(at(ingress, 'spec.tls.0'), { secretName: 'maos-tls', hosts: ['maos.example.com'] });
      assert.equal(at(ingress, 'metadata.annotations')['nginx.ingress.kubernetes.io/proxy-buffering'], 'off');
      assert.equal(at(ingress, 'spec.rules.0.http.paths.0.backend.service.name'), name);
      assert.equal(at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0.port'), 'metrics');
      const groups = [...at(one(byKind, 'PrometheusRule'), 'spec.groups')].sort((a: Doc, b: Doc) =>
        String(a.name).localeCompare(String(b.name)),
      );
      assert.deepEqual(groups, shippedRuleGroups(), 'the promtool-tested rules, unchanged');
      const egress = at(one(byKind, 'NetworkPolicy'), 'spec.egress.1.ports').map((p: Doc) => p.port);
      assert.ok(egress.includes(5432) && egress.includes(443));
      // The config file plus the chart's environment is a configuration MAOS accepts, with OIDC on.
      const file = parseYaml(String(at(serverConfigMap(byKind), 'data')['config.yaml']));
      const vars = Object.fromEntries(
        at(pod, 'containers.0.env').map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      const parsed = configSchema.safeParse({
        ...file,
        dataDir: vars.MAOS_DATA_DIR,
        host: vars.MAOS_HOST,
        port: Number(vars.MAOS_PORT),
        metrics: {
          ...(file.metrics ?? {}),
          port: Number(vars.MAOS_METRICS__PORT),
          host: vars.MAOS_METRICS__HOST,
        },
      });
      assert.ok(parsed.success, `chart config rejected: ${JSON.stringify(parsed.error?.issues)}`);
      assert.equal(parsed.data.auth.mode, 'oidc');
      assert.equal(parsed.data.auth.oidc.issuer, 'https://idp.example.com/realms/main');
      assert.equal(parsed.data.auth.oidc.audience, 'https://maos.example.com');
    });

    test('bad values are rejected before anything reaches a cluster, each with a clear message', () => {
      // values.schema.json: typos, wrong types, values outside the documented choices.
      assertRejected(['--set', 'databse.mode=postgres'], /databse/);
      assertRejected(['--set', 'replicaCount=two'], /replicaCount/);
      assertRejected(['--set', 'database.mode=mysql'], /database[./]mode/);
      assertRejected(['--set', 'auth.mode=none'], /auth[./]mode/);
      assertRejected(['--set', 'keda.trigger=cpu'], /keda[./]trigger/);
      // A number as the image tag would render `maos:%!s(int64=2)` (and 1.10 would lose its 0).
      assertRejected(['--set', 'image.tag=2'], /image[./]tag/);
      assertRejected(['-f', valuesFile({ image: { tag: 1.1 } })], /image[./]tag/);
      // KEDA at zero replicas: no API to submit work, no maos_tasks series to scale up on.
      assertRejected(
        ['-f', valuesFile({ ...POSTGRES, keda: { enabled: true, minReplicaCount: 0 } })],
        /minReplicaCount/,
      );
      // Origins the server refuses at start (they would reach the console's CSP).
      for (const origin of [
        'https://a.example;frame-src *',
        'https://*.example.net',
        'http://idp.example.net',
      ]) {
        assertRejected(
          ['--set-string', `auth.oidc.console.tokenEndpointOrigin=${origin}`],
          /tokenEndpointOrigin/,
        );
      }
      assertRejected(['--set-json', 'extraVolumeMounts=[{"name":"files"}]'], /mountPath/);
      // The API and the metrics listener on one port: a server that refuses to start.
      assertRejected(['--set', 'service.metricsPort=7070'], /service\.metricsPort \(7070\) is the API's/);
      // An Ingress without a host: no rules, and no address for the install notes to print.
      assertRejected(
        ['--set', 'ingress.enabled=true', '--set-json', 'ingress.hosts=[]'],
        /ingress[./]hosts'?:? (Array must have at least 1 items|minItems)/,
      );
      // A ServiceMonitor prometheus-operator would reject whole: timeout above the interval.
      assertRejected(
        ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.serviceMonitor.interval=5s'],
        /scrapeTimeout \(10s\) is longer than metrics\.serviceMonitor\.interval \(5s\)/,
      );
      // A budget Kubernetes cannot read.
      assertRejected(['--set-string', 'podDisruptionBudget.minAvailable=half'], /minAvailable/);
      assertRejected(['--set-string', 'podDisruptionBudget.minAvailable=150%'], /minAvailable/);
      // No metrics listener while the ServiceMonitor scrapes it.
      assertRejected(
        ['--set', 'config.metrics.enabled=false', '--set', 'metrics.serviceMonitor.enabled=true'],
        /config\.metrics\.enabled is false, so nothing serves the metrics port, yet metrics\.serviceMonitor/,
      );
      assertRejected(['--set', 'ingress.canary.weight=150'], /weight/);
      assertRejected(['--set', 'config.auth.mode=none'], /config/);
      assertRejected(
        ['--set', 'auth.mode=both', '--set', 'auth.oidc.issuer=https://idp.example.com'],
        /audience/,
      );
      // The chart's own checks: PostgreSQL without a database URL, a cluster older than supported.
      assertRejected(['--set', 'database.mode=postgres'], /database\.postgres\.url \(or existingSecret/);
      assertRejected(
        ['-f', valuesFile({ ...POSTGRES, secretEnv: { MAOS_STORE__URL: 'postgres://maos:other@db/maos' } })],
        /secretEnv\.MAOS_STORE__URL: in postgres mode the database URL is database\.postgres\.url/,
      );
      // SQLite mode with a database URL the one pod would run on (the chart's Secret, extraEnv).
      assertRejected(
        ['--set', 'secretEnv.MAOS_STORE__URL=postgres://db/maos'],
        /secretEnv\.MAOS_STORE__URL is a database URL other than a sqlite: path \(not shown\) but database\.mode is sqlite/,
      );
      assertRejected(
        ['--set', 'database.postgres.url=postgres://db/maos'],
        /database\.postgres\.url is set but database\.mode is sqlite/,
      );
      template(CHART, '--set', 'existingSecret=maos-env');
      assertRejected(['--kube-version', '1.26.0'], /kubeVersion/);
      assertRejected(['--set', 'config.store.url=postgres://maos:pw@db/maos'], /password in a ConfigMap/);
      assertRejected(['--set', 'config.metrics.port=9100'], /service\.metricsPort/);
      assertRejected(['--set', 'config.tls.certFile=/run/tls/crt'], /set tls\.secretName/);
      // Secrets in config would sit in the ConfigMap: each message names the variable to set instead.
      assertRejected(
        ['--set-string', 'config.audit.signingKey=pem'],
        /config\.audit\.signingKey is a secret .*set MAOS_AUDIT__SIGNING_KEY in secretEnv or existingSecret/,
      );
      assertRejected(
        ['--set-string', 'config.providers.openai.apiKey=sk-1'],
        /set MAOS_PROVIDERS__OPENAI__API_KEY in secretEnv/,
      );
      assertRejected(
        ['--set-string', 'config.providers.gw.headers.X-Team=t'],
        /every value of a provider's headers .*set MAOS_PROVIDERS__GW__HEADERS__X_TEAM in secretEnv/,
      );
      assertRejected(
        ['--set-string', 'config.egress.proxy.url=http://u:pw@proxy.corp:3128'],
        /config\.egress\.proxy\.url holds a password/,
      );
      assertRejected(
        ['--set-json', 'extraEnv=[{"name":"MAOS_PORT","value":"8080"}]'],
        /extraEnv MAOS_PORT is set by the chart, and a second entry would win over it: set service\.targetPort instead/,
      );
      assertRejected(
        ['--set-json', 'extraEnv=[{"name":"MAOS_PROVIDERS__OPENAI__API_KEY","value":"sk-1"}]'],
        /extraEnv MAOS_PROVIDERS__OPENAI__API_KEY holds a secret as a plain value/,
      );
      assertRejected(['--set', 'tls.secretName=Maos_TLS'], /secretName/);
      // Alert changes: a typo in an alert's name or an override's field would leave the alert as
      // shipped (the field is checked by the schema and, with it skipped, by the template).
      const rules = ['--set', 'metrics.prometheusRule.enabled=true', '--set'];
      assertRejected(
        [...rules, 'metrics.prometheusRule.disabled.MaosInstanceDwon=true'],
        /metrics\.prometheusRule\.disabled\.MaosInstanceDwon: the chart has no alert of that name \(its alerts: .*MaosInstanceDown,/,
      );
      assertRejected(
        [...rules, 'metrics.prometheusRule.overrides.MaosInstanceDwon.for=5m'],
        /metrics\.prometheusRule\.overrides\.MaosInstanceDwon: the chart has no alert of that name/,
      );
      assertRejected(
        [...rules, 'metrics.prometheusRule.overrides.MaosNotReady.severity=warning'],
        /severity/,
      );
      assertRejected(
        [
          '--skip-schema-validation',
          ...rules,
          'metrics.prometheusRule.overrides.MaosNotReady.severity=warning',
        ],
        /metrics\.prometheusRule\.overrides\.MaosNotReady\.severity: an override sets only expr, for, labels, annotations/,
      );
      assertRejected(
        [...rules, 'metrics.prometheusRule.overrides.MaosNotReady.for=5min'],
        /MaosNotReady[./]for/,
      );
      assertRejected(
        [...rules, 'metrics.prometheusRule.disabled.MaosNotReady=yes'],
        /disabled[./]MaosNotReady/,
      );
      assertRejected([...rules, 'metrics.prometheusRule.additionalRuleLabels.team-x=a'], /team-x/);
      // A runbook prefix that would not make links: no scheme (still a relative path), another scheme.
      for (const prefix of ['git.example.com/platform/maos/blob/v0.1.0/', 'javascript:alert(1)//']) {
        assertRejected([...rules, `metrics.prometheusRule.runbookUrlPrefix=${prefix}`], /runbookUrlPrefix/);
      }
      // Audit checkpoint volume: a typo, one the replicas cannot all mount, two directory settings.
      assertRejected(['--set', 'auditCheckpoints.persistence.enable=true'], /enable/);
      assertRejected(
        [
          '-f',
          valuesFile({
            ...POSTGRES,
            auditCheckpoints: { persistence: { enabled: true, accessModes: ['ReadWriteOnce'] } },
          }),
        ],
        /needs ReadWriteMany in PostgreSQL mode/,
      );
      assertRejected(
        ['--set', 'auditCheckpoints.persistence.enabled=true', '--set', 'config.audit.checkpointDir=/x'],
        /config\.audit\.checkpointDir is set by the chart/,
      );
      // A pod killed before its running tasks finish and release their leases.
      assertRejected(
        ['--set', 'config.shutdown.graceSeconds=120'],
        /terminationGracePeriodSeconds \(45\) must be at least/,
      );
      // A replica restarted, or the migration Job ended, while it still waits for PostgreSQL: the
      // wait as a --set number, a values file's number and an extraEnv string.
      const postgres = [
        '--set',
        'database.mode=postgres',
        '--set',
        'database.postgres.url=postgres://db/maos',
      ];
      assertRejected(
        [...postgres, '--set', 'config.store.startupWaitMs=400000'],
        /probes\.startup gives a pod 300 s to start .*the 400000 ms .*at least 81/,
      );
      assertRejected(
        ['-f', valuesFile({ ...POSTGRES, config: { store: { startupWaitMs: 400000 } } })],
        /probes\.startup gives a pod 300 s to start/,
      );
      assertRejected(
        [
          ...postgres,
          '--set-json',
          'extraEnv=[{"name":"MAOS_STORE__STARTUP_WAIT_MS","value":"700000"}]',
          '--set',
          'probes.startup.failureThreshold=200',
        ],
        /migration\.activeDeadlineSeconds \(600\) is not more than the 700000 ms .*\(extraEnv MAOS_STORE__STARTUP_WAIT_MS\)/,
      );
      template(
        CHART,
        ...postgres,
        '--set',
        'config.store.startupWaitMs=400000',
        '--set',
        'probes.startup.failureThreshold=81',
      );
    });

    test('a shutdown time, body limit or start-up wait that is not a whole number is refused, not read as 0', () => {
      // Helm reads "60s" as 0: the grace check passed while MAOS refuses the value at start-up.
      const env = (name: string, value: string) => [
        '--set-json',
        `extraEnv=[${JSON.stringify({ name, value })}]`,
      ];
      assertRejected(
        env('MAOS_SHUTDOWN__GRACE_SECONDS', '60s'),
        /extraEnv MAOS_SHUTDOWN__GRACE_SECONDS is "60s", not a number of seconds: give digits only/,
      );
      assertRejected(
        ['--set-string', 'secretEnv.MAOS_SHUTDOWN__DRAIN_DELAY_SECONDS=2.5s'],
        /secretEnv\.MAOS_SHUTDOWN__DRAIN_DELAY_SECONDS is "2\.5s", not a number of seconds/,
      );
      assertRejected(
        ['--set-string', 'config.shutdown.graceSeconds=060'],
        /config\.shutdown\.graceSeconds is "060", not a number of seconds/,
      );
      // A fraction of a second, which MAOS takes for these two, counts rounded up (35.5 + 5 + 5 > 45).
      assertRejected(
        ['--set-string', 'secretEnv.MAOS_SHUTDOWN__GRACE_SECONDS=35.5'],
        /terminationGracePeriodSeconds \(45\) must be at least .*\(46; graceSeconds 36 from secretEnv/,
      );
      template(CHART, '--set', 'config.shutdown.graceSeconds=2.5');
      const ingress = ['--set', 'ingress.enabled=true'];
      assertRejected(
        [...ingress, ...env('MAOS_HTTP__BODY_LIMIT_BYTES', '10Mi')],
        /extraEnv MAOS_HTTP__BODY_LIMIT_BYTES is "10Mi", not a whole number/,
      );
      assertRejected(
        [...ingress, '--set-string', 'secretEnv.MAOS_HTTP__BODY_LIMIT_BYTES=1e6'],
        /secretEnv\.MAOS_HTTP__BODY_LIMIT_BYTES is "1e6", not a whole number/,
      );
      assertRejected(
        [
          '--set',
          'database.mode=postgres',
          '--set',
          'database.postgres.url=postgres://db/maos',
          ...env('MAOS_STORE__STARTUP_WAIT_MS', '90s'),
        ],
        /extraEnv MAOS_STORE__STARTUP_WAIT_MS is "90s", not a whole number/,
      );
      // Digits with blanks around, as MAOS reads them, still count (beside the chart's drain delay of 5).
      assertRejected(
        env('MAOS_SHUTDOWN__GRACE_SECONDS', ' 120 '),
        /terminationGracePeriodSeconds \(45\) must be at least .*\(130; graceSeconds 120 from extraEnv/,
      );
      const bodySize = (args: string[]) =>
        at(one(template(CHART, ...ingress, ...args).byKind, 'Ingress'), 'metadata.annotations')[
          'nginx.ingress.kubernetes.io/proxy-body-size'
        ];
      assert.equal(bodySize(env('MAOS_HTTP__BODY_LIMIT_BYTES', ' 5242880 ')), '5242880');
      assert.equal(
        bodySize(['-f', valuesFile({ config: { http: { bodyLimitBytes: 26214400 } } })]),
        '26214400',
      );
    });

    test('a section or setting of values.yaml set to null is refused by name, never a template nil error', () => {
      // Helm deletes a key set to null (`--set config=null`, `probes: {startup: null}` in a file),
      // and a template reading a field below it failed with `nil pointer evaluating interface {}`.
      // Every section (map) of values.yaml and every number, boolean or choice in one, nulled in
      // SQLite mode and in PostgreSQL mode with everything on: it renders, or the error names it. The
      // templates are the same under every helm: the whole walk under the first one only.
      assertRejected(['--set', 'config=null'], /\(root\): config is required|missing property 'config'/);
      assertRejected(
        ['--set', 'probes.startup=null'],
        /probes: startup is required|at '\/probes': missing property 'startup'/,
      );
      if (helm !== helms[0]) return;
      const defaults = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Doc;
      const everythingOn: Doc = {
        ...POSTGRES_FULL,
        auth: { mode: 'both', oidc: { ...POSTGRES_FULL.auth.oidc, console: { clientId: 'maos-console' } } },
        keda: { enabled: true },
        ingress: { ...POSTGRES_FULL.ingress, canary: { enabled: true } },
        podDisruptionBudget: { enabled: true },
        replicaCount: 3,
        tls: { secretName: 'maos-tls' },
        auditCheckpoints: { persistence: { enabled: true } },
      };
      const paths: string[][] = [];
      const walk = (node: Doc, path: string[]) => {
        for (const [key, value] of Object.entries(node)) {
          if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
            paths.push([...path, key]);
            walk(value as Doc, [...path, key]);
          } else if (typeof value === 'number' || typeof value === 'boolean') paths.push([...path, key]);
        }
      };
      walk(defaults, []);
      assert.ok(paths.some((p) => p.join('.') === 'probes.startup') && paths.length > 50);
      const withNull = (base: Doc, path: string[]): Doc => {
        const out = structuredClone(base);
        let node = out;
        for (const key of path.slice(0, -1)) {
          if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
          node = node[key] as Doc;
        }
        node[path.at(-1) as string] = null;
        return out;
      };
      const nilErrors: string[] = [];
      const unnamed: string[] = [];
      for (const [mode, base] of [
        ['sqlite', {}],
        ['postgres', everythingOn],
      ] as const) {
        for (const path of paths) {
          const result = run(['template', 'maos', CHART, '-f', valuesFile(withNull(base, path))]);
          if (result.status === 0) continue;
          const where = `${mode}: ${path.join('.')}=null`;
          if (/nil pointer|untyped nil|wrong type for value/.test(result.stderr)) {
            nilErrors.push(`${where}: ${result.stderr.trim().split('\n').pop()}`);
          } else if (!result.stderr.includes(path.at(-1) as string)) {
            unnamed.push(`${where}: ${result.stderr.trim()}`);
          }
        }
      }
      assert.deepEqual(nilErrors, []);
      assert.deepEqual(unnamed, []);
    });

    test('pods roll when the config file or the chart Secret changes', () => {
      const checksums = (values: Doc) =>
        at(
          one(template(CHART, '-f', valuesFile(values)).byKind, 'Deployment'),
          'spec.template.metadata.annotations',
        );
      const base = checksums(POSTGRES);
      const newUrl = checksums({
        database: { mode: 'postgres', postgres: { url: 'postgres://maos:new@db:5432/maos' } },
      });
      assert.match(base['checksum/secret'], /^[0-9a-f]{64}$/);
      assert.notEqual(
        newUrl['checksum/secret'],
        base['checksum/secret'],
        'a new database URL rolls the pods',
      );
      assert.equal(newUrl['checksum/config'], base['checksum/config']);
      const newConfig = checksums({ ...POSTGRES, config: { logLevel: 'debug' } });
      assert.notEqual(
        newConfig['checksum/config'],
        base['checksum/config'],
        'a config change rolls the pods',
      );
      assert.equal(newConfig['checksum/secret'], base['checksum/secret']);
      const external = checksums({ database: { mode: 'postgres' }, existingSecret: 'maos-env' });
      assert.equal(external['checksum/secret'], undefined, 'the chart cannot see an existing Secret');
    });

    test('a number in secretEnv reaches the Secrets as written in the values file, never in exponent form', () => {
      // helm reads a number of a values file as float64, which quote prints as 1.2345678901e+10.
      const secretEnv = {
        MAOS_PROVIDERS__LOCAL__API_KEY: 12345678901,
        MAOS_LLM__BUDGETS__DEFAULT__MAX_TOKENS: 5000000,
        MAOS_X: 0.5,
        MAOS_Y: true,
        MAOS_Z: 'text "quoted"',
      };
      const secrets =
        template(CHART, '-f', valuesFile({ ...POSTGRES, secretEnv })).byKind.get('Secret') ?? [];
      assert.equal(secrets.length, 2, "the chart's Secret and the migration Job's copy");
      for (const secret of secrets)
        for (const [name, value] of Object.entries(secretEnv))
          assert.equal(
            at(secret, 'stringData')[name],
            String(value),
            `${at(secret, 'metadata.name')} ${name}`,
          );
    });

    // helm 3 contacts a cluster even for `install --dry-run=client`: the notes are checked under helm 4+.
    if (!/^v?3\./.test(helm.version)) {
      test('install notes (client-side dry run) are the ones the test renderer shows', () => {
        const sets: Doc[] = [
          {},
          POSTGRES,
          { ...POSTGRES_FULL, secretEnv: { MAOS_AUDIT__SIGNING_KEY: 'pem' } },
          { ...POSTGRES, keda: { enabled: true } },
          { metrics: { prometheusRule: { enabled: true } } },
          { tls: { secretName: 'maos-tls' } },
          { ...POSTGRES, config: { audit: { signingKey_FILE: '/run/secrets/maos/audit-key' } } },
          { ...POSTGRES, extraEnv: [{ name: 'MAOS_AUDIT__SIGNING_KEY_FILE', value: '/run/k' }] },
          { ...POSTGRES, auditCheckpoints: { persistence: { enabled: true } } },
        ];
        for (const values of sets) {
          const result = run(['install', 'maos', CHART, '--dry-run=client', '-f', valuesFile(values)]);
          assert.equal(result.status, 0, result.stderr);
          const notes = result.stdout.split('\nNOTES:\n')[1];
          assert.ok(notes, 'the dry run prints NOTES');
          assert.equal(notes.trim(), renderChart(CHART, values).notes.trim());
        }
        const warned = run(['install', 'maos', CHART, '--dry-run=client', '-f', valuesFile(POSTGRES)]);
        assert.match(warned.stdout, /WARNING: no MAOS_AUDIT__SIGNING_KEY/);
        const rulesOnly = { metrics: { prometheusRule: { enabled: true } } };
        const unlabelled = run(['install', 'maos', CHART, '--dry-run=client', '-f', valuesFile(rulesOnly)]);
        assert.match(unlabelled.stdout, /WARNING: the alert rules are installed without the ServiceMonitor/);
      });
    }

    test('the packaged chart carries the Prometheus rules and Grafana dashboards behind their links', () => {
      const pack = run(['package', CHART, '--destination', work]);
      assert.equal(pack.status, 0, pack.stderr);
      const archive = join(work, readdirSync(work).find((f) => f.endsWith('.tgz')) as string);
      const { byKind } = template(archive, '-f', valuesFile(POSTGRES_FULL));
      const groups = [...at(one(byKind, 'PrometheusRule'), 'spec.groups')].sort((a: Doc, b: Doc) =>
        String(a.name).localeCompare(String(b.name)),
      );
      assert.deepEqual(groups, shippedRuleGroups());
      assert.deepEqual(renderedDashboards(byKind), shippedDashboards());
    });

    test('the test renderer produces exactly the manifests helm renders', () => {
      const sets: Doc[] = [
        {},
        POSTGRES_FULL,
        parseYaml(readFileSync(PRODUCTION_VALUES, 'utf8')),
        { ...POSTGRES, ...parseYaml(readFileSync(join(CHART, 'examples/values-canary.yaml'), 'utf8')) },
        {
          database: { mode: 'postgres' },
          existingSecret: 'ex',
          keda: { enabled: true, trigger: 'postgresql' },
          secretEnv: { MAOS_AUDIT__SIGNING_KEY: 'pem' },
        },
        {
          ...POSTGRES,
          nodeSelector: { n: 'x' },
          tolerations: [{ key: 'pool', operator: 'Exists', effect: 'NoSchedule' }],
          affinity: {
            nodeAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 1,
                  preference: { matchExpressions: [{ key: 'z', operator: 'In', values: ['a'] }] },
                },
              ],
            },
          },
          extraEnv: [{ name: 'X', value: '1' }],
          podAnnotations: { 'example.com/a': 'b' },
          networkPolicy: { apiFrom: [{ podSelector: { matchLabels: { app: 'gw' } } }] },
        },
        { ...POSTGRES, keda: { enabled: true, trigger: 'postgresql' } },
        // SQLite mode with an existingSecret: the check-store init container and its script.
        { existingSecret: 'ex', extraEnv: [{ name: 'X', value: '1' }] },
        // SQLite mode with a database URL file: check-store with the mounts of the files it reads.
        {
          extraEnv: [{ name: 'MAOS_STORE__URL_FILE', value: '/run/secrets/maos/url' }],
          extraVolumes: [{ name: 'files', secret: { secretName: 'maos-files' } }],
          extraVolumeMounts: [{ name: 'files', mountPath: '/run/secrets/maos', readOnly: true }],
        },
        { existingSecret: 'ex', secretEnv: { MAOS_STORE__URL_FILE: '/run/secrets/maos/url' } },
        { metrics: { serviceMonitor: { enabled: true, interval: '1m', scrapeTimeout: '500ms' } } },
        // A budget in percent, counted at the floor as Kubernetes rounds it: kept, then left out.
        { ...POSTGRES, replicaCount: 3, podDisruptionBudget: { minAvailable: '66%' } },
        { ...POSTGRES, replicaCount: 2, podDisruptionBudget: { minAvailable: '51%' } },
        // The metrics port on a ClusterIP Service of its own beside a LoadBalancer.
        { ...POSTGRES_FULL, service: { type: 'LoadBalancer' }, keda: { enabled: true } },
        {
          metrics: {
            prometheusRule: {
              enabled: true,
              disabled: { MaosQueueBacklogGrowing: true, MaosTaskLeasesExpiring: true, MaosNotReady: false },
              overrides: {
                MaosDataDirSpaceLow: {
                  expr: 'maos_data_dir_free_bytes / maos_data_dir_capacity_bytes < 0.15',
                  for: '5m',
                  labels: { severity: 'warning', team: 'storage' },
                  annotations: { summary: 'Less than 15 % disk space left on {{ $labels.instance }}' },
                },
                MaosAuditWriteFailures: { for: '1m' },
              },
              additionalRuleLabels: { team: 'platform' },
            },
          },
        },
        documentedAlertChanges(),
        {
          metrics: {
            prometheusRule: {
              enabled: true,
              runbookUrlPrefix: 'https://git.example.com/platform/maos/blob/v0.1.0/',
              overrides: {
                MaosDataDirSpaceLow: { annotations: { runbook_url: 'https://wiki.example.com/oncall/disk' } },
              },
            },
          },
        },
        { ...POSTGRES, replicaCount: 1, podDisruptionBudget: { minAvailable: '50%' } },
        { auth: ENTRA_LIKE_AUTH },
        {
          extraVolumes: [{ name: 'files', secret: { secretName: 'maos-files' } }],
          extraVolumeMounts: [{ name: 'files', mountPath: '/run/secrets/maos', readOnly: true }],
        },
        {
          ...POSTGRES,
          extraVolumes: [{ name: 'ca', configMap: { name: 'db-ca' } }],
          extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/maos-ca' }],
        },
        TLS_FULL,
        { tls: { secretName: 'maos-tls' } },
        { ...POSTGRES, auditCheckpoints: { persistence: { enabled: true, storageClass: 'nfs' } } },
        { auditCheckpoints: { persistence: { enabled: true, existingClaim: 'audit-ckpt' } } },
        { ingress: { enabled: true }, config: { http: { bodyLimitBytes: 26214400 } } },
        // No secrets: files named by *_FILE keys, numbers under token-like names, a proxy without a password.
        {
          config: {
            audit: { signingKey_FILE: '/run/secrets/maos/audit-key' },
            providers: { gw: { headers: { Authorization_FILE: '/run/secrets/maos/gw' } } },
            runners: { npm: { command: ['npm', 'test'], env: { NPM_TOKEN_FILE: '/run/secrets/maos/npm' } } },
            llm: { budgets: { default: { maxTokens: 100000 } } },
            egress: { proxy: { url: 'http://proxy.corp:3128' } },
          },
          extraEnv: [
            {
              name: 'MAOS_PROVIDERS__OPENAI__API_KEY',
              valueFrom: { secretKeyRef: { name: 'k', key: 'openai' } },
            },
            { name: 'MAOS_LLM__BUDGETS__DEFAULT__MAX_TOKENS', value: '100000' },
            { name: 'MAOS_AUDIT__SIGNING_KEY_FILE', value: '/run/secrets/maos/audit-key' },
          ],
        },
        {
          ingress: { enabled: true, annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '0' } },
          config: { http: { trustedProxies: ['10.0.0.0/8'] } },
        },
        // Keys the chart sets itself, given by the operator: written once (a key twice does not parse).
        {
          ingress: {
            enabled: true,
            annotations: {
              'nginx.ingress.kubernetes.io/proxy-buffering': 'on',
              'nginx.ingress.kubernetes.io/proxy-read-timeout': '600',
              'nginx.ingress.kubernetes.io/canary-weight': '5',
            },
            canary: { enabled: true, weight: 20, header: 'X-Canary' },
          },
        },
      ];
      const key = (m: { file: string; doc: Doc }) => `${m.file} ${m.doc.kind} ${at(m.doc, 'metadata.name')}`;
      const sorted = (list: { file: string; doc: Doc }[]) =>
        [...list].sort((a, b) => key(a).localeCompare(key(b)));
      for (const values of sets) {
        const ours = renderChart(CHART, values).manifests;
        const theirs = template(CHART, '-f', valuesFile(values)).manifests;
        assert.deepEqual(sorted(ours), sorted(theirs), JSON.stringify(values));
      }
    });
  });
}
