/**
 * CWMP events become USP notifications (TR-369 Notify, TR-069 3.7.1.5 Inform events): 1 BOOT -> Device.Boot!,
 * TransferComplete -> Device.LocalAgent.TransferComplete!, 4 VALUE CHANGE -> ValueChange,
 * 0 BOOTSTRAP -> OnBoardRequest; Add/Delete through the proxy -> ObjectCreation/Deletion.
 * ValueChange subscriptions on device parameters are mirrored as SetParameterAttributes
 * Notification=2 on the device (and set back to 0 when the subscription goes).
 * Device.LocalAgent.Periodic! stays the agent's own timer (PeriodicNotifInterval), not the CWMP
 * 2 PERIODIC Inform: the two would otherwise notify twice.
 */
import type { Inform, TransferComplete, AutonomousTransferComplete, AcsRequest } from '../cwmp/types.js';
import type { RpcOutcome } from '../cwmp/session.js';
import type { DeviceRecord } from '../store/types.js';
import type { Logger } from '../app/log.js';
import type { LocalAgent } from '../usp/agent/local-agent.js';
import type { Notifier } from '../usp/agent/notify.js';
import type { ChangeEvent } from '../usp/dm/memory.js';
import { splitReferenceList } from '../usp/path/index.js';
import { LRUCache } from 'lru-cache';
import { isSecret, securedValue, toUspValue } from './values.js';

/** Forced Inform parameters (TR-069 / TR-181 "Forced Inform"): reported in every Inform, not changes. */
const FORCED = [
  /\.DeviceInfo\.(HardwareVersion|SoftwareVersion|ProvisioningCode|SpecVersion)$/,
  /\.ManagementServer\.(ParameterKey|ConnectionRequestURL|AliasBasedAddressing)$/,
  /^Device\.RootDataModelVersion$/,
];

export class EventBridge {
  /** Last value of each forced Inform parameter per device: a forced parameter is a value change only when it differs. */
  /** Last forced-parameter values of recently active devices (bounded: idle devices cost no RAM). */
  private readonly forcedSeen = new LRUCache<string, Map<string, string>>({ max: 10_000 });

  constructor(
    private readonly localAgent: LocalAgent,
    private readonly notifier: Notifier,
    private readonly controllers: () => string[],
    private readonly enqueue: (deviceKey: string, rpc: AcsRequest) => Promise<RpcOutcome>,
    private readonly deviceByEndpointId: (eid: string) => Promise<DeviceRecord | null>,
    /** Values by full name through the interworking layer (explicit names the device listed). */
    private readonly readValues: (device: DeviceRecord, names: readonly string[]) => Promise<Record<string, string>>,
    /**
     * For devices whose model is mapped (TR-098): native -> Device:2 value changes, and Device:2
     * paths -> native parameters for SetParameterAttributes.
     */
    private readonly mapped: {
      valueChanges(device: DeviceRecord, params: readonly { name: string; value: string; type: string }[]): Promise<{ path: string; value: string }[]>;
      toNative(device: DeviceRecord, uspPaths: readonly string[]): Promise<string[]>;
    },
    private readonly log: Logger,
  ) {
    localAgent.on(
      'change',
      (e) =>
        void this.onSubscriptionChange(e).catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message }, 'mirroring a subscription to the device failed'),
        ),
    );
  }

  /** Every Inform of every device. */
  inform(device: DeviceRecord, inform: Inform): void {
    const agent = device.endpointId;
    const codes = inform.event.map((e) => e.eventCode);
    let seen = this.forcedSeen.get(device.deviceKey);
    if (!seen) this.forcedSeen.set(device.deviceKey, (seen = new Map()));
    const forcedChanged = new Set<string>();
    for (const p of inform.parameterList) {
      if (!FORCED.some((re) => re.test(p.name))) continue;
      const prev = seen.get(p.name);
      if (prev !== undefined && prev !== p.value) forcedChanged.add(p.name);
      seen.set(p.name, p.value);
    }
    if (codes.includes('0 BOOTSTRAP')) {
      for (const c of this.controllers()) this.localAgent.emit('onBoardRequest', { agentEid: agent, controllerEid: c });
    }
    if (codes.includes('1 BOOT')) {
      const mReboot = inform.event.find((e) => e.eventCode === 'M Reboot');
      const mDownload = inform.event.find((e) => e.eventCode === 'M Download');
      const firmware = !!mDownload || codes.includes('7 TRANSFER COMPLETE');
      const cause = mReboot ? 'RemoteReboot' : firmware ? 'FirmwareUpdate' : 'LocalReboot';
      // Secured parameters never leave as anything but their secured value (TR-106 "secured").
      const params = Object.fromEntries(inform.parameterList.map((p) => [p.name, isSecret(p.name) ? securedValue(p.type) : toUspValue(p.type, p.value)]));
      const wanted = new Set(this.controllers().flatMap((c) => this.localAgent.bootParameters(agent, c)));
      const map: Record<string, string> = {};
      for (const name of wanted) if (params[name] !== undefined) map[name] = params[name]!;
      const boot = (): void =>
        this.notifier.event(agent, 'Device.', 'Boot!', {
          // TR-181 Boot!: the CommandKey of the Reboot() or firmware Download() that caused the boot.
          CommandKey: mReboot?.commandKey ?? mDownload?.commandKey ?? '',
          Cause: cause,
          FirmwareUpdated: String(firmware),
          ParameterMap: JSON.stringify(map),
        });
      // BootParameters the Inform did not carry are read from the device in the same session.
      const missing = [...wanted].filter((n) => map[n] === undefined && !n.endsWith('.') && !/[*[\]]/.test(n));
      if (missing.length && device.rootModel === 'Device') {
        void this.readValues(device, missing)
          .then((got) => Object.assign(map, got))
          .catch((err: unknown) => this.log.warn({ endpointId: agent, err: (err as Error).message }, 'reading BootParameters failed'))
          .finally(boot);
      } else boot();
    }
    if (codes.includes('4 VALUE CHANGE')) {
      // Forced parameters ride in every Inform; they are a change only when the value moved.
      const changed = inform.parameterList.filter((p) => !FORCED.some((re) => re.test(p.name)) || forcedChanged.has(p.name));
      if (device.rootModel !== 'Device') {
        void this.mapped
          .valueChanges(device, changed)
          .then((list) => {
            for (const c of list) this.notifier.valueChange(agent, c.path, c.value);
          })
          .catch((err: unknown) => this.log.warn({ endpointId: agent, err: (err as Error).message }, 'mapping a VALUE CHANGE failed'));
      } else {
        for (const p of changed) this.notifier.valueChange(agent, p.name, isSecret(p.name) ? securedValue(p.type) : toUspValue(p.type, p.value));
      }
    }
  }

  transferComplete(device: DeviceRecord, m: TransferComplete | AutonomousTransferComplete): void {
    this.notifier.event(device.endpointId, 'Device.LocalAgent.', 'TransferComplete!', {
      Command: m.method === 'TransferComplete' ? 'Device.DeviceInfo.FirmwareImage.1.Download()' : '',
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

  /** ValueChange subscriptions on device parameters: Notification=2 while they exist (TR-069 A.3.2.4). */
  private async onSubscriptionChange(e: ChangeEvent): Promise<void> {
    if (e.schemaPath !== 'Device.LocalAgent.Subscription.{i}.') return;
    const before = e.kind === 'delete' ? e.values : null;
    const after = e.kind === 'delete' ? null : e.values;
    const refs = (r: Record<string, string> | null): string[] =>
      r && r.NotifType === 'ValueChange' && r.Enable === 'true'
        ? splitReferenceList(r.ReferenceList ?? '').filter((p) => p.startsWith('Device.') && !p.startsWith('Device.LocalAgent.') && !/[*[\]+]/.test(p))
        : [];
    const on = refs(after);
    const off = e.kind === 'set' ? [] : refs(before).filter((p) => !on.includes(p));
    if (e.kind === 'set' && e.changed && !('Enable' in e.changed || 'ReferenceList' in e.changed || 'NotifType' in e.changed)) return;
    if (on.length === 0 && off.length === 0 && e.kind !== 'set') return;
    const device = await this.deviceByEndpointId(e.agentEid);
    if (!device) return;
    let onNative = on;
    let offNative = off;
    if (device.rootModel !== 'Device') {
      onNative = await this.mapped.toNative(device, on);
      offNative = (await this.mapped.toNative(device, off)).filter((p) => !onNative.includes(p));
    }
    const list = [
      ...onNative.map((name) => ({ name, notificationChange: true, notification: 2, accessListChange: false, accessList: [] as string[] })),
      ...offNative.map((name) => ({ name, notificationChange: true, notification: 0, accessListChange: false, accessList: [] as string[] })),
    ];
    if (list.length === 0) return;
    const out = await this.enqueue(device.deviceKey, { method: 'SetParameterAttributes', parameterList: list });
    if (out.kind === 'fault')
      this.log.warn({ endpointId: e.agentEid, faultCode: out.fault.faultCode }, 'the device refused active notification for a ValueChange subscription');
  }
}
