// Optional HTTPS: loads `tls.certFile`/`tls.keyFile`, checks that they form a usable pair, and
// gives Fastify a server factory that serves TLS 1.2+ only.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';

export interface TlsCredentials {
  cert: string;
  key: string;
}

/** The TLS files of the config; both or neither. */
export type TlsFiles = Pick<Config['tls'], 'certFile' | 'keyFile'>;

/** Oldest protocol version served, at start and after every reload. */
const MIN_VERSION = 'TLSv1.2';

/** Reads the certificate and key; null when TLS is not configured. Throws CONFIG_INVALID otherwise. */
export function loadTlsCredentials(tls: TlsFiles): TlsCredentials | null {
  if (!tls.certFile && !tls.keyFile) return null;
  if (!tls.certFile || !tls.keyFile) {
    throw new AppError('CONFIG_INVALID', 'tls.certFile and tls.keyFile must be set together');
  }
  const read = (path: string, name: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new AppError('CONFIG_INVALID', `tls.${name}: cannot read ${path}`, { cause: error });
    }
  };
  const credentials = { cert: read(tls.certFile, 'certFile'), key: read(tls.keyFile, 'keyFile') };
  assertTlsPair(credentials);
  return credentials;
}

/** PEM blocks of a passphrase-protected key: PKCS#8 and the traditional (OpenSSL) form. */
const ENCRYPTED_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m;

/**
 * Throws CONFIG_INVALID unless `credentials` are a PEM certificate (chain) and the private key that
 * belongs to it, i.e. a pair a TLS server can serve. The message says which file is wrong and how
 * (a start prints the message only, not its cause).
 */
export function assertTlsPair(credentials: TlsCredentials): void {
  const refuse = (reason: string, cause?: unknown) =>
    new AppError(
      'CONFIG_INVALID',
      `tls.certFile/tls.keyFile are not a matching PEM certificate and key: ${reason}`,
      { cause },
    );
  let fromCert: Buffer;
  try {
    fromCert = new X509Certificate(credentials.cert).publicKey.export({ type: 'spki', format: 'der' });
  } catch (error) {
    throw refuse('tls.certFile holds no PEM certificate', error);
  }
  if (ENCRYPTED_KEY.test(credentials.key)) {
    throw refuse(
      'tls.keyFile holds an encrypted key, and MAOS takes no passphrase: give it the key decrypted (openssl pkey -in <key> -out <decrypted key>)',
    );
  }
  let fromKey: Buffer;
  try {
    fromKey = createPublicKey(createPrivateKey(credentials.key)).export({ type: 'spki', format: 'der' });
  } catch (error) {
    throw refuse('tls.keyFile holds no PEM private key', error);
  }
  // OpenSSL only notices a mismatch between keys of the same type; compare the public keys.
  if (!fromCert.equals(fromKey)) {
    throw refuse('the key in tls.keyFile does not belong to the certificate in tls.certFile');
  }
  try {
    createSecureContext(credentials);
  } catch (error) {
    throw refuse(`OpenSSL refuses them (${(error as Error).message})`, error);
  }
}

/**
 * A Fastify `serverFactory` serving HTTPS with the credentials (TLS 1.2 minimum). `onServer` gets
 * the server it creates, e.g. to replace its certificate later (replaceTlsCredentials).
 */
export function createHttpsServerFactory(
  credentials: TlsCredentials,
  onServer?: (server: HttpsServer) => void,
): (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server {
  return (handler) => {
    const server = createServer({ ...credentials, minVersion: MIN_VERSION }, handler as RequestListener);
    onServer?.(server);
    // https.Server is what Fastify drives here; its type differs from http.Server only in TLS extras.
    return server as unknown as Server;
  };
}

/**
 * Serves `credentials` on `server` from the next handshake on; connections already open keep the
 * certificate they were set up with.
 */
export function replaceTlsCredentials(server: HttpsServer, credentials: TlsCredentials): void {
  server.setSecureContext({ ...credentials, minVersion: MIN_VERSION });
}
