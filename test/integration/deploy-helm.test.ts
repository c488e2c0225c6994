// The Helm chart renders for SQLite and PostgreSQL values, every manifest validates against the
// Kubernetes (and KEDA / prometheus-operator) JSON schemas of its kind, and the operational rules
// hold: probes, non-root read-only pods, one replica on SQLite, migration hook, SSE ingress.
// The real `helm` binary checks the chart in deploy-helm-cli.test.ts.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Pod } from 'kubernetes-models/v1/Pod';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { configSchema, SECRET_KEY_PATTERN } from '../../src/config/schema.ts';
import { assertListenAddressesUsable, listenAddresses } from '../../src/http/listen-addresses.ts';
import { assertConfigUsable } from '../../src/security/config-preflight.ts';
import { freePort } from '../fixtures/free-port.ts';
import { TemplateSet } from '../fixtures/go-template.ts';
import { mergeValues, renderChart } from '../fixtures/helm-chart.ts';
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
import { requireBinary, runPromtool } from '../helpers/promtool.ts';

/** Renders and validates every manifest against its kind's schema; returns them by kind. */
function render(values: Doc): { byKind: Map<string, Doc[]>; notes: string } {
  const { manifests, notes } = renderChart(CHART, values);
  for (const { file, doc } of manifests) assertValidManifest(doc, file);
  return { byKind: groupByKind(manifests.map((m) => m.doc)), notes };
}

function assertHardenedContainer(container: Doc, where: string): void {
  const ctx = at(container, 'securityContext');
  assert.equal(ctx?.runAsNonRoot, true, `${where}: runAsNonRoot`);
  assert.equal(ctx?.readOnlyRootFilesystem, true, `${where}: read-only root fs`);
  assert.equal(ctx?.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
  assert.deepEqual(ctx?.capabilities?.drop, ['ALL'], `${where}: drops all capabilities`);
  assert.ok(at(container, 'resources.requests.memory'), `${where}: memory request`);
  assert.ok(at(container, 'resources.limits.memory'), `${where}: memory limit`);
}

describe('Helm chart', () => {
  test('Chart.yaml and values.yaml parse, and every template value reference exists in values.yaml', () => {
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'maos');
    assert.equal(chart.appVersion, JSON.parse(readFileSync('package.json', 'utf8')).version);
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const missing: string[] = [];
    for (const file of readdirSync(join(CHART, 'templates'))) {
      const text = readFileSync(join(CHART, 'templates', file), 'utf8');
      for (const match of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const path = (match[1] as string).slice(1).split('.');
        // biome-ignore lint/suspicious/noExplicitAny: walking parsed YAML
        let node: any = values;
        for (const key of path) {
          if (node === null || typeof node !== 'object' || !(key in node)) {
            missing.push(`${file}: .Values.${path.join('.')}`);
            break;
          }
          node = node[key];
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  test('values.yaml documents every key', () => {
    const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
    const undocumented: string[] = [];
    for (const [i, line] of lines.entries()) {
      const top = /^([a-zA-Z]+):/.exec(line);
      if (!top) continue;
      const previous = lines[i - 1] ?? '';
      const next = lines[i + 1] ?? '';
      if (!previous.startsWith('#') && !next.trimStart().startsWith('#')) undocumented.push(top[1] as string);
    }
    assert.deepEqual(undocumented, []);
  });

  test('SQLite mode (defaults): one replica, Recreate, PVC, init migration, no HPA/PDB/KEDA/hook Job', () => {
    const { byKind, notes } = render({
      replicaCount: 5,
      autoscaling: { enabled: true },
      keda: { enabled: true },
    });
    const deployment = one(byKind, 'Deployment');
    assert.equal(at(deployment, 'spec.replicas'), 1);
    assert.equal(at(deployment, 'spec.strategy.type'), 'Recreate');
    const pod = at(deployment, 'spec.template.spec');
    assert.equal(at(pod, 'initContainers.0.name'), 'migrate');
    assert.deepEqual(at(pod, 'initContainers.0.args'), ['migrate']);
    const dataVolume = pod.volumes.find((v: Doc) => v.name === 'data');
    assert.equal(
      dataVolume.persistentVolumeClaim.claimName,
      at(one(byKind, 'PersistentVolumeClaim'), 'metadata.name'),
    );
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ScaledObject', 'Job']) {
      assert.equal(byKind.has(kind), false, `${kind} is not rendered in SQLite mode`);
    }
    assert.match(notes, /SQLite mode runs exactly one pod/);
  });

  test('both modes: probes on /healthz and /readyz, hardened non-root pods, config accepted by MAOS', () => {
    for (const values of [{}, POSTGRES_FULL]) {
      const { byKind } = render(values);
      const deployment = one(byKind, 'Deployment');
      const pod = at(deployment, 'spec.template.spec');
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(pod.securityContext.runAsUser > 0);
      assert.equal(pod.automountServiceAccountToken, false);
      // Service links would put MAOS_SERVICE_HOST… (a Service named maos) in the environment, which
      // older MAOS versions read as unknown configuration keys: in the server pods and the migration Job's.
      assert.equal(pod.enableServiceLinks, false);
      for (const job of byKind.get('Job') ?? []) {
        assert.equal(at(job, 'spec.template.spec.enableServiceLinks'), false, 'the migration Job');
      }
      const [server] = pod.containers;
      assert.deepEqual(server.args, ['serve']);
      assert.equal(server.startupProbe.httpGet.path, '/healthz');
      assert.equal(server.livenessProbe.httpGet.path, '/healthz');
      assert.equal(server.readinessProbe.httpGet.path, '/readyz');
      assertHardenedContainer(server, 'server');
      for (const init of pod.initContainers ?? []) assertHardenedContainer(init, 'init container');
      const mounts = server.volumeMounts.map((m: Doc) => m.mountPath);
      assert.ok(
        mounts.includes('/tmp') && mounts.includes('/data'),
        'writable /tmp and /data on a read-only root',
      );
      // The config file plus the chart's environment must be a valid MAOS configuration.
      const configMap = serverConfigMap(byKind);
      const file = parseYaml(String(at(configMap, 'data')['config.yaml']));
      const env = Object.fromEntries(
        server.env.map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      const parsed = configSchema.safeParse({
        ...file,
        dataDir: env.MAOS_DATA_DIR,
        host: env.MAOS_HOST,
        port: Number(env.MAOS_PORT),
        metrics: {
          ...(file.metrics ?? {}),
          port: Number(env.MAOS_METRICS__PORT),
          host: env.MAOS_METRICS__HOST,
        },
      });
      assert.ok(parsed.success, `chart config rejected: ${JSON.stringify(parsed.error?.issues)}`);
      const service = one(byKind, 'Service');
      assert.deepEqual(
        at(service, 'spec.ports').map((p: Doc) => p.targetPort),
        ['http', 'metrics'],
      );
      assert.ok(byKind.has('NetworkPolicy'));
    }
  });

  test('NetworkPolicy: egress to DNS and networkPolicy.egressPorts only; an empty list leaves DNS alone', () => {
    // An egress rule without ports (and without peers) allows every port to everywhere.
    const egressOf = (values: Doc): Doc[] => at(one(render(values).byKind, 'NetworkPolicy'), 'spec.egress');
    const ports = (rules: Doc[]) =>
      rules.map((rule) => {
        assert.ok(
          Array.isArray(rule.ports) && rule.ports.length > 0,
          `a rule allowing every port: ${JSON.stringify(rule)}`,
        );
        return (rule.ports as Doc[]).map((p) => `${p.port}/${p.protocol}`);
      });
    assert.deepEqual(ports(egressOf({})), [
      ['53/UDP', '53/TCP'],
      ['443/TCP', '5432/TCP', '4318/TCP'],
    ]);
    assert.deepEqual(ports(egressOf({ networkPolicy: { egressPorts: [3128] } })), [
      ['53/UDP', '53/TCP'],
      ['3128/TCP'],
    ]);
    assert.deepEqual(ports(egressOf({ networkPolicy: { egressPorts: [] } })), [['53/UDP', '53/TCP']]);
  });

  test('PostgreSQL mode: scales, HPA, PDB, hook migration Job, SSE ingress, monitoring objects', () => {
    const { byKind } = render(POSTGRES_FULL);
    const deployment = one(byKind, 'Deployment');
    assert.equal(at(deployment, 'spec.replicas'), undefined, 'the HPA owns the replica count');
    assert.equal(at(deployment, 'spec.strategy.rollingUpdate.maxUnavailable'), 0);
    assert.equal(at(deployment, 'spec.template.spec.initContainers'), undefined);
    assert.equal(at(one(byKind, 'HorizontalPodAutoscaler'), 'spec.metrics.0.resource.name'), 'cpu');
    assert.equal(at(one(byKind, 'PodDisruptionBudget'), 'spec.minAvailable'), 1);
    const job = one(byKind, 'Job');
    const hooks = at(job, 'metadata.annotations');
    assert.equal(hooks['helm.sh/hook'], 'pre-install,pre-upgrade');
    assert.deepEqual(at(job, 'spec.template.spec.containers.0.args'), ['migrate']);
    assertHardenedContainer(at(job, 'spec.template.spec.containers.0'), 'migration job');
    const secrets = byKind.get('Secret') ?? [];
    const jobSecret = secrets.find((s) => at(s, 'metadata.annotations')?.['helm.sh/hook']);
    assert.ok(jobSecret, 'a hook Secret exists before the Job runs');
    assert.ok(
      Number(at(jobSecret, 'metadata.annotations')['helm.sh/hook-weight']) <
        Number(hooks['helm.sh/hook-weight']),
    );
    assert.equal(
      at(job, 'spec.template.spec.containers.0.envFrom.0.secretRef.name'),
      at(jobSecret, 'metadata.name'),
    );
    // ... and a hook copy of the server's config file (the ConfigMap does not exist yet at install).
    const jobConfig = (byKind.get('ConfigMap') ?? []).find(
      (c) => at(c, 'metadata.annotations')?.['helm.sh/hook'],
    );
    assert.ok(jobConfig, 'a hook ConfigMap exists before the Job runs');
    assert.ok(
      Number(at(jobConfig, 'metadata.annotations')['helm.sh/hook-weight']) <
        Number(hooks['helm.sh/hook-weight']),
    );
    assert.equal(at(jobConfig, 'data')['config.yaml'], at(serverConfigMap(byKind), 'data')['config.yaml']);
    const jobVolume = (at(job, 'spec.template.spec.volumes') as Doc[]).find(
      (v) => at(v, 'configMap.name') === at(jobConfig, 'metadata.name'),
    );
    assert.ok(jobVolume, 'the Job mounts it');
    const ingress = at(one(byKind, 'Ingress'), 'metadata.annotations');
    assert.equal(ingress['nginx.ingress.kubernetes.io/proxy-buffering'], 'off');
    assert.equal(ingress['nginx.ingress.kubernetes.io/proxy-read-timeout'], '3600');
    assert.equal(at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0.port'), 'metrics');
    // The PrometheusRule carries every rule of deploy/prometheus/rules (the promtool-tested files).
    const shipped = readdirSync('deploy/prometheus/rules')
      .filter((f) => f.endsWith('.yml'))
      .flatMap((f) => parseYaml(readFileSync(join('deploy/prometheus/rules', f), 'utf8')).groups);
    const rendered = at(one(byKind, 'PrometheusRule'), 'spec.groups');
    assert.ok(shipped.length > 0);
    assert.deepEqual(rendered.map((g: Doc) => g.name).sort(), shipped.map((g: Doc) => g.name).sort());
    const byName = (groups: Doc[]) =>
      [...groups].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    assert.deepEqual(byName(rendered), byName(shipped), 'rules are carried over unchanged');
    const alerts = rendered
      .flatMap((g: { rules: Doc[] }) => g.rules.filter((r) => r.alert).map((r) => r.alert))
      .sort();
    const shippedAlerts = shipped
      .flatMap((g: { rules: Doc[] }) => g.rules.filter((r) => r.alert).map((r) => r.alert))
      .sort();
    assert.deepEqual(alerts, shippedAlerts);
    const config = parseYaml(String(at(serverConfigMap(byKind), 'data')['config.yaml']));
    assert.equal(config.auth.oidc.issuer, 'https://idp.example.com/realms/main');
  });

  test('metrics.grafanaDashboards: one ConfigMap for the Grafana sidecar with every shipped dashboard, unchanged', () => {
    const shipped = shippedDashboards();
    assert.ok(Object.keys(shipped).length > 0);
    for (const values of [{}, POSTGRES]) {
      const off = render(values).byKind;
      assert.equal(
        (off.get('ConfigMap') ?? []).filter((d) => at(d, 'metadata.labels')?.grafana_dashboard).length,
        0,
      );
      const { byKind } = render({
        ...values,
        metrics: { grafanaDashboards: { enabled: true, annotations: { grafana_folder: 'MAOS' } } },
      });
      const configMap = (byKind.get('ConfigMap') ?? []).find(
        (doc) => at(doc, 'metadata.labels')?.grafana_dashboard === '1',
      );
      assert.ok(configMap, 'labelled grafana_dashboard: "1", which the Grafana chart’s sidecar loads');
      assert.equal(at(configMap, 'metadata.annotations')?.grafana_folder, 'MAOS');
      assert.deepEqual(renderedDashboards(byKind), shipped);
      assert.ok(serverConfigMap(byKind), 'the server’s own ConfigMap is still the one the pods mount');
    }
    const relabelled = render({
      metrics: {
        grafanaDashboards: { enabled: true, labels: { grafana_dashboard: null, dashboards: 'maos' } },
      },
    }).byKind;
    const relabelledMap = (relabelled.get('ConfigMap') ?? []).find(
      (doc) => at(doc, 'metadata.labels')?.dashboards === 'maos',
    );
    assert.ok(relabelledMap, 'the sidecar label is configurable');
    assert.equal(at(relabelledMap, 'metadata.labels').grafana_dashboard, undefined);
  });

  test('PodDisruptionBudget only above minAvailable replicas: a budget nothing can meet blocks drains', () => {
    const pdbOf = (values: Doc) => render({ ...POSTGRES, ...values });
    // One replica (replicaCount, KEDA's default floor, an HPA floor of 1) and minAvailable 1: no PDB.
    for (const values of [
      { replicaCount: 1 },
      { keda: { enabled: true } },
      { autoscaling: { enabled: true, minReplicas: 1 } },
      { replicaCount: 3, podDisruptionBudget: { minAvailable: 3 } },
      // A percentage counts as Kubernetes rounds it, up: 50% of one pod, 51% of two, all of three.
      { replicaCount: 1, podDisruptionBudget: { minAvailable: '50%' } },
      { replicaCount: 2, podDisruptionBudget: { minAvailable: '51%' } },
      { keda: { enabled: true, minReplicaCount: 3 }, podDisruptionBudget: { minAvailable: '100%' } },
    ]) {
      const { byKind, notes } = pdbOf(values);
      assert.equal(byKind.has('PodDisruptionBudget'), false, JSON.stringify(values));
      assert.match(notes, /No PodDisruptionBudget: at \d+ replica\(s\)/);
    }
    for (const values of [
      {},
      { keda: { enabled: true, minReplicaCount: 2 } },
      { autoscaling: { enabled: true } },
      { replicaCount: 2, podDisruptionBudget: { minAvailable: '50%' } },
      { autoscaling: { enabled: true, minReplicas: 3 }, podDisruptionBudget: { minAvailable: '66%' } },
    ]) {
      const { byKind, notes } = pdbOf(values);
      assert.ok(byKind.has('PodDisruptionBudget'), JSON.stringify(values));
      assert.doesNotMatch(notes, /No PodDisruptionBudget/);
    }
    assert.doesNotMatch(pdbOf({ replicaCount: 1, podDisruptionBudget: { enabled: false } }).notes, /Budget/);
  });

  test('KEDA ScaledObject on queue depth, by Prometheus or PostgreSQL, replaces the HPA', () => {
    for (const trigger of ['prometheus', 'postgresql']) {
      const { byKind } = render({
        ...POSTGRES,
        autoscaling: { enabled: true },
        keda: { enabled: true, trigger },
      });
      const scaled = one(byKind, 'ScaledObject');
      assert.equal(at(scaled, 'spec.triggers.0.type'), trigger);
      assert.match(JSON.stringify(at(scaled, 'spec.triggers.0.metadata')), /ready.*leased.*running/);
      if (trigger === 'prometheus') {
        // Every replica exports the cluster-wide counts: a plain sum would count them once per replica.
        assert.match(at(scaled, 'spec.triggers.0.metadata.query'), /^sum\(max by \(status\) \(maos_tasks\{/);
      }
      assert.equal(byKind.has('HorizontalPodAutoscaler'), false);
    }
  });

  test('autoscaling: a floor above the ceiling, or an HPA without a CPU request, is refused', () => {
    // The HPA and the ScaledObject validate against their schemas either way: only the bounds fail.
    const hpa = (minReplicas: number, maxReplicas: number) =>
      render({ ...POSTGRES, autoscaling: { enabled: true, minReplicas, maxReplicas } });
    const keda = (minReplicaCount: number, maxReplicaCount: number) =>
      render({ ...POSTGRES, keda: { enabled: true, minReplicaCount, maxReplicaCount } });
    assert.equal(at(one(hpa(3, 3).byKind, 'HorizontalPodAutoscaler'), 'spec.maxReplicas'), 3);
    assert.equal(at(one(keda(3, 3).byKind, 'ScaledObject'), 'spec.maxReplicaCount'), 3);
    assert.throws(() => hpa(5, 3), /autoscaling\.minReplicas \(5\) is above autoscaling\.maxReplicas \(3\)/);
    assert.throws(() => keda(5, 3), /keda\.minReplicaCount \(5\) is above keda\.maxReplicaCount \(3\)/);
    // CPU utilization is a share of the CPU request (a limit alone becomes it): without either the
    // HPA reads no CPU and never scales.
    const cpu = (resources: Doc) => render({ ...POSTGRES, autoscaling: { enabled: true }, resources });
    for (const resources of [null, { requests: null }, { requests: { cpu: null } }]) {
      assert.throws(() => cpu(resources as Doc), /resources\.requests\.cpu, which is not set/);
    }
    assert.ok(cpu({ requests: { cpu: null }, limits: { cpu: '1' } }).byKind.has('HorizontalPodAutoscaler'));
    assert.ok(render({ ...POSTGRES, keda: { enabled: true }, resources: null }).byKind.has('ScaledObject'));
    // Left unused (SQLite mode, or the HPA beside KEDA), the bounds are not checked.
    assert.ok(render({ autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } }));
    assert.ok(
      render({
        ...POSTGRES,
        keda: { enabled: true },
        autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 },
      }),
    );
  });

  test('the KEDA Prometheus query reads the queue depth of this release only', requireBinary(), () => {
    const values = { ...POSTGRES, keda: { enabled: true }, metrics: { serviceMonitor: { enabled: true } } };
    const { manifests, notes } = renderChart(CHART, values, { name: 'maos', namespace: 'prod' });
    const byKind = groupByKind(manifests.map((m) => m.doc));
    const query = String(at(one(byKind, 'ScaledObject'), 'spec.triggers.0.metadata.query'));
    assert.doesNotMatch(notes, /KEDA reads the queue depth/);
    // Series as prometheus-operator labels the ServiceMonitor's targets (namespace, service, job,
    // pod): two replicas of this release, each reporting the whole database's counts; another
    // release in the namespace and another installation in another namespace, with larger queues.
    const series = [
      ['prod', 'maos', 'maos-a', { ready: 30, leased: 2, running: 5 }],
      ['prod', 'maos', 'maos-b', { ready: 30, leased: 2, running: 5 }],
      ['prod', 'other-maos', 'other-maos-a', { ready: 400, leased: 0, running: 8 }],
      ['staging', 'maos', 'maos-c', { ready: 500, leased: 9, running: 8 }],
    ] as const;
    const dir = mkdtempSync(join(tmpdir(), 'maos-keda-'));
    try {
      const tests = {
        tests: [
          {
            interval: '1m',
            input_series: series.flatMap(([namespace, service, pod, counts]) =>
              Object.entries(counts).map(([status, count]) => ({
                series: `maos_tasks{namespace="${namespace}",service="${service}",job="${service}",pod="${pod}",status="${status}"}`,
                values: `${count}x10`,
              })),
            ),
            promql_expr_test: [{ expr: query, eval_time: '5m', exp_samples: [{ labels: '{}', value: 37 }] }],
          },
        ],
      };
      const file = join(dir, 'keda.test.yml');
      writeFileSync(file, JSON.stringify(tests));
      const result = runPromtool(['test', 'rules', file]);
      assert.equal(result.status, 0, `${query}\n${result.stdout}${result.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // An own query is used as given; without the ServiceMonitor the notes say to write one.
    const own = 'sum(maos_tasks{job="maos-pods",status=~"ready|leased|running"})';
    const custom = render({ ...POSTGRES, keda: { enabled: true, prometheus: { query: own } } });
    assert.equal(at(one(custom.byKind, 'ScaledObject'), 'spec.triggers.0.metadata.query'), own);
    assert.doesNotMatch(custom.notes, /KEDA reads the queue depth/);
    assert.match(render({ ...POSTGRES, keda: { enabled: true } }).notes, /set keda\.prometheus\.query/);
  });

  test('a NodePort or LoadBalancer Service carries the API port only: the metrics port answers without credentials', () => {
    // The separate metrics listener serves /metrics to anyone who reaches it (no metrics:read).
    const env = Object.fromEntries(
      (at(one(render({}).byKind, 'Deployment'), 'spec.template.spec.containers.0.env') as Doc[])
        .filter((e) => 'value' in e && e.name !== 'MAOS_CONFIG')
        .map((e) => [e.name, e.value]),
    );
    assert.deepEqual(
      listenAddresses(loadConfig({ env })).map((a) => [a.listener, a.port]),
      [
        ['metrics', 9464],
        ['the API', 7070],
      ],
    );
    const cluster = { ...POSTGRES, keda: { enabled: true }, metrics: { serviceMonitor: { enabled: true } } };
    for (const type of ['NodePort', 'LoadBalancer']) {
      const { byKind, notes } = render({ ...cluster, service: { type } });
      const services = byKind.get('Service') ?? [];
      assert.equal(services.length, 2);
      const exposed = services.filter((s) => at(s, 'spec.type') === type);
      assert.deepEqual(
        exposed.map((s) => [at(s, 'metadata.name'), at(s, 'spec.ports').map((p: Doc) => p.name)]),
        [['maos', ['http']]],
        `${type}: the API port only`,
      );
      const metrics = services.find((s) => at(s, 'metadata.name') === 'maos-metrics') as Doc;
      assert.equal(at(metrics, 'spec.type'), 'ClusterIP');
      assert.deepEqual(
        at(metrics, 'spec.ports').map((p: Doc) => [p.name, p.port, p.targetPort]),
        [['metrics', 9464, 'metrics']],
      );
      assert.deepEqual(at(metrics, 'spec.selector'), at(exposed[0] as Doc, 'spec.selector'));
      // The ServiceMonitor selects it (a port named metrics on a Service with its labels), and the
      // series get its name as `service`, which the KEDA query selects.
      const monitor = one(byKind, 'ServiceMonitor');
      for (const [label, value] of Object.entries(at(monitor, 'spec.selector.matchLabels'))) {
        assert.equal(at(metrics, 'metadata.labels')[label], value);
      }
      assert.equal(at(monitor, 'spec.endpoints.0.port'), 'metrics');
      assert.match(
        at(one(byKind, 'ScaledObject'), 'spec.triggers.0.metadata.query'),
        /service="maos-metrics"/,
      );
      // The Service's API port may be the metrics port number now: two Services.
      assert.ok(render({ service: { type, port: 9464 } }));
      for (const doc of [...services, monitor]) assertValidManifest(doc, type);
      assert.doesNotMatch(notes, /KEDA reads/);
    }
    assert.match(
      render({ ...POSTGRES, keda: { enabled: true }, service: { type: 'LoadBalancer' } }).notes,
      /service="maos-metrics"/,
    );
    // A ClusterIP Service keeps both ports (and the `service` label the series always had).
    const plain = one(render(cluster).byKind, 'Service');
    assert.deepEqual(
      at(plain, 'spec.ports').map((p: Doc) => p.name),
      ['http', 'metrics'],
    );
    // The longest names keep the metrics Service a valid Service name (63 characters).
    const long = render({ fullnameOverride: 'm'.repeat(63), service: { type: 'LoadBalancer' } }).byKind;
    for (const service of long.get('Service') ?? []) {
      assert.ok(String(at(service, 'metadata.name')).length <= 63, at(service, 'metadata.name'));
    }
  });

  test('NOTES tell how to create the first admin key (API key modes) and where the console is', () => {
    const firstKey =
      /kubectl exec deploy\/maos -- node bin\/maos\.js keys create --role admin --tenant default/;
    const apikey = render({}).notes;
    assert.match(apikey, firstKey);
    assert.match(apikey, /http:\/\/127\.0\.0\.1:7070\/console\//);
    const full = render(POSTGRES_FULL).notes;
    assert.doesNotMatch(full, /keys create/, 'auth.mode oidc has no API keys');
    assert.match(full, /Web console: https:\/\/maos\.example\.com\/console\//);
    const both = { mode: 'both', oidc: { issuer: 'https://idp.example.com', audience: 'maos' } };
    assert.match(render({ auth: both }).notes, firstKey);
  });

  test('a ServiceMonitor scrape timeout longer than its interval (which prometheus-operator rejects whole) is refused', () => {
    const monitor = (serviceMonitor: Doc) =>
      render({ metrics: { serviceMonitor: { enabled: true, ...serviceMonitor } } });
    for (const [interval, scrapeTimeout] of [
      ['10s', '10s'],
      ['1m', '60s'],
      ['1m', '500ms'],
      ['1h', '10s'],
    ]) {
      const endpoint = at(
        one(monitor({ interval, scrapeTimeout }).byKind, 'ServiceMonitor'),
        'spec.endpoints.0',
      );
      assert.deepEqual([endpoint.interval, endpoint.scrapeTimeout], [interval, scrapeTimeout]);
    }
    // The default timeout (10s) under a shorter interval, and units mixed.
    assert.throws(
      () => monitor({ interval: '5s' }),
      /metrics\.serviceMonitor\.scrapeTimeout \(10s\) is longer than metrics\.serviceMonitor\.interval \(5s\)/,
    );
    assert.throws(() => monitor({ interval: '1m', scrapeTimeout: '61s' }), /\(61s\) is longer than .*\(1m\)/);
    assert.throws(
      () => monitor({ interval: '900ms', scrapeTimeout: '1s' }),
      /\(1s\) is longer than .*\(900ms\)/,
    );
    // No ServiceMonitor, no check.
    assert.ok(render({ metrics: { serviceMonitor: { interval: '5s' } } }));
  });

  test('the ServiceMonitor labels its targets as the instance alerts select them, whatever the job name', () => {
    const rules = parseYaml(readFileSync('deploy/prometheus/rules/maos-alerts.yml', 'utf8'));
    const exprs = rules.groups
      .flatMap((group: Doc) => group.rules as Doc[])
      .filter((rule: Doc) => ['MaosInstanceDown', 'MaosInstancesAbsent'].includes(String(rule.alert)))
      .map((rule: Doc) => String(rule.expr));
    assert.equal(exprs.length, 2);
    for (const fullnameOverride of ['orchestrator', 'maos-prod']) {
      const { notes, byKind } = render({
        fullnameOverride,
        metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } },
      });
      // The target labels the endpoint's relabelings set (fixed replacements, no source labels).
      const labels = Object.fromEntries(
        (at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0.relabelings') as Doc[])
          .filter((r) => String(r.action).toLowerCase() === 'replace' && !r.sourceLabels)
          .map((r) => [r.targetLabel, r.replacement]),
      );
      for (const expr of exprs) {
        const matchers = /up\{([^}]*)\}/.exec(expr)?.[1] as string;
        assert.ok(matchers, `${expr} selects up series by label`);
        assert.doesNotMatch(matchers, /\bjob\b/, 'not by the job name, which follows the release name');
        for (const [, name, value] of matchers.matchAll(/(\w+)="([^"]*)"/g)) {
          assert.equal(labels[name as string], value, `the ServiceMonitor sets ${name}="${value}"`);
        }
      }
      assert.doesNotMatch(notes, /WARNING: the alert rules are installed without the ServiceMonitor/);
    }
    // Rules without the ServiceMonitor: another scrape config must set the label.
    const { notes } = render({ metrics: { prometheusRule: { enabled: true } } });
    assert.match(notes, /WARNING: the alert rules are installed without the ServiceMonitor/);
    assert.match(notes, /maos_target="server"/);
    assert.doesNotMatch(render({}).notes, /ServiceMonitor/);
  });

  test('the scraped job is the release name whatever the Service type: an upgrade to a LoadBalancer keeps the series', () => {
    // prometheus-operator names the job after the Service the endpoint port is on (no jobLabel),
    // then applies the endpoint's relabelings.
    const jobs = ['ClusterIP', 'NodePort', 'LoadBalancer'].map((type) => {
      const { byKind } = render({
        ...POSTGRES,
        service: { type },
        metrics: { serviceMonitor: { enabled: true } },
      });
      const monitor = one(byKind, 'ServiceMonitor');
      assert.equal(at(monitor, 'spec.jobLabel'), undefined);
      const selector = at(monitor, 'spec.selector.matchLabels') as Doc;
      const scraped = (byKind.get('Service') ?? []).filter(
        (s) =>
          Object.entries(selector).every(([k, v]) => at(s, 'metadata.labels')[k] === v) &&
          (at(s, 'spec.ports') as Doc[]).some((p) => p.name === at(monitor, 'spec.endpoints.0.port')),
      );
      assert.equal(scraped.length, 1, `${type}: one Service carries the metrics port`);
      let job = String(at(scraped[0] as Doc, 'metadata.name'));
      for (const r of (at(monitor, 'spec.endpoints.0.relabelings') ?? []) as Doc[]) {
        if (String(r.action).toLowerCase() === 'replace' && !r.sourceLabels && r.targetLabel === 'job') {
          job = String(r.replacement);
        }
      }
      return job;
    });
    // A new job would start new SLO series and page MaosInstancesAbsent for the old one for a day.
    assert.deepEqual(jobs, ['maos', 'maos', 'maos']);
  });

  test(
    'metrics.prometheusRule: alerts left out, changed and labelled by values; promtool runs the unit tests on the render',
    requireBinary(),
    () => {
      const shippedGroups = readdirSync('deploy/prometheus/rules')
        .filter((f) => f.endsWith('.yml'))
        .flatMap((f) => parseYaml(readFileSync(join('deploy/prometheus/rules', f), 'utf8')).groups as Doc[]);
      const shippedAlerts = new Map(
        shippedGroups.flatMap((g) =>
          (g.rules as Doc[]).filter((r) => r.alert).map((r) => [String(r.alert), r]),
        ),
      );
      const spaceLow = shippedAlerts.get('MaosDataDirSpaceLow') as Doc;
      // As the docs tell an operator: copy the shipped expression, change the threshold.
      const expr = String(spaceLow.expr).replace('< 0.1', '< 0.15');
      assert.notEqual(expr, spaceLow.expr);
      const changes = {
        disabled: { MaosQueueBacklogGrowing: true, MaosTaskLeasesExpiring: true, MaosNotReady: false },
        overrides: {
          MaosDataDirSpaceLow: {
            expr,
            for: '5m',
            labels: { severity: 'warning', team: 'storage' },
            annotations: { summary: 'Less than 15 % disk space left on {{ $labels.instance }}' },
          },
        },
        additionalRuleLabels: { team: 'platform' },
      };
      const groupsOf = (values: Doc): Doc[] =>
        at(
          one(render({ metrics: { prometheusRule: { enabled: true, ...values } } }).byKind, 'PrometheusRule'),
          'spec.groups',
        );
      const changed = groupsOf(changes);
      const rendered = new Map(
        changed.flatMap((g) => (g.rules as Doc[]).filter((r) => r.alert).map((r) => [String(r.alert), r])),
      );
      // Left out: the alerts, and the group they leave empty; `false` keeps one.
      assert.equal(rendered.has('MaosQueueBacklogGrowing'), false);
      assert.equal(rendered.has('MaosTaskLeasesExpiring'), false);
      assert.equal(
        changed.find((g) => g.name === 'maos-engine-alerts'),
        undefined,
        'no empty group',
      );
      assert.ok(rendered.has('MaosNotReady'));
      assert.equal(rendered.size, shippedAlerts.size - 2);
      // Overridden: expr and for replaced, labels and annotations merged, its own labels first.
      assert.deepEqual(rendered.get('MaosDataDirSpaceLow'), {
        ...spaceLow,
        expr,
        for: '5m',
        labels: { severity: 'warning', team: 'storage' },
        annotations: {
          ...(spaceLow.annotations as Doc),
          ...changes.overrides.MaosDataDirSpaceLow.annotations,
        },
      });
      // Every other alert: the shipped rule plus the team label; recording rules unchanged.
      for (const [name, rule] of rendered) {
        if (name === 'MaosDataDirSpaceLow') continue;
        const shipped = shippedAlerts.get(name) as Doc;
        assert.deepEqual(
          rule,
          { ...shipped, labels: { ...(shipped.labels as Doc), team: 'platform' } },
          name,
        );
      }
      const recordings = (groups: Doc[]) => groups.filter((g) => (g.rules as Doc[]).every((r) => r.record));
      assert.deepEqual(recordings(changed), recordings(shippedGroups));

      // Two cases of the shipped unit tests on the rules as a release renders them: as shipped, and
      // with the changes, where the first fires (after the new `for`, with the new labels) and the
      // second no longer does.
      const unitTests = parseYaml(readFileSync('deploy/prometheus/tests/alerts.test.yml', 'utf8'));
      const shippedCase = (name: string): Doc => {
        const found = (unitTests.tests as Doc[]).find((t) => t.name === name);
        assert.ok(found, `deploy/prometheus/tests/alerts.test.yml has "${name}"`);
        return found;
      };
      const spaceLowCase = shippedCase('MaosDataDirSpaceLow: 12 % free stays silent');
      const backlogCase = shippedCase(
        'MaosQueueBacklogGrowing: a backlog growing by one task a minute fires',
      );
      const dir = mkdtempSync(join(tmpdir(), 'maos-chart-rules-'));
      try {
        /** Runs the cases on the groups as a rule file; promtool must accept the file and pass them. */
        const runCases = (groups: Doc[], tests: Doc[], name: string) => {
          const rules = join(dir, `${name}.yml`);
          writeFileSync(rules, JSON.stringify({ groups }));
          const check = runPromtool(['check', 'rules', rules]);
          assert.equal(check.status, 0, `${name}: ${check.stdout}${check.stderr}`);
          const present = new Set(groups.map((g) => g.name));
          const file = join(dir, `${name}.test.yml`);
          const order = (unitTests.group_eval_order as string[]).filter((g) => present.has(g));
          writeFileSync(
            file,
            JSON.stringify({
              rule_files: [rules],
              evaluation_interval: unitTests.evaluation_interval,
              group_eval_order: order,
              tests,
            }),
          );
          const result = runPromtool(['test', 'rules', file]);
          assert.equal(result.status, 0, `${name}:\n${result.stdout}${result.stderr}`);
        };
        runCases(groupsOf({}), [spaceLowCase, backlogCase], 'as-shipped');
        // The example the docs give renders rules promtool accepts.
        const documented = documentedAlertChanges();
        const documentedGroups = groupsOf(at(documented, 'metrics.prometheusRule'));
        const documentedAlerts = documentedGroups.flatMap((g) => (g.rules as Doc[]).filter((r) => r.alert));
        assert.ok(documentedAlerts.every((r) => at(r, 'labels.team') === 'platform'));
        runCases(documentedGroups, [], 'documented');
        const description = String(at(spaceLow, 'annotations.description')).replaceAll(
          '{{ $labels.instance }}',
          'a:9464',
        );
        runCases(
          changed,
          [
            {
              ...spaceLowCase,
              alert_rule_test: [
                { eval_time: '4m', alertname: 'MaosDataDirSpaceLow', exp_alerts: [] },
                {
                  eval_time: '6m',
                  alertname: 'MaosDataDirSpaceLow',
                  exp_alerts: [
                    {
                      exp_labels: { job: 'maos', instance: 'a:9464', severity: 'warning', team: 'storage' },
                      exp_annotations: {
                        summary: 'Less than 15 % disk space left on a:9464',
                        description,
                        runbook_url: 'docs/runbooks/MaosDataDirSpaceLow.md',
                      },
                    },
                  ],
                },
              ],
            },
            {
              ...backlogCase,
              alert_rule_test: (backlogCase.alert_rule_test as Doc[]).map((t) => ({ ...t, exp_alerts: [] })),
            },
          ],
          'changed',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test('metrics.prometheusRule.runbookUrlPrefix makes every shipped runbook_url a link, in one value', () => {
    const shippedAlerts = new Map(
      readdirSync('deploy/prometheus/rules')
        .filter((f) => f.endsWith('.yml'))
        .flatMap((f) => parseYaml(readFileSync(join('deploy/prometheus/rules', f), 'utf8')).groups as Doc[])
        .flatMap((g) => (g.rules as Doc[]).filter((r) => r.alert).map((r) => [String(r.alert), r])),
    );
    assert.ok(shippedAlerts.size > 20);
    const runbooks = (prometheusRule: Doc): Map<string, unknown> =>
      new Map(
        (
          at(
            one(
              render({ metrics: { prometheusRule: { enabled: true, ...prometheusRule } } }).byKind,
              'PrometheusRule',
            ),
            'spec.groups',
          ) as Doc[]
        ).flatMap((g) =>
          (g.rules as Doc[])
            .filter((r) => r.alert)
            .map((r) => [String(r.alert), at(r, 'annotations.runbook_url')]),
        ),
      );
    // Unset (the default): the shipped relative paths, as the plain rule files carry them.
    const asShipped = runbooks({});
    for (const [name, rule] of shippedAlerts) {
      assert.match(String(at(rule, 'annotations.runbook_url')), /^docs\/runbooks\/Maos\w+\.md$/, name);
      assert.equal(asShipped.get(name), at(rule, 'annotations.runbook_url'), name);
    }
    // Set, with or without its closing slash: every alert's runbook under it.
    const base = 'https://git.example.com/platform/maos/blob/v0.1.0';
    for (const runbookUrlPrefix of [base, `${base}/`]) {
      const linked = runbooks({ runbookUrlPrefix });
      assert.equal(linked.size, shippedAlerts.size);
      for (const name of shippedAlerts.keys()) {
        assert.equal(linked.get(name), `${base}/docs/runbooks/${name}.md`, `${runbookUrlPrefix}: ${name}`);
      }
    }
    // A runbook_url an override sets is its own: kept as given, not prefixed.
    const own = 'https://wiki.example.com/oncall/maos-disk';
    const overridden = runbooks({
      runbookUrlPrefix: base,
      overrides: { MaosDataDirSpaceLow: { annotations: { runbook_url: own } } },
    });
    assert.equal(overridden.get('MaosDataDirSpaceLow'), own);
    assert.equal(overridden.get('MaosDataDirFillingUp'), `${base}/docs/runbooks/MaosDataDirFillingUp.md`);
  });

  test('tls.secretName: the server serves HTTPS from the Secret, and probes, Service and Ingress say so', () => {
    const plain = render({ ...POSTGRES_FULL, ingress: { enabled: true } });
    const tls = render({ ...POSTGRES_FULL, ingress: { enabled: true }, tls: { secretName: 'maos-tls' } });
    const serverOf = (byKind: Map<string, Doc[]>) =>
      at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0');
    const envOf = (container: Doc) =>
      Object.fromEntries((container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    for (const [{ byKind }, scheme] of [
      [plain, 'HTTP'],
      [tls, 'HTTPS'],
    ] as const) {
      const server = serverOf(byKind);
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        assert.equal(at(server, `${probe}.httpGet.scheme`), scheme, `${probe} with ${scheme}`);
        assert.equal(at(server, `${probe}.httpGet.port`), 'http');
      }
      // The metrics listener never serves TLS: the ServiceMonitor scrapes plain HTTP either way.
      assert.equal(at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0.port'), 'metrics');
      assert.equal(at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0.scheme') ?? 'http', 'http');
    }
    // The Secret's keys, mounted read-only, are the files the server's tls config names.
    const pod = at(one(tls.byKind, 'Deployment'), 'spec.template.spec');
    const server = serverOf(tls.byKind);
    const volume = pod.volumes.find((v: Doc) => at(v, 'secret.secretName') === 'maos-tls');
    assert.ok(volume, 'the tls Secret is a volume of the pod');
    const mount = server.volumeMounts.find((m: Doc) => m.name === volume.name);
    assert.equal(mount.readOnly, true);
    const env = envOf(server);
    assert.equal(env.MAOS_TLS__CERT_FILE, `${mount.mountPath}/tls.crt`);
    assert.equal(env.MAOS_TLS__KEY_FILE, `${mount.mountPath}/tls.key`);
    assert.equal(envOf(serverOf(plain.byKind)).MAOS_TLS__CERT_FILE, undefined);
    // The migration Job serves nothing: it neither gets the TLS files nor mounts the Secret, which
    // may not exist yet at pre-install.
    const job = at(one(tls.byKind, 'Job'), 'spec.template.spec');
    assert.equal(envOf(job.containers[0]).MAOS_TLS__CERT_FILE, undefined);
    assert.ok(!JSON.stringify(job.volumes ?? []).includes('maos-tls'));
    // The API Service port and the Ingress backend speak HTTPS; plain mode stays as it was.
    const apiPort = (byKind: Map<string, Doc[]>) =>
      at(one(byKind, 'Service'), 'spec.ports').find((p: Doc) => p.name === 'http');
    assert.equal(apiPort(tls.byKind).appProtocol, 'https');
    assert.equal(apiPort(plain.byKind).appProtocol, undefined);
    const backend = (byKind: Map<string, Doc[]>) =>
      at(one(byKind, 'Ingress'), 'metadata.annotations')['nginx.ingress.kubernetes.io/backend-protocol'];
    assert.equal(backend(tls.byKind), 'HTTPS');
    assert.equal(backend(plain.byKind), undefined);
    // An explicit one in ingress.annotations wins (one key, no duplicate in the manifest).
    const own = render({
      ...POSTGRES_FULL,
      ingress: { enabled: true, annotations: { 'nginx.ingress.kubernetes.io/backend-protocol': 'GRPCS' } },
      tls: { secretName: 'maos-tls' },
    });
    assert.equal(backend(own.byKind), 'GRPCS');
    // Without an Ingress, the notes' port-forward URL is https.
    assert.match(render({ tls: { secretName: 'maos-tls' } }).notes, /then https:\/\/127\.0\.0\.1:7070\//);
    assert.match(render({}).notes, /then http:\/\/127\.0\.0\.1:7070\//);
  });

  test('TLS files only through tls.secretName: config.tls and MAOS_TLS__* variables are refused', () => {
    assert.throws(
      () => renderChart(CHART, { config: { tls: { certFile: '/run/tls/crt', keyFile: '/run/tls/key' } } }),
      /config\.tls is set by the chart: set tls\.secretName/,
    );
    assert.throws(
      () => renderChart(CHART, { secretEnv: { MAOS_TLS__KEY_FILE: '/run/tls/key' } }),
      /secretEnv\.MAOS_TLS__KEY_FILE is set by the chart/,
    );
    assert.throws(
      () => renderChart(CHART, { extraEnv: [{ name: 'MAOS_TLS__CERT_FILE', value: '/run/tls/crt' }] }),
      /extraEnv MAOS_TLS__CERT_FILE is set by the chart/,
    );
    assert.ok(render({ extraEnv: [{ name: 'MAOS_LOG_LEVEL', value: 'debug' }] }));
  });

  test('PostgreSQL mode warns in NOTES until a shared audit signing key is configured', () => {
    assert.match(render(POSTGRES).notes, /WARNING: no MAOS_AUDIT__SIGNING_KEY/);
    const withKey = render({ ...POSTGRES, secretEnv: { MAOS_AUDIT__SIGNING_KEY: 'pem' } });
    assert.doesNotMatch(withKey.notes, /MAOS_AUDIT__SIGNING_KEY/);
    const secret = withKey.byKind.get('Secret')?.find((doc) => !at(doc, 'metadata.annotations'));
    assert.equal(at(secret as Doc, 'stringData').MAOS_AUDIT__SIGNING_KEY, 'pem');
    // The key as a mounted file, as values.yaml suggests (config.audit.signingKey_FILE and
    // extraVolumes), or named by a *_FILE variable, is shared by every pod just as well.
    const keyFile = {
      extraVolumes: [{ name: 'audit-key', secret: { secretName: 'maos-audit-key' } }],
      extraVolumeMounts: [{ name: 'audit-key', mountPath: '/run/secrets/maos', readOnly: true }],
    };
    for (const values of [
      { ...keyFile, config: { audit: { signingKey_FILE: '/run/secrets/maos/audit-key' } } },
      {
        ...keyFile,
        extraEnv: [{ name: 'MAOS_AUDIT__SIGNING_KEY_FILE', value: '/run/secrets/maos/audit-key' }],
      },
      { secretEnv: { MAOS_AUDIT__SIGNING_KEY_FILE: '/run/secrets/maos/audit-key' }, ...keyFile },
    ]) {
      assert.doesNotMatch(
        render({ ...POSTGRES, ...values }).notes,
        /MAOS_AUDIT__SIGNING_KEY/,
        JSON.stringify(values),
      );
    }
    // Another variable, or another audit setting, is no key.
    for (const values of [
      { extraEnv: [{ name: 'MAOS_AUDIT__ORIGIN', value: 'maos.example.com/audit' }] },
      { config: { audit: { origin: 'maos.example.com/audit' } } },
    ]) {
      assert.match(render({ ...POSTGRES, ...values }).notes, /WARNING: no MAOS_AUDIT__SIGNING_KEY/);
    }
  });

  test('auditCheckpoints.persistence keeps the checkpoint files on a volume every replica shares', () => {
    const server = (byKind: Map<string, Doc[]>) => at(one(byKind, 'Deployment'), 'spec.template.spec');
    const checkpointDir = (container: Doc) =>
      at(container, 'env').find((e: Doc) => e.name === 'MAOS_AUDIT__CHECKPOINT_DIR')?.value;
    // Default, PostgreSQL mode: the files go to the pod's emptyDir with the data dir; the notes say so.
    const plain = render(POSTGRES);
    assert.equal(checkpointDir(server(plain.byKind).containers[0]), undefined);
    assert.equal(plain.byKind.has('PersistentVolumeClaim'), false);
    assert.match(plain.notes, /WARNING: the copies of the signed audit checkpoints[\s\S]*emptyDir/);
    assert.match(plain.notes, /auditCheckpoints\.persistence\.enabled/);
    // Enabled: a kept ReadWriteMany PVC, mounted where MAOS_AUDIT__CHECKPOINT_DIR points, only in
    // the server (the CLI commands of the notes run there); the migration Job writes no checkpoint.
    const persistent = { ...POSTGRES, auditCheckpoints: { persistence: { enabled: true } } };
    const { byKind, notes } = render(persistent);
    assert.doesNotMatch(notes, /copies of the signed audit checkpoints/);
    const claim = one(byKind, 'PersistentVolumeClaim');
    assert.equal(at(claim, 'metadata.name'), 'maos-audit-checkpoints');
    assert.equal(at(claim, 'metadata.annotations')['helm.sh/resource-policy'], 'keep');
    assert.deepEqual(at(claim, 'spec.accessModes'), ['ReadWriteMany']);
    const pod = server(byKind);
    const volume = pod.volumes.find(
      (v: Doc) => at(v, 'persistentVolumeClaim.claimName') === 'maos-audit-checkpoints',
    );
    assert.ok(volume, 'the pod mounts the claim');
    const mount = pod.containers[0].volumeMounts.find((m: Doc) => m.name === volume.name);
    assert.equal(checkpointDir(pod.containers[0]), mount.mountPath);
    assert.notEqual(mount.readOnly, true);
    assert.ok(!String(mount.mountPath).startsWith('/data/') && !String(mount.mountPath).startsWith('/tmp/'));
    const job = at(one(byKind, 'Job'), 'spec.template.spec');
    assert.equal(checkpointDir(job.containers[0]), undefined);
    // The directory is a configuration MAOS accepts, and the one it writes to.
    const config = loadConfig({
      env: { MAOS_DATA_DIR: '/data', MAOS_AUDIT__CHECKPOINT_DIR: checkpointDir(pod.containers[0]) },
    });
    assert.equal(config.audit.checkpointDir, mount.mountPath);
    // An existing claim: no PVC rendered, the pods mount that one.
    const existing = render({
      ...POSTGRES,
      auditCheckpoints: { persistence: { enabled: true, existingClaim: 'audit-ckpt' } },
    }).byKind;
    assert.equal(existing.has('PersistentVolumeClaim'), false);
    assert.ok(
      server(existing).volumes.some((v: Doc) => at(v, 'persistentVolumeClaim.claimName') === 'audit-ckpt'),
    );
    // SQLite mode: a second PVC beside the database's (one pod: ReadWriteOnce does).
    const sqlite = render({
      auditCheckpoints: { persistence: { enabled: true, accessModes: ['ReadWriteOnce'] } },
    }).byKind;
    assert.deepEqual((sqlite.get('PersistentVolumeClaim') ?? []).map((c) => at(c, 'metadata.name')).sort(), [
      'maos-audit-checkpoints',
      'maos-data',
    ]);
    // A volume the replicas cannot all mount, or a second directory setting, is refused.
    const rwo = { persistence: { enabled: true, accessModes: ['ReadWriteOnce'] } };
    assert.throws(
      () => render({ ...POSTGRES, auditCheckpoints: rwo }),
      /needs ReadWriteMany in PostgreSQL mode/,
    );
    assert.throws(
      () => render({ ...POSTGRES, autoscaling: { enabled: true }, replicaCount: 1, auditCheckpoints: rwo }),
      /needs ReadWriteMany/,
    );
    // Also at one replica: the rolling update starts the new pod (maxSurge, maxUnavailable 0) while
    // the old one holds the volume, maybe on another node, where ReadWriteOnce cannot attach it.
    const single = render({
      ...POSTGRES,
      replicaCount: 1,
      auditCheckpoints: { persistence: { enabled: true } },
    });
    const rollout = at(one(single.byKind, 'Deployment'), 'spec.strategy');
    assert.equal(rollout.type, 'RollingUpdate');
    assert.equal(rollout.rollingUpdate.maxUnavailable, 0);
    assert.throws(
      () => render({ ...POSTGRES, replicaCount: 1, auditCheckpoints: rwo }),
      /needs ReadWriteMany in PostgreSQL mode: every pod mounts the checkpoint volume, also the old and the new pod of a rolling update/,
    );
    // With a claim of the operator's own, its access modes are the operator's to choose.
    assert.ok(
      render({
        ...POSTGRES,
        replicaCount: 1,
        auditCheckpoints: { persistence: { ...rwo.persistence, existingClaim: 'audit-ckpt' } },
      }).byKind.has('Deployment'),
    );
    assert.throws(
      () => render({ ...persistent, config: { audit: { checkpointDir: '/elsewhere' } } }),
      /config\.audit\.checkpointDir is set by the chart/,
    );
    assert.throws(
      () => render({ ...persistent, extraEnv: [{ name: 'MAOS_AUDIT__CHECKPOINT_DIR', value: '/x' }] }),
      /extraEnv MAOS_AUDIT__CHECKPOINT_DIR is set by the chart/,
    );
    assert.throws(
      () => render({ ...persistent, secretEnv: { MAOS_AUDIT__CHECKPOINT_DIR: '/x' } }),
      /secretEnv\.MAOS_AUDIT__CHECKPOINT_DIR is set by the chart/,
    );
    // A directory of their own (an extraVolume), set in config or by variable: no warning either.
    for (const values of [
      { config: { audit: { checkpointDir: '/mnt/ckpt' } } },
      { extraEnv: [{ name: 'MAOS_AUDIT__CHECKPOINT_DIR', value: '/mnt/ckpt' }] },
      { secretEnv: { MAOS_AUDIT__CHECKPOINT_DIR: '/mnt/ckpt' } },
    ]) {
      assert.doesNotMatch(render({ ...POSTGRES, ...values }).notes, /copies of the signed audit checkpoints/);
    }
    assert.match(
      render({ ...POSTGRES, extraEnv: [{ name: 'MAOS_LOG_LEVEL', value: 'debug' }] }).notes,
      /copies of the signed audit checkpoints/,
    );
  });

  test('PostgreSQL mode names MAOS_STORE__URL: a Secret without it stops the pod, not a silent SQLite', () => {
    const storeUrl = (container: Doc) =>
      at(container, 'env').find((e: Doc) => e.name === 'MAOS_STORE__URL')?.valueFrom?.secretKeyRef;
    for (const [values, secret, jobSecret] of [
      [{ database: { mode: 'postgres' }, existingSecret: 'maos-prod-env' }, 'maos-prod-env', 'maos-prod-env'],
      [POSTGRES, 'maos', 'maos-migration'],
    ] as const) {
      const { byKind } = render(values);
      const server = at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0');
      const job = at(one(byKind, 'Job'), 'spec.template.spec.containers.0');
      assert.deepEqual(storeUrl(server), { name: secret, key: 'MAOS_STORE__URL' });
      assert.deepEqual(storeUrl(job), { name: jobSecret, key: 'MAOS_STORE__URL' });
    }
    // SQLite mode reads no database URL.
    const sqlite = at(one(render({}).byKind, 'Deployment'), 'spec.template.spec');
    for (const container of [...sqlite.containers, ...sqlite.initContainers]) {
      assert.equal(storeUrl(container), undefined);
    }
  });

  test('SQLite mode refuses a database URL the pod would run on instead of its SQLite file; existingSecret and URL files are checked in the pod', () => {
    const url = 'postgres://maos:s3cret@db.internal:5432/maos';
    const why =
      /but database\.mode is sqlite: the one pod would run on that database while the chart renders SQLite mode \(one replica, Recreate, a PVC for the database\): set database\.mode=postgres with the URL in database\.postgres\.url or as MAOS_STORE__URL in existingSecret/;
    const refused: Array<[Doc, RegExp]> = [
      [
        { secretEnv: { MAOS_STORE__URL: url } },
        /^.*secretEnv\.MAOS_STORE__URL is a database URL other than a sqlite: path \(not shown\) /,
      ],
      // Without a password (one with a password is refused as a secret in the Deployment first).
      [
        { extraEnv: [{ name: 'MAOS_STORE__URL', value: 'postgres://db.internal:5432/maos' }] },
        /extraEnv MAOS_STORE__URL gives the database URL/,
      ],
      [
        { extraEnv: [{ name: 'MAOS_STORE__URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } }] },
        /extraEnv MAOS_STORE__URL gives the database URL \(a value other than a sqlite: path, or one the chart cannot see\)/,
      ],
    ];
    for (const [values, message] of refused) {
      const error = (() => {
        try {
          render(values);
        } catch (caught) {
          return String(caught);
        }
        assert.fail(`rendered: ${JSON.stringify(values)}`);
      })();
      assert.match(error, message, JSON.stringify(values));
      assert.match(error, why, JSON.stringify(values));
      assert.ok(!error.includes('s3cret'), 'the URL is not repeated');
    }
    // Ignored in SQLite mode: the pod would run on SQLite, not on the database meant.
    assert.throws(
      () => render({ database: { postgres: { url } } }),
      /database\.postgres\.url is set but database\.mode is sqlite: the chart would not pass the URL on/,
    );
    // A sqlite: path is a SQLite file: it passes, as config.store.url does.
    render({ secretEnv: { MAOS_STORE__URL: 'sqlite:/data/other.db' } });
    render({ extraEnv: [{ name: 'MAOS_STORE__URL', value: 'sqlite:/data/other.db' }] });
    // PostgreSQL mode takes the URL from its own places, as before.
    render({ ...POSTGRES, extraEnv: [{ name: 'MAOS_STORE__URL_FILE', value: '/run/secrets/maos/url' }] });
    // existingSecret, which the chart cannot read: the pod's first init container checks what the
    // server would read (env over envFrom) before the migration or the server touch a database.
    const initOf = (values: Doc) =>
      (at(one(render(values).byKind, 'Deployment'), 'spec.template.spec.initContainers') ?? []) as Doc[];
    const withSecret = initOf({ existingSecret: 'maos-env', extraEnv: [{ name: 'A', value: 'b' }] });
    assert.deepEqual(
      withSecret.map((c) => c.name),
      ['check-store', 'migrate'],
    );
    const check = withSecret[0] as Doc;
    assert.deepEqual(check.command, ['node', '-e']);
    assert.deepEqual(check.envFrom, [{ secretRef: { name: 'maos-env' } }]);
    assert.deepEqual(
      check.env,
      (withSecret[1] as Doc).env,
      'the environment the migration and the server get',
    );
    assert.deepEqual(
      initOf({ existingSecret: 'maos-env', migration: { enabled: false } }).map((c) => c.name),
      ['check-store'],
    );
    assert.deepEqual(
      initOf({}).map((c) => c.name),
      ['migrate'],
      'the chart Secret is checked at render',
    );
    assert.deepEqual(initOf({ database: { mode: 'postgres' }, existingSecret: 'maos-env' }), []);
    // A file named by MAOS_STORE__URL_FILE, which may hold a sqlite: path (the server reads it): not
    // refused at render, checked in the pod, with the config file and the mounted files it reads.
    const files = {
      extraVolumes: [{ name: 'files', secret: { secretName: 'maos-files' } }],
      extraVolumeMounts: [{ name: 'files', mountPath: '/run/secrets/maos', readOnly: true }],
    };
    for (const values of [
      { ...files, secretEnv: { MAOS_STORE__URL_FILE: '/run/secrets/maos/url' } },
      { ...files, extraEnv: [{ name: 'MAOS_STORE__URL_FILE', value: '/run/secrets/maos/url' }] },
    ]) {
      const init = initOf(values);
      assert.deepEqual(
        init.map((c) => c.name),
        ['check-store', 'migrate'],
        JSON.stringify(values),
      );
      assert.deepEqual((init[0] as Doc).volumeMounts, [
        { name: 'config', mountPath: '/etc/maos', readOnly: true },
        ...files.extraVolumeMounts,
      ]);
    }
  });

  test('existingSecret: no chart Secret, pods and the Job read the named one', () => {
    const { byKind } = render({ database: { mode: 'postgres' }, existingSecret: 'maos-prod-env' });
    assert.equal(byKind.has('Secret'), false);
    const deployment = one(byKind, 'Deployment');
    assert.equal(at(deployment, 'spec.template.spec.containers.0.envFrom.0.secretRef.name'), 'maos-prod-env');
    assert.equal(
      at(one(byKind, 'Job'), 'spec.template.spec.containers.0.envFrom.0.secretRef.name'),
      'maos-prod-env',
    );
  });

  test('the Ingress lets through request bodies as large as the server accepts (http.bodyLimitBytes)', () => {
    const bodySize = (values: Doc) =>
      at(one(render({ ingress: { enabled: true }, ...values }).byKind, 'Ingress'), 'metadata.annotations')[
        'nginx.ingress.kubernetes.io/proxy-body-size'
      ];
    // The server's default limit (1 MiB), which is also ingress-nginx's: stated, not left to the controller.
    assert.equal(bodySize({}), '1048576');
    const defaultLimit = configSchema.parse({}).http.bodyLimitBytes;
    assert.equal(Number(bodySize({})), defaultLimit);
    // A raised limit: ingress-nginx would otherwise answer 413 (HTML) to bodies the server accepts.
    assert.equal(bodySize({ config: { http: { bodyLimitBytes: 26214400 } } }), '26214400');
    assert.equal(bodySize({ config: { http: { trustedProxies: ['10.0.0.0/8'] } } }), '1048576');
    // Where the pods get it: an extraEnv value wins over secretEnv, which wins over the config file.
    const limitVar = 'MAOS_HTTP__BODY_LIMIT_BYTES';
    assert.equal(bodySize({ extraEnv: [{ name: limitVar, value: '5242880' }] }), '5242880');
    assert.equal(bodySize({ secretEnv: { [limitVar]: '4194304' } }), '4194304');
    assert.equal(
      bodySize({
        config: { http: { bodyLimitBytes: 2097152 } },
        secretEnv: { [limitVar]: '4194304' },
        extraEnv: [{ name: limitVar, value: '8388608' }],
      }),
      '8388608',
    );
    // secretEnv is unused beside existingSecret.
    assert.equal(bodySize({ existingSecret: 'env', secretEnv: { [limitVar]: '4194304' } }), '1048576');
    // An annotation of the operator's own wins (and is not written twice).
    assert.equal(
      bodySize({
        ingress: { enabled: true, annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '0' } },
      }),
      '0',
    );
  });

  test("an annotation the chart sets itself, given in ingress.annotations, is written once with the operator's value", () => {
    const own = {
      'nginx.ingress.kubernetes.io/proxy-buffering': 'on',
      'nginx.ingress.kubernetes.io/proxy-request-buffering': 'on',
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '600',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '600',
      'nginx.ingress.kubernetes.io/proxy-http-version': '1.0',
      'nginx.ingress.kubernetes.io/canary-weight': '5',
      'nginx.ingress.kubernetes.io/canary-by-header': 'X-Own',
    };
    // The renderer refuses a mapping with a key twice, as strict YAML parsers do.
    const { byKind } = render({
      ingress: { enabled: true, annotations: own, canary: { enabled: true, weight: 20, header: 'X-Canary' } },
    });
    const annotations = at(one(byKind, 'Ingress'), 'metadata.annotations');
    for (const [key, value] of Object.entries(own)) assert.equal(annotations[key], value, key);
    assert.equal(annotations['nginx.ingress.kubernetes.io/canary'], 'true');
  });

  test('canary release: a second Ingress marked as weighted ingress-nginx canary', () => {
    const values = parseYaml(readFileSync(join(CHART, 'examples/values-canary.yaml'), 'utf8'));
    const { byKind } = render(values);
    const annotations = at(one(byKind, 'Ingress'), 'metadata.annotations');
    assert.equal(annotations['nginx.ingress.kubernetes.io/canary'], 'true');
    assert.match(annotations['nginx.ingress.kubernetes.io/canary-weight'], /^\d+$/);
  });

  test('canary on top of the production values (as the docs install it): one pod, no second rules', () => {
    const production = parseYaml(readFileSync(join(CHART, 'examples/values-postgres.yaml'), 'utf8'));
    const canary = parseYaml(readFileSync(join(CHART, 'examples/values-canary.yaml'), 'utf8'));
    const { byKind, notes } = render(mergeValues(production, canary));
    assert.equal(at(one(byKind, 'Deployment'), 'spec.replicas'), 1);
    // No hook Job, but its server migrates the shared database at start (as every `maos serve`
    // does), which stops pods of the stable release from starting: the notes say so.
    assert.deepEqual(at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.args'), ['serve']);
    assert.doesNotMatch(notes, /migrations ran/);
    // The notes name the version the canary runs (its image tag), not the chart's appVersion.
    assert.match(notes, /^MAOS \(ghcr\.io\/maos-project\/maos:0\.2\.0\) is deployed as maos /m);
    assert.match(notes, /apply this image's pending migrations to the database when they start/);
    assert.match(notes, /refuse to start\s+\(DATABASE_NEWER_THAN_CODE\)/);
    for (const kind of [
      'ScaledObject',
      'HorizontalPodAutoscaler',
      'PrometheusRule',
      'Job',
      'PodDisruptionBudget',
    ]) {
      assert.equal(byKind.has(kind), false, `the canary renders no ${kind}`);
    }
    assert.ok(byKind.has('ServiceMonitor'), 'the canary is scraped, to compare it with the stable release');
  });

  test('extraVolumes are mounted where *_FILE keys and database URL files point, in every container', () => {
    const files = {
      extraVolumes: [
        { name: 'maos-files', secret: { secretName: 'maos-files' } },
        { name: 'db-ca', configMap: { name: 'db-ca' } },
      ],
      extraVolumeMounts: [
        { name: 'maos-files', mountPath: '/run/secrets/maos', readOnly: true },
        { name: 'db-ca', mountPath: '/etc/maos-ca', readOnly: true },
      ],
      config: { audit: { signingKey_FILE: '/run/secrets/maos/audit-key' } },
    };
    const mounted = (container: Doc) => at(container, 'volumeMounts').map((m: Doc) => m.mountPath);
    const volumes = (pod: Doc) => at(pod, 'volumes').map((v: Doc) => v.name);
    const sqlite = at(one(render(files).byKind, 'Deployment'), 'spec.template.spec');
    const postgres = render({
      ...files,
      database: {
        mode: 'postgres',
        postgres: { url: 'postgres://m:p@db/maos?sslmode=verify-full&sslrootcert=/etc/maos-ca/ca.crt' },
      },
    }).byKind;
    const job = at(one(postgres, 'Job'), 'spec.template.spec');
    for (const [pod, containers] of [
      [sqlite, [...sqlite.containers, ...sqlite.initContainers]],
      [job, job.containers],
    ]) {
      assert.ok(volumes(pod).includes('maos-files') && volumes(pod).includes('db-ca'));
      for (const container of containers) {
        assert.ok(mounted(container).includes('/run/secrets/maos'), container.name);
        assert.ok(mounted(container).includes('/etc/maos-ca'), container.name);
        assert.ok(mounted(container).includes('/tmp'), 'the chart mounts stay');
      }
    }
  });

  test('the migration Job runs on the nodes the server may run on (node selector, tolerations, node affinity)', () => {
    const nodeAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['maos'] }] }],
      },
    };
    // Required anti-affinity to the server's own pods: with a server on every node, the Job could
    // not be placed at all; it concerns the replicas, not the Job.
    const podAntiAffinity = {
      requiredDuringSchedulingIgnoredDuringExecution: [
        {
          topologyKey: 'kubernetes.io/hostname',
          labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'maos' } },
        },
      ],
    };
    const placement = {
      nodeSelector: { 'kubernetes.io/arch': 'amd64' },
      tolerations: [{ key: 'pool', operator: 'Equal', value: 'maos', effect: 'NoSchedule' }],
      affinity: { nodeAffinity, podAntiAffinity },
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'zone',
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: { matchLabels: { a: 'b' } },
        },
      ],
    };
    const { byKind } = render({ ...POSTGRES, ...placement });
    const server = at(one(byKind, 'Deployment'), 'spec.template.spec');
    const job = at(one(byKind, 'Job'), 'spec.template.spec');
    assert.deepEqual(server.nodeSelector, placement.nodeSelector);
    assert.deepEqual(job.nodeSelector, server.nodeSelector);
    assert.deepEqual(job.tolerations, server.tolerations);
    assert.deepEqual(job.affinity, { nodeAffinity });
    assert.equal(job.topologySpreadConstraints, undefined);
    // Without any, the Job's pod spec has none of them.
    const plain = at(one(render(POSTGRES).byKind, 'Job'), 'spec.template.spec');
    for (const key of ['nodeSelector', 'tolerations', 'affinity']) assert.equal(plain[key], undefined, key);
    assert.equal(
      at(
        one(render({ ...POSTGRES, affinity: { podAntiAffinity } }).byKind, 'Job'),
        'spec.template.spec.affinity',
      ),
      undefined,
    );
  });

  test('a termination grace shorter than the shutdown drain + grace is refused', () => {
    const stopRule = /terminationGracePeriodSeconds \(45\) must be at least .*\(130\)/;
    assert.throws(() => renderChart(CHART, { config: { shutdown: { graceSeconds: 120 } } }), stopRule);
    assert.throws(
      () => renderChart(CHART, { terminationGracePeriodSeconds: 30 }),
      /terminationGracePeriodSeconds \(30\) must be at least .*\(40\)/,
    );
    // The server's defaults (grace 30, no drain) when the chart's config has no shutdown section.
    assert.throws(
      () => renderChart(CHART, { config: { shutdown: null }, terminationGracePeriodSeconds: 34 }),
      /\(35\)/,
    );
    // Read where the pods get them: an extraEnv value wins over secretEnv, which wins over the file.
    assert.throws(
      () => renderChart(CHART, { extraEnv: [{ name: 'MAOS_SHUTDOWN__GRACE_SECONDS', value: '120' }] }),
      /terminationGracePeriodSeconds \(45\) must be at least .*\(130; graceSeconds 120 from extraEnv MAOS_SHUTDOWN__GRACE_SECONDS/,
    );
    assert.throws(
      () => renderChart(CHART, { secretEnv: { MAOS_SHUTDOWN__DRAIN_DELAY_SECONDS: '60' } }),
      /terminationGracePeriodSeconds \(45\) must be at least .*\(95; drainDelaySeconds 60 from secretEnv/,
    );
    assert.throws(
      () =>
        renderChart(CHART, {
          config: { shutdown: { graceSeconds: 10 } },
          secretEnv: { MAOS_SHUTDOWN__GRACE_SECONDS: '10' },
          extraEnv: [{ name: 'MAOS_SHUTDOWN__GRACE_SECONDS', value: '100' }],
        }),
      /\(110; graceSeconds 100 from extraEnv/,
    );
    // secretEnv is not used beside existingSecret; a value from a Secret (valueFrom) is not visible.
    render({
      existingSecret: 'maos-env',
      secretEnv: { MAOS_SHUTDOWN__GRACE_SECONDS: '600' },
      extraEnv: [
        { name: 'MAOS_SHUTDOWN__GRACE_SECONDS', valueFrom: { secretKeyRef: { name: 'x', key: 'y' } } },
      ],
    });
    const fits = render({
      config: { shutdown: { graceSeconds: 120, drainDelaySeconds: 10 } },
      terminationGracePeriodSeconds: 135,
    });
    render({
      config: { shutdown: { graceSeconds: 120 } },
      extraEnv: [{ name: 'MAOS_SHUTDOWN__GRACE_SECONDS', value: '20' }],
    });
    assert.equal(at(one(fits.byKind, 'Deployment'), 'spec.template.spec.terminationGracePeriodSeconds'), 135);
  });

  test('the metrics port may not be the API port: a pod MAOS refuses to start, or a Service with one port twice', async () => {
    const port = await freePort('0.0.0.0');
    const metricsPort = await freePort('0.0.0.0');
    // The listeners the chart gives the server container (its plain values; not the config file).
    const podEnv = (values: Doc) =>
      Object.fromEntries(
        (at(one(render(values).byKind, 'Deployment'), 'spec.template.spec.containers.0.env') as Doc[])
          .filter((e) => 'value' in e && e.name !== 'MAOS_CONFIG')
          .map((e) => [e.name, e.value]),
      );
    const env = podEnv({ service: { targetPort: port, metricsPort } });
    await assertListenAddressesUsable(loadConfig({ env }));
    // With both on one port, as the chart rendered it before, the server would refuse to start.
    // (refused by the configuration itself since both bind 0.0.0.0, as `maos config check` does)
    await assert.rejects(
      async () =>
        assertListenAddressesUsable(loadConfig({ env: { ...env, MAOS_METRICS__PORT: String(port) } })),
      (error: Error & { code?: string }) => error.code === 'CONFIG_INVALID',
    );
    assert.throws(
      () => renderChart(CHART, { service: { targetPort: port, metricsPort: port } }),
      new RegExp(`service\\.metricsPort \\(${port}\\) is the API's container port service\\.targetPort`),
    );
    assert.throws(
      () => renderChart(CHART, { service: { port: 9464 } }),
      /service\.metricsPort \(9464\) is also the Service's API port service\.port/,
    );
    // The Service's API port may be the container's (7070 both), as long as metrics differ.
    assert.ok(render({ service: { port: 7070 } }).byKind.has('Service'));
  });

  test('PostgreSQL mode: a startup probe or migration deadline not longer than the database wait at start is refused', () => {
    const withWait = (values: Doc) => mergeValues(POSTGRES, values);
    // 400 s of waiting against the probe's 60 × 5 s: restarted while it waits, and the message says so.
    assert.throws(
      () => renderChart(CHART, withWait({ config: { store: { startupWaitMs: 400_000 } } })),
      new RegExp(
        'probes\\.startup gives a pod 300 s to start \\(failureThreshold 60 × periodSeconds 5\\), not more than ' +
          'the 400000 ms it may wait for PostgreSQL before it listens \\(config\\.store\\.startupWaitMs\\)' +
          '.*Raise probes\\.startup\\.failureThreshold to at least 81',
      ),
    );
    // Equal is not enough: the pod still has to migrate and listen after the wait.
    assert.throws(
      () =>
        renderChart(
          CHART,
          withWait({
            config: { store: { startupWaitMs: 400_000 } },
            probes: { startup: { failureThreshold: 80 } },
          }),
        ),
      /probes\.startup gives a pod 400 s to start/,
    );
    // The server's default wait (60 s) against a probe shortened to 50 s.
    assert.throws(
      () => renderChart(CHART, withWait({ probes: { startup: { failureThreshold: 10 } } })),
      /not more than the 60000 ms .*\(config\.store\.startupWaitMs, the server's default\)/,
    );
    // The variable the pods get wins over the config file, an extraEnv value over secretEnv's.
    assert.throws(
      () => renderChart(CHART, withWait({ secretEnv: { MAOS_STORE__STARTUP_WAIT_MS: '400000' } })),
      /the 400000 ms .*\(secretEnv\.MAOS_STORE__STARTUP_WAIT_MS\)/,
    );
    assert.throws(
      () =>
        renderChart(
          CHART,
          withWait({
            config: { store: { startupWaitMs: 1000 } },
            secretEnv: { MAOS_STORE__STARTUP_WAIT_MS: '1000' },
            extraEnv: [{ name: 'MAOS_STORE__STARTUP_WAIT_MS', value: '450000' }],
          }),
        ),
      /the 450000 ms .*\(extraEnv MAOS_STORE__STARTUP_WAIT_MS\).*at least 91/,
    );
    // The migration Job waits as long: its deadline must be longer too.
    assert.throws(
      () =>
        renderChart(
          CHART,
          withWait({
            config: { store: { startupWaitMs: 700_000 } },
            probes: { startup: { failureThreshold: 200 } },
          }),
        ),
      /migration\.activeDeadlineSeconds \(600\) is not more than the 700000 ms maos migrate may wait for PostgreSQL \(config\.store\.startupWaitMs\).*above 700/,
    );
    // Budgets above the wait render, with the probe as set.
    const fits = render(
      withWait({
        config: { store: { startupWaitMs: 700_000 } },
        probes: { startup: { failureThreshold: 141 } },
        migration: { activeDeadlineSeconds: 900 },
      }),
    );
    assert.equal(
      at(one(fits.byKind, 'Deployment'), 'spec.template.spec.containers.0.startupProbe.failureThreshold'),
      141,
    );
    // SQLite mode does not wait for a database: no budget to check.
    assert.doesNotThrow(() =>
      renderChart(CHART, {
        config: { store: { startupWaitMs: 700_000 } },
        probes: { startup: { failureThreshold: 1 } },
      }),
    );
  });

  test('config refuses a database URL (a password in a ConfigMap) and the metrics listener the chart sets', () => {
    assert.throws(
      () => renderChart(CHART, { config: { store: { url: 'postgres://maos:pw@db/maos' } } }),
      /config\.store\.url would put the database URL and its password in a ConfigMap/,
    );
    assert.throws(
      () => renderChart(CHART, { config: { metrics: { port: 9100 } } }),
      /set service\.metricsPort instead/,
    );
    assert.throws(() => renderChart(CHART, { config: { metrics: { host: '::' } } }), /service\.metricsPort/);
    // A SQLite file path is no secret, a *_FILE reference holds none, other metrics keys are free.
    const allowed = render({
      config: {
        store: { url: 'sqlite:/data/other.db', busyTimeoutMs: 9000 },
        metrics: { collectDefaults: false },
      },
    });
    const file = parseYaml(String(at(serverConfigMap(allowed.byKind), 'data')['config.yaml']));
    assert.equal(file.store.url, 'sqlite:/data/other.db');
    assert.ok(render({ ...POSTGRES, config: { store: { url_FILE: '/run/secrets/maos/db-url' } } }));
  });

  test('config.metrics.enabled false is refused while a ServiceMonitor, the alert rules or KEDA read the metrics port', () => {
    const off = { config: { metrics: { enabled: false } } };
    // The server then opens no metrics listener at all, whatever port the chart gives it.
    const env = Object.fromEntries(
      (at(one(render(off).byKind, 'Deployment'), 'spec.template.spec.containers.0.env') as Doc[])
        .filter((e) => 'value' in e && e.name !== 'MAOS_CONFIG')
        .map((e) => [e.name, e.value]),
    );
    const config = loadConfig({ env: { ...env, MAOS_METRICS__ENABLED: 'false' } });
    assert.deepEqual(
      listenAddresses(config).map((a) => a.listener),
      ['the API'],
    );
    // Nothing reads the port: no metrics is the operator's choice.
    assert.ok(render(off).byKind.has('Deployment'));
    assert.ok(render(mergeValues(POSTGRES, { ...off, keda: { enabled: true, trigger: 'postgresql' } })));
    for (const [values, reader] of [
      [
        { metrics: { serviceMonitor: { enabled: true } } },
        /metrics\.serviceMonitor\.enabled \(every scrape would fail\)/,
      ],
      [
        { metrics: { prometheusRule: { enabled: true } } },
        /metrics\.prometheusRule\.enabled \(MaosInstancesAbsent would fire\)/,
      ],
      [
        mergeValues(POSTGRES, { keda: { enabled: true } }),
        /keda\.trigger prometheus \(no maos_tasks series to scale on\)/,
      ],
    ] as const) {
      assert.throws(
        () => renderChart(CHART, mergeValues(values as Doc, off)),
        new RegExp(
          `config\\.metrics\\.enabled is false, so nothing serves the metrics port, yet ${reader.source}`,
        ),
      );
      assert.ok(render(values as Doc).byKind.has('Deployment'));
    }
  });

  test('config refuses every secret MAOS reads; the variable the message names sets it from the Secret', () => {
    // The config file is a ConfigMap: anyone who may read ConfigMaps in the namespace (the `view`
    // role) would read these. Each case: config with the secret, and the key path the secret sits at.
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
    const cases: Array<{ config: Doc; path: string[]; message: RegExp }> = [
      {
        config: { audit: { signingKey: String(pem) } },
        path: ['audit', 'signingKey'],
        message: /is a secret/,
      },
      {
        config: { providers: { openai: { type: 'openai', model: 'gpt-4o', apiKey: 'sk-test-1234' } } },
        path: ['providers', 'openai', 'apiKey'],
        message: /is a secret/,
      },
      {
        config: {
          providers: {
            gw: {
              type: 'openai-compatible',
              model: 'm',
              baseURL: 'https://llm.internal/v1',
              headers: { Authorization: 'Bearer t' },
            },
          },
        },
        path: ['providers', 'gw', 'headers', 'Authorization'],
        message: /every value of a provider's headers and of a runner's env/,
      },
      {
        config: { runners: { npm: { command: ['npm', 'publish'], env: { NPM_TOKEN: 'npm_abc' } } } },
        path: ['runners', 'npm', 'env', 'NPM_TOKEN'],
        message: /every value of a provider's headers and of a runner's env/,
      },
      {
        config: { egress: { proxy: { url: 'http://maos:pw@proxy.corp:3128' } } },
        path: ['egress', 'proxy', 'url'],
        message: /holds a password/,
      },
      // The password as a URL parser reads it: no user name, or an @ in the user name.
      {
        config: { egress: { proxy: { url: 'http://:pw@proxy.corp:3128' } } },
        path: ['egress', 'proxy', 'url'],
        message: /holds a password/,
      },
      {
        config: { egress: { proxy: { url: 'http://me@corp:pw@proxy.corp:3128' } } },
        path: ['egress', 'proxy', 'url'],
        message: /holds a password/,
      },
      {
        config: { secrets: { kekRing: `k1:${Buffer.alloc(32, 7).toString('base64')}` } },
        path: ['secrets', 'kekRing'],
        message: /is a secret/,
      },
      // A key in the base URL's query (a gateway's ?key=, Azure's api-key=), sent with every request.
      {
        config: {
          providers: {
            gw: { type: 'openai-compatible', model: 'm', baseURL: 'https://gw.example/v1?key=AIzaSy-test' },
          },
        },
        path: ['providers', 'gw', 'baseURL'],
        message: /holds a secret in its query/,
      },
      {
        config: {
          providers: {
            az: {
              type: 'openai-compatible',
              model: 'm',
              baseURL: 'https://az.example/openai?api-version=2024-06-01&API-KEY=abc123',
            },
          },
        },
        path: ['providers', 'az', 'baseURL'],
        message: /holds a secret in its query/,
      },
    ];
    // The chart names secrets by the server's own pattern (SECRET_KEY_PATTERN), not a copy that drifts:
    // one named template, used for config keys, extraEnv variables and URL query parameters.
    const helpers = readFileSync(join(CHART, 'templates/_helpers.tpl'), 'utf8');
    assert.ok(
      helpers.includes(`{{- define "maos.secretKeyPattern" -}}\n${SECRET_KEY_PATTERN.source}\n{{- end -}}`),
      'maos.secretKeyPattern is SECRET_KEY_PATTERN',
    );
    assert.equal(
      helpers.split('passphrase').length - 1,
      1,
      'one copy of the secret-key pattern in the chart',
    );
    const valueAt = (tree: unknown, path: string[]): unknown =>
      path.reduce<unknown>((node, key) => {
        const map = (node ?? {}) as Record<string, unknown>;
        // Header names ignore case (MAOS_…__HEADERS__AUTHORIZATION sets AUTHORIZATION).
        const found = Object.keys(map).find((k) => k === key || k.toLowerCase() === key.toLowerCase());
        return found === undefined ? undefined : map[found];
      }, tree);
    const withoutLeaf = (tree: Doc, path: string[]): Doc => {
      const [head, ...rest] = path as [string, ...string[]];
      if (rest.length === 0) {
        const { [head]: _, ...others } = tree;
        return others;
      }
      return { ...tree, [head]: withoutLeaf(tree[head] as Doc, rest) };
    };
    const dir = mkdtempSync(join(tmpdir(), 'maos-chart-secrets-'));
    try {
      for (const { config, path, message } of cases) {
        const where = `config.${path.join('.')}`;
        let refusal = '';
        assert.throws(
          () => renderChart(CHART, { config }),
          (error: Error) => {
            refusal = error.message;
            return true;
          },
          `${where} is refused`,
        );
        assert.match(refusal, message);
        assert.ok(refusal.startsWith(`${where} `), refusal);
        assert.match(refusal, /chart's ConfigMap/);
        assert.ok(refusal.includes(`or ${where}_FILE to a file mounted with extraVolumes`), refusal);
        const variable = /set (MAOS_\S+) in secretEnv or existingSecret/.exec(refusal)?.[1];
        assert.ok(variable, refusal);
        // The advice works: the variable in secretEnv, the rest in config, read by the real loader.
        const { byKind } = render({
          config: withoutLeaf(config, path),
          secretEnv: { [variable]: valueAt(config, path) },
        });
        const configPath = join(dir, 'config.yaml');
        writeFileSync(configPath, String(at(serverConfigMap(byKind), 'data')['config.yaml']));
        const env = Object.fromEntries(
          at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.env').map(
            (e: { name: string; value: string }) => [e.name, e.value],
          ),
        );
        const loaded = loadConfig({
          configPath,
          env: { ...env, ...at(one(byKind, 'Secret'), 'stringData'), MAOS_DATA_DIR: dir },
        });
        assert.equal(valueAt(loaded, path), valueAt(config, path), `${variable} sets ${where}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Not secrets: files named by *_FILE keys, numbers under token-like names, URLs without a password.
    const allowed: Doc = {
      audit: { signingKey_FILE: '/run/secrets/maos/audit-key' },
      providers: {
        gw: {
          type: 'openai-compatible',
          baseURL: 'https://llm.internal/v1?api-version=2024-06-01',
          headers: { Authorization_FILE: '/run/secrets/maos/gw-auth' },
        },
      },
      runners: {
        npm: { command: ['npm', 'test'], env: { NPM_TOKEN_FILE: '/run/secrets/maos/npm' } },
        // A runner named `env` is no runner's env: its command is no secret.
        env: { command: ['make', 'check'] },
      },
      // A tenant id is a name, whatever it says.
      llm: {
        budgets: { default: { maxTokens: 100000 } },
        approval: { tenants: { 'token-team': 'required' } },
      },
      // Runner names allowed to a tenant, whatever its id says.
      // A tenant id `env` is no runner's env either.
      runnerAccess: { tenants: { 'token-team': ['npm'], 'secret-lab': [], env: ['npm'] } },
      rateLimit: { maxDailyTokensPerTenant: 500000 },
      webhooks: { secretRotationGraceSeconds: 600 },
      egress: { proxy: { url: 'http://proxy.corp:3128' } },
      secrets: { kekRing_FILE: '/run/secrets/maos/kek' },
    };
    const file = parseYaml(
      String(at(serverConfigMap(render({ config: allowed }).byKind), 'data')['config.yaml']),
    );
    const { auth: _, ...rendered } = file;
    assert.deepEqual(
      rendered,
      mergeValues(parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')).config, allowed),
    );
  });

  test('extraEnv refuses a secret as a plain value (part of the Deployment) and the variables the chart sets', () => {
    const refused: Array<[string, string]> = [
      ['MAOS_PROVIDERS__OPENAI__API_KEY', 'sk-test-1234'],
      ['MAOS_AUDIT__SIGNING_KEY', '-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----'],
      ['MAOS_SECRETS__KEK_RING', 'k1:abc'],
      ['MAOS_RUNNERS__NPM__ENV__NPM_TOKEN', 'npm_abc'],
      ['MAOS_RUNNERS__NPM__ENV', '{"NPM_TOKEN":"npm_abc"}'],
      ['MAOS_PROVIDERS__GW__HEADERS__AUTHORIZATION', 'Bearer t'],
      ['MAOS_STORE__URL', 'postgres://maos:pw@db:5432/maos'],
      ['MAOS_EGRESS__PROXY__URL', 'http://maos:pw@proxy.corp:3128'],
      ['MAOS_EGRESS__PROXY__URL', 'http://me@corp:pw@proxy.corp:3128'],
      ['MAOS_PROVIDERS__GW__BASE_URL', 'https://gw.example/v1?api-version=1&key=AIzaSy-test'],
      ['OTEL_EXPORTER_OTLP_HEADERS', 'x-honeycomb-team=abc'],
    ];
    for (const [name, value] of refused) {
      assert.throws(
        () => renderChart(CHART, { ...POSTGRES, extraEnv: [{ name, value }] }),
        new RegExp(
          `extraEnv ${name} holds a secret as a plain value, which would be stored in the Deployment`,
        ),
        name,
      );
    }
    // Variables the chart sets: a second entry would win over the port the probes and Service use.
    for (const [name, advice] of [
      ['MAOS_PORT', /set service\.targetPort instead/],
      ['MAOS_METRICS__PORT', /set service\.metricsPort instead/],
      ['MAOS_DATA_DIR', /the data volume is mounted there/],
      ['MAOS_HOST', /every interface/],
      ['MAOS_CONFIG', /set config instead/],
    ] as const) {
      assert.throws(
        () => renderChart(CHART, { extraEnv: [{ name, value: '8080' }] }),
        new RegExp(
          `extraEnv ${name} is set by the chart, and a second entry would win over it: .*${advice.source}`,
        ),
        name,
      );
    }
    // Not secrets: from a Secret, files, numbers under token-like names, URLs without a password.
    const extraEnv = [
      {
        name: 'MAOS_PROVIDERS__OPENAI__API_KEY',
        valueFrom: { secretKeyRef: { name: 'llm-keys', key: 'openai' } },
      },
      { name: 'MAOS_AUDIT__SIGNING_KEY_FILE', value: '/run/secrets/maos/audit-key' },
      { name: 'MAOS_LLM__BUDGETS__DEFAULT__MAX_TOKENS', value: '100000' },
      { name: 'MAOS_WEBHOOKS__SECRET_ROTATION_GRACE_SECONDS', value: '600' },
      { name: 'MAOS_LLM__APPROVAL__TENANTS__TOKEN_TEAM', value: 'required' },
      { name: 'MAOS_EGRESS__PROXY__URL', value: 'http://proxy.corp:3128' },
      { name: 'MAOS_PROVIDERS__AZ__BASE_URL', value: 'https://az.example/openai?api-version=2024-06-01' },
      { name: 'MAOS_LOG_LEVEL', value: 'debug' },
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector:4318' },
    ];
    const { byKind } = render({ ...POSTGRES, extraEnv });
    const env = at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.env') as Doc[];
    for (const entry of extraEnv)
      assert.deepEqual(
        env.find((e) => e.name === entry.name),
        entry,
      );
  });

  test('a *_FILE key or variable must be an absolute path: the secret itself given there is refused, not echoed', () => {
    const secret = 'sk-live-0123456789abcdef';
    const pem = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA\n-----END PRIVATE KEY-----';
    const refused: Array<[Doc, string, string]> = [
      [
        { config: { providers: { openai: { type: 'openai', model: 'gpt-4o', apiKey_FILE: secret } } } },
        'config.providers.openai.apiKey_FILE',
        secret,
      ],
      [
        { config: { providers: { gw: { headers: { Authorization_FILE: `Bearer ${secret}` } } } } },
        'config.providers.gw.headers.Authorization_FILE',
        secret,
      ],
      // A relative path is read from the server's working directory, not the mounted volume.
      [{ config: { audit: { signingKey_FILE: 'audit-key' } } }, 'config.audit.signingKey_FILE', 'audit-key'],
      [{ config: { secrets: { kekRing_FILE: '' } } }, 'config.secrets.kekRing_FILE', ''],
      [
        { extraEnv: [{ name: 'MAOS_PROVIDERS__OPENAI__API_KEY_FILE', value: secret }] },
        'extraEnv MAOS_PROVIDERS__OPENAI__API_KEY_FILE',
        secret,
      ],
      [
        { secretEnv: { MAOS_AUDIT__SIGNING_KEY_FILE: pem } },
        'secretEnv.MAOS_AUDIT__SIGNING_KEY_FILE',
        'MC4CAQAwBQYDK2VwBCIEIA',
      ],
    ];
    for (const [values, where, shown] of refused) {
      assert.throws(
        () => renderChart(CHART, values),
        (error: Error) => {
          assert.match(
            error.message,
            new RegExp(`${where.replaceAll('.', '\\.')} must be the absolute path of a mounted file`),
          );
          if (shown !== '')
            assert.ok(!error.message.includes(shown), `the value is echoed: ${error.message}`);
          return true;
        },
        where,
      );
    }
    // Absolute paths pass, and so does a *_FILE variable taken from a Secret or a ConfigMap.
    const accepted = render({
      config: {
        audit: { signingKey_FILE: '/run/secrets/maos/audit-key' },
        providers: { gw: { headers: { Authorization_FILE: '/run/secrets/maos/gw-auth' } } },
      },
      secretEnv: { MAOS_SECRETS__KEK_RING_FILE: '/run/secrets/maos/kek' },
      extraEnv: [
        { name: 'MAOS_PROVIDERS__OPENAI__API_KEY_FILE', value: '/run/secrets/maos/openai' },
        {
          name: 'MAOS_PROVIDERS__GW__API_KEY_FILE',
          valueFrom: { configMapKeyRef: { name: 'maos-paths', key: 'gw' } },
        },
      ],
    });
    assert.ok(accepted.byKind.get('Deployment'));
  });

  test('bad values fail the render with a clear message', () => {
    assert.throws(() => renderChart(CHART, { database: { mode: 'postgres' } }), /database\.postgres\.url/);
    // A second database URL in the chart's Secret: the key twice, or a URL file beside the URL.
    for (const name of ['MAOS_STORE__URL', 'MAOS_STORE__URL_FILE']) {
      assert.throws(
        () => {
          const value = name.endsWith('_FILE') ? '/run/secrets/maos/db-url' : 'postgres://maos:other@db/maos';
          return renderChart(CHART, { ...POSTGRES, secretEnv: { [name]: value } });
        },
        new RegExp(`secretEnv\\.${name}: in postgres mode the database URL is database\\.postgres\\.url`),
      );
    }
    assert.throws(() => renderChart(CHART, { database: { mode: 'mysql' } }), /sqlite or postgres/);
    // A typo in an alert's name or an override's field would leave the alert as shipped.
    const rules = (prometheusRule: Doc) => ({
      metrics: { prometheusRule: { enabled: true, ...prometheusRule } },
    });
    assert.throws(
      () => renderChart(CHART, rules({ disabled: { MaosInstanceDwon: true } })),
      /metrics\.prometheusRule\.disabled\.MaosInstanceDwon: the chart has no alert of that name \(its alerts: MaosApiAvailabilityBudgetBurn, .*MaosInstanceDown,/,
    );
    assert.throws(
      () =>
        renderChart(
          CHART,
          rules({ overrides: { MaosNotReady: { for: '5m' }, maosNotReady: { for: '5m' } } }),
        ),
      /metrics\.prometheusRule\.overrides\.maosNotReady: the chart has no alert of that name/,
    );
    assert.throws(
      () => renderChart(CHART, rules({ overrides: { MaosNotReady: { severity: 'warning' } } })),
      /metrics\.prometheusRule\.overrides\.MaosNotReady\.severity: an override sets only expr, for, labels, annotations/,
    );
    assert.throws(
      () => renderChart(CHART, { auth: { mode: 'oidc' } }),
      /auth\.oidc\.issuer and auth\.oidc\.audience/,
    );
    assert.throws(
      () => renderChart(CHART, { auth: { mode: 'both', oidc: { issuer: 'https://idp.example.com' } } }),
      /auth\.oidc\.audience are required when auth\.mode is oidc or both/,
    );
  });

  test('the OIDC claim settings an IdP needs (role mapping, tenant, claims) reach the server config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-chart-oidc-'));
    try {
      const { byKind } = render({ auth: ENTRA_LIKE_AUTH });
      const configPath = join(dir, 'config.yaml');
      writeFileSync(configPath, String(at(serverConfigMap(byKind), 'data')['config.yaml']));
      const env = Object.fromEntries(
        at(one(byKind, 'Deployment'), 'spec.template.spec.containers.0.env').map(
          (e: { name: string; value: string }) => [e.name, e.value],
        ),
      );
      // The real loader and the start-up checks `maos serve` runs, on the file the pod mounts.
      const config = loadConfig({ configPath, env: { ...env, MAOS_DATA_DIR: dir } });
      assertConfigUsable(config);
      const oidc = config.auth.oidc;
      assert.deepEqual(oidc.roleMapping, { '0b1c-admins': ['admin'], 'ops group': ['operator', 'viewer'] });
      assert.equal(oidc.defaultTenant, 'acme');
      assert.equal(oidc.principalClaim, 'oid');
      assert.deepEqual(oidc.requiredClaims, ['sub', 'iat']);
      assert.deepEqual(oidc.algorithms, ['RS256']);
      assert.equal(oidc.console.displayName, 'Entra ID');
      // Unset chart values leave the server's defaults in place.
      const defaults = configSchema.parse({}).auth.oidc;
      const plain = parseYaml(
        String(
          at(
            one(
              render({ auth: { mode: 'oidc', oidc: { issuer: 'https://i.example', audience: 'a' } } }).byKind,
              'ConfigMap',
            ),
            'data',
          )['config.yaml'],
        ),
      );
      const resolved = configSchema.parse(plain).auth.oidc;
      assert.deepEqual(resolved.requiredClaims, defaults.requiredClaims);
      assert.deepEqual(resolved.algorithms, defaults.algorithms);
      assert.deepEqual(resolved.roleMapping, {});
      assert.equal(resolved.principalClaim, defaults.principalClaim);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the longest names helm allows still make a migration Job Kubernetes accepts', () => {
    // The Job's name becomes the job-name label of its pods: 63 characters at most, or the API
    // server refuses the Job and the pre-install hook fails. Release names go up to 53 characters
    // (<release>-maos when the name lacks "maos"), fullnameOverride up to 63.
    const longRelease = 'orchestration-platform-production-eu-west-1-tenant-ab';
    assert.equal(longRelease.length, 53);
    for (const [release, values] of [
      [longRelease, POSTGRES],
      ['maos', { ...POSTGRES, fullnameOverride: 'o'.repeat(63) }],
      ['maos', POSTGRES],
    ] as const) {
      const { manifests, notes } = renderChart(CHART, values, { name: release });
      const byKind = groupByKind(manifests.map((m) => m.doc));
      const job = String(at(one(byKind, 'Job'), 'metadata.name'));
      assert.ok(job.length <= 63, `${job}: ${job.length} characters`);
      assert.ok(notes.includes(`migrations ran in the ${job} Job`), notes);
      assert.match(job, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?-migrate$/);
      for (const kind of ['Service', 'Deployment', 'ConfigMap']) {
        const doc = kind === 'ConfigMap' ? serverConfigMap(byKind) : one(byKind, kind);
        const name = String(at(doc, 'metadata.name'));
        assert.ok(name.length <= 63 && job.startsWith(name.slice(0, 55).replace(/-$/, '')), name);
      }
    }
    assert.equal(at(one(render(POSTGRES).byKind, 'Job'), 'metadata.name'), 'maos-migrate');
  });

  test('auth.oidc.console renders only with a client id, as a config MAOS accepts', () => {
    const oidc = { issuer: 'https://idp.example.com', audience: 'maos-api' };
    const configOf = (values: Doc) =>
      parseYaml(String(at(serverConfigMap(render(values).byKind), 'data')['config.yaml']));
    assert.equal(configOf({ auth: { mode: 'oidc', oidc } }).auth.oidc.console, undefined);
    const file = configOf({
      auth: {
        mode: 'both',
        oidc: { ...oidc, console: { clientId: 'maos-console', scopes: ['openid', 'maos'] } },
      },
    });
    assert.deepEqual(file.auth.oidc.console, {
      clientId: 'maos-console',
      scopes: ['openid', 'maos'],
      audienceParameter: 'resource',
    });
    const parsed = configSchema.safeParse({ auth: file.auth });
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
    // A token endpoint on another origin than the issuer's, for the console's CSP.
    const other = configOf({
      auth: {
        mode: 'oidc',
        oidc: {
          ...oidc,
          console: { clientId: 'maos-console', tokenEndpointOrigin: 'https://login.example.net' },
        },
      },
    });
    assert.equal(other.auth.oidc.console.tokenEndpointOrigin, 'https://login.example.net');
    assert.ok(configSchema.safeParse({ auth: other.auth }).success);
    // What the server refuses at start is refused by the chart too (deploy-helm-cli.test.ts).
    for (const origin of [
      'https://a.example;frame-src *',
      'https://*.example.net',
      'http://login.example.net',
    ]) {
      const auth = {
        ...other.auth,
        oidc: { ...other.auth.oidc, console: { clientId: 'c', tokenEndpointOrigin: origin } },
      };
      assert.equal(configSchema.safeParse({ auth }).success, false, origin);
    }
  });
});

test('the documented SQLite restore pod mounts the release volume as the server does, as its user', () => {
  const guide = readFileSync('docs/operations.md', 'utf8');
  const manifest = /kubectl apply -f - <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(guide)?.[1];
  assert.ok(manifest, 'the operations guide gives the restore pod');
  const restorePod = parseYaml(manifest) as Doc;
  new Pod(restorePod).validate();
  const { byKind } = render({});
  const server = at(one(byKind, 'Deployment'), 'spec.template.spec');
  const spec = at(restorePod, 'spec');
  for (const key of ['runAsNonRoot', 'runAsUser', 'runAsGroup', 'fsGroup']) {
    assert.equal(spec.securityContext[key], server.securityContext[key], `securityContext.${key}`);
  }
  assert.equal(spec.enableServiceLinks, false);
  const [restore] = spec.containers;
  assert.equal(restore.image, server.containers[0].image, 'the image of the release (same schema)');
  const claim = (pod: Doc) =>
    (at(pod, 'volumes') as Doc[]).find((v) => v.name === 'data')?.persistentVolumeClaim;
  assert.deepEqual(claim(spec), claim(server), 'the PVC of the release maos');
  const dataDir = (c: Doc) => (at(c, 'env') as Doc[]).find((e) => e.name === 'MAOS_DATA_DIR')?.value;
  assert.equal(dataDir(restore), dataDir(server.containers[0]));
  const mountOf = (c: Doc) => (at(c, 'volumeMounts') as Doc[]).find((m) => m.name === 'data')?.mountPath;
  assert.equal(mountOf(restore), mountOf(server.containers[0]));
  assert.match(guide, /kubectl scale deploy\/maos --replicas=0\nkubectl apply -f - <<'EOF'/);
  // The backup is copied out of the one server pod of the release `maos`: the selector must not
  // also match another release's pods in the namespace (`kubectl cp` takes one pod), nor a Job's.
  const selector = /kubectl cp "\$\(kubectl get pod -l (\S+) -o name/.exec(guide)?.[1];
  assert.ok(selector, 'the guide copies the backup out of the server pod');
  const matches = (labels: Record<string, string>) =>
    selector.split(',').every((term) => {
      const [key, value] = term.split('=');
      return labels[key as string] === value;
    });
  const podLabels = (release: string, values: Doc) =>
    at(
      one(
        groupByKind(renderChart(CHART, values, { name: release }).manifests.map((m) => m.doc)),
        'Deployment',
      ),
      'spec.template.metadata.labels',
    );
  assert.ok(matches(podLabels('maos', {})), 'selects the server pod of the release maos');
  assert.ok(!matches(podLabels('maos-test', {})), 'not the pod of another release beside it');
  const job = at(one(render(POSTGRES).byKind, 'Job'), 'spec.template.metadata.labels');
  assert.ok(!matches(job), 'not a migration Job pod');
});

test('documented helm commands name values files that exist, run from the repository root', () => {
  // The commands name the chart as deploy/helm/maos, so they run from the repository root.
  const files = [
    'docs/operations.md',
    join(CHART, 'README.md'),
    ...readdirSync(join(CHART, 'examples')).map((f) => join(CHART, 'examples', f)),
  ];
  const named: string[] = [];
  for (const file of files) {
    // Continued lines (`\` at the end, in shell blocks or YAML comments) make one command.
    const lines = readFileSync(file, 'utf8')
      .replace(/\\\n\s*#?\s*/g, ' ')
      .split('\n');
    for (const line of lines) {
      if (!/helm (install|upgrade|template|lint) \S+ deploy\/helm\/maos\b/.test(line)) continue;
      for (const [, path] of line.matchAll(/(?:^|\s)-f\s+(\S+)/g)) {
        named.push(path as string);
        assert.ok(existsSync(path as string), `${file}: -f ${path} does not exist: ${line.trim()}`);
      }
    }
  }
  assert.ok(
    named.some((path) => path.endsWith('values-canary.yaml')),
    'the canary install is checked',
  );
});

test('documented upgrades keep the release values with the new chart defaults (--reset-then-reuse-values)', () => {
  // `helm upgrade --reuse-values` renders the new chart with the old chart's coalesced defaults
  // (helm's reuseValues: chart.Values = the old values), so a key a new chart version adds is absent.
  // Stand-in for an older chart: today's defaults without a section a later version added (null
  // removes it), which the templates read as helm does: the render fails.
  const mine = { ...POSTGRES, replicaCount: 3 };
  assert.throws(
    () => renderChart(CHART, { ...mine, auditCheckpoints: null }),
    /nil pointer evaluating .*auditCheckpoints/,
  );
  // --reset-then-reuse-values: the new chart's defaults, then the release's own values.
  const upgraded = render(mine);
  assert.equal(at(one(upgraded.byKind, 'Deployment'), 'spec.replicas'), 3);
  const upgrades = ['docs/operations.md', join(CHART, 'README.md'), join(CHART, 'templates/NOTES.txt')]
    .flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => ({ file, line })),
    )
    .filter(({ line }) => /helm upgrade \S+ deploy\/helm\/maos/.test(line));
  assert.ok(upgrades.length >= 3, 'the docs upgrade releases with helm');
  for (const { file, line } of upgrades) {
    assert.doesNotMatch(line, /--reuse-values/, `${file}: ${line.trim()}`);
    if (!/ -f | --values /.test(line)) {
      assert.match(line, /--reset-then-reuse-values/, `${file}: ${line.trim()}`);
    }
  }
});

test('documented PostgreSQL installs and upgrades wait for the migration Job as long as it may run', () => {
  // helm waits --timeout (default 5 minutes) for a hook Job, which may run activeDeadlineSeconds.
  const deadline = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')).migration
    .activeDeadlineSeconds;
  const commands = ['docs/operations.md', join(CHART, 'README.md')].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) =>
        /helm (install|upgrade) maos deploy\/helm\/maos .*(values-postgres|-reuse-values)/.test(line),
      )
      .map((line) => ({ file, line })),
  );
  assert.ok(commands.length >= 3, 'the docs install and upgrade the cluster with helm');
  for (const { file, line } of commands) {
    const timeout = /--timeout (\d+)m\b/.exec(line);
    assert.ok(timeout && Number(timeout[1]) * 60 > deadline, `${file}: ${line.trim()}`);
  }
});

test('the documented rollback stops every replica also when KEDA scales them (kubectl scale does not hold)', () => {
  // The cluster values of the docs: KEDA owns the replica count, at least minReplicaCount of them.
  const values = parseYaml(readFileSync(join(CHART, 'examples/values-postgres.yaml'), 'utf8')) as Doc;
  const byKind = groupByKind(renderChart(CHART, values, { name: 'maos' }).manifests.map((m) => m.doc));
  const scaled = one(byKind, 'ScaledObject');
  const deployment = one(byKind, 'Deployment');
  assert.equal(at(scaled, 'spec.scaleTargetRef.name'), at(deployment, 'metadata.name'));
  assert.ok(at(scaled, 'spec.minReplicaCount') >= 1, 'KEDA scales a Deployment below its floor back up');
  assert.equal(at(deployment, 'spec.replicas'), undefined, 'the Deployment leaves the count to KEDA');
  // Every section that stops the cluster's replicas for a restore also pauses the ScaledObject, and
  // resumes it afterwards.
  const guide = readFileSync('docs/operations.md', 'utf8');
  /** From the heading's line to the next heading (a `# ` line in a code block is a comment). */
  const section = (heading: string, after = 0) => {
    const start = guide.indexOf(`\n${heading}\n`, after);
    assert.ok(start >= 0, heading);
    const end = guide.slice(start + heading.length + 2).search(/\n#{2,3} /);
    return guide.slice(start, end < 0 ? undefined : start + heading.length + 2 + end);
  };
  const name = String(at(scaled, 'metadata.name'));
  const backups = guide.indexOf('\n## 6. Backup and disaster recovery\n');
  for (const [heading, after] of [
    ['## 5. Upgrade and rollback', 0],
    ['### PostgreSQL', backups],
  ] as const) {
    const text = section(heading, after);
    assert.match(text, /every replica/, heading);
    if (heading.startsWith('## ')) {
      assert.ok(
        text.includes(`kubectl annotate scaledobject ${name} autoscaling.keda.sh/paused-replicas=0`),
        `${heading}: pauses the ScaledObject at 0`,
      );
      assert.ok(
        text.includes(`kubectl annotate scaledobject ${name} autoscaling.keda.sh/paused-replicas-`),
        `${heading}: resumes it`,
      );
    } else {
      assert.match(text, /every replica stopped; with KEDA pause its ScaledObject, §5/, heading);
    }
  }
});

describe('Go template interpreter used to render the chart', () => {
  const renderOne = (source: string, dot: unknown) => {
    const set = new TemplateSet();
    set.add('t', source);
    return set.render('t', dot);
  };

  test('follows Go semantics for trimming, range, with/else, and/or and printf', () => {
    assert.equal(renderOne('a  {{- " b" -}}  c', {}), 'a bc');
    assert.equal(
      renderOne('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } }),
      'a=1;b=2;',
    );
    assert.equal(renderOne('{{ with .x }}{{ . }}{{ else }}none{{ end }}', { x: '' }), 'none');
    assert.equal(renderOne('{{ or .a .b "c" }}|{{ and 1 0 2 }}', { a: '', b: 0 }), 'c|0');
    assert.equal(renderOne('{{ printf "%s-%d" "x" 3 | quote }}', {}), '"x-3"');
    // As helm's go-yaml writes it (a ConfigMap's text must match byte for byte): a list in a map
    // starts at the key's indentation.
    assert.equal(
      renderOne('{{ toYaml .v | nindent 2 }}', { v: { b: [1], a: 'x' } }),
      '\n  a: x\n  b:\n  - 1',
    );
    // `=` assigns the variable declared outside the range or if (Go 1.11+); `:=` inside declares anew.
    assert.equal(
      renderOne('{{ $n := 0 }}{{ range .l }}{{ if . }}{{ $n = . }}{{ end }}{{ end }}{{ $n }}', {
        l: [1, 0, 3],
      }),
      '3',
    );
    assert.equal(renderOne('{{ $n := 1 }}{{ if true }}{{ $n := 2 }}{{ $n }}{{ end }}{{ $n }}', {}), '21');
    assert.equal(renderOne('{{ define "n" }}[{{ . }}]{{ end }}{{ include "n" "v" }}', {}), '[v]');
    // Sprig's regex functions take RE2 patterns and `${1}` in replacements.
    assert.equal(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Go's group reference, not a JS template
      renderOne('{{ regexReplaceAll "([a-z])([A-Z])" "apiKeyRing" "${1}_${2}" }}', {}),
      'api_Key_Ring',
    );
    assert.equal(
      renderOne('{{ regexMatch "(?i)key" "API_KEY" }}|{{ hasSuffix "_FILE" "a_FILE" }}', {}),
      'true|true',
    );
    assert.equal(
      renderOne('{{ kindIs "map" .m }}{{ kindIs "slice" .m }}{{ typeIs "string" .n }}', { m: {}, n: 1 }),
      'truefalsefalse',
    );
    // Sprig's set writes into the map itself; append returns a new list; keys come unordered, so
    // sortAlpha; join leaves nil items out.
    assert.equal(
      renderOne(
        '{{ $m := dict }}{{ $_ := set $m "b" 1 }}{{ $_ := set $m "a" 2 }}{{ $l := list "x" }}' +
          '{{ $k := append $l nil }}{{ keys $m | sortAlpha | join "," }}|{{ $m.a }}|{{ len $l }}|{{ join "-" $k }}',
        {},
      ),
      'a,b|2|1|x',
    );
  });

  test('fails loudly on what Helm would fail on, and on syntax outside the supported subset', () => {
    assert.throws(() => renderOne('{{ .a.b }}', {}), /nil pointer/);
    assert.throws(() => renderOne('{{ lookup "v1" "Secret" "ns" "n" }}', {}), /not supported/);
    assert.throws(() => renderOne('{{ if .a }}x', { a: 1 }), /missing \{\{end\}\}/);
    assert.throws(() => renderOne('{{ fail "stop here" }}', {}), /stop here/);
    assert.throws(() => renderOne('{{ $x = 1 }}', {}), /undefined variable \$x/);
    assert.throws(
      () => renderOne('{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}', {}),
      /undefined variable \$y/,
    );
  });
});
