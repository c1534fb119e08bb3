/**
 * The CWMP device as a USP data-model backend (DESIGN sections 4 and 5), driven end to end
 * without sockets: real USP request Msgs (through encodeMsg/decodeMsg) go through handle()
 * into CwmpDeviceBackend, whose RpcPort answers with the in-repo simulator's RPC logic on the
 * bundled tr181 model. The port records every CWMP RPC, so the tests assert how many and which
 * RPCs a USP request produced, as well as every decoded response field.
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { CwmpDeviceBackend, type RpcPort } from '../../src/interworking/backend.js';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import type { AcsRequest, CpeResponse, Fault } from '../../src/cwmp/types.js';
import { loadConfig } from '../../src/app/config.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { handleRpc, makeFault } from '../../src/tools/sim/rpc.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { handle, type HandlerContext } from '../../src/usp/handlers/index.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';
import { LOCAL_AGENT_PREFIXES } from '../../src/usp/agent/local-agent-schema.js';
import { decodeMsg, encodeMsg, type Msg, type MsgType, type Request } from '../../src/usp/codec/record.js';

const CONTROLLER = 'proto::ctl';

// ------------------------------------------------------------------ the scripted device

interface Sent {
  deviceKey: string;
  rpc: AcsRequest;
}

/**
 * An RpcPort in front of simulated devices: each enqueue() is answered by the simulator's
 * handleRpc on that device's DeviceModel. Booleans go out as "1"/"0" (as many CPEs send them),
 * types are learned from every GPV response (as the session engine does), and a test can make
 * the port fail (RpcError) or fault specific RPCs.
 */
class SimPort implements RpcPort {
  readonly sent: Sent[] = [];
  readonly devices = new Map<string, DeviceModel>();
  /** Learned xsi:types per deviceKey (the engine keys them by device model; per device is enough here). */
  readonly types = new Map<string, Map<string, string>>();
  /** When set, every enqueue rejects with it (device unreachable, session timeout, ...). */
  failWith: RpcError | null = null;
  /** Answer with a Fault instead of asking the device. */
  faultFor: ((rpc: AcsRequest) => Fault | null) | null = null;

  add(deviceKey: string): DeviceModel {
    const m = new DeviceModel(loadModel('tr181'));
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
    const answer = handleRpc({ model, get: (p) => model.get(p), post: () => undefined }, rpc);
    if (answer.method === 'Fault') return { kind: 'fault', fault: answer as Fault };
    if (answer.method === 'GetParameterValuesResponse') {
      const learned = this.types.get(deviceKey) ?? new Map<string, string>();
      this.types.set(deviceKey, learned);
      for (const p of answer.parameterList) {
        learned.set(p.name, p.type);
        if (p.type === 'xsd:boolean') p.value = p.value === 'true' ? '1' : p.value === 'false' ? '0' : p.value;
      }
    }
    return { kind: 'response', response: answer as CpeResponse };
  }

  async parameterTypes(deviceKey: string, names: readonly string[]): Promise<Map<string, string>> {
    const learned = this.types.get(deviceKey) ?? new Map<string, string>();
    const out = new Map<string, string>();
    for (const n of names) {
      const t = learned.get(n);
      if (t !== undefined) out.set(n, t);
    }
    return out;
  }

  /** RPCs sent since `from`, as "Method arg" strings. */
  methods(from = 0): string[] {
    return this.sent.slice(from).map(({ rpc }) => {
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
}

function deviceRecord(serial: string): DeviceRecord {
  return {
    deviceKey: `F0AD4E-SimGW-${serial}`,
    endpointId: `os::F0AD4E-${serial}`,
    deviceId: { manufacturer: 'CWMP-USP-Proxy Simulator', oui: 'F0AD4E', productClass: 'SimGW', serialNumber: serial },
    rootModel: 'Device',
    softwareVersion: '1.0.0',
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

const REQ_TYPE: Record<NonNullable<Request['reqType']>, MsgType> = {
  get: 'GET',
  set: 'SET',
  add: 'ADD',
  delete: 'DELETE',
  operate: 'OPERATE',
  notify: 'NOTIFY',
  getSupportedDm: 'GET_SUPPORTED_DM',
  getInstances: 'GET_INSTANCES',
  getSupportedProtocol: 'GET_SUPPORTED_PROTO',
  register: 'REGISTER',
  deregister: 'DEREGISTER',
};
let seq = 0;
function request<K extends NonNullable<Request['reqType']>>(reqType: K, body: NonNullable<Request[K]>): Msg {
  return { header: { msgId: `iw-${++seq}`, msgType: REQ_TYPE[reqType] }, body: { msgBody: 'request', request: { reqType, [reqType]: body } as Request } };
}
const wire = (m: Msg): Msg => decodeMsg(encodeMsg(m));

class World {
  readonly port = new SimPort();
  readonly records = new Map<string, DeviceRecord>();
  readonly backend: CwmpDeviceBackend;
  readonly router: DmRouter;
  readonly localAgent: LocalAgent;
  readonly dev: DeviceRecord;
  readonly sim: DeviceModel;

  constructor(opts: { gpvBatchSize?: number } = {}) {
    this.backend = new CwmpDeviceBackend(
      this.port,
      { deviceByEndpointId: async (eid) => [...this.records.values()].find((d) => d.endpointId === eid) ?? null },
      { excludedPrefixes: LOCAL_AGENT_PREFIXES, gpvBatchSize: opts.gpvBatchSize },
    );
    this.localAgent = new LocalAgent(loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CONTROLLER }] } }), openSqliteStore(':memory:'), '1.0');
    this.router = new DmRouter([this.localAgent.model, this.backend]);
    this.dev = this.addDevice('SIM181');
    this.sim = this.port.devices.get(this.dev.deviceKey)!;
  }

  addDevice(serial: string): DeviceRecord {
    const d = deviceRecord(serial);
    this.records.set(d.deviceKey, d);
    this.port.add(d.deviceKey);
    return d;
  }

  ctx(agentEid = this.dev.endpointId): HandlerContext {
    return { agentEid, controllerEid: CONTROLLER, role: 'full', router: this.router, localAgent: this.localAgent, versions: ['1.3'] };
  }

  async ask(msg: Msg, agentEid?: string): Promise<Msg> {
    const r = await handle(this.ctx(agentEid), wire(msg));
    assert.ok(r, 'a response');
    return wire(r);
  }

  /** Loads the supported model (one GPN + one GPV of the whole tree) so later counts are per request. */
  async warm(): Promise<number> {
    await this.ask(request('getSupportedDm', { objPaths: ['Device.DeviceInfo.'], firstLevelOnly: true }));
    return this.port.sent.length;
  }

  async get(paths: string[], maxDepth?: number) {
    const r = await this.ask(request('get', { paramPaths: paths, maxDepth }));
    assert.equal(r.header.msgType, 'GET_RESP', JSON.stringify(r.body));
    return r.body.response!.getResp!.reqPathResults;
  }
}

/** A successful Get result as decoded (proto3 defaults such as err_code 0 are absent). */
function ok(requestedPath: string, resolved: Record<string, Record<string, string>>) {
  return {
    requestedPath,
    resolvedPathResults: Object.entries(resolved).map(([resolvedPath, resultParams]) => ({ resolvedPath, resultParams })),
  };
}

// ------------------------------------------------------------------ Get

describe('interworking Get', () => {
  let w: World;
  beforeEach(() => {
    w = new World();
  });

  it('loads the supported model once: one GPN of Device. and one GPV that teaches the types', async () => {
    await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.deepEqual(w.port.methods().slice(0, 2), ['GPN Device. false', 'GPV Device.']);
    const n = w.port.sent.length;
    await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion']);
  });

  it('a parameter: one GPV, resolved_path is the object, result_params relative', async () => {
    const n = await w.warm();
    assert.deepEqual(await w.get(['Device.DeviceInfo.SoftwareVersion']), [
      ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }),
    ]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion']);
  });

  it('a partial path: one resolved_path per object, keys relative to it, booleans true/false', async () => {
    const n = await w.warm();
    assert.deepEqual(await w.get(['Device.WiFi.AccessPoint.1.']), [
      ok('Device.WiFi.AccessPoint.1.', {
        'Device.WiFi.AccessPoint.1.': {
          Enable: 'true',
          Status: 'Enabled',
          SSIDReference: 'Device.WiFi.SSID.1',
          SSIDAdvertisementEnabled: 'true',
          AssociatedDeviceNumberOfEntries: '0',
        },
        'Device.WiFi.AccessPoint.1.Security.': { ModesSupported: 'None,WPA2-Personal,WPA3-Personal', ModeEnabled: 'WPA2-Personal', KeyPassphrase: '' },
      }),
    ]);
    // The instance is checked with one GPN of the table, then one GPV of the partial path.
    assert.deepEqual(w.port.methods(n), ['GPN Device.WiFi.AccessPoint. true', 'GPV Device.WiFi.AccessPoint.1.']);
  });

  it('booleans are normalised: the device sends 1/0, the controller sees true/false', async () => {
    const n = await w.warm();
    const res = await w.get(['Device.NAT.PortMapping.1.Enable', 'Device.WiFi.SSID.1.Enable']);
    assert.deepEqual(res, [
      ok('Device.NAT.PortMapping.1.Enable', { 'Device.NAT.PortMapping.1.': { Enable: 'false' } }),
      ok('Device.WiFi.SSID.1.Enable', { 'Device.WiFi.SSID.1.': { Enable: 'true' } }),
    ]);
    // The fake really sent digits.
    const last = await w.port.enqueue(w.dev.deviceKey, { method: 'GetParameterValues', parameterNames: ['Device.WiFi.SSID.1.Enable'] });
    assert.equal(last.kind === 'response' && last.response.method === 'GetParameterValuesResponse' ? last.response.parameterList[0]!.value : '', '1');
    assert.equal(w.port.count('GetParameterValues', n), 3);
  });

  it('a wildcard: one GPN of the table, one batched GPV for every instance', async () => {
    const n = await w.warm();
    assert.deepEqual(await w.get(['Device.WiFi.SSID.*.SSID']), [
      ok('Device.WiFi.SSID.*.SSID', { 'Device.WiFi.SSID.1.': { SSID: 'SimGW-2G' }, 'Device.WiFi.SSID.2.': { SSID: 'SimGW-5G' } }),
    ]);
    assert.deepEqual(w.port.methods(n), ['GPN Device.WiFi.SSID. true', 'GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID']);
  });

  it('GPV batches follow gpvBatchSize', async () => {
    const small = new World({ gpvBatchSize: 1 });
    const n = await small.warm();
    assert.deepEqual(await small.get(['Device.WiFi.SSID.*.SSID']), [
      ok('Device.WiFi.SSID.*.SSID', { 'Device.WiFi.SSID.1.': { SSID: 'SimGW-2G' }, 'Device.WiFi.SSID.2.': { SSID: 'SimGW-5G' } }),
    ]);
    assert.deepEqual(small.port.methods(n), ['GPN Device.WiFi.SSID. true', 'GPV Device.WiFi.SSID.1.SSID', 'GPV Device.WiFi.SSID.2.SSID']);
  });

  it('a search expression: one GPV of the table to evaluate it (booleans compared normalised)', async () => {
    w.sim.set('Device.IP.Interface.1.Enable', 'false');
    const n = await w.warm();
    assert.deepEqual(await w.get(['Device.IP.Interface.[Enable==true].Name']), [
      ok('Device.IP.Interface.[Enable==true].Name', { 'Device.IP.Interface.2.': { Name: 'wan' } }),
    ]);
    assert.deepEqual(w.port.methods(n), ['GPN Device.IP.Interface. true', 'GPV Device.IP.Interface.', 'GPV Device.IP.Interface.2.Name']);
  });

  it('a search that matches nothing is an empty success', async () => {
    await w.warm();
    assert.deepEqual(await w.get(['Device.IP.Interface.[Alias=="none"].Name']), [ok('Device.IP.Interface.[Alias=="none"].Name', {})]);
  });

  it('an instance path below two tables', async () => {
    const n = await w.warm();
    assert.deepEqual(await w.get(['Device.IP.Interface.2.IPv4Address.1.IPAddress']), [
      ok('Device.IP.Interface.2.IPv4Address.1.IPAddress', { 'Device.IP.Interface.2.IPv4Address.1.': { IPAddress: '100.64.0.10' } }),
    ]);
    assert.deepEqual(w.port.methods(n), [
      'GPN Device.IP.Interface. true',
      'GPN Device.IP.Interface.2.IPv4Address. true',
      'GPV Device.IP.Interface.2.IPv4Address.1.IPAddress',
    ]);
  });

  it('the instance cache: a second request does not issue GPN again', async () => {
    await w.warm();
    await w.get(['Device.WiFi.SSID.*.SSID']);
    const n = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.Enable']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.Enable,Device.WiFi.SSID.2.Enable']);
    // BOOT (invalidateDevice) forgets it.
    w.backend.invalidateDevice(w.dev.deviceKey);
    const m = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.Enable']);
    assert.deepEqual(w.port.methods(m), ['GPN Device.WiFi.SSID. true', 'GPV Device.WiFi.SSID.1.Enable,Device.WiFi.SSID.2.Enable']);
  });

  it('max_depth 1 and 2', async () => {
    await w.warm();
    const d1 = await w.get(['Device.IP.'], 1);
    assert.deepEqual(d1, [ok('Device.IP.', { 'Device.IP.': { IPv4Enable: 'true', InterfaceNumberOfEntries: '2' } })]);
    const d2 = await w.get(['Device.IP.'], 2);
    const iface = (_n: number, alias: string, name: string, lower: string) => ({
      Enable: 'true',
      Status: 'Up',
      Alias: alias,
      Name: name,
      Type: 'Normal',
      LowerLayers: lower,
      IPv4AddressNumberOfEntries: '1',
    });
    assert.deepEqual(d2, [
      ok('Device.IP.', {
        'Device.IP.': { IPv4Enable: 'true', InterfaceNumberOfEntries: '2' },
        'Device.IP.Interface.1.': iface(1, 'lan', 'br-lan', 'Device.Ethernet.Interface.1'),
        'Device.IP.Interface.2.': iface(2, 'wan', 'wan', 'Device.Ethernet.Interface.2'),
      }),
    ]);
    const all = await w.get(['Device.IP.'], 0);
    assert.ok(all[0]!.resolvedPathResults.some((r) => r.resolvedPath === 'Device.IP.Diagnostics.TraceRoute.'));
    assert.ok(all[0]!.resolvedPathResults.some((r) => r.resolvedPath === 'Device.IP.Interface.1.IPv4Address.1.'));
  });

  it('a path the device lacks is 7026 for that path only', async () => {
    const n = await w.warm();
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion', 'Device.WiFi.SSID.9.SSID', 'Device.DeviceInfo.NoSuchParameter', 'Device.NoSuchObject.']);
    assert.deepEqual(res[0], ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }));
    for (const [i, p] of ['Device.WiFi.SSID.9.SSID', 'Device.DeviceInfo.NoSuchParameter', 'Device.NoSuchObject.'].entries()) {
      assert.equal(res[i + 1]!.requestedPath, p);
      assert.equal(res[i + 1]!.errCode, 7026, p);
      assert.deepEqual(res[i + 1]!.resolvedPathResults, []);
    }
    // Unknown names are rejected from the supported model: no RPC for them.
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion', 'GPN Device.WiFi.SSID. true']);
  });

  it('a device that refuses one name (9005) in a batch: the others are still answered', async () => {
    await w.warm();
    // The model says SSID.2 exists, the device has lost it (no BOOT yet).
    await w.get(['Device.WiFi.SSID.*.SSID']);
    w.sim.deleteInstance('Device.WiFi.SSID.2.');
    const n = w.port.sent.length;
    assert.deepEqual(await w.get(['Device.WiFi.SSID.*.SSID']), [ok('Device.WiFi.SSID.*.SSID', { 'Device.WiFi.SSID.1.': { SSID: 'SimGW-2G' } })]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID', 'GPV Device.WiFi.SSID.1.SSID', 'GPV Device.WiFi.SSID.2.SSID']);
  });

  it('ManagementServer stays visible; Device.LocalAgent. is served by the proxy, never asked of the device', async () => {
    const n = await w.warm();
    const res = await w.get(['Device.ManagementServer.URL', 'Device.LocalAgent.EndpointID']);
    assert.deepEqual(res[0], ok('Device.ManagementServer.URL', { 'Device.ManagementServer.': { URL: 'http://127.0.0.1:7547/' } }));
    assert.equal(res[1]!.errCode ?? 0, 0);
    assert.deepEqual(res[1]!.resolvedPathResults, [{ resolvedPath: 'Device.LocalAgent.', resultParams: { EndpointID: w.dev.endpointId } }]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.ManagementServer.URL']);
  });
});

// ------------------------------------------------------------------ Set

function setReq(allowPartial: boolean, objs: [string, [string, string, boolean][]][]): Msg {
  return request('set', {
    allowPartial,
    updateObjs: objs.map(([objPath, settings]) => ({ objPath, paramSettings: settings.map(([param, value, required]) => ({ param, value, required })) })),
  });
}

describe('interworking Set', () => {
  let w: World;
  beforeEach(() => {
    w = new World();
  });

  it('one object, two parameters: one SPV with the learned xsi:types', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(false, [
        [
          'Device.WiFi.Radio.1.',
          [
            ['Channel', '11', true],
            ['AutoChannelEnable', '0', true],
          ],
        ],
      ]),
    );
    assert.equal(r.header.msgType, 'SET_RESP');
    assert.deepEqual(r.body.response!.setResp!.updatedObjResults, [
      {
        requestedPath: 'Device.WiFi.Radio.1.',
        operStatus: {
          operStatus: 'operSuccess',
          operSuccess: {
            updatedInstResults: [{ affectedPath: 'Device.WiFi.Radio.1.', updatedParams: { Channel: '11', AutoChannelEnable: '0' }, paramErrs: [] }],
          },
        },
      },
    ]);
    const spvs = w.port.methods(n).filter((m) => m.startsWith('SPV'));
    assert.deepEqual(spvs, ['SPV Device.WiFi.Radio.1.Channel=11(xsd:unsignedInt),Device.WiFi.Radio.1.AutoChannelEnable=false(xsd:boolean)']);
    assert.equal(w.sim.get('Device.WiFi.Radio.1.Channel'), '11');
    assert.equal(w.sim.get('Device.WiFi.Radio.1.AutoChannelEnable'), 'false');
  });

  it('an unknown xsi:type is looked up with GPV before the SPV', async () => {
    await w.warm();
    w.port.types.get(w.dev.deviceKey)!.delete('Device.WiFi.Radio.1.TransmitPower');
    // Straight to the backend: the handler's own undo-log read would teach the type first.
    const n = w.port.sent.length;
    const out = await w.backend.set({ agentEid: w.dev.endpointId, controllerEid: CONTROLLER }, 'Device.WiFi.Radio.1.', [
      { param: 'TransmitPower', value: '50', required: true },
    ]);
    assert.deepEqual(out, { ok: true, updated: { TransmitPower: '50' }, paramErrs: [] });
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.Radio.1.TransmitPower', 'SPV Device.WiFi.Radio.1.TransmitPower=50(xsd:int)']);
  });

  it('allow_partial false across two objects succeeds', async () => {
    await w.warm();
    const r = await w.ask(setReq(false, [['Device.WiFi.SSID.*.', [['SSID', 'Same', true]]]]));
    assert.deepEqual(r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults, [
      { affectedPath: 'Device.WiFi.SSID.1.', updatedParams: { SSID: 'Same' }, paramErrs: [] },
      { affectedPath: 'Device.WiFi.SSID.2.', updatedParams: { SSID: 'Same' }, paramErrs: [] },
    ]);
    assert.equal(w.sim.get('Device.WiFi.SSID.1.SSID'), 'Same');
    assert.equal(w.sim.get('Device.WiFi.SSID.2.SSID'), 'Same');
  });

  it('allow_partial false across two objects is ONE SetParameterValues (atomic, as CWMP is)', async () => {
    const n = await w.warm();
    await w.ask(setReq(false, [['Device.WiFi.SSID.*.', [['SSID', 'Same', true]]]]));
    assert.equal(w.port.count('SetParameterValues', n), 1);
  });

  it('allow_partial false: a failure on the second object leaves the first untouched (no SPV applied)', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(false, [
        ['Device.WiFi.Radio.1.', [['Channel', '11', true]]],
        ['Device.WiFi.Radio.2.', [['Channel', 'abc', true]]],
      ]),
    );
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(w.sim.get('Device.WiFi.Radio.1.Channel'), '6');
    assert.equal(w.port.count('SetParameterValues', n), 1);
  });

  it('allow_partial false: a failure on the second object is an Error and the first is put back', async () => {
    await w.warm();
    const r = await w.ask(
      setReq(false, [
        ['Device.WiFi.Radio.1.', [['Channel', '11', true]]],
        ['Device.WiFi.Radio.2.', [['Channel', 'abc', true]]],
      ]),
    );
    assert.equal(r.header.msgType, 'ERROR');
    const e = r.body.error!;
    assert.equal(e.errCode, 7004);
    assert.deepEqual(
      e.paramErrs.map((p) => [p.paramPath, p.errCode]),
      [['Device.WiFi.Radio.2.Channel', 7012]],
    );
    assert.equal(w.sim.get('Device.WiFi.Radio.1.Channel'), '6');
    assert.equal(w.sim.get('Device.WiFi.Radio.2.Channel'), '36');
  });

  it('allow_partial true: one SPV per object, per-object oper_success / oper_failure', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(true, [
        ['Device.WiFi.Radio.1.', [['Channel', '11', true]]],
        ['Device.WiFi.Radio.2.', [['Channel', 'abc', true]]],
      ]),
    );
    assert.equal(r.header.msgType, 'SET_RESP');
    const [a, b] = r.body.response!.setResp!.updatedObjResults;
    assert.deepEqual(a, {
      requestedPath: 'Device.WiFi.Radio.1.',
      operStatus: {
        operStatus: 'operSuccess',
        operSuccess: { updatedInstResults: [{ affectedPath: 'Device.WiFi.Radio.1.', updatedParams: { Channel: '11' }, paramErrs: [] }] },
      },
    });
    assert.equal(b!.requestedPath, 'Device.WiFi.Radio.2.');
    const f = b!.operStatus!.operFailure!;
    assert.equal(b!.operStatus!.operStatus, 'operFailure');
    assert.equal(f.errCode, 7021);
    assert.equal(f.updatedInstFailures.length, 1);
    assert.equal(f.updatedInstFailures[0]!.affectedPath, 'Device.WiFi.Radio.2.');
    assert.deepEqual(
      f.updatedInstFailures[0]!.paramErrs.map((p) => [p.param, p.errCode]),
      [['Channel', 7012]],
    );
    assert.match(f.updatedInstFailures[0]!.paramErrs[0]!.errMsg!, /9007/);
    assert.deepEqual(
      w.port.methods(n).filter((m) => m.startsWith('SPV')),
      ['SPV Device.WiFi.Radio.1.Channel=11(xsd:unsignedInt)', 'SPV Device.WiFi.Radio.2.Channel=abc(xsd:unsignedInt)'],
    );
    assert.equal(w.sim.get('Device.WiFi.Radio.1.Channel'), '11');
    assert.equal(w.sim.get('Device.WiFi.Radio.2.Channel'), '36');
  });

  it('a required read-only parameter: 7013 for that parameter, no SPV', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(false, [
        [
          'Device.WiFi.SSID.1.',
          [
            ['Name', 'x', true],
            ['SSID', 'y', true],
          ],
        ],
      ]),
    );
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7004);
    assert.deepEqual(
      r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
      [['Device.WiFi.SSID.1.Name', 7013]],
    );
    assert.equal(w.port.count('SetParameterValues', n), 0);
    assert.equal(w.sim.get('Device.WiFi.SSID.1.SSID'), 'SimGW-2G');
  });

  it('a non-required read-only parameter: success, 7013 in param_errs, the rest set', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(false, [
        [
          'Device.WiFi.SSID.1.',
          [
            ['Name', 'x', false],
            ['SSID', 'y', true],
          ],
        ],
      ]),
    );
    const res = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
    assert.equal(res.length, 1);
    assert.deepEqual(res[0]!.updatedParams, { SSID: 'y' });
    assert.deepEqual(
      res[0]!.paramErrs.map((p) => [p.param, p.errCode]),
      [['Name', 7013]],
    );
    assert.deepEqual(
      w.port.methods(n).filter((m) => m.startsWith('SPV')),
      ['SPV Device.WiFi.SSID.1.SSID=y(xsd:string)'],
    );
  });

  it('a bad value: the device faults 9007, the Error carries 7012 in param_errs', async () => {
    const n = await w.warm();
    const r = await w.ask(setReq(false, [['Device.WiFi.Radio.1.', [['Channel', 'abc', true]]]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7004);
    assert.deepEqual(
      r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
      [['Device.WiFi.Radio.1.Channel', 7012]],
    );
    assert.match(r.body.error!.paramErrs[0]!.errMsg!, /CWMP fault 9007/);
    assert.equal(w.port.count('SetParameterValues', n), 1);
  });

  it('a failed non-required parameter is retried away: two SPVs, success with param_errs', async () => {
    const n = await w.warm();
    const r = await w.ask(
      setReq(false, [
        [
          'Device.WiFi.Radio.1.',
          [
            ['Channel', 'abc', false],
            ['TransmitPower', '50', true],
          ],
        ],
      ]),
    );
    assert.equal(r.header.msgType, 'SET_RESP', JSON.stringify(r.body));
    const res = r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults;
    assert.deepEqual(
      res.map((x) => x.affectedPath),
      ['Device.WiFi.Radio.1.'],
    );
    assert.deepEqual(res[0]!.updatedParams, { TransmitPower: '50' });
    assert.deepEqual(
      res[0]!.paramErrs.map((p) => [p.param, p.errCode]),
      [['Channel', 7012]],
    );
    assert.deepEqual(
      w.port.methods(n).filter((m) => m.startsWith('SPV')),
      [
        'SPV Device.WiFi.Radio.1.Channel=abc(xsd:unsignedInt),Device.WiFi.Radio.1.TransmitPower=50(xsd:int)',
        'SPV Device.WiFi.Radio.1.TransmitPower=50(xsd:int)',
      ],
    );
    assert.equal(w.sim.get('Device.WiFi.Radio.1.TransmitPower'), '50');
    assert.equal(w.sim.get('Device.WiFi.Radio.1.Channel'), '6');
  });

  it('a Set invalidates the search-value cache of the table', async () => {
    await w.warm();
    assert.equal((await w.get(['Device.IP.Interface.[Enable==true].Name']))[0]!.resolvedPathResults.length, 2);
    await w.ask(setReq(false, [['Device.IP.Interface.1.', [['Enable', 'false', true]]]]));
    assert.deepEqual(await w.get(['Device.IP.Interface.[Enable==true].Name']), [
      ok('Device.IP.Interface.[Enable==true].Name', { 'Device.IP.Interface.2.': { Name: 'wan' } }),
    ]);
  });
});

// ------------------------------------------------------------------ Add / Delete

function addReq(allowPartial: boolean, objs: [string, [string, string, boolean][]][]): Msg {
  return request('add', {
    allowPartial,
    createObjs: objs.map(([objPath, settings]) => ({ objPath, paramSettings: settings.map(([param, value, required]) => ({ param, value, required })) })),
  });
}

describe('interworking Add', () => {
  let w: World;
  beforeEach(() => {
    w = new World();
  });

  it('AddObject then one SPV of param_settings; instantiated_path and the Alias unique key', async () => {
    const n = await w.warm();
    const r = await w.ask(
      addReq(false, [
        [
          'Device.NAT.PortMapping.',
          [
            ['ExternalPort', '9090', true],
            ['Enable', 'true', true],
            ['Protocol', 'UDP', false],
          ],
        ],
      ]),
    );
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
    assert.deepEqual(r.body.response!.addResp!.createdObjResults, [
      {
        requestedPath: 'Device.NAT.PortMapping.',
        operStatus: {
          operStatus: 'operSuccess',
          operSuccess: { instantiatedPath: 'Device.NAT.PortMapping.2.', paramErrs: [], uniqueKeys: { Alias: 'cpe-2' } },
        },
      },
    ]);
    assert.deepEqual(w.port.methods(n), [
      'AddObject Device.NAT.PortMapping.',
      // the new instance's types are not learned yet: one GPV teaches them
      'GPV Device.NAT.PortMapping.2.ExternalPort,Device.NAT.PortMapping.2.Enable,Device.NAT.PortMapping.2.Protocol',
      'SPV Device.NAT.PortMapping.2.ExternalPort=9090(xsd:unsignedInt),Device.NAT.PortMapping.2.Enable=true(xsd:boolean),Device.NAT.PortMapping.2.Protocol=UDP(xsd:string)',
      'GPV Device.NAT.PortMapping.2.Alias',
    ]);
    assert.equal(w.sim.get('Device.NAT.PortMapping.2.ExternalPort'), '9090');
    assert.equal(w.sim.get('Device.NAT.PortMapping.2.Enable'), 'true');
  });

  it('a failing required param_setting: DeleteObject rolls back, the answer is an Error', async () => {
    const n = await w.warm();
    const r = await w.ask(
      addReq(false, [
        [
          'Device.NAT.PortMapping.',
          [
            ['ExternalPort', 'abc', true],
            ['Protocol', 'UDP', true],
          ],
        ],
      ]),
    );
    assert.equal(r.header.msgType, 'ERROR');
    const e = r.body.error!;
    assert.equal(e.errCode, 7004);
    assert.equal(e.paramErrs.length, 1);
    assert.equal(e.paramErrs[0]!.errCode, 7012);
    assert.match(e.paramErrs[0]!.paramPath!, /^Device\.NAT\.PortMapping\.(\{i\}|2)\.ExternalPort$/);
    const m = w.port.methods(n);
    assert.equal(m[0], 'AddObject Device.NAT.PortMapping.');
    assert.equal(m.filter((x) => x.startsWith('SPV')).length, 1);
    assert.equal(m.at(-1), 'DeleteObject Device.NAT.PortMapping.2.');
    assert.equal(m.filter((x) => x.startsWith('DeleteObject')).length, 1);
    assert.equal(w.sim.has('Device.NAT.PortMapping.2.'), false);
    assert.deepEqual(w.sim.instances('Device.NAT.PortMapping.'), [1]);
  });

  it('a failing non-required param_setting: success, param_errs, object kept', async () => {
    await w.warm();
    const r = await w.ask(
      addReq(false, [
        [
          'Device.NAT.PortMapping.',
          [
            ['ExternalPort', 'abc', false],
            ['Protocol', 'UDP', true],
          ],
        ],
      ]),
    );
    const s = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
    assert.equal(s.instantiatedPath, 'Device.NAT.PortMapping.2.');
    assert.deepEqual(
      s.paramErrs.map((p) => [p.param, p.errCode]),
      [['ExternalPort', 7012]],
    );
    assert.deepEqual(s.uniqueKeys, { Alias: 'cpe-2' });
    assert.equal(w.sim.get('Device.NAT.PortMapping.2.Protocol'), 'UDP');
  });

  it('a search expression in obj_path', async () => {
    await w.warm();
    const r = await w.ask(addReq(false, [['Device.IP.Interface.[Alias=="wan"].IPv4Address.', [['IPAddress', '100.64.0.11', true]]]]));
    assert.deepEqual(r.body.response!.addResp!.createdObjResults, [
      {
        requestedPath: 'Device.IP.Interface.[Alias=="wan"].IPv4Address.',
        operStatus: {
          operStatus: 'operSuccess',
          operSuccess: { instantiatedPath: 'Device.IP.Interface.2.IPv4Address.2.', paramErrs: [], uniqueKeys: { Alias: 'cpe-2' } },
        },
      },
    ]);
    assert.equal(w.sim.get('Device.IP.Interface.2.IPv4Address.2.IPAddress'), '100.64.0.11');
    assert.deepEqual(w.sim.instances('Device.IP.Interface.1.IPv4Address.'), [1]);
  });

  it('a table that was empty when the model was read: the first Add learns its parameters', async () => {
    w.sim.deleteInstance('Device.NAT.PortMapping.1.');
    const n = await w.warm();
    const r = await w.ask(addReq(false, [['Device.NAT.PortMapping.', [['ExternalPort', '9090', true]]]]));
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
    assert.deepEqual(r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess, {
      instantiatedPath: 'Device.NAT.PortMapping.2.',
      paramErrs: [],
      uniqueKeys: { Alias: 'cpe-2' },
    });
    assert.deepEqual(w.port.methods(n).slice(0, 2), ['AddObject Device.NAT.PortMapping.', 'GPN Device.NAT.PortMapping.2. false']);
    assert.equal(w.sim.get('Device.NAT.PortMapping.2.ExternalPort'), '9090');
    // ... and the model now has them, for every device of this model.
    const g = await w.ask(request('getSupportedDm', { objPaths: ['Device.NAT.PortMapping.'], returnParams: true }));
    const params = g.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs[0]!.supportedParams;
    assert.deepEqual(params.find((p) => p.paramName === 'ExternalPort')?.valueType, 'PARAM_UNSIGNED_INT');
    assert.deepEqual(await w.get(['Device.NAT.PortMapping.2.ExternalPort']), [
      ok('Device.NAT.PortMapping.2.ExternalPort', { 'Device.NAT.PortMapping.2.': { ExternalPort: '9090' } }),
    ]);
  });

  it('a table the device does not let create: 7019, no AddObject', async () => {
    const n = await w.warm();
    const r = await w.ask(addReq(false, [['Device.WiFi.SSID.', []]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7019);
    assert.equal(w.port.count('AddObject', n), 0);
  });

  it('a GetInstances and a search right after an Add see the new instance', async () => {
    await w.warm();
    const inst = async () => {
      const r = await w.ask(request('getInstances', { objPaths: ['Device.NAT.PortMapping.'], firstLevelOnly: true }));
      return r.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath);
    };
    assert.deepEqual(await inst(), ['Device.NAT.PortMapping.1.']);
    // fills the short-lived search-value cache of the table
    const search = 'Device.NAT.PortMapping.[Protocol=="TCP"].ExternalPort';
    assert.deepEqual(await w.get([search]), [ok(search, { 'Device.NAT.PortMapping.1.': { ExternalPort: '8080' } })]);
    // No param_settings: only the AddObject changes the table (the new row copies Protocol TCP).
    await w.ask(addReq(false, [['Device.NAT.PortMapping.', []]]));
    assert.deepEqual(await inst(), ['Device.NAT.PortMapping.1.', 'Device.NAT.PortMapping.2.']);
    assert.deepEqual(await w.get([search]), [
      ok(search, { 'Device.NAT.PortMapping.1.': { ExternalPort: '8080' }, 'Device.NAT.PortMapping.2.': { ExternalPort: '8080' } }),
    ]);
  });
});

describe('interworking Delete', () => {
  let w: World;
  beforeEach(() => {
    w = new World();
  });
  const del = (allowPartial: boolean, objPaths: string[]) => request('delete', { allowPartial, objPaths });

  it('an existing instance: one DeleteObject, affected_paths', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.1.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [
      {
        requestedPath: 'Device.NAT.PortMapping.1.',
        operStatus: { operStatus: 'operSuccess', operSuccess: { affectedPaths: ['Device.NAT.PortMapping.1.'], unaffectedPathErrs: [] } },
      },
    ]);
    assert.deepEqual(
      w.port.methods(n).filter((m) => !m.startsWith('G')),
      ['DeleteObject Device.NAT.PortMapping.1.'],
    );
    assert.equal(w.sim.has('Device.NAT.PortMapping.1.'), false);
  });

  it('DeleteObject per matched instance', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.IP.Interface.*.IPv4Address.*.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, [
      'Device.IP.Interface.1.IPv4Address.1.',
      'Device.IP.Interface.2.IPv4Address.1.',
    ]);
    assert.deepEqual(
      w.port.methods(n).filter((m) => !m.startsWith('G')),
      ['DeleteObject Device.IP.Interface.1.IPv4Address.1.', 'DeleteObject Device.IP.Interface.2.IPv4Address.1.'],
    );
  });

  it('a missing instance: success with empty affected_paths, no DeleteObject', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.7.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults, [
      { requestedPath: 'Device.NAT.PortMapping.7.', operStatus: { operStatus: 'operSuccess', operSuccess: { affectedPaths: [], unaffectedPathErrs: [] } } },
    ]);
    assert.equal(w.port.count('DeleteObject', n), 0);
  });

  it('an instance already gone on the device (stale instance cache, DeleteObject faults 9005): empty affected_paths', async () => {
    await w.warm();
    await w.ask(request('getInstances', { objPaths: ['Device.NAT.PortMapping.'], firstLevelOnly: true }));
    w.sim.deleteInstance('Device.NAT.PortMapping.1.');
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.1.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, []);
  });

  it('allow_partial true: a non-deletable instance fails alone', async () => {
    const n = await w.warm();
    const r = await w.ask(del(true, ['Device.NAT.PortMapping.1.', 'Device.WiFi.SSID.1.']));
    const [a, b] = r.body.response!.deleteResp!.deletedObjResults;
    assert.deepEqual(a!.operStatus!.operSuccess!.affectedPaths, ['Device.NAT.PortMapping.1.']);
    assert.equal(b!.requestedPath, 'Device.WiFi.SSID.1.');
    assert.equal(b!.operStatus!.operStatus, 'operFailure');
    assert.equal(b!.operStatus!.operFailure!.errCode, 7024);
    assert.deepEqual(
      w.port.methods(n).filter((m) => !m.startsWith('G')),
      ['DeleteObject Device.NAT.PortMapping.1.'],
    );
  });

  it('allow_partial false: a non-deletable instance is an Error and nothing is deleted', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.1.', 'Device.WiFi.SSID.1.']));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7024);
    assert.equal(w.port.count('DeleteObject', n), 0);
    assert.equal(w.sim.has('Device.NAT.PortMapping.1.'), true);
  });

  it('the device refuses DeleteObject (9001): 7024 with the CWMP fault in err_msg', async () => {
    await w.warm();
    w.port.faultFor = (rpc) => (rpc.method === 'DeleteObject' ? makeFault(9001) : null);
    const r = await w.ask(del(true, ['Device.NAT.PortMapping.1.']));
    const s = r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!;
    assert.deepEqual(s.affectedPaths, []);
    assert.equal(s.unaffectedPathErrs.length, 1);
    assert.equal(s.unaffectedPathErrs[0]!.unaffectedPath, 'Device.NAT.PortMapping.1.');
    assert.equal(s.unaffectedPathErrs[0]!.errCode, 7024);
    assert.match(s.unaffectedPathErrs[0]!.errMsg!, /CWMP fault 9001/);
  });

  it('a GetInstances after a Delete no longer lists the instance', async () => {
    await w.warm();
    const inst = async () =>
      (
        await w.ask(request('getInstances', { objPaths: ['Device.NAT.PortMapping.'], firstLevelOnly: true }))
      ).body.response!.getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath);
    assert.deepEqual(await inst(), ['Device.NAT.PortMapping.1.']);
    await w.ask(del(false, ['Device.NAT.PortMapping.1.']));
    assert.deepEqual(await inst(), []);
  });
});

// ------------------------------------------------------------------ GetInstances / GetSupportedDM

describe('interworking GetInstances', () => {
  it('first_level_only true and false, with Alias unique keys', async () => {
    const w = new World();
    const n = await w.warm();
    const first = await w.ask(request('getInstances', { objPaths: ['Device.IP.Interface.'], firstLevelOnly: true }));
    assert.deepEqual(first.body.response!.getInstancesResp!.reqPathResults, [
      {
        requestedPath: 'Device.IP.Interface.',
        currInsts: [
          { instantiatedObjPath: 'Device.IP.Interface.1.', uniqueKeys: { Alias: 'lan' } },
          { instantiatedObjPath: 'Device.IP.Interface.2.', uniqueKeys: { Alias: 'wan' } },
        ],
      },
    ]);
    assert.deepEqual(
      w.port.methods(n).filter((m) => m.startsWith('GPN')),
      ['GPN Device.IP.Interface. true'],
    );
    const all = await w.ask(request('getInstances', { objPaths: ['Device.IP.Interface.'], firstLevelOnly: false }));
    assert.deepEqual(all.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts, [
      { instantiatedObjPath: 'Device.IP.Interface.1.', uniqueKeys: { Alias: 'lan' } },
      { instantiatedObjPath: 'Device.IP.Interface.1.IPv4Address.1.', uniqueKeys: { Alias: 'cpe-1' } },
      { instantiatedObjPath: 'Device.IP.Interface.2.', uniqueKeys: { Alias: 'wan' } },
      { instantiatedObjPath: 'Device.IP.Interface.2.IPv4Address.1.', uniqueKeys: { Alias: 'cpe-1' } },
    ]);
  });

  it('a table without Alias has no unique keys; an empty table has no instances', async () => {
    const w = new World();
    await w.warm();
    const r = await w.ask(request('getInstances', { objPaths: ['Device.Hosts.Host.', 'Device.IP.Diagnostics.TraceRoute.RouteHops.'], firstLevelOnly: true }));
    const [hosts, hops] = r.body.response!.getInstancesResp!.reqPathResults;
    assert.deepEqual(hosts!.currInsts, [
      { instantiatedObjPath: 'Device.Hosts.Host.1.', uniqueKeys: {} },
      { instantiatedObjPath: 'Device.Hosts.Host.2.', uniqueKeys: {} },
    ]);
    assert.equal(hops!.errCode ?? 0, 0);
    assert.deepEqual(hops!.currInsts, []);
  });
});

describe('interworking GetSupportedDM', () => {
  const gsdm = (objPaths: string[]) =>
    request('getSupportedDm', { objPaths, firstLevelOnly: false, returnParams: true, returnUniqueKeySets: true, returnCommands: false, returnEvents: false });

  it('Device.WiFi.: objects, learned types, access', async () => {
    const w = new World();
    const r = await w.ask(gsdm(['Device.WiFi.']));
    const res = r.body.response!.getSupportedDmResp!.reqObjResults[0]!;
    assert.equal(res.errCode ?? 0, 0);
    const objs = new Map(res.supportedObjs.map((o) => [o.supportedObjPath, o]));
    // proto3 enum/bool defaults (OBJ_READ_ONLY, PARAM_READ_ONLY, false) are absent once decoded.
    assert.deepEqual(
      [...objs.keys()],
      ['Device.WiFi.', 'Device.WiFi.AccessPoint.{i}.', 'Device.WiFi.AccessPoint.{i}.Security.', 'Device.WiFi.Radio.{i}.', 'Device.WiFi.SSID.{i}.'],
    );
    assert.equal(objs.get('Device.WiFi.')!.isMultiInstance ?? false, false);
    assert.equal(objs.get('Device.WiFi.')!.access ?? 'OBJ_READ_ONLY', 'OBJ_READ_ONLY');
    // The simulated WiFi tables are not writable on the device: read-only tables.
    assert.equal(objs.get('Device.WiFi.SSID.{i}.')!.isMultiInstance, true);
    assert.equal(objs.get('Device.WiFi.SSID.{i}.')!.access ?? 'OBJ_READ_ONLY', 'OBJ_READ_ONLY');
    assert.deepEqual(objs.get('Device.WiFi.SSID.{i}.')!.uniqueKeySets, [{ keyNames: ['Alias'] }]);
    const radio = new Map(objs.get('Device.WiFi.Radio.{i}.')!.supportedParams.map((p) => [p.paramName, [p.valueType, p.access ?? 'PARAM_READ_ONLY']]));
    assert.deepEqual(Object.fromEntries(radio), {
      Enable: ['PARAM_BOOLEAN', 'PARAM_READ_WRITE'],
      Status: ['PARAM_STRING', 'PARAM_READ_ONLY'],
      Name: ['PARAM_STRING', 'PARAM_READ_ONLY'],
      OperatingFrequencyBand: ['PARAM_STRING', 'PARAM_READ_WRITE'],
      Channel: ['PARAM_UNSIGNED_INT', 'PARAM_READ_WRITE'],
      AutoChannelEnable: ['PARAM_BOOLEAN', 'PARAM_READ_WRITE'],
      TransmitPower: ['PARAM_INT', 'PARAM_READ_WRITE'],
    });
    assert.deepEqual(
      objs.get('Device.WiFi.')!.supportedParams.map((p) => [p.paramName, p.valueType, p.access ?? 'PARAM_READ_ONLY']),
      [
        ['RadioNumberOfEntries', 'PARAM_UNSIGNED_INT', 'PARAM_READ_ONLY'],
        ['SSIDNumberOfEntries', 'PARAM_UNSIGNED_INT', 'PARAM_READ_ONLY'],
        ['AccessPointNumberOfEntries', 'PARAM_UNSIGNED_INT', 'PARAM_READ_ONLY'],
      ],
    );
  });

  it('writable tables are OBJ_ADD_DELETE; ManagementServer is read-only; empty tables are tables', async () => {
    const w = new World();
    const r = await w.ask(gsdm(['Device.NAT.', 'Device.ManagementServer.', 'Device.IP.Diagnostics.TraceRoute.']));
    const [nat, ms, tr] = r.body.response!.getSupportedDmResp!.reqObjResults;
    const natObjs = new Map(nat!.supportedObjs.map((o) => [o.supportedObjPath, o]));
    assert.equal(natObjs.get('Device.NAT.PortMapping.{i}.')!.access, 'OBJ_ADD_DELETE');
    assert.equal(natObjs.get('Device.NAT.InterfaceSetting.{i}.')!.access ?? 'OBJ_READ_ONLY', 'OBJ_READ_ONLY');
    assert.ok(ms!.supportedObjs[0]!.supportedParams.length > 0);
    for (const p of ms!.supportedObjs[0]!.supportedParams) assert.equal(p.access ?? 'PARAM_READ_ONLY', 'PARAM_READ_ONLY', p.paramName);
    const hops = tr!.supportedObjs.find((o) => o.supportedObjPath === 'Device.IP.Diagnostics.TraceRoute.RouteHops.{i}.');
    assert.ok(hops);
    assert.equal(hops.isMultiInstance, true);
  });

  it('cached per device model: a second device of the same model issues no GPN', async () => {
    const w = new World();
    await w.ask(gsdm(['Device.WiFi.']));
    assert.equal(w.port.count('GetParameterNames'), 1);
    const other = w.addDevice('SIM182');
    const n = w.port.sent.length;
    const r = await w.ask(gsdm(['Device.WiFi.']), other.endpointId);
    assert.equal(r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.length, 5);
    assert.deepEqual(w.port.sent.slice(n), []);
    // A different software version is a different model.
    const newer = w.addDevice('SIM183');
    newer.softwareVersion = '2.0.0';
    await w.ask(gsdm(['Device.WiFi.']), newer.endpointId);
    assert.deepEqual(w.port.methods(n).slice(0, 1), ['GPN Device. false']);
    assert.equal(w.port.sent[n]!.deviceKey, newer.deviceKey);
  });
});

// ------------------------------------------------------------------ errors

describe('interworking errors', () => {
  it('device unreachable: 7002 with "device unreachable" in err_msg', async () => {
    const w = new World();
    await w.warm();
    w.port.failWith = new RpcError('unreachable', 'connection request refused');
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.equal(res[0]!.errCode, 7002);
    assert.match(res[0]!.errMsg!, /device unreachable/);
    const s = await w.ask(setReq(false, [['Device.WiFi.SSID.1.', [['SSID', 'x', true]]]]));
    assert.equal(s.header.msgType, 'ERROR');
    assert.equal(s.body.error!.errCode, 7002);
    assert.match(s.body.error!.errMsg!, /device unreachable/);
  });

  it('device unreachable before the model is known: still 7002', async () => {
    const w = new World();
    w.port.failWith = new RpcError('unreachable', 'connection request refused');
    const r = await w.ask(request('get', { paramPaths: ['Device.DeviceInfo.SoftwareVersion'] }));
    const code = r.header.msgType === 'ERROR' ? r.body.error!.errCode : r.body.response!.getResp!.reqPathResults[0]!.errCode;
    assert.equal(code, 7002);
  });

  it('session timeout: 7003, distinct message', async () => {
    const w = new World();
    await w.warm();
    w.port.failWith = new RpcError('session-timeout', 'no response within 30 s');
    const res = await w.get(['Device.WiFi.SSID.*.SSID']);
    assert.equal(res[0]!.errCode, 7003);
    assert.match(res[0]!.errMsg!, /did not answer/);
    assert.doesNotMatch(res[0]!.errMsg!, /unreachable/);
    const a = await w.ask(addReq(false, [['Device.NAT.PortMapping.', []]]));
    assert.equal(a.header.msgType, 'ERROR');
    assert.equal(a.body.error!.errCode, 7003);
    assert.match(a.body.error!.errMsg!, /did not answer/);
  });

  it('a CPE fault on GPV: its mapped code and the CWMP fault in err_msg', async () => {
    const w = new World();
    await w.warm();
    w.port.faultFor = (rpc) => (rpc.method === 'GetParameterValues' ? makeFault(9004) : null);
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.equal(res[0]!.errCode, 7005);
    assert.match(res[0]!.errMsg!, /CWMP fault 9004 \(Resources exceeded\)/);
  });

  it('a CPE fault on GPN (instances): its mapped code', async () => {
    const w = new World();
    await w.warm();
    w.port.faultFor = (rpc) => (rpc.method === 'GetParameterNames' ? makeFault(9004) : null);
    const res = await w.get(['Device.WiFi.SSID.*.SSID']);
    assert.equal(res[0]!.errCode, 7005);
    assert.match(res[0]!.errMsg!, /CWMP fault 9004/);
  });

  it('a CPE fault on SPV without per-parameter faults: its mapped code', async () => {
    const w = new World();
    await w.warm();
    w.port.faultFor = (rpc) => (rpc.method === 'SetParameterValues' ? makeFault(9001) : null);
    const r = await w.ask(setReq(false, [['Device.WiFi.SSID.1.', [['SSID', 'x', true]]]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7002);
    assert.match(r.body.error!.errMsg!, /CWMP fault 9001/);
  });
});
