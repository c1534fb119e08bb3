/**
 * An RpcPort in front of simulated CPEs, without sockets: each enqueue() is answered by the in-repo
 * simulator's RPC logic on that device's DeviceModel, with that device's quirks (a drop becomes
 * the RpcError the session engine raises when the CPE starts a new session with the RPC in
 * flight). Booleans go out as "1"/"0", as many CPEs send them.
 *
 * It also plays the CWMP session: a test opens one for a device (an Inform) and closes it; the
 * port records for every RPC whether the device was in session when it was queued. An RPC queued
 * for a device not in session is one the session engine wakes the device for (a connection request).
 */
import assert from 'node:assert/strict';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import type { AcsRequest, CpeResponse, Fault } from '../../src/cwmp/types.js';
import type { RpcPort } from '../../src/interworking/rpc-port.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { type Quirks, quirkOutcome } from '../../src/tools/sim/quirks.js';
import { handleRpc } from '../../src/tools/sim/rpc.js';

export interface SentRpc {
  deviceKey: string;
  rpc: AcsRequest;
  /** The device had a session open when the RPC was queued (false: the engine would have woken it). */
  inSession: boolean;
}

interface SimCpe {
  model: DeviceModel;
  quirks: Quirks;
}

export class SimPort implements RpcPort {
  readonly sent: SentRpc[] = [];
  readonly drops: string[] = [];
  private readonly cpes = new Map<string, SimCpe>();
  private readonly sessions = new Set<string>();
  /** A test may fault specific RPCs (before the simulator sees them). */
  faultFor: ((deviceKey: string, rpc: AcsRequest) => Fault | null) | null = null;

  add(deviceKey: string, quirks: Quirks, model = 'tr181'): DeviceModel {
    const m = new DeviceModel(loadModel(model));
    this.cpes.set(deviceKey, { model: m, quirks });
    return m;
  }

  model(deviceKey: string): DeviceModel {
    const c = this.cpes.get(deviceKey);
    assert.ok(c, `no simulated CPE ${deviceKey}`);
    return c.model;
  }

  /** Would the CPE start a session to report a change of this parameter (active notification, TR-069 3.2.1)? */
  notifies(deviceKey: string, path: string): boolean {
    const c = this.cpes.get(deviceKey)!;
    return !c.quirks.noValueChange && c.model.attr(path).notification === 2;
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
    const f = this.faultFor?.(deviceKey, rpc);
    if (f) return { kind: 'fault', fault: f };
    const cpe = this.cpes.get(deviceKey);
    if (!cpe) throw new RpcError('unknown-device', `no device ${deviceKey}`);
    const quirk = quirkOutcome(cpe.quirks, cpe.model, rpc);
    if (quirk && 'drop' in quirk) {
      this.drops.push(quirk.drop.reason);
      throw new RpcError('session-ended', 'the CPE started a new session with this RPC in flight');
    }
    const answer = quirk?.answer ?? handleRpc({ model: cpe.model, get: (p) => cpe.model.get(p), post: () => undefined }, rpc);
    if (answer.method === 'Fault') return { kind: 'fault', fault: answer as Fault };
    if (answer.method === 'GetParameterValuesResponse') {
      for (const p of answer.parameterList) if (p.type === 'xsd:boolean') p.value = p.value === 'true' ? '1' : p.value === 'false' ? '0' : p.value;
    }
    return { kind: 'response', response: answer as CpeResponse };
  }

  /** RPCs to a device since `from`, as "Method arg" strings (GetRPCMethods, asked once per model, left out). */
  methods(deviceKey: string, from = 0): string[] {
    return this.sent
      .slice(from)
      .filter((s) => s.deviceKey === deviceKey && s.rpc.method !== 'GetRPCMethods')
      .map(({ rpc }) => {
        switch (rpc.method) {
          case 'GetParameterNames':
            return `GPN ${rpc.parameterPath} ${rpc.nextLevel}`;
          case 'GetParameterValues':
            return `GPV ${rpc.parameterNames.join(',')}`;
          case 'SetParameterAttributes':
            return `SPA ${rpc.parameterList.map((p) => `${p.name}=${p.notification}`).join(',')}`;
          default:
            return rpc.method;
        }
      });
  }

  /** No GetParameterValues or SetParameterAttributes ever carried a partial path (issue 12). */
  assertExplicitNamesOnly(): void {
    for (const { rpc } of this.sent) {
      const names =
        rpc.method === 'GetParameterValues' ? rpc.parameterNames : rpc.method === 'SetParameterAttributes' ? rpc.parameterList.map((p) => p.name) : [];
      for (const n of names) assert.ok(n !== '' && !n.endsWith('.') && !n.includes('*'), `partial path in ${rpc.method}: ${n}`);
    }
  }
}
