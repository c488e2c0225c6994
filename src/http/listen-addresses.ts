// The addresses `maos serve` listens on (the API's, and the metrics listener's when it has its own
// port), checked before the server touches its data directory, and the errors it reports when one
// cannot be used: PORT_IN_USE, PORT_NOT_PERMITTED, or CONFIG_INVALID for a host this machine lacks or
// a metrics port that collides with the API's.
import { createServer, Server as NetServer } from 'node:net';
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';

type ListenConfig = Readonly<
  Pick<Config, 'host' | 'port'> & { metrics: Pick<Config['metrics'], 'enabled' | 'host' | 'port'> }
>;

/** One listening socket of the server, with the setting that names its port. */
export interface ListenAddress {
  listener: 'the API' | 'metrics';
  setting: 'port' | 'metrics.port';
  host: string;
  port: number;
}

/** The server's listeners in the order `App.start()` opens them: metrics first, then the API. */
export function listenAddresses(config: ListenConfig): ListenAddress[] {
  const addresses: ListenAddress[] = [];
  if (config.metrics.enabled && config.metrics.port !== undefined) {
    addresses.push({
      listener: 'metrics',
      setting: 'metrics.port',
      host: config.metrics.host,
      port: config.metrics.port,
    });
  }
  addresses.push({ listener: 'the API', setting: 'port', host: config.host, port: config.port });
  return addresses;
}

/**
 * Binds each address, holding each until all are bound, so that a taken, forbidden or foreign
 * address fails the start before the data directory, the database or a key is written. Held
 * together, the metrics listener and the API on one port collide as they would at the real listen:
 * CONFIG_INVALID, the configuration's own conflict rather than another process's. An address taken
 * in the moment between this check and the real listen fails there, with the same error.
 */
export async function assertListenAddressesUsable(config: ListenConfig): Promise<void> {
  const held: NetServer[] = [];
  try {
    for (const address of listenAddresses(config)) {
      const bound = await bind(address.host, address.port);
      if (bound instanceof NetServer) {
        held.push(bound);
        continue;
      }
      if ((bound as NodeJS.ErrnoException | null)?.code === 'EADDRINUSE' && held.length > 0) {
        // Taken by an address this check holds, or by another process: told apart by binding alone.
        await closeAll(held.splice(0));
        const alone = await bind(address.host, address.port);
        if (alone instanceof NetServer) {
          await closeAll([alone]);
          throw listenersCollide(config);
        }
        throw describeListenError(alone, config, address);
      }
      throw describeListenError(bound, config, address);
    }
  } finally {
    await closeAll(held);
  }
}

/** A listening server on the address, or the error that refused it. */
function bind(host: string, port: number): Promise<NetServer | unknown> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', resolve);
    server.listen({ host, port }, () => resolve(server));
  });
}

function closeAll(servers: readonly NetServer[]): Promise<unknown> {
  return Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
}

/** `metrics.port` is the API's port on an address that overlaps the API's. */
function listenersCollide(config: ListenConfig): AppError {
  const [metrics, api] = listenAddresses(config) as [ListenAddress, ListenAddress];
  return new AppError(
    'CONFIG_INVALID',
    `Cannot listen on ${formatAddress(metrics)} for metrics (setting \`metrics.port\`) and on ${formatAddress(api)} for the API (setting \`port\`): \`metrics.port\` and \`port\` name one port on overlapping addresses; set another \`metrics.port\`, or leave it unset to serve /metrics on the API port`,
  );
}

/**
 * A listen failure as the operator's error, naming the listener, its address and its setting;
 * anything else is returned unchanged. `address` is the listener that failed, when known; else it
 * is told by the port on the error (Node names the address it tried).
 */
export function describeListenError(error: unknown, config: ListenConfig, address?: ListenAddress): unknown {
  const failed = error as (NodeJS.ErrnoException & { port?: number }) | null;
  const code = failed?.code;
  const unresolved = code === 'ENOTFOUND' || code === 'EAI_AGAIN';
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL' && !unresolved) return error;
  const addresses = listenAddresses(config);
  const api = addresses.at(-1) as ListenAddress;
  const metrics = addresses.length === 2 ? addresses[0] : undefined;
  const at =
    address ?? (metrics && failed?.port === metrics.port && metrics.port !== api.port ? metrics : api);
  const where = `Cannot listen on ${formatAddress(at)} for ${at.listener} (setting \`${at.setting}\`)`;
  if (code === 'EADDRINUSE') {
    return new AppError(
      'PORT_IN_USE',
      `${where}: the address is already in use (EADDRINUSE); another process holds it`,
      { cause: error },
    );
  }
  if (code === 'EACCES') {
    return new AppError(
      'PORT_NOT_PERMITTED',
      `${where}: not permitted for this user (EACCES); ports below 1024 need root or CAP_NET_BIND_SERVICE`,
      { cause: error },
    );
  }
  if (unresolved) {
    // A host name that resolves to nothing (a typo, an address like 999.1.1.1 read as a name) is
    // the setting's to fix; EAI_AGAIN (no answer from DNS now) is named, for the rare name that would.
    const reason = code === 'ENOTFOUND' ? 'resolves to no address' : 'could not be resolved now';
    return new AppError(
      'CONFIG_INVALID',
      `${where}: the host name ${reason} (${code}); use an address of this machine`,
      {
        cause: error,
      },
    );
  }
  // The host names no address of this machine: the setting is wrong here, not the environment.
  return new AppError('CONFIG_INVALID', `${where}: the address is not available (EADDRNOTAVAIL)`, {
    cause: error,
  });
}

function formatAddress(address: ListenAddress): string {
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
