/**
 * CWMP events become USP notifications (TR-369 Notify, TR-069 3.7.1.5 Inform events): 1 BOOT -> Device.Boot!,
 * TransferComplete -> Device.LocalAgent.TransferComplete!, 4 VALUE CHANGE -> ValueChange,
 * 0 BOOTSTRAP -> OnBoardRequest; Add/Delete through the proxy -> ObjectCreation/Deletion.
 * ValueChange subscriptions on device parameters are served by the ValueWatch (value-watch.ts):
 * active notification on the CPE where it takes it, the proxy's own comparison where it does not;
 * a change it finds goes out through the same path as a 4 VALUE CHANGE.
 * Device.LocalAgent.Periodic! stays the agent's own timer (PeriodicNotifInterval), not the CWMP
 * 2 PERIODIC Inform: the two would otherwise notify twice.
 */
import type { Inform, TransferComplete, AutonomousTransferComplete, ParameterValueStruct } from '../cwmp/types.js';
import type { DeviceRecord, Store } from '../store/types.js';
import type { Logger } from '../app/log.js';
import type { LocalAgent } from '../usp/agent/local-agent.js';
import type { Notifier } from '../usp/agent/notify.js';
import { LRUCache } from 'lru-cache';
import type { DeviceAccess } from './device-access.js';
import type { ModelProfile } from './knowledge/model-profile.js';
import { isSecret, securedValue, toUspValue } from './values.js';
import { ValueWatch, type ValueWatchOptions } from './value-watch.js';
import type { NativeExtension } from './extension.js';
import { DownloadTargets } from './download-targets.js';

/** Forced Inform parameters (TR-069 / TR-181 "Forced Inform"): reported in every Inform, not changes. */
const FORCED = [
  /\.DeviceInfo\.(HardwareVersion|SoftwareVersion|ProvisioningCode|SpecVersion)$/,
  /\.ManagementServer\.(ParameterKey|ConnectionRequestURL|AliasBasedAddressing)$/,
  /^Device\.RootDataModelVersion$/,
];

export interface EventBridgeDeps {
  localAgent: LocalAgent;
  notifier: Notifier;
  controllers: () => string[];
  deviceByEndpointId: (eid: string) => Promise<DeviceRecord | null>;
  /** Values by full name through the interworking layer (explicit names the device listed). */
  readValues: (device: DeviceRecord, names: readonly string[]) => Promise<Record<string, string>>;
  /**
   * For devices whose model is mapped (TR-098): native -> Device:2 value changes, and Device:2
   * paths -> native parameters.
   */
  mapped: {
    valueChanges(device: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<{ path: string; value: string }[]>;
    toNative(device: DeviceRecord, uspPaths: readonly string[]): Promise<string[]>;
  };
  /** The extension object Device.X_<VENDOR>_Native. (extension.ts): native names notified there too. */
  extension?: NativeExtension;
  /** A device's RPC access: 'wake' may wake it, 'ride' only uses a session it has open. */
  access: (device: DeviceRecord, how: 'wake' | 'ride') => Promise<DeviceAccess>;
  saveModel: (m: ModelProfile) => Promise<void>;
  store: Pick<Store, 'getLearned' | 'putLearned' | 'deleteLearned' | 'listAllSubscriptions'>;
  log: Logger;
}

/**
 * The forced parameters last seen of a device, kept as hashes only: per parameter a 32-bit hash of
 * its name and two independent 32-bit hashes of its value, six UTF-16 code units of one string
 * (a Map per device cost about 0.8 KiB; the values themselves 0.3 KiB). Only "did it move" is
 * asked of them: a change is missed only if both value hashes collide (2^-64).
 */
function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const NAME_SEED = 0x811c9dc5;
const VALUE_SEED_A = 0x2f6b8e13;
const VALUE_SEED_B = 0x9e3779b9;

function packSeen(seen: ReadonlyMap<number, number[]>): string {
  const units: number[] = [];
  for (const [name, [a, b]] of seen) for (const x of [name, a!, b!]) units.push(x & 0xffff, x >>> 16);
  return String.fromCharCode(...units);
}

function unpackSeen(packed: string | undefined): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (!packed) return out;
  const u = (i: number): number => (packed.charCodeAt(i) | (packed.charCodeAt(i + 1) << 16)) >>> 0;
  for (let i = 0; i + 5 < packed.length; i += 6) out.set(u(i), [u(i + 2), u(i + 4)]);
  return out;
}

export class EventBridge {
  /** Last forced-parameter values of recently active devices (bounded: idle devices cost no RAM). */
  private readonly forcedSeen = new LRUCache<string, string>({ max: 10_000 });
  /** How ValueChange subscriptions on device parameters are served. */
  readonly watch: ValueWatch;
  private readonly localAgent: LocalAgent;
  private readonly notifier: Notifier;
  private readonly log: Logger;

  constructor(
    private readonly deps: EventBridgeDeps,
    watch: ValueWatchOptions,
  ) {
    this.localAgent = deps.localAgent;
    this.notifier = deps.notifier;
    this.log = deps.log;
    const localAgent = deps.localAgent;
    this.watch = new ValueWatch(
      {
        subscriptions: (eid) => localAgent.subscriptions(eid),
        deviceByEndpointId: deps.deviceByEndpointId,
        access: deps.access,
        toNative: (d, paths) => deps.mapped.toNative(d, paths),
        extension: deps.extension,
        saveModel: deps.saveModel,
        report: (d, changes) => this.valueChanges(d, changes),
        store: deps.store,
        log: deps.log,
      },
      watch,
    );
    localAgent.on('change', (e) => {
      if (e.schemaPath === 'Device.LocalAgent.Subscription.{i}.') void this.watch.subscriptionChanged(e.agentEid);
    });
    // Another instance changed the agent's rows (several instances on one store) and set them up:
    // what this one holds in memory of the device's watch is out of date.
    localAgent.on('reloaded', ({ agentEid }) => void this.watch.forget(agentEid));
  }

  /** Restored subscriptions resume (polling); after the Local Agent restored its rows. */
  /** Resolves once no watch work is queued for the agent's device (tests). */
  idle(agentEid: string): Promise<void> {
    return this.watch.idle(agentEid);
  }

  start(): Promise<void> {
    return this.watch.start();
  }

  close(): void {
    this.watch.close();
  }

  /** Every Inform of every device. */
  inform(device: DeviceRecord, inform: Inform): void {
    const agent = device.endpointId;
    const codes = inform.event.map((e) => e.eventCode);
    const seen = unpackSeen(this.forcedSeen.get(device.deviceKey));
    const forcedChanged = new Set<string>();
    for (const p of inform.parameterList) {
      if (!FORCED.some((re) => re.test(p.name))) continue;
      const key = fnv1a(p.name, NAME_SEED);
      const now = [fnv1a(p.value, VALUE_SEED_A), fnv1a(p.value, VALUE_SEED_B)];
      const prev = seen.get(key);
      if (prev !== undefined && (prev[0] !== now[0] || prev[1] !== now[1])) forcedChanged.add(p.name);
      seen.set(key, now);
    }
    if (seen.size > 0) this.forcedSeen.set(device.deviceKey, packSeen(seen));
    if (codes.includes('0 BOOTSTRAP')) {
      for (const c of this.deps.controllers()) this.localAgent.emit('onBoardRequest', { agentEid: agent, controllerEid: c });
    }
    if (codes.includes('1 BOOT')) {
      const mReboot = inform.event.find((e) => e.eventCode === 'M Reboot');
      const mDownload = inform.event.find((e) => e.eventCode === 'M Download');
      const firmware = !!mDownload || codes.includes('7 TRANSFER COMPLETE');
      const cause = mReboot ? 'RemoteReboot' : firmware ? 'FirmwareUpdate' : 'LocalReboot';
      // Secured parameters never leave as anything but their secured value (TR-106 "secured").
      const params = Object.fromEntries(inform.parameterList.map((p) => [p.name, isSecret(p.name) ? securedValue(p.type) : toUspValue(p.type, p.value)]));
      const wanted = new Set(this.deps.controllers().flatMap((c) => this.localAgent.bootParameters(agent, c)));
      const map: Record<string, string> = {};
      for (const name of wanted) if (params[name] !== undefined) map[name] = params[name]!;
      const boot = (): void => {
        this.notifier.event(agent, 'Device.', 'Boot!', {
          // TR-181 Boot!: the CommandKey of the Reboot() or firmware Download() that caused the boot.
          CommandKey: mReboot?.commandKey ?? mDownload?.commandKey ?? '',
          Cause: cause,
          FirmwareUpdated: String(firmware),
          ParameterMap: JSON.stringify(map),
        });
        // The agent rebooted: its non-persistent state ends (TR-181 Subscription.Persistent), once
        // Boot! went out to the subscriptions that asked for it.
        void this.rebooted(agent);
      };
      // BootParameters the Inform did not carry are read from the device in the same session.
      const missing = [...wanted].filter((n) => map[n] === undefined && !n.endsWith('.') && !/[*[\]]/.test(n));
      if (missing.length && device.rootModel === 'Device') {
        void this.deps
          .readValues(device, missing)
          .then((got) => Object.assign(map, got))
          .catch((err: unknown) => this.log.warn({ endpointId: agent, err: (err as Error).message }, 'reading BootParameters failed'))
          .finally(boot);
      } else boot();
    }
    // Forced parameters ride in every Inform; they are a change only when the value moved.
    const changed = codes.includes('4 VALUE CHANGE')
      ? inform.parameterList.filter((p) => !FORCED.some((re) => re.test(p.name)) || forcedChanged.has(p.name))
      : null;
    // The watch sends the reported changes on, then does its own reads riding this session.
    void this.watch.inform(device, inform, changed);
  }

  private async rebooted(agent: string): Promise<void> {
    try {
      const gone = await this.localAgent.deviceRebooted(agent);
      if (gone.length === 0) return;
      this.notifier.rearm(agent);
      await this.watch.subscriptionChanged(agent);
      this.log.info({ endpointId: agent, subscriptions: gone.length }, 'device rebooted: non-persistent subscriptions ended');
    } catch (err) {
      this.log.warn({ endpointId: agent, err: (err as Error).message }, 'ending non-persistent subscriptions after a reboot failed');
    }
  }

  /** Changes of device parameters (CWMP names and values) as ValueChange Notify: the CPE's, or found by the watch. */
  private async valueChanges(device: DeviceRecord, params: readonly ParameterValueStruct[]): Promise<void> {
    if (params.length === 0) return;
    const agent = device.endpointId;
    const ext = this.deps.extension;
    // Secured parameters leave as their secured value only (TR-106 "secured"), whoever found the change.
    const uspValue = (p: ParameterValueStruct): string => (isSecret(p.name) ? securedValue(p.type) : toUspValue(p.type, p.value));
    if (device.rootModel !== 'Device') {
      try {
        for (const c of await this.deps.mapped.valueChanges(device, params)) this.notifier.valueChange(agent, c.path, c.value);
      } catch (err) {
        this.log.warn({ endpointId: agent, err: (err as Error).message }, 'mapping a VALUE CHANGE failed');
      }
      // The same parameter under the extension object, for subscriptions on the native tree.
      for (const p of params) {
        const path = ext?.toUsp(device.rootModel, p.name);
        if (path) this.notifier.valueChange(agent, path, uspValue(p));
      }
      return;
    }
    for (const p of params) {
      // The device's own Device.LocalAgent. (shadowed by the proxy's) changed: it is the extension object's, not the agent's.
      const path = ext?.isShadowed('Device', p.name) ? ext.toUsp('Device', p.name) : p.name;
      if (path) this.notifier.valueChange(agent, path, uspValue(p));
    }
  }

  transferComplete(device: DeviceRecord, m: TransferComplete | AutonomousTransferComplete): void {
    void this.transferCompleteEvent(device, m).catch((err: unknown) =>
      this.log.warn({ endpointId: device.endpointId, err: (err as Error).message }, 'TransferComplete! not sent'),
    );
  }

  private async transferCompleteEvent(device: DeviceRecord, m: TransferComplete | AutonomousTransferComplete): Promise<void> {
    // TR-181 TransferComplete! Command: the Download() that was run, with the image it targeted.
    const command =
      m.method === 'TransferComplete'
        ? ((await new DownloadTargets(this.deps.store).take(device.deviceKey, m.commandKey).catch(() => null)) ??
          'Device.DeviceInfo.FirmwareImage.1.Download()')
        : '';
    this.notifier.event(device.endpointId, 'Device.LocalAgent.', 'TransferComplete!', {
      Command: command,
      CommandKey: m.method === 'TransferComplete' ? m.commandKey : '',
      Requestor: '',
      TransferType: m.method === 'AutonomousTransferComplete' && !m.isDownload ? 'Upload' : 'Download',
      Affected: '',
      TransferURL: m.method === 'AutonomousTransferComplete' ? m.transferURL : '',
      StartTime: m.startTime,
      CompleteTime: m.completeTime,
      FaultCode: String(m.fault.faultCode),
      FaultString: m.fault.faultString,
    });
  }
}
