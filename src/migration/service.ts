/**
 * Migrations of devices to their native USP Agents (docs/migration.md): detection of dual-stack
 * devices, one migration at a time per device (runner.ts), its state kept in the store (learned
 * document 'migration', per device), the device's reboot during a migration as an interruption,
 * and which agents are handed over (their proxied agent stays quiet). I/O comes in as ports.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../app/log.js';
import type { DeviceRecord, Store } from '../store/types.js';
import { DETECTION_PARAMS, detectUspAgent, type UspAgentDetection } from './detect.js';
import type { MigrationState } from './machine.js';
import { type MigrationPorts, type RunnerOptions, runMigration } from './runner.js';

/** What is kept per device. */
export interface DeviceMigration {
  detection: UspAgentDetection | null;
  migration: MigrationState | null;
}

/** One device's CWMP reads and writes, through the interworking layer. */
export interface CwmpAccess {
  readCwmp(names: readonly string[]): Promise<Record<string, string>>;
  writeCwmp(values: Record<string, string>): Promise<void>;
}

export interface MigrationServicePorts {
  store: Pick<Store, 'getDevice' | 'getDeviceByEndpointId' | 'getLearned' | 'putLearned'>;
  cwmp(device: DeviceRecord): Promise<CwmpAccess>;
  /** Null when migration.* names no broker/controller: migrations fail at once saying so. */
  nativeGet: MigrationPorts['nativeGet'] | null;
  /** The handover Notify from the proxied agent (an Event X_<VENDOR>_Migrated!). */
  announce(agentEid: string, nativeEndpointId: string): void;
  log: Logger;
  now?: () => Date;
}

export interface MigrationServiceOptions extends Omit<RunnerOptions, 'target'> {
  target: RunnerOptions['target'] | null;
  /** Keep the device's CWMP side as a fallback after the handover; false: its Periodic Inform is switched off. */
  keepCwmpFallback: boolean;
  /** Detect on every BOOTSTRAP/BOOT Inform of a Device:2 device (costs a GetParameterValues). */
  detectOnInform: boolean;
}

export interface MigrationEvents {
  detected: [{ deviceKey: string; detection: UspAgentDetection }];
  finished: [{ deviceKey: string; state: MigrationState }];
}

export class MigrationError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 503,
    message: string,
  ) {
    super(message);
  }
}

export class MigrationService extends EventEmitter<MigrationEvents> {
  private readonly running = new Map<string, { abort: AbortController; done: Promise<MigrationState> }>();
  /** Agents handed over to their native agent (Endpoint IDs of the proxied agents). */
  private readonly handedOver = new Set<string>();
  private readonly now: () => Date;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly ports: MigrationServicePorts,
    private readonly o: MigrationServiceOptions,
  ) {
    super();
    this.now = ports.now ?? (() => new Date());
  }

  /** The proxied agent of a migrated device sends no ValueChange or Periodic! any more. */
  isHandedOver(agentEid: string): boolean {
    return this.handedOver.has(agentEid);
  }

  get inProgress(): number {
    return this.running.size;
  }

  async view(deviceKey: string): Promise<DeviceMigration> {
    const raw = await this.ports.store.getLearned('migration', deviceKey);
    if (!raw) return { detection: null, migration: null };
    try {
      const v = JSON.parse(raw) as Partial<DeviceMigration>;
      return { detection: v.detection ?? null, migration: v.migration ?? null };
    } catch {
      return { detection: null, migration: null };
    }
  }

  /** One write at a time (read, merge, write): a step's state never lands after the final one. */
  private save(deviceKey: string, patch: Partial<DeviceMigration>): Promise<void> {
    const p = this.saving.then(async () => {
      const cur = await this.view(deviceKey);
      await this.ports.store.putLearned('migration', deviceKey, JSON.stringify({ ...cur, ...patch }));
    });
    this.saving = p.catch(() => undefined);
    return p;
  }

  /** Reads the device's LocalAgent over CWMP and records whether it is dual-stack. */
  async detect(device: DeviceRecord): Promise<UspAgentDetection> {
    const values = device.rootModel === 'Device' ? await (await this.ports.cwmp(device)).readCwmp(DETECTION_PARAMS) : {};
    const detection = detectUspAgent(device.rootModel, values, this.now());
    await this.save(device.deviceKey, { detection });
    this.emit('detected', { deviceKey: device.deviceKey, detection });
    return detection;
  }

  /** An Inform: a BOOT interrupts a migration in progress (its settings are rolled back); BOOTSTRAP/BOOT may detect. */
  inform(device: DeviceRecord, events: readonly string[]): void {
    const boot = events.some((e) => e === '1 BOOT' || e === '0 BOOTSTRAP');
    if (!boot) return;
    const r = this.running.get(device.deviceKey);
    if (r) r.abort.abort('the device rebooted during the migration');
    else if (this.o.detectOnInform && device.rootModel === 'Device')
      void this.detect(device).catch((e: Error) => this.ports.log.warn({ endpointId: device.endpointId, err: e.message }, 'migration: detection failed'));
  }

  /** Starts a migration; resolves with its end state. 409 when one runs for the device already. */
  start(device: DeviceRecord): Promise<MigrationState> {
    if (this.running.has(device.deviceKey)) throw new MigrationError(409, `a migration of ${device.endpointId} is in progress`);
    const target = this.o.target;
    const nativeGet = this.ports.nativeGet;
    if (!target || !nativeGet)
      throw new MigrationError(503, 'migration is not configured: set migration.brokerHost, migration.controllerEndpointId and migration.controllerTopic');
    const abort = new AbortController();
    const log = this.ports.log.child({ endpointId: device.endpointId });
    const done = (async (): Promise<MigrationState> => {
      const cwmp = await this.ports.cwmp(device);
      const ports: MigrationPorts = {
        ...cwmp,
        nativeGet,
        handover: async (nativeEid) => {
          if (!this.o.keepCwmpFallback) await cwmp.writeCwmp({ 'Device.ManagementServer.PeriodicInformEnable': 'false' });
          this.handedOver.add(device.endpointId);
          this.ports.announce(device.endpointId, nativeEid);
        },
        sleep: (ms, signal) =>
          new Promise((resolve) => {
            const t = setTimeout(resolve, ms);
            signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
          }),
        now: this.now,
      };
      const state = await runMigration(ports, { ...this.o, target }, abort.signal, (s) => {
        void this.save(device.deviceKey, { migration: s }).catch(() => undefined);
      });
      await this.save(device.deviceKey, { migration: state });
      if (state.phase === 'migrated') log.info({ nativeEndpointId: state.nativeEndpointId }, 'migration: handed over to the native USP Agent');
      else log.warn({ reason: state.reason, rolledBack: state.rolledBack }, 'migration failed');
      return state;
    })().finally(() => this.running.delete(device.deviceKey));
    this.running.set(device.deviceKey, { abort, done });
    void done.then((state) => this.emit('finished', { deviceKey: device.deviceKey, state })).catch(() => undefined);
    return done;
  }

  /** Restores the handed-over set from the store (devices given by the caller). */
  async restore(devices: readonly DeviceRecord[]): Promise<void> {
    for (const d of devices) if ((await this.view(d.deviceKey)).migration?.phase === 'migrated') this.handedOver.add(d.endpointId);
  }

  /** Ends migrations in progress (they roll back first). */
  async stop(): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.abort.abort('the proxy is stopping');
    await Promise.allSettled(all.map((r) => r.done));
  }
}
