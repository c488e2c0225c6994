// The pod the Helm chart renders, run as the kubelet would run it (without a cluster): the init
// container's command, then the server with the container's environment and the ConfigMap's config
// file; every probe and the ServiceMonitor endpoint answer on the ports and with the schemes they name,
// the commands the install notes print work in that environment, and SIGTERM stops the server with
// status 0. Once with plain HTTP, once with tls.secretName (the Secret's files as the kubelet mounts them).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../fixtures/free-port.ts';
import { renderChart } from '../fixtures/helm-chart.ts';
import { at, CHART, type Doc, groupByKind, one, serverConfigMap } from '../fixtures/helm-manifests.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * GET on loopback with the scheme a probe (HTTP/HTTPS) or a ServiceMonitor (http/https) names; the
 * status, or 0 while nothing answers (or the TLS handshake fails). HTTPS trusts only `ca`.
 */
function get(
  scheme: string,
  port: number,
  path: string,
  ca?: string,
): Promise<{ status: number; body: string }> {
  const request = scheme.toLowerCase() === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, agent: false, timeout: 5000, ...(ca ? { ca } : {}) },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', () => resolve({ status: 0, body: '' }));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/**
 * The variables the kubelet adds to every container for each Service of the namespace unless the pod
 * sets `enableServiceLinks: false` (Kubernetes' envvars.FromServices): `<NAME>_SERVICE_HOST`,
 * `<NAME>_SERVICE_PORT[_<PORT NAME>]` and the Docker-link style `<NAME>_PORT[_<port>_<PROTO>[_…]]`,
 * NAME being the Service name in upper case with `_` for `-`. A Service called `maos` (the release
 * the docs install) gives `MAOS_SERVICE_HOST`, `MAOS_PORT_80_TCP`…: names MAOS reads as configuration.
 */
function serviceLinkEnv(services: Doc[], clusterIp: string): Record<string, string> {
  const env: Record<string, string> = {};
  const upper = (name: unknown) => String(name).toUpperCase().replaceAll('-', '_');
  for (const service of services) {
    const name = upper(at(service, 'metadata.name'));
    const ports = at(service, 'spec.ports') as Doc[];
    env[`${name}_SERVICE_HOST`] = clusterIp;
    env[`${name}_SERVICE_PORT`] = String(ports[0]?.port);
    for (const port of ports) {
      if (port.name) env[`${name}_SERVICE_PORT_${upper(port.name)}`] = String(port.port);
      const proto = String(port.protocol ?? 'TCP');
      const prefix = `${name}_PORT_${port.port}_${proto.toUpperCase()}`;
      const url = `${proto.toLowerCase()}://${clusterIp}:${port.port}`;
      if (port === ports[0]) env[`${name}_PORT`] = url;
      env[prefix] = url;
      env[`${prefix}_PROTO`] = proto.toLowerCase();
      env[`${prefix}_PORT`] = String(port.port);
      env[`${prefix}_ADDR`] = clusterIp;
    }
  }
  return env;
}

/** The one-off restore pod of docs/operations.md (the manifest given to `kubectl apply -f -`). */
function documentedRestorePod(): Doc {
  const guide = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const manifest = /kubectl apply -f - <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(guide)?.[1];
  assert.ok(manifest, 'the operations guide gives the restore pod as a manifest');
  return parseYaml(manifest) as Doc;
}

/** The `maos` arguments of the guide's `kubectl exec maos-restore -- node bin/maos.js restore …`. */
function restoreCommand(): string[] {
  const guide = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const line = /^kubectl exec maos-restore -- node bin\/maos\.js (restore .*)$/m.exec(guide)?.[1];
  assert.ok(line, 'the guide runs maos restore in the restore pod');
  return line.trim().split(/\s+/);
}

const MODES = [
  { name: 'plain HTTP', tls: false, skip: false as string | false },
  { name: 'HTTPS with tls.secretName', tls: true, skip: skipWithoutOpenssl },
];

for (const mode of MODES) {
  describe(`the pod the chart renders (SQLite mode, ${mode.name}), run as the kubelet runs it`, {
    skip: mode.skip,
  }, () => {
    let dir = '';
    /** The certificate the server presents (TLS mode): what an HTTPS client here trusts. */
    let ca: string | undefined;
    let server: ChildProcess | undefined;
    let exited: Promise<number | null> | undefined;
    // biome-ignore lint/suspicious/noExplicitAny: the parsed pod spec of the rendered Deployment
    let pod: any = {};
    // biome-ignore lint/suspicious/noExplicitAny: its server container
    let container: any = {};
    let byKind = new Map<string, Doc[]>();
    let env: NodeJS.ProcessEnv = {};
    let output = '';
    /** The test's directory standing for the pod's /data volume. */
    let dataVolume = '';

    /** The container port a probe or Service names (by name or number). */
    const containerPort = (name: string | number): number => {
      if (typeof name === 'number') return name;
      const port = container.ports.find((p: Doc) => p.name === name);
      assert.ok(port, `the container declares the port ${name}`);
      return port.containerPort;
    };

    /** Runs `node bin/maos.js <args>` in the container's environment. */
    const runCli = (args: string[]) =>
      spawnSync(process.execPath, ['bin/maos.js', ...args], {
        cwd: ROOT,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'maos-pod-'));
      const values = {
        // Free on all interfaces: the chart binds 0.0.0.0.
        service: { targetPort: await freePort('0.0.0.0'), metricsPort: await freePort('0.0.0.0') },
        metrics: { serviceMonitor: { enabled: true } },
        ...(mode.tls ? { tls: { secretName: 'maos-tls' } } : {}),
        // The checkpoint files on a volume of their own (the other mode keeps the default, /data).
        ...(mode.tls
          ? {}
          : { auditCheckpoints: { persistence: { enabled: true, accessModes: ['ReadWriteOnce'] } } }),
      };
      byKind = groupByKind(renderChart(CHART, values).manifests.map((m) => m.doc));
      pod = at(one(byKind, 'Deployment'), 'spec.template.spec');
      container = pod.containers[0];
      // The volumes the pod mounts, as directories of the test: the ConfigMap, the PVC and /tmp.
      const mounts = new Map<string, string>();
      for (const mount of container.volumeMounts as Doc[]) {
        const local = join(dir, String(mount.name));
        mkdirSync(local, { recursive: true });
        mounts.set(String(mount.mountPath), local);
      }
      dataVolume = mounts.get('/data') as string;
      const configMount = (container.volumeMounts as Doc[]).find((m) => m.name === 'config') as Doc;
      for (const [key, text] of Object.entries(
        at(serverConfigMap(byKind), 'data') as Record<string, string>,
      )) {
        writeFileSync(join(mounts.get(String(configMount.mountPath)) as string, key), text);
      }
      if (mode.tls) {
        // The kubelet mounts a kubernetes.io/tls Secret as one file per key: tls.crt and tls.key.
        const volume = (pod.volumes as Doc[]).find((v) => at(v, 'secret.secretName') === 'maos-tls');
        assert.ok(volume, 'the pod mounts the tls Secret');
        assert.equal(at(volume, 'secret.items'), undefined, 'every key as a file of its own name');
        const mount = (container.volumeMounts as Doc[]).find((m) => m.name === volume.name) as Doc;
        const local = mounts.get(String(mount.mountPath)) as string;
        const made = createSelfSignedCert(local);
        renameSync(made.certFile, join(local, 'tls.crt'));
        renameSync(made.keyFile, join(local, 'tls.key'));
        ca = readFileSync(join(local, 'tls.crt'), 'utf8');
      }
      const toLocal = (value: string) => {
        for (const [mountPath, local] of mounts) {
          if (value === mountPath || value.startsWith(`${mountPath}/`))
            return local + value.slice(mountPath.length);
        }
        return value;
      };
      env = { PATH: process.env.PATH, HOME: dir, TMPDIR: mounts.get('/tmp') };
      // The Service links of the release's own Service (named `maos`, as the docs install it) and of a
      // canary release beside it, unless the pod turns them off; the container's env wins over them.
      if (pod.enableServiceLinks !== false) {
        const canary = { metadata: { name: 'maos-canary' }, spec: at(one(byKind, 'Service'), 'spec') };
        Object.assign(env, serviceLinkEnv([one(byKind, 'Service'), canary], '10.96.0.10'));
      }
      for (const variable of container.env as { name: string; value: string }[]) {
        env[variable.name] = toLocal(variable.value);
      }
    });

    after(async () => {
      if (server && server.exitCode === null && server.signalCode === null) {
        server.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });

    test('the init container migrates the volume, then the server starts with the pod environment', async () => {
      const init = pod.initContainers[0];
      assert.deepEqual(
        init.env,
        container.env.filter(
          (e: Doc) => !String(e.name).startsWith('MAOS_TLS__') && e.name !== 'MAOS_AUDIT__CHECKPOINT_DIR',
        ),
        'the init container sees the same configuration, without the TLS files it does not serve with nor the checkpoint volume it writes no checkpoint to',
      );
      const migrate = runCli(init.args);
      assert.equal(migrate.status, 0, migrate.stderr);
      server = spawn(process.execPath, ['bin/maos.js', ...container.args], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stdout?.on('data', (chunk) => {
        output += chunk;
      });
      server.stderr?.on('data', (chunk) => {
        output += chunk;
      });
      const child = server;
      exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      // The startup probe, polled as the kubelet does (module loading takes seconds on a busy machine).
      const startup = container.startupProbe.httpGet;
      const deadline = Date.now() + 90_000;
      while ((await get(startup.scheme, containerPort(startup.port), startup.path, ca)).status !== 200) {
        assert.equal(server.exitCode, null, `the server exited:\n${output}`);
        assert.ok(Date.now() < deadline, `the startup probe never passed:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    });

    test('liveness and readiness answer 200 on the paths, ports and schemes they name', async () => {
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const { path, port, scheme } = container[probe].httpGet;
        assert.equal(scheme, mode.tls ? 'HTTPS' : 'HTTP', `${probe} scheme`);
        const answer = await get(scheme, containerPort(port), path, ca);
        assert.equal(answer.status, 200, `${probe} ${scheme} ${path} on ${port}: ${answer.body}`);
        // The other scheme gets no answer: a probe with the wrong one would fail and restart the pod.
        const other = await get(scheme === 'HTTPS' ? 'HTTP' : 'HTTPS', containerPort(port), path, ca);
        assert.equal(other.status, 0, `${probe} answered with the other scheme`);
      }
    });

    test('the ServiceMonitor endpoint, through the Service port, serves the MAOS metrics', async () => {
      const endpoint = at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0');
      const servicePort = at(one(byKind, 'Service'), 'spec.ports').find((p: Doc) => p.name === endpoint.port);
      assert.ok(servicePort, `the Service has the port ${endpoint.port}`);
      // The metrics listener is plain HTTP even when the API port serves HTTPS.
      const answer = await get(
        endpoint.scheme ?? 'http',
        containerPort(servicePort.targetPort),
        endpoint.path,
      );
      assert.equal(answer.status, 200);
      assert.match(answer.body, /^maos_build_info\{/m);
      assert.match(answer.body, /^maos_readiness_check_passing\{/m);
    });

    test('the install notes commands work in the pod: doctor, and the first admin key', () => {
      const doctor = runCli(['doctor']);
      assert.equal(doctor.status, 0, `${doctor.stdout}${doctor.stderr}`);
      const key = runCli([
        'keys',
        'create',
        '--role',
        'admin',
        '--tenant',
        'default',
        '--name',
        'first-admin',
      ]);
      assert.equal(key.status, 0, key.stderr);
      assert.match(key.stdout, /^maos_\S+$/m);
    });

    test('the MaosNotReady runbook shows the readiness checks from inside the pod', () => {
      const runbook = readFileSync(join(ROOT, 'docs/runbooks/MaosNotReady.md'), 'utf8');
      const command = /`kubectl exec <pod> -- node bin\/maos\.js (doctor --server \S+)`/.exec(runbook)?.[1];
      assert.ok(command, 'the runbook reads /readyz from inside the pod');
      const readiness = (url: URL) => {
        const doctor = spawnSync(
          process.execPath,
          ['bin/maos.js', 'doctor', '--server', url.href, '--json'],
          {
            cwd: ROOT,
            env: { ...env, ...(ca ? { NODE_EXTRA_CA_CERTS: join(dir, 'tls', 'tls.crt') } : {}) },
            encoding: 'utf8',
            timeout: 60_000,
          },
        );
        const report = JSON.parse(doctor.stdout || '{}') as {
          checks?: { name: string; status: string; message: string }[];
        };
        const check = report.checks?.find((c) => c.name === 'server-readiness');
        assert.ok(check, `${doctor.stdout}${doctor.stderr}`);
        return check;
      };
      const target = new URL(command.split(' ')[2] as string);
      // The API port of the images is 7070; this pod's is the free port the test chose.
      assert.equal(Number(target.port), 7070);
      target.port = String(containerPort('http'));
      if (mode.tls) target.protocol = 'https:';
      const ready = readiness(target);
      assert.equal(ready.status, 'pass', ready.message);
      assert.match(ready.message, /database: .*migrations: .*worker: /);
      // The alert's instance label is the metrics port, which has no /readyz.
      const metrics = readiness(new URL(`http://127.0.0.1:${containerPort('metrics')}`));
      assert.equal(metrics.status, 'warn', metrics.message);
    });

    test('SIGTERM (the kubelet stopping the pod) stops the server with status 0', async () => {
      assert.ok(server, 'the server runs');
      server.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      // The shutdown checkpoint (the first key's audit record) is copied to the checkpoint volume.
      const volume = (pod.volumes as Doc[]).find((v) => v.name === 'audit-checkpoints');
      const files = readdirSync(
        volume ? join(dir, 'audit-checkpoints') : join(dataVolume, 'audit-checkpoints'),
      );
      assert.ok(
        files.some((f) => /^checkpoint-\d{12}\.txt$/.test(f)),
        `checkpoint files: ${files.join(', ')}`,
      );
      assert.equal(Boolean(volume), !mode.tls);
    });

    test('the documented restore runs in a one-off pod on the volume once the server is stopped', () => {
      const restorePod = documentedRestorePod();
      const [restore] = at(restorePod, 'spec.containers');
      const mount = restore.volumeMounts.find((m: Doc) => m.name === 'data');
      // The backup the guide copied out of the pod (`maos backup`, then `kubectl cp`).
      const backupDir = mkdtempSync(join(dir, 'backup-'));
      const backup = runCli(['backup', join(backupDir, 'maos-backup.db')]);
      assert.equal(backup.status, 0, backup.stderr);
      // `kubectl cp ./maos-backup.db maos-restore:/data/restore.db`, then the restore in that pod:
      // its own environment only (no config file, no Secret), the data volume where it mounts it.
      writeFileSync(join(dataVolume, 'restore.db'), readFileSync(join(backupDir, 'maos-backup.db')));
      const local = (path: string) => path.replace(mount.mountPath, dataVolume);
      const podEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir };
      for (const variable of restore.env as { name: string; value: string }[]) {
        podEnv[variable.name] = local(variable.value);
      }
      const command = restoreCommand();
      const result = spawnSync(
        process.execPath,
        ['bin/maos.js', ...command.map((arg) => (arg.startsWith('/') ? local(arg) : arg))],
        { cwd: ROOT, env: podEnv, encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(result.status, 0, `${command.join(' ')}:\n${result.stdout}${result.stderr}`);
    });
  });
}
