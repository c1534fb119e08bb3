/**
 * TLS brokers for tests (test/unit/tls.test.ts):
 *  - startMosquittoTls(): a throwaway mosquitto with only a TLS listener on 127.0.0.1, using the
 *    certificates of test/helpers/certs.ts (its own process group, killed on exit too);
 *  - startTlsRelay(): a TLS-terminating relay in front of a plain TCP port (used in front of
 *    RabbitMQ's plain STOMP listener: the STOMP client under test speaks TLS to the relay, and
 *    the relay presents the server certificate it is given).
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { findBinary, freePort, waitForPort } from './brokers.js';
import { liveDirs, liveGroups, stopGroup } from './cleanup.js';

export interface MosquittoTlsHandle {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * mosquitto with a TLS listener (cafile/certfile/keyfile), anonymous, no persistence; null when
 * mosquitto is not installed. `cafile` is the CA for (optional) client certificates.
 */
export async function startMosquittoTls(certs: { caFile: string; certFile: string; keyFile: string }): Promise<MosquittoTlsHandle | null> {
  const bin = findBinary('mosquitto');
  if (!bin) return null;
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mtp-mosquitto-tls-'));
  liveDirs.add(dir);
  const conf = path.join(dir, 'mosquitto.conf');
  // Run as root, mosquitto drops to user `mosquitto` before it loads the certificates: give it
  // world-readable copies (throwaway test keys) in a world-readable folder.
  chmodSync(dir, 0o755);
  const copy = (src: string, name: string): string => {
    const dst = path.join(dir, name);
    copyFileSync(src, dst);
    chmodSync(dst, 0o644);
    return dst;
  };
  certs = { caFile: copy(certs.caFile, 'ca.crt'), certFile: copy(certs.certFile, 'server.crt'), keyFile: copy(certs.keyFile, 'server.key') };
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${certs.caFile}`,
      `certfile ${certs.certFile}`,
      `keyfile ${certs.keyFile}`,
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  let tail = '';
  const child = spawn(bin, ['-c', conf], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid) liveGroups.add(child.pid);
  const keep = (b: Buffer): void => {
    tail = (tail + b.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => {
    if (child.pid) liveGroups.delete(child.pid);
  });
  const stopNow = async (): Promise<void> => {
    await stopGroup(child);
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  try {
    await waitForPort(port, 10_000, () => child.exitCode === null && child.signalCode === null);
  } catch (err) {
    await stopNow();
    throw new Error(`mosquitto (TLS) did not start: ${(err as Error).message}\n${tail}`);
  }
  let stopped: Promise<void> | null = null;
  return { url: `mqtts://127.0.0.1:${port}`, port, stop: () => (stopped ??= stopNow()) };
}

export interface TlsRelay {
  port: number;
  close(): Promise<void>;
}

/** A TLS server on 127.0.0.1 (the given cert/key) that pipes each connection to a plain TCP target. */
export async function startTlsRelay(target: { host: string; port: number }, server: { cert: Buffer; key: Buffer }): Promise<TlsRelay> {
  const socks = new Set<net.Socket>();
  const srv = tls.createServer({ cert: server.cert, key: server.key }, (down) => {
    const up = net.connect({ host: target.host, port: target.port });
    socks.add(down);
    socks.add(up);
    down.setNoDelay(true);
    up.setNoDelay(true);
    const end = (): void => {
      down.destroy();
      up.destroy();
      socks.delete(down);
      socks.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  srv.on('tlsClientError', () => {
    /* the refused-certificate case: nothing to relay */
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        srv.close(() => resolve());
      }),
  };
}
