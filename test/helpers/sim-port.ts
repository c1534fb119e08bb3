/**
 * An RpcPort in front of simulated CPEs, without sockets: the interworking layer driven end to end.
 * Each enqueue() is answered by the in-repo simulator's RPC logic on that device's DeviceModel, with
 * that device's quirks (a drop becomes the RpcError the session engine raises when the CPE starts a
 * new session with the RPC in flight). Booleans go out as "1"/"0", as many CPEs send them.
 *
 * It also plays the CWMP session: a test may open one for a device (an Inform) and close it; every
 * RPC records whether the device was in session when it was queued (false: the engine would have
 * woken the device with a connection request). A test can make the port fail or fault RPCs.
 */
import assert from 'node:assert/strict';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import type { AcsRequest, CpeResponse, Fault } from '../../src/cwmp/types.js';
import type { RpcPort } from '../../src/interworking/rpc-port.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { type Quirks, quirkOutcome } from '../../src/tools/sim/quirks.js';
import { handleRpc } from '../../src/tools/sim/rpc.js';

export interface SentRpc {
  deviceKey: string;
  rpc: AcsRequest;
  /** The device had a session open when the RPC was queued (false: the engine would have woken it). */
  inSession: boolean;
}

export class SimPort implements RpcPort {
  readonly sent: SentRpc[] = [];
  readonly drops: string[] = [];
  /** The simulated devices by deviceKey. */
  readonly devices = new Map<string, DeviceModel>();
  private readonly quirksOf = new Map<string, Quirks>();
  private readonly sessions = new Set<string>();
  /** When set, every enqueue rejects with it (device unreachable, session timeout, ...). */
  failWith: RpcError | null = null;
  /** Answer with a Fault instead of asking the device. */
  faultFor: ((rpc: AcsRequest, deviceKey: string) => Fault | null) | null = null;

  /** `quirks`: the profile of devices added without their own. */
  constructor(readonly quirks: Quirks = {}) {}

  /** A simulated device: `add(key)`, `add(key, 'tr098')`, `add(key, quirks)` or `add(key, quirks, 'tr098')`. */
  add(deviceKey: string, quirksOrModel?: Quirks | string, model?: string): DeviceModel {
    const name = typeof quirksOrModel === 'string' ? quirksOrModel : (model ?? 'tr181');
    const m = new DeviceModel(loadModel(name));
    this.devices.set(deviceKey, m);
    this.quirksOf.set(deviceKey, typeof quirksOrModel === 'object' ? quirksOrModel : this.quirks);
    return m;
  }

  model(deviceKey: string): DeviceModel {
    const m = this.devices.get(deviceKey);
    assert.ok(m, `no simulated CPE ${deviceKey}`);
    return m;
  }

  /** Would the CPE start a session to report a change of this parameter (active notification, TR-069 3.2.1)? */
  notifies(deviceKey: string, path: string): boolean {
    return !this.quirksOf.get(deviceKey)?.noValueChange && this.model(deviceKey).attr(path).notification === 2;
  }

  openSession(deviceKey: string): void {
    this.sessions.add(deviceKey);
  }

  closeSession(deviceKey: string): void {
    this.sessions.delete(deviceKey);
  }

  inSession(deviceKey: string): boolean {
    return this.sessions.has(deviceKey);
  }

  async enqueue(deviceKey: string, rpc: AcsRequest): Promise<RpcOutcome> {
    this.sent.push({ deviceKey, rpc: structuredClone(rpc), inSession: this.sessions.has(deviceKey) });
    if (this.failWith) throw this.failWith;
    const f = this.faultFor?.(rpc, deviceKey);
    if (f) return { kind: 'fault', fault: f };
    const model = this.devices.get(deviceKey);
    if (!model) throw new RpcError('unknown-device', `no device ${deviceKey}`);
    const quirk = quirkOutcome(this.quirksOf.get(deviceKey) ?? this.quirks, model, rpc);
    if (quirk && 'drop' in quirk) {
      this.drops.push(quirk.drop.reason);
      throw new RpcError('session-ended', 'the CPE started a new session with this RPC in flight');
    }
    const answer = quirk?.answer ?? handleRpc({ model, get: (p) => model.get(p), post: () => undefined }, rpc);
    if (answer.method === 'Fault') return { kind: 'fault', fault: answer as Fault };
    if (answer.method === 'GetParameterValuesResponse') {
      for (const p of answer.parameterList) if (p.type === 'xsd:boolean') p.value = p.value === 'true' ? '1' : p.value === 'false' ? '0' : p.value;
    }
    return { kind: 'response', response: answer as CpeResponse };
  }

  /**
   * RPCs sent since `from` (to one device when given), as "Method arg" strings; GetRPCMethods, asked
   * once per device model, is left out.
   */
  methods(from?: number): string[];
  methods(deviceKey: string, from?: number): string[];
  methods(a: number | string = 0, b = 0): string[] {
    const deviceKey = typeof a === 'string' ? a : null;
    const from = typeof a === 'number' ? a : b;
    return this.sent
      .slice(from)
      .filter((s) => (deviceKey === null || s.deviceKey === deviceKey) && s.rpc.method !== 'GetRPCMethods')
      .map(({ rpc }) => {
        switch (rpc.method) {
          case 'GetParameterNames':
            return `GPN ${rpc.parameterPath} ${rpc.nextLevel}`;
          case 'GetParameterValues':
            return `GPV ${rpc.parameterNames.join(',')}`;
          case 'SetParameterValues':
            return `SPV ${rpc.parameterList.map((p) => `${p.name}=${p.value}(${p.type})`).join(',')}`;
          case 'SetParameterAttributes':
            return `SPA ${rpc.parameterList.map((p) => `${p.name}=${p.notification}`).join(',')}`;
          case 'AddObject':
            return `AddObject ${rpc.objectName}`;
          case 'DeleteObject':
            return `DeleteObject ${rpc.objectName}`;
          default:
            return rpc.method;
        }
      });
  }

  count(method: AcsRequest['method'], from = 0): number {
    return this.sent.slice(from).filter((s) => s.rpc.method === method).length;
  }

  /** No GetParameterValues or SetParameterAttributes ever carried a partial path (the fleet rule). */
  assertExplicitNamesOnly(): void {
    for (const { rpc } of this.sent) {
      const names =
        rpc.method === 'GetParameterValues' ? rpc.parameterNames : rpc.method === 'SetParameterAttributes' ? rpc.parameterList.map((p) => p.name) : [];
      for (const n of names) assert.ok(n !== '' && !n.endsWith('.') && !n.includes('*'), `partial path in ${rpc.method}: ${n}`);
    }
  }
}

/** A device record for a simulated CPE (registry side). */
export function deviceRecord(serial: string, softwareVersion = '1.0.0', root: DeviceRecord['rootModel'] = 'Device'): DeviceRecord {
  const pc = root === 'Device' ? 'SimGW' : 'SimIGD';
  return {
    deviceKey: `F0AD4E-${pc}-${serial}`,
    endpointId: `os::F0AD4E-${serial}`,
    deviceId: { manufacturer: 'CWMP-USP-Proxy Simulator', oui: 'F0AD4E', productClass: pc, serialNumber: serial },
    rootModel: root,
    softwareVersion,
    connectionRequestUrl: 'http://127.0.0.1:7547/',
    connReqUsername: null,
    connReqPassword: null,
    cpeUsername: null,
    cpePassword: null,
    periodicInformInterval: 3600,
    lastInform: null,
    lastInformEvents: [],
    registeredAt: '2024-01-01T00:00:00Z',
  };
}
