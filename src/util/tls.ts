/**
 * PEM material for the TLS listeners and clients (ACS HTTPS, WSS, MQTT over TLS, STOMP over
 * TLS). Files are read once, at start-up, and every failure names the configuration key and the
 * file, so a typo in a path is one clear line instead of a TLS error at the first handshake.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** Key material for a TLS server; PEM contents, not paths. */
export interface TlsServerMaterial {
  cert: Buffer;
  key: Buffer;
  /** Trusted CA(s) for client certificates. */
  ca?: Buffer;
}

/** Key material for a TLS client; PEM contents, not paths. */
export interface TlsClientMaterial {
  /** Trusted CAs: the extra CA plus the system's roots (node replaces the defaults when `ca` is given). */
  ca?: string[];
  cert?: Buffer;
  key?: Buffer;
  /** Skip certificate verification (labs only). */
  insecure?: boolean;
}

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

const cache = new Map<string, Buffer>();

/**
 * Reads one PEM file (once per path). Throws TlsConfigError naming `configKey` and the file when it
 * cannot be read or holds no PEM block.
 */
export function readPem(configKey: string, file: string): Buffer {
  const hit = cache.get(file);
  if (hit) return hit;
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsConfigError(`${configKey}: cannot read PEM file ${file}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' '));
  }
  if (!data.toString('latin1').includes('-----BEGIN ')) {
    throw new TlsConfigError(`${configKey}: ${file} is not a PEM file (no "-----BEGIN" line)`);
  }
  cache.set(file, data);
  return data;
}

/** Forgets the files read so far (tests that rewrite certificates under the same path). */
export function clearPemCache(): void {
  cache.clear();
}

/**
 * Server material from `{cert, key, ca}` paths under config key `prefix` (e.g. 'acs.tls').
 * cert '' means TLS off: returns null. A cert without a key is an error.
 */
export function loadServerTls(prefix: string, paths: { cert: string; key: string; ca?: string }): TlsServerMaterial | null {
  if (!paths.cert) {
    if (paths.key) throw new TlsConfigError(`${prefix}.key is set but ${prefix}.cert is empty: set both (or neither for plain TCP)`);
    return null;
  }
  if (!paths.key) throw new TlsConfigError(`${prefix}.cert is set but ${prefix}.key is empty: a TLS server needs both`);
  const m: TlsServerMaterial = { cert: readPem(`${prefix}.cert`, paths.cert), key: readPem(`${prefix}.key`, paths.key) };
  if (paths.ca) m.ca = readPem(`${prefix}.ca`, paths.ca);
  return m;
}

/** Client material from `{ca, cert, key, insecure}` paths under config key `prefix` (e.g. 'usp.mqtt.tls'). */
export function loadClientTls(prefix: string, paths: { ca?: string; cert?: string; key?: string; insecure?: boolean }): TlsClientMaterial {
  if (!!paths.cert !== !!paths.key) {
    throw new TlsConfigError(`${prefix}.cert and ${prefix}.key go together: set both for a client certificate, or neither`);
  }
  const m: TlsClientMaterial = {};
  if (paths.ca) m.ca = withSystemRoots(readPem(`${prefix}.ca`, paths.ca));
  if (paths.cert && paths.key) {
    m.cert = readPem(`${prefix}.cert`, paths.cert);
    m.key = readPem(`${prefix}.key`, paths.key);
  }
  if (paths.insecure) m.insecure = true;
  return m;
}

/** `ca` for node's TLS client options: the given CA besides the system's roots, not instead of them. */
export function withSystemRoots(ca: string | Buffer): string[] {
  return [...rootCertificates, ca.toString()];
}
