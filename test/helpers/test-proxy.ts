/**
 * One way to run a real proxy in a test: every listener on 127.0.0.1 with an ephemeral port, the
 * environment ignored (no CUP_* of the machine leaks in), logs silent, data in a fresh temp folder
 * removed by stop(). Overrides are configuration key paths, as on the command line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CwmpUspProxy } from '../../src/app/proxy.js';
import { loadConfig, type Config } from '../../src/app/config.js';
import { silentLogger, type Logger } from '../../src/app/log.js';

/** The loopback defaults every test proxy starts from. */
export const LOOPBACK: Readonly<Record<string, unknown>> = {
  'acs.host': '127.0.0.1',
  'acs.port': 0,
  'usp.websocket.host': '127.0.0.1',
  'usp.websocket.port': 0,
  'admin.host': '127.0.0.1',
  'admin.port': 0,
  'log.level': 'silent',
};

export interface TestProxy {
  proxy: CwmpUspProxy;
  config: Config;
  /** http://127.0.0.1:<port>/ of the ACS. */
  acsUrl: string;
  /** ws://127.0.0.1:<port><usp.websocket.path> (the shared path); '' when the WebSocket server is off. */
  uspUrl: string;
  /** http://127.0.0.1:<port> of the admin side; '' unless started with admin: true. */
  adminUrl: string;
  /** Stops the proxy; removes the data folder if this helper made it. */
  stop(): Promise<void>;
}

export interface TestProxyOptions {
  /** Data folder (default: a fresh temp folder, removed by stop()). */
  dataDir?: string;
  /** Default: silent. */
  logger?: Logger;
  /** Also start the admin side (set admin.token in the overrides to know the token). */
  admin?: boolean;
}

/** The configuration a test proxy runs with (loopback defaults, then the overrides). */
export function testConfig(overrides: Record<string, unknown> = {}, dataDir?: string): Config {
  return loadConfig({ env: {}, overrides: { ...LOOPBACK, ...(dataDir ? { dataDir } : {}), ...overrides } });
}

/** Builds and starts a proxy on loopback; resolves once the ACS (and the admin side, if asked) listens. */
export async function startTestProxy(overrides: Record<string, unknown> = {}, opts: TestProxyOptions = {}): Promise<TestProxy> {
  const own = opts.dataDir === undefined && overrides.dataDir === undefined;
  const dataDir = own ? mkdtempSync(path.join(os.tmpdir(), 'cup-test-proxy-')) : opts.dataDir;
  const config = testConfig(overrides, dataDir);
  const proxy = new CwmpUspProxy(config, opts.logger ?? silentLogger());
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      try {
        await proxy.stop();
      } finally {
        if (own && dataDir) rmSync(dataDir, { recursive: true, force: true });
      }
    })());
  try {
    await proxy.start();
    const adminPort = opts.admin ? await proxy.startAdmin() : 0;
    const ws = proxy.usp.ws?.serverAddress();
    return {
      proxy,
      config,
      acsUrl: `http://127.0.0.1:${proxy.acsPort}/`,
      uspUrl: ws ? `ws://127.0.0.1:${ws.port}${config.usp.websocket.path}` : '',
      adminUrl: adminPort ? `http://127.0.0.1:${adminPort}` : '',
      stop,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
