// HTTPS whose certificate can be renewed on disk without a restart: polls tls.certFile/keyFile
// (stat, then a content hash; symlink swaps such as the kubelet's `..data` are seen through) and
// reloads on demand (SIGHUP). A changed pair is validated before new connections get it; one that
// does not load is logged once, counted, and retried at the next poll while the old one is served.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Config } from '../config/schema.ts';
import { AppError, coerceError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import {
  assertTlsPair,
  createHttpsServerFactory,
  loadTlsCredentials,
  replaceTlsCredentials,
  type TlsCredentials,
} from './tls.ts';

/** What one look at the files did. */
export type TlsReloadOutcome = 'unchanged' | 'reloaded' | 'failed';

/**
 * Reads of a pair that changed while it was read (a swap between the certificate and the key) are
 * repeated this often before the pair is judged as read; a swap takes microseconds.
 */
const MAX_READS_PER_CHECK = 3;

export interface TlsServingOptions {
  tls: Config['tls'];
  logger: Logger;
  metrics: Pick<Metrics, 'setTlsCertificateExpiry' | 'recordTlsReloadFailure'>;
}

export interface TlsServing {
  /** Fastify `serverFactory`: an HTTPS server (TLS 1.2+) with the pair read at start. */
  serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server;
  /** Logs the served certificate and starts polling every `tls.reloadIntervalSeconds` (0 = never). */
  start(): void;
  stop(): void;
  /** Reads the files now, even when their stat looks unchanged (SIGHUP). */
  reload(): Promise<TlsReloadOutcome>;
}

/** A served certificate as logs name it (ECS `tls.server.*`); never key material. */
function certificateFields(cert: string): Record<string, string> {
  const x509 = new X509Certificate(cert);
  return {
    'tls.server.not_after': new Date(x509.validTo).toISOString(),
    'tls.server.hash.sha256': x509.fingerprint256.replaceAll(':', ''),
    'tls.server.subject': x509.subject.replaceAll('\n', ', '),
    'tls.server.issuer': x509.issuer.replaceAll('\n', ', '),
    'tls.server.x509.serial_number': x509.serialNumber,
  };
}

const RELOAD_EVENT = {
  'event.kind': 'event',
  'event.category': ['configuration'],
  'event.type': ['change'],
  'event.action': 'tls-certificate-reload',
};

/** A failure's identity for "log once": its message and its causes' messages. */
function describeFailure(error: Error): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error && parts.length < 4; e = e.cause) parts.push(e.message);
  return parts.join(': ');
}

/**
 * Reads the configured pair (CONFIG_INVALID when it does not load, as at start) and returns HTTPS
 * serving that follows renewals; null when TLS is not configured.
 */
export function createTlsServing(options: TlsServingOptions): TlsServing | null {
  const { tls, metrics } = options;
  const initial = loadTlsCredentials(tls);
  if (!initial || !tls.certFile || !tls.keyFile) return null;
  const files = { certFile: tls.certFile, keyFile: tls.keyFile };
  const logger = options.logger.child({ component: 'tls' });
  const hashOf = (pair: TlsCredentials) =>
    createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');

  let server: HttpsServer | undefined;
  let servedHash = hashOf(initial);
  // The stat of the files whose content is served; unknown at first, as the files may have changed
  // since they were read: the first poll reads them once and finds the same content.
  let servedSignature: string | undefined;
  let lastFailure: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<TlsReloadOutcome> = Promise.resolve('unchanged');
  metrics.setTlsCertificateExpiry(new Date(new X509Certificate(initial.cert).validTo));

  /** Identity of both files' current content as stat sees it through symlinks. */
  async function signature(): Promise<string> {
    const parts = await Promise.all(
      [files.certFile, files.keyFile].map(async (path) => {
        const s = await stat(path, { bigint: true });
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      }),
    );
    return parts.join('|');
  }

  async function readPair(): Promise<{ pair: TlsCredentials; signature: string }> {
    const read = async (path: string, name: string) => {
      try {
        return await readFile(path, 'utf8');
      } catch (error) {
        throw new AppError('CONFIG_INVALID', `tls.${name}: cannot read ${path}`, { cause: error });
      }
    };
    let before = '';
    let pair: TlsCredentials = { cert: '', key: '' };
    for (let reads = 0; reads < MAX_READS_PER_CHECK; reads += 1) {
      before = await signature().catch(() => '');
      pair = { cert: await read(files.certFile, 'certFile'), key: await read(files.keyFile, 'keyFile') };
      const after = await signature().catch(() => '');
      if (before !== '' && before === after) break;
    }
    return { pair, signature: before };
  }

  async function check(force: boolean): Promise<TlsReloadOutcome> {
    try {
      if (!force && servedSignature !== undefined) {
        const current = await signature().catch(() => undefined);
        if (current === servedSignature) return 'unchanged';
      }
      const { pair, signature: read } = await readPair();
      const hash = hashOf(pair);
      let outcome: TlsReloadOutcome = 'unchanged';
      // Same content as served (files touched, or a broken pair replaced by the served one): no change.
      if (hash !== servedHash) {
        assertTlsPair(pair);
        if (server) replaceTlsCredentials(server, pair);
        servedHash = hash;
        metrics.setTlsCertificateExpiry(new Date(new X509Certificate(pair.cert).validTo));
        logger.info(
          { ...RELOAD_EVENT, 'event.outcome': 'success', ...certificateFields(pair.cert) },
          'TLS certificate reloaded',
        );
        outcome = 'reloaded';
      }
      servedSignature = read || undefined;
      lastFailure = undefined;
      return outcome;
    } catch (thrown) {
      const error = coerceError(thrown);
      metrics.recordTlsReloadFailure();
      const failure = describeFailure(error);
      if (failure !== lastFailure) {
        lastFailure = failure;
        logger.error(
          {
            err: error,
            ...RELOAD_EVENT,
            'event.outcome': 'failure',
            'file.path': [files.certFile, files.keyFile],
          },
          'TLS certificate reload failed; the previous certificate is still served',
        );
      }
      return 'failed';
    }
  }

  /** One check at a time: a SIGHUP during a poll waits for it, then looks again. */
  function enqueue(force: boolean): Promise<TlsReloadOutcome> {
    running = running.then(() => check(force));
    return running;
  }

  return {
    serverFactory: createHttpsServerFactory(initial, (created) => {
      server = created;
    }),
    start() {
      logger.info(
        { ...certificateFields(initial.cert), 'file.path': files.certFile },
        'serving TLS certificate',
      );
      if (tls.reloadIntervalSeconds > 0 && timer === undefined) {
        timer = setInterval(() => void enqueue(false), tls.reloadIntervalSeconds * 1000);
        // Polling alone never keeps the process alive.
        timer.unref();
      }
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    reload: () => enqueue(true),
  };
}
