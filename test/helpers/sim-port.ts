/**
 * A scripted RpcPort in front of simulated devices (the in-repo simulator's RPC logic and quirks)
 * and device records for it: the interworking layer driven end to end without sockets. Each
 * enqueue() is answered on that device's DeviceModel; a quirk's drop becomes the RpcError the
 * session engine raises when the CPE starts a new session with the RPC in flight. Booleans go out
 * as "1"/"0", as many CPEs send them. A test can make the port fail or fault specific RPCs.
 */
import assert from 'node:assert/strict';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import type { AcsRequest, CpeResponse, Fault } from '../../src/cwmp/types.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { type Quirks, quirkOutcome } from '../../src/tools/sim/quirks.js';
import { handleRpc } from '../../src/tools/sim/rpc.js';

export interface Sent {
  deviceKey: string;
  rpc: AcsRequest;
}

/**
 * An RpcPort in front of simulated devices: each enqueue() is answered by the simulator on that
 * device's DeviceModel, with its quirks (a drop becomes the RpcError the session engine raises
 * when the CPE starts a new session with the RPC in flight). Booleans go out as "1"/"0", as many
 * CPEs send them. A test can make the port fail (RpcError) or fault specific RPCs.
 */
export class SimPort {
  readonly sent: Sent[] = [];
  readonly devices = new Map<string, DeviceModel>();
  readonly drops: string[] = [];
  failWith: RpcError | null = null;
  faultFor: ((rpc: AcsRequest) => Fault | null) | null = null;

  constructor(readonly quirks: Quirks) {}

  add(deviceKey: string, model = 'tr181'): DeviceModel {
    const m = new DeviceModel(loadModel(model));
    this.devices.set(deviceKey, m);
    return m;
  }

  async enqueue(deviceKey: string, rpc: AcsRequest): Promise<RpcOutcome> {
    this.sent.push({ deviceKey, rpc: structuredClone(rpc) });
    if (this.failWith) throw this.failWith;
    const f = this.faultFor?.(rpc);
    if (f) return { kind: 'fault', fault: f };
    const model = this.devices.get(deviceKey);
    if (!model) throw new RpcError('unknown-device', `no device ${deviceKey}`);
    const quirk = quirkOutcome(this.quirks, model, rpc);
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

  /** RPCs sent since `from`, as "Method arg" strings (GetRPCMethods, asked once per model, left out). */
  methods(from = 0): string[] {
    return this.sent
      .slice(from)
      .filter(({ rpc }) => rpc.method !== 'GetRPCMethods')
      .map(({ rpc }) => {
        switch (rpc.method) {
          case 'GetParameterNames':
            return `GPN ${rpc.parameterPath} ${rpc.nextLevel}`;
          case 'GetParameterValues':
            return `GPV ${rpc.parameterNames.join(',')}`;
          case 'SetParameterValues':
            return `SPV ${rpc.parameterList.map((p) => `${p.name}=${p.value}(${p.type})`).join(',')}`;
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

  /** No GetParameterValues ever carried a partial path (the rule of issue 12). */
  assertExplicitNamesOnly(): void {
    for (const { rpc } of this.sent) {
      if (rpc.method === 'GetParameterValues') for (const n of rpc.parameterNames) assert.ok(!n.endsWith('.') && n !== '', `partial path in a GPV: ${n}`);
    }
  }
}

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
