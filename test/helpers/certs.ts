/**
 * Throwaway PKI for TLS tests, generated at run time with the system's `openssl` (node:crypto
 * cannot sign X.509 certificates): a CA with a server certificate for 127.0.0.1/localhost and a
 * client certificate, plus a second, unrelated CA with its own server and client certificates
 * (the "wrong" ones). EC P-256 keys, valid for one day, in a temp folder removed by cleanup().
 * Returns null when openssl is missing, so tests can skip with a reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from './brokers.js';

export interface CertPair {
  /** PEM file paths. */
  certFile: string;
  keyFile: string;
  /** PEM contents. */
  cert: Buffer;
  key: Buffer;
}

export interface TestCa {
  certFile: string;
  cert: Buffer;
  /** The CA's private key (PEM file), for issueClientCert(). */
  keyFile: string;
  /** Server certificate for 127.0.0.1 and localhost, signed by this CA. */
  server: CertPair;
  /** Client certificate (CN test-client), signed by this CA. */
  client: CertPair;
}

export interface TestPki {
  dir: string;
  ca: TestCa;
  /** An unrelated CA: its certificates must be refused wherever `ca` is the trusted one. */
  otherCa: TestCa;
  cleanup(): void;
}

export const OPENSSL_MISSING = 'openssl not installed (apt-get install openssl)';

function run(bin: string, args: string[], cwd: string): void {
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
}

function makeCa(bin: string, dir: string, name: string): TestCa {
  const caKey = path.join(dir, `${name}-ca.key`);
  const caCrt = path.join(dir, `${name}-ca.crt`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(
    bin,
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      caKey,
      '-out',
      caCrt,
      '-days',
      '1',
      '-subj',
      `/CN=${name} test CA`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const leaf = (leafName: string, cn: string, ext: string): CertPair => {
    const key = path.join(dir, `${name}-${leafName}.key`);
    const csr = path.join(dir, `${name}-${leafName}.csr`);
    const crt = path.join(dir, `${name}-${leafName}.crt`);
    const extFile = path.join(dir, `${name}-${leafName}.ext`);
    writeFileSync(extFile, ext);
    run(bin, ['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir);
    run(bin, ['x509', '-req', '-in', csr, '-CA', caCrt, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-sha256', '-extfile', extFile, '-out', crt], dir);
    return { certFile: crt, keyFile: key, cert: readFileSync(crt), key: readFileSync(key) };
  };
  const server = leaf(
    'server',
    '127.0.0.1',
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  );
  const client = leaf(
    'client',
    `${name} test-client`,
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', ''].join('\n'),
  );
  return { certFile: caCrt, cert: readFileSync(caCrt), keyFile: caKey, server, client };
}

const clientExt = (endpointId?: string): string =>
  [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=clientAuth',
    ...(endpointId ? [`subjectAltName=URI:urn:bbf:usp:id:${endpointId}`] : []),
    '',
  ].join('\n');

/**
 * A client certificate signed by `ca`, naming `endpointId` in subjectAltName as TR-369 R-SEC.0a
 * wants (URI urn:bbf:usp:id:<eid>) when given.
 */
export function issueClientCert(pki: TestPki, ca: TestCa, name: string, opts: { endpointId?: string } = {}): CertPair {
  const bin = findBinary('openssl')!;
  const dir = pki.dir;
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const crt = path.join(dir, `${name}.crt`);
  const extFile = path.join(dir, `${name}.ext`);
  writeFileSync(extFile, clientExt(opts.endpointId));
  run(bin, ['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  run(
    bin,
    ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '1', '-sha256', '-extfile', extFile, '-out', crt],
    dir,
  );
  return { certFile: crt, keyFile: key, cert: readFileSync(crt), key: readFileSync(key) };
}

/** A self-signed client certificate (a controller that pins its certificate by fingerprint). */
export function selfSignedCert(pki: TestPki, name: string, opts: { endpointId?: string } = {}): CertPair {
  const bin = findBinary('openssl')!;
  const dir = pki.dir;
  const key = path.join(dir, `${name}.key`);
  const crt = path.join(dir, `${name}.crt`);
  const san = opts.endpointId ? ['-addext', `subjectAltName=URI:urn:bbf:usp:id:${opts.endpointId}`] : [];
  run(
    bin,
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'extendedKeyUsage=clientAuth',
      ...san,
    ],
    dir,
  );
  return { certFile: crt, keyFile: key, cert: readFileSync(crt), key: readFileSync(key) };
}

/** Generates the PKI (about 1 s), or null when openssl is not installed. */
export function makeTestPki(): TestPki | null {
  const bin = findBinary('openssl');
  if (!bin) return null;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tls-pki-'));
  try {
    const ca = makeCa(bin, dir, 'good');
    const otherCa = makeCa(bin, dir, 'other');
    return { dir, ca, otherCa, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
