/**
 * Builds the migration parts from the configuration (migration.*, interworking.extensionVendor):
 * the service, the Operate backend, the rollouts, the native probe (when a broker and a controller
 * are configured), the admin API ports and the metrics. proxy.ts mounts what this returns.
 */
import type { Config } from '../app/config.js';
import type { Logger } from '../app/log.js';
import type { DeviceAccess } from '../interworking/device-access.js';
import type { DeviceRecord, Store } from '../store/types.js';
import type { Registry } from 'prom-client';
import { MigrationCommandBackend } from './command-backend.js';
import { attachMigrationMetrics } from './metrics.js';
import { NativeProbe } from './native-probe.js';
import type { MigrationTarget } from './plan.js';
import { Rollouts } from './rollouts.js';
import { type CwmpAccess, MigrationService } from './service.js';

/** Compared when migration.verifyPaths is empty: identity and firmware, stable between two reads. */
export const DEFAULT_VERIFY_PATHS: readonly string[] = [
  'Device.DeviceInfo.ManufacturerOUI',
  'Device.DeviceInfo.ProductClass',
  'Device.DeviceInfo.SerialNumber',
  'Device.DeviceInfo.SoftwareVersion',
  'Device.DeviceInfo.HardwareVersion',
];

export interface MigrationDeps {
  store: Store;
  log: Logger;
  open(d: DeviceRecord): Promise<DeviceAccess>;
  announce(agentEid: string, objPath: string, eventName: string, params: Record<string, string>): void;
}

export interface Migration {
  service: MigrationService;
  command: MigrationCommandBackend;
  rollouts: Rollouts;
  /** What the admin API's migration routes use (src/ops/migration-api.ts). */
  api: { service: MigrationService; rollouts: Rollouts; configured: boolean };
  attachMetrics(registry: Registry): void;
  stop(): Promise<void>;
}

/** The device's CWMP reads and writes through DeviceAccess (explicit names the device lists; one SetParameterValues). */
export function cwmpAccess(a: DeviceAccess): CwmpAccess {
  return {
    async readCwmp(names) {
      const known: string[] = [];
      for (const n of names) if (await a.knownParam(n)) known.push(n);
      const out: Record<string, string> = {};
      for (const p of await a.gpv(known)) out[p.name] = p.value;
      return out;
    },
    async writeCwmp(values) {
      const r = await a.setParameterValues(Object.entries(values).map(([name, value]) => ({ name, value })));
      // Codes and names only: a CPE's fault string may echo the value it refused (a password).
      if (!r.ok)
        throw new Error(
          `SetParameterValues fault ${r.errCode}${r.perParam.length ? `: ${r.perParam.map((p) => `${p.parameterName} ${p.faultCode}`).join(', ')}` : ''}`,
        );
    },
  };
}

export function buildMigration(config: Config, deps: MigrationDeps): Migration {
  const m = config.migration;
  const configured = m.brokerHost !== '' && m.controllerEndpointId !== '' && m.controllerTopic !== '';
  const target: MigrationTarget | null = configured
    ? {
        brokerHost: m.brokerHost,
        brokerPort: m.brokerPort,
        brokerTls: m.brokerTls,
        brokerUsername: m.brokerUsername,
        brokerPassword: m.brokerPassword,
        agentTopicPrefix: m.agentTopicPrefix,
        controllerEndpointId: m.controllerEndpointId,
        controllerTopic: m.controllerTopic,
      }
    : null;
  const host = m.brokerHost.includes(':') ? `[${m.brokerHost}]` : m.brokerHost;
  const probe = configured
    ? new NativeProbe({
        url: m.proxyBrokerUrl || `${m.brokerTls ? 'mqtts' : 'mqtt'}://${host}:${m.brokerPort}`,
        username: m.brokerUsername,
        password: m.brokerPassword,
        controllerEndpointId: m.controllerEndpointId,
        agentTopicPrefix: m.agentTopicPrefix,
      })
    : null;
  const vendor = config.interworking.extensionVendor;
  const service = new MigrationService(
    {
      store: deps.store,
      cwmp: async (d) => cwmpAccess(await deps.open(d)),
      nativeGet: probe ? (eid, paths, timeoutMs) => probe.get(eid, paths, timeoutMs) : null,
      announce: (agentEid, nativeEid) => deps.announce(agentEid, 'Device.', `X_${vendor}_Migrated!`, { NativeEndpointID: nativeEid }),
      log: deps.log,
    },
    {
      target,
      verifyPaths: m.verifyPaths.length ? m.verifyPaths : DEFAULT_VERIFY_PATHS,
      appearTimeoutMs: m.appearTimeoutMs,
      pollIntervalMs: m.pollIntervalMs,
      requestTimeoutMs: m.requestTimeoutMs,
      keepCwmpFallback: m.keepCwmpFallback,
      detectOnInform: m.detectOnInform,
    },
  );
  const rollouts = new Rollouts({ store: deps.store, migrate: (d) => service.start(d) }, { ...m.rollout });
  return {
    service,
    command: new MigrationCommandBackend(vendor, service, (eid) => deps.store.getDeviceByEndpointId(eid)),
    rollouts,
    api: { service, rollouts, configured },
    attachMetrics: (registry) => attachMigrationMetrics(registry, service, rollouts),
    async stop() {
      rollouts.cancelAll();
      await service.stop();
      await probe?.stop();
    },
  };
}
