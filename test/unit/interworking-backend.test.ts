/**
 * The CWMP device as a USP data-model backend (src/interworking/), driven end to end without
 * sockets: real USP request Msgs (through encodeMsg/decodeMsg) go through handle() into the
 * Interworking layer, whose RpcPort answers with the in-repo simulator's RPC logic on the bundled
 * tr181 model, with the simulator's quirks. By default the device is the strictest CPE seen in the
 * field: a GetParameterValues of a partial path or of a name it does not have drops the connection
 * (the port rejects it as the session engine would). The port records every CWMP RPC, so the
 * tests assert how many and which RPCs a USP request produced, as well as every response field.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/app/config.js';
import { createLogger } from '../../src/app/log.js';
import { RpcError, type RpcOutcome } from '../../src/cwmp/session.js';
import type { AcsRequest } from '../../src/cwmp/types.js';
import { Interworking } from '../../src/interworking/index.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceRecord } from '../../src/store/types.js';
import type { DeviceModel } from '../../src/tools/sim/model.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { makeFault } from '../../src/tools/sim/rpc.js';
import { deviceRecord, SimPort } from '../helpers/sim-port.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';
import { LOCAL_AGENT_PREFIXES } from '../../src/usp/agent/local-agent-schema.js';
import { decodeMsg, encodeMsg, type Msg, type MsgType, type Request } from '../../src/usp/codec/record.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { type HandlerContext, handle } from '../../src/usp/handlers/index.js';

const CONTROLLER = 'proto::ctl';

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

interface WorldOptions {
  gpvBatchSize?: number;
  partialPaths?: 'never' | 'probe';
  quirks?: string;
  /** Share the store (and so the learned knowledge) with another world: a restart. */
  store?: SqliteStore;
  port?: SimPort;
  /** Where the layer's log lines go (default: nowhere). */
  logLines?: string[];
}

class World {
  readonly port: SimPort;
  readonly store: SqliteStore;
  readonly iw: Interworking;
  readonly router: DmRouter;
  readonly localAgent: LocalAgent;
  readonly dev: DeviceRecord;
  readonly sim: DeviceModel;

  constructor(opts: WorldOptions = {}) {
    this.port = opts.port ?? new SimPort(parseQuirks(opts.quirks ?? 'explicit-names-only'));
    this.store = opts.store ?? openSqliteStore(':memory:');
    this.iw = new Interworking(
      {
        port: this.port,
        store: this.store,
        rules: loadDefaultMapping(),
        log: opts.logLines ? createLogger('warn', { write: (l: string) => void opts.logLines!.push(l) } as never) : createLogger('silent'),
      },
      { operationTimeoutMs: 5_000, excludedPrefixes: LOCAL_AGENT_PREFIXES, gpvBatchSize: opts.gpvBatchSize, partialPaths: opts.partialPaths },
    );
    this.localAgent = new LocalAgent(loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CONTROLLER }] } }), openSqliteStore(':memory:'), '1.0');
    this.router = new DmRouter([this.localAgent.model, this.iw.backend]);
    this.dev = this.addDevice('SIM181');
    this.sim = this.port.devices.get(this.dev.deviceKey)!;
  }

  addDevice(serial: string, softwareVersion = '1.0.0', root: DeviceRecord['rootModel'] = 'Device'): DeviceRecord {
    const d = deviceRecord(serial, softwareVersion, root);
    void this.store.upsertDevice(d);
    if (!this.port.devices.has(d.deviceKey)) this.port.add(d.deviceKey, root === 'Device' ? 'tr181' : 'tr098');
    return d;
  }

  ctx(agentEid = this.dev.endpointId): HandlerContext {
    return { agentEid, controllerEid: CONTROLLER, trusted: true, router: this.router, localAgent: this.localAgent, versions: ['1.3'] };
  }

  async ask(msg: Msg, agentEid?: string): Promise<Msg> {
    const r = await handle(this.ctx(agentEid), wire(msg));
    assert.ok(r, 'a response');
    return wire(r);
  }

  /** Learns the whole model (GetSupportedDM of Device.) so that later counts are per request. */
  async warm(agentEid?: string): Promise<number> {
    const r = await this.ask(request('getSupportedDm', { objPaths: ['Device.'], returnParams: true }), agentEid);
    assert.equal(r.header.msgType, 'GET_SUPPORTED_DM_RESP');
    return this.port.sent.length;
  }

  async get(paths: string[], maxDepth?: number, agentEid?: string) {
    const r = await this.ask(request('get', { paramPaths: paths, maxDepth }), agentEid);
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

// ------------------------------------------------------------------ learning what is needed

describe('interworking: the RPC discipline (explicit names, learned once)', () => {
  it('the first Get of one parameter on a never-seen model: its object level, then one GPV of that name', async () => {
    const w = new World();
    assert.deepEqual(await w.get(['Device.DeviceInfo.SoftwareVersion']), [
      ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }),
    ]);
    assert.deepEqual(w.port.methods(), ['GPN Device.DeviceInfo. true', 'GPV Device.DeviceInfo.SoftwareVersion']);
    // The same device again: one GPV.
    let n = w.port.sent.length;
    await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion']);
    // Another device of the same model: one GPV (the model knows the name).
    const other = w.addDevice('SIM182');
    n = w.port.sent.length;
    assert.deepEqual(await w.get(['Device.DeviceInfo.SoftwareVersion'], undefined, other.endpointId), [
      ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }),
    ]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion']);
    w.port.assertExplicitNamesOnly();
  });

  it('GetRPCMethods is asked once per model, riding the first request', async () => {
    const w = new World();
    await w.get(['Device.DeviceInfo.SoftwareVersion']);
    await w.get(['Device.DeviceInfo.Manufacturer']);
    assert.equal(w.port.count('GetRPCMethods'), 1);
    const caps = await w.iw.capabilities(w.dev);
    assert.ok(caps.rpcMethods?.includes('SetParameterAttributes'), String(caps.rpcMethods));
  });

  it('a partial path: GPN of that subtree, then GPV of explicit names only (never the partial path)', async () => {
    const w = new World();
    const res = await w.get(['Device.WiFi.AccessPoint.1.']);
    assert.deepEqual(res, [
      ok('Device.WiFi.AccessPoint.1.', {
        'Device.WiFi.AccessPoint.1.': {
          Enable: 'true',
          Status: 'Enabled',
          SSIDReference: 'Device.WiFi.SSID.1',
          SSIDAdvertisementEnabled: 'true',
          AssociatedDeviceNumberOfEntries: '0',
        },
        // KeyPassphrase is secured (TR-181): it reads as "" whatever the device holds.
        'Device.WiFi.AccessPoint.1.Security.': { ModesSupported: 'None,WPA2-Personal,WPA3-Personal', ModeEnabled: 'WPA2-Personal', KeyPassphrase: '' },
      }),
    ]);
    const m = w.port.methods();
    // The instance is in a table: the table's names are learned (one GPN), then explicit names.
    assert.equal(m[0], 'GPN Device.WiFi.AccessPoint. false');
    assert.equal(m.length, 2, m.join('\n'));
    assert.match(m[1]!, /^GPV Device\.WiFi\.AccessPoint\.1\.[A-Za-z]+,/);
    w.port.assertExplicitNamesOnly();
  });

  it('a secured parameter reads empty even when the device reports its value', async () => {
    const w = new World();
    w.sim.set('Device.WiFi.AccessPoint.1.Security.KeyPassphrase', 'hunter2-secret');
    const res = await w.get(['Device.WiFi.AccessPoint.1.Security.KeyPassphrase', 'Device.ManagementServer.ConnectionRequestPassword']);
    assert.deepEqual(res[0], ok('Device.WiFi.AccessPoint.1.Security.KeyPassphrase', { 'Device.WiFi.AccessPoint.1.Security.': { KeyPassphrase: '' } }));
    assert.ok(!JSON.stringify(res).includes('hunter2'));
  });

  it('a wildcard: the table subtree once, then one batched GPV for every instance', async () => {
    const w = new World();
    assert.deepEqual(await w.get(['Device.WiFi.SSID.*.SSID']), [
      ok('Device.WiFi.SSID.*.SSID', { 'Device.WiFi.SSID.1.': { SSID: 'SimGW-2G' }, 'Device.WiFi.SSID.2.': { SSID: 'SimGW-5G' } }),
    ]);
    assert.deepEqual(w.port.methods(), ['GPN Device.WiFi.SSID. false', 'GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID']);
    const n = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.Enable']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.Enable,Device.WiFi.SSID.2.Enable']);
  });

  it('a search expression reads the referenced column in one GPV', async () => {
    const w = new World();
    w.sim.set('Device.IP.Interface.1.Enable', 'false');
    assert.deepEqual(await w.get(['Device.IP.Interface.[Enable==true].Name']), [
      ok('Device.IP.Interface.[Enable==true].Name', { 'Device.IP.Interface.2.': { Name: 'wan' } }),
    ]);
    assert.deepEqual(w.port.methods(), [
      'GPN Device.IP.Interface. false',
      'GPV Device.IP.Interface.1.Enable,Device.IP.Interface.2.Enable',
      'GPV Device.IP.Interface.2.Name',
    ]);
  });

  it('max_depth is honoured for partial paths: only the names within it are read', async () => {
    const w = new World();
    const n = await w.warm();
    const d1 = await w.get(['Device.IP.'], 1);
    assert.deepEqual(d1, [ok('Device.IP.', { 'Device.IP.': { IPv4Enable: 'true', InterfaceNumberOfEntries: '2' } })]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.IP.IPv4Enable,Device.IP.InterfaceNumberOfEntries']);
    const d2 = await w.get(['Device.IP.'], 2);
    assert.deepEqual(
      d2[0]!.resolvedPathResults.map((r) => r.resolvedPath),
      ['Device.IP.', 'Device.IP.Interface.1.', 'Device.IP.Interface.2.'],
    );
    const all = await w.get(['Device.IP.'], 0);
    assert.ok(all[0]!.resolvedPathResults.some((r) => r.resolvedPath === 'Device.IP.Diagnostics.TraceRoute.'));
    assert.ok(all[0]!.resolvedPathResults.some((r) => r.resolvedPath === 'Device.IP.Interface.1.IPv4Address.1.'));
  });

  it('a known device: partial paths, wildcards, instance paths and searches are GPVs only', async () => {
    const w = new World();
    const n = await w.warm();
    await w.get([
      'Device.WiFi.SSID.*.SSID',
      'Device.IP.Interface.2.IPv4Address.1.IPAddress',
      'Device.WiFi.Radio.1.',
      'Device.IP.Interface.[Alias=="wan"].Name',
    ]);
    assert.ok(
      w.port.methods(n).every((m) => m.startsWith('GPV ')),
      w.port.methods(n).join('\n'),
    );
    w.port.assertExplicitNamesOnly();
  });

  it('a path the device lacks is 7026 for that path only, and an unknown name is never asked by GPV', async () => {
    const w = new World();
    await w.warm();
    const n = w.port.sent.length;
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion', 'Device.WiFi.SSID.9.SSID', 'Device.DeviceInfo.NoSuchParameter', 'Device.NoSuchObject.']);
    assert.deepEqual(res[0], ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }));
    for (const [i, p] of ['Device.WiFi.SSID.9.SSID', 'Device.DeviceInfo.NoSuchParameter', 'Device.NoSuchObject.'].entries()) {
      assert.equal(res[i + 1]!.requestedPath, p);
      assert.equal(res[i + 1]!.errCode, 7026, p);
      assert.deepEqual(res[i + 1]!.resolvedPathResults, []);
    }
    assert.deepEqual(w.port.methods(n), ['GPV Device.DeviceInfo.SoftwareVersion']);
    assert.deepEqual(w.port.drops, []);
  });

  it('ManagementServer stays visible; Device.LocalAgent. is served by the proxy, never asked of the device', async () => {
    const w = new World();
    const n = await w.warm();
    const res = await w.get(['Device.ManagementServer.URL', 'Device.LocalAgent.EndpointID']);
    assert.deepEqual(res[0], ok('Device.ManagementServer.URL', { 'Device.ManagementServer.': { URL: 'http://127.0.0.1:7547/' } }));
    assert.deepEqual(res[1]!.resolvedPathResults, [{ resolvedPath: 'Device.LocalAgent.', resultParams: { EndpointID: w.dev.endpointId } }]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.ManagementServer.URL']);
  });

  it('Device.Reboot() needs no model read', async () => {
    const w = new World();
    const r = await w.ask(request('operate', { command: 'Device.Reboot()', commandKey: 'k1', sendResp: true, inputArgs: {} }));
    assert.equal(r.header.msgType, 'OPERATE_RESP', JSON.stringify(r.body));
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(w.port.methods(), ['Reboot']);
  });

  it('what was learned survives a restart: a new proxy over the same store asks one GPV', async () => {
    const w = new World();
    await w.get(['Device.WiFi.SSID.*.SSID']);
    const again = new World({ store: w.store, port: w.port });
    const n = w.port.sent.length;
    await again.get(['Device.WiFi.SSID.*.SSID']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID']);
    assert.equal(w.port.count('GetRPCMethods'), 1, 'the model profile (with its GetRPCMethods) is stored');
  });

  it('a BOOT makes the device confirm its names again', async () => {
    const w = new World();
    await w.get(['Device.WiFi.SSID.*.SSID']);
    await w.iw.inform(w.dev, {
      method: 'Inform',
      deviceId: w.dev.deviceId,
      event: [{ eventCode: '1 BOOT', commandKey: '' }],
      maxEnvelopes: 1,
      currentTime: '',
      retryCount: 0,
      parameterList: [],
    });
    const n = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.SSID']);
    // The instance list is confirmed (one level), the names come from the device model.
    assert.deepEqual(w.port.methods(n), ['GPN Device.WiFi.SSID. true', 'GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID']);
  });
});

// ------------------------------------------------------------------ strict CPEs and bad answers

describe('interworking: CPEs that fault, choke or drop', () => {
  it('GPV batches follow gpvBatchSize', async () => {
    const w = new World({ gpvBatchSize: 1 });
    const n = await w.warm();
    await w.get(['Device.WiFi.SSID.*.SSID']);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.SSID', 'GPV Device.WiFi.SSID.2.SSID']);
  });

  it('a CPE that faults 9004 on long lists: the model batch size is learned down and remembered', async () => {
    const w = new World({ quirks: 'explicit-names-only,max-gpv=3' });
    const n = await w.warm();
    const res = await w.get(['Device.WiFi.Radio.1.']);
    assert.equal(Object.keys(res[0]!.resolvedPathResults[0]!.resultParams).length, 7);
    const gpvs = w.port.methods(n).filter((m) => m.startsWith('GPV'));
    assert.ok(gpvs.every((g) => g.split(',').length <= 32));
    const caps = await w.iw.capabilities(w.dev);
    assert.ok(caps.gpvBatchSize <= 3, `learned ${caps.gpvBatchSize}`);
    // Next time the smaller batches go out at once: no 9004.
    const m = w.port.sent.length;
    const faults = w.port.drops.length;
    await w.get(['Device.WiFi.Radio.2.']);
    assert.ok(
      w.port.methods(m).every((g) => g.split(',').length <= 3),
      w.port.methods(m).join('\n'),
    );
    assert.equal(w.port.drops.length, faults);
  });

  it('a CPE that drops the connection on a long list: smaller batches, the controller sees the answer', async () => {
    const w = new World();
    const n = await w.warm();
    let dropped = 0;
    w.port.faultFor = null;
    const orig = w.port.enqueue.bind(w.port);
    w.port.enqueue = async (k, rpc) => {
      if (rpc.method === 'GetParameterValues' && rpc.parameterNames.length > 4) {
        dropped++;
        w.port.sent.push({ deviceKey: k, rpc, inSession: false });
        throw new RpcError('session-ended', 'the CPE started a new session with this RPC in flight');
      }
      return orig(k, rpc);
    };
    const res = await w.get(['Device.WiFi.Radio.1.']);
    assert.equal(Object.keys(res[0]!.resolvedPathResults[0]!.resultParams).length, 7);
    assert.ok(dropped >= 1);
    assert.ok((await w.iw.capabilities(w.dev)).gpvBatchSize <= 4);
    assert.ok(w.port.methods(n).length > 1);
  });

  it('a name listed in GetParameterNames but refused by GPV (9005): bisection, the others answered, remembered', async () => {
    const w = new World();
    await w.get(['Device.WiFi.SSID.*.SSID']);
    w.port.faultFor = (rpc) => (rpc.method === 'GetParameterValues' && rpc.parameterNames.includes('Device.WiFi.SSID.2.SSID') ? makeFault(9005) : null);
    const n = w.port.sent.length;
    assert.deepEqual(await w.get(['Device.WiFi.SSID.*.SSID']), [ok('Device.WiFi.SSID.*.SSID', { 'Device.WiFi.SSID.1.': { SSID: 'SimGW-2G' } })]);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.SSID.1.SSID,Device.WiFi.SSID.2.SSID', 'GPV Device.WiFi.SSID.1.SSID', 'GPV Device.WiFi.SSID.2.SSID']);
    const m = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.SSID']);
    assert.deepEqual(w.port.methods(m), ['GPV Device.WiFi.SSID.1.SSID']);
  });

  it('a CPE that refuses GetParameterNames NextLevel=false at the root is walked one level at a time', async () => {
    const w = new World({ quirks: 'explicit-names-only,no-deep-gpn' });
    const r = await w.ask(request('getSupportedDm', { objPaths: ['Device.'], returnParams: true }));
    const objs = r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.map((o) => o.supportedObjPath);
    assert.ok(objs.includes('Device.WiFi.SSID.{i}.'), objs.join(' '));
    assert.ok(objs.includes('Device.LocalAgent.'));
    const m = w.port.methods();
    assert.equal(m[0], 'GPN Device. false');
    assert.ok(m.filter((x) => x.endsWith(' true')).length > 10, 'walked with NextLevel=true');
    assert.equal((await w.iw.capabilities(w.dev)).rootNextLevelFalse, 'no');
    // The next device of the model is walked at once.
    const other = w.addDevice('SIM182');
    const n = w.port.sent.length;
    await w.ask(request('getInstances', { objPaths: ['Device.'], firstLevelOnly: false }), other.endpointId);
    assert.ok(!w.port.methods(n).includes('GPN Device. false'));
  });

  it('a failed learn is remembered with a back-off: the next request fails fast, a one-parameter Get still works', async () => {
    const w = new World();
    w.port.faultFor = (rpc) => (rpc.method === 'GetParameterNames' && rpc.parameterPath === 'Device.WiFi.' && !rpc.nextLevel ? makeFault(9001) : null);
    const first = await w.get(['Device.WiFi.']);
    assert.equal(first[0]!.errCode, 7002);
    const n = w.port.sent.length;
    const again = await w.get(['Device.WiFi.']);
    assert.equal(again[0]!.errCode, 7003);
    assert.match(again[0]!.errMsg!, /tries again after/);
    assert.equal(w.port.count('GetParameterNames', n), 0, 'no RPC while backing off');
    assert.deepEqual(await w.get(['Device.DeviceInfo.SoftwareVersion']), [
      ok('Device.DeviceInfo.SoftwareVersion', { 'Device.DeviceInfo.': { SoftwareVersion: '1.0.0' } }),
    ]);
    const caps = await w.iw.capabilities(w.dev);
    assert.equal(caps.failures.length, 1);
    assert.match(caps.failures[0]!.what, /GetParameterNames Device\.WiFi\. NextLevel=false/);
  });

  it('a name its model has but this device lacks: the strict CPE drops the GPV; the proxy learns the object and answers 7026', async () => {
    const w = new World();
    await w.get(['Device.DeviceInfo.SoftwareVersion']);
    // A second device of the same model without that parameter (its firmware hides it).
    const other = w.addDevice('SIM182');
    const orig = w.port.enqueue.bind(w.port);
    w.port.enqueue = async (k, rpc) => {
      if (k === other.deviceKey && rpc.method === 'GetParameterValues' && rpc.parameterNames.includes('Device.DeviceInfo.SoftwareVersion')) {
        w.port.sent.push({ deviceKey: k, rpc, inSession: false });
        throw new RpcError('session-ended', 'the CPE started a new session with this RPC in flight');
      }
      const out = await orig(k, rpc);
      if (k === other.deviceKey && out.kind === 'response' && out.response.method === 'GetParameterNamesResponse') {
        out.response.parameterList = out.response.parameterList.filter((p) => p.name !== 'Device.DeviceInfo.SoftwareVersion');
      }
      return out;
    };
    const n = w.port.sent.length;
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion', 'Device.DeviceInfo.Manufacturer'], undefined, other.endpointId);
    assert.equal(res[0]!.errCode, 7026);
    assert.equal(res[1]!.errCode ?? 0, 0);
    assert.deepEqual(w.port.methods(n), [
      'GPV Device.DeviceInfo.SoftwareVersion,Device.DeviceInfo.Manufacturer',
      'GPN Device.DeviceInfo. true',
      'GPV Device.DeviceInfo.Manufacturer',
    ]);
    // Known now: asked no more, and the batch size was not learned down for a missing name.
    const m = w.port.sent.length;
    await w.get(['Device.DeviceInfo.SoftwareVersion'], undefined, other.endpointId);
    assert.deepEqual(w.port.methods(m), []);
    assert.equal((await w.iw.capabilities(other)).gpvBatchSize, 32);
  });

  it('partial paths on probe: a CPE that answers them correctly gets them (one GPV per object), remembered', async () => {
    const w = new World({ quirks: 'none', partialPaths: 'probe', gpvBatchSize: 4 });
    const n = await w.warm();
    const res = await w.get(['Device.WiFi.Radio.1.']);
    assert.equal(Object.keys(res[0]!.resolvedPathResults[0]!.resultParams).length, 7);
    assert.deepEqual(w.port.methods(n), ['GPV Device.WiFi.Radio.1.']);
    assert.equal((await w.iw.capabilities(w.dev)).partialPaths, 'yes');
  });

  it('partial paths on probe: a strict CPE drops it; the answer comes in explicit names and the model never gets one again', async () => {
    const w = new World({ partialPaths: 'probe', gpvBatchSize: 4 });
    const n = await w.warm();
    const res = await w.get(['Device.WiFi.Radio.1.']);
    assert.equal(Object.keys(res[0]!.resolvedPathResults[0]!.resultParams).length, 7);
    const m = w.port.methods(n);
    assert.equal(m[0], 'GPV Device.WiFi.Radio.1.');
    assert.ok(
      m.slice(1).every((x) => x.startsWith('GPV ') && !x.endsWith('.')),
      m.join('\n'),
    );
    assert.equal((await w.iw.capabilities(w.dev)).partialPaths, 'no');
    assert.equal((await w.iw.capabilities(w.dev)).gpvBatchSize, 4, 'a refused partial path is not a too-long list');
    const k = w.port.sent.length;
    await w.get(['Device.WiFi.Radio.2.']);
    assert.ok(w.port.methods(k).every((x) => !x.endsWith('.')));
  });

  it('partial paths on probe: an answer that lacks names turns it off too', async () => {
    const w = new World({ quirks: 'none', partialPaths: 'probe', gpvBatchSize: 4 });
    const n = await w.warm();
    const orig = w.port.enqueue.bind(w.port);
    w.port.enqueue = async (k, rpc) => {
      const out = await orig(k, rpc);
      if (
        rpc.method === 'GetParameterValues' &&
        rpc.parameterNames[0]!.endsWith('.') &&
        out.kind === 'response' &&
        out.response.method === 'GetParameterValuesResponse'
      ) {
        out.response.parameterList = out.response.parameterList.slice(1);
      }
      return out;
    };
    const res = await w.get(['Device.WiFi.Radio.1.']);
    assert.equal(Object.keys(res[0]!.resolvedPathResults[0]!.resultParams).length, 7);
    assert.equal(w.port.methods(n)[0], 'GPV Device.WiFi.Radio.1.');
    assert.equal((await w.iw.capabilities(w.dev)).partialPaths, 'no');
  });

  it('a value that does not fit its type: passed on as sent, logged once with the device', async () => {
    const logLines: string[] = [];
    const w = new World({ quirks: 'none', logLines });
    const orig = w.port.enqueue.bind(w.port);
    w.port.enqueue = async (k, rpc) => {
      const out = await orig(k, rpc);
      if (out.kind === 'response' && out.response.method === 'GetParameterValuesResponse') {
        for (const p of out.response.parameterList) if (p.name.endsWith('.Enable')) p.value = 'yes';
      }
      return out;
    };
    const first = await w.get(['Device.WiFi.SSID.*.Enable']);
    assert.deepEqual(first[0]!.resolvedPathResults[0]!.resultParams, { Enable: 'yes' });
    await w.get(['Device.WiFi.SSID.*.Enable']);
    const warned = logLines.filter((l) => l.includes('is not an xsd:boolean'));
    assert.equal(warned.length, 1, logLines.join('\n'));
    assert.match(warned[0]!, new RegExp(w.dev.endpointId));
  });

  it('an unreachable device: 7002 with the reason', async () => {
    const w = new World();
    w.port.failWith = new RpcError('unreachable', 'connection request failed: ECONNREFUSED');
    const res = await w.get(['Device.DeviceInfo.SoftwareVersion']);
    assert.equal(res[0]!.errCode, 7002);
    assert.match(res[0]!.errMsg!, /unreachable/);
  });

  it('bad answers: extra names, fewer names, names outside the subtree are ignored; nothing crashes', async () => {
    const w = new World();
    const orig = w.port.enqueue.bind(w.port);
    w.port.enqueue = async (k, rpc) => {
      const out = await orig(k, rpc);
      if (out.kind === 'response' && out.response.method === 'GetParameterNamesResponse') {
        out.response.parameterList.push({ name: 'Device.Elsewhere.Secret', writable: true });
      }
      if (out.kind === 'response' && out.response.method === 'GetParameterValuesResponse') {
        out.response.parameterList.push({ name: 'Device.NotAsked', value: 'x', type: 'xsd:string' });
        if (out.response.parameterList.length > 2) out.response.parameterList.splice(0, 1);
      }
      return out;
    };
    const res = await w.get(['Device.WiFi.SSID.*.SSID']);
    assert.equal(res[0]!.errCode ?? 0, 0);
    assert.ok(!JSON.stringify(res).includes('NotAsked'));
    assert.ok(!JSON.stringify(res).includes('Elsewhere'));
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

  it('one object, two parameters: one SPV with the xsi:types of the standard', async () => {
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

  it('a Set on a never-seen model: the object level, then one SPV (types from the standard, no GPV)', async () => {
    const out = await w.iw.backend.set({ agentEid: w.dev.endpointId, controllerEid: CONTROLLER }, 'Device.WiFi.Radio.1.', [
      { param: 'TransmitPower', value: '50', required: true },
    ]);
    assert.deepEqual(out, { ok: true, updated: { TransmitPower: '50' }, paramErrs: [] });
    assert.deepEqual(w.port.methods(), ['GPN Device.WiFi.Radio.1. true', 'SPV Device.WiFi.Radio.1.TransmitPower=50(xsd:int)']);
  });

  it('a vendor parameter of unknown type is read once (one GPV of that name) before the SPV', async () => {
    const n = w.sim.addInstance('Device.NAT.PortMapping.');
    w.sim.defineParam(`Device.NAT.PortMapping.${n}.X_SIM_Boost`, '3', 'xsd:unsignedInt', true);
    const path = `Device.NAT.PortMapping.${n}.`;
    const out = await w.iw.backend.set({ agentEid: w.dev.endpointId, controllerEid: CONTROLLER }, path, [{ param: 'X_SIM_Boost', value: '5', required: true }]);
    assert.deepEqual(out, { ok: true, updated: { X_SIM_Boost: '5' }, paramErrs: [] });
    assert.deepEqual(w.port.methods(), [`GPN ${path} true`, `GPV ${path}X_SIM_Boost`, `SPV ${path}X_SIM_Boost=5(xsd:unsignedInt)`]);
    assert.equal(w.sim.get(`${path}X_SIM_Boost`), '5');
  });

  it('allow_partial false across two objects is ONE SetParameterValues (atomic, as CWMP is)', async () => {
    const n = await w.warm();
    const r = await w.ask(setReq(false, [['Device.WiFi.SSID.*.', [['SSID', 'Same', true]]]]));
    assert.deepEqual(r.body.response!.setResp!.updatedObjResults[0]!.operStatus!.operSuccess!.updatedInstResults, [
      { affectedPath: 'Device.WiFi.SSID.1.', updatedParams: { SSID: 'Same' }, paramErrs: [] },
      { affectedPath: 'Device.WiFi.SSID.2.', updatedParams: { SSID: 'Same' }, paramErrs: [] },
    ]);
    assert.equal(w.port.count('SetParameterValues', n), 1);
    assert.equal(w.sim.get('Device.WiFi.SSID.1.SSID'), 'Same');
    assert.equal(w.sim.get('Device.WiFi.SSID.2.SSID'), 'Same');
  });

  it('allow_partial false: a failure on the second object is an Error and nothing is applied', async () => {
    const n = await w.warm();
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
    assert.equal(w.port.count('SetParameterValues', n), 1);
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
    assert.equal(a!.operStatus!.operStatus, 'operSuccess');
    assert.equal(b!.operStatus!.operFailure!.errCode, 7021);
    assert.match(b!.operStatus!.operFailure!.updatedInstFailures[0]!.paramErrs[0]!.errMsg!, /9007/);
    assert.deepEqual(
      w.port.methods(n).filter((m) => m.startsWith('SPV')),
      ['SPV Device.WiFi.Radio.1.Channel=11(xsd:unsignedInt)', 'SPV Device.WiFi.Radio.2.Channel=abc(xsd:unsignedInt)'],
    );
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
    assert.deepEqual(
      r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
      [['Device.WiFi.SSID.1.Name', 7013]],
    );
    assert.equal(w.port.count('SetParameterValues', n), 0);
  });

  it('an unknown parameter: 7010 without asking the device for it', async () => {
    const n = await w.warm();
    const r = await w.ask(setReq(false, [['Device.WiFi.SSID.1.', [['NoSuchThing', 'x', true]]]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.deepEqual(
      r.body.error!.paramErrs.map((p) => [p.paramPath, p.errCode]),
      [['Device.WiFi.SSID.1.NoSuchThing', 7010]],
    );
    assert.deepEqual(w.port.methods(n), []);
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
  });

  it('a search after a Set sees the new value', async () => {
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

  it('AddObject, GPN of the new instance only, one SPV of param_settings; instantiated_path and unique keys', async () => {
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
    const s = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
    assert.equal(s.instantiatedPath, 'Device.NAT.PortMapping.2.');
    assert.equal(s.uniqueKeys.Alias, 'cpe-2');
    assert.equal(s.uniqueKeys.ExternalPort, '9090');
    const m = w.port.methods(n);
    assert.deepEqual(m.slice(0, 3), [
      'AddObject Device.NAT.PortMapping.',
      'GPN Device.NAT.PortMapping.2. false',
      'SPV Device.NAT.PortMapping.2.ExternalPort=9090(xsd:unsignedInt),Device.NAT.PortMapping.2.Enable=true(xsd:boolean),Device.NAT.PortMapping.2.Protocol=UDP(xsd:string)',
    ]);
    assert.ok(!m.some((x) => x.startsWith('GPN Device. ') || x === 'GPN Device.NAT.PortMapping. false'), 'no re-read of the table or the tree');
    assert.equal(w.sim.get('Device.NAT.PortMapping.2.ExternalPort'), '9090');
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
    assert.equal(r.body.error!.paramErrs[0]!.errCode, 7012);
    const m = w.port.methods(n);
    assert.equal(m[0], 'AddObject Device.NAT.PortMapping.');
    assert.equal(m.at(-1), 'DeleteObject Device.NAT.PortMapping.2.');
    assert.deepEqual(w.sim.instances('Device.NAT.PortMapping.'), [1]);
    // The rolled-back instance is forgotten: a Get of the table does not ask for it.
    const k = w.port.sent.length;
    await w.get(['Device.NAT.PortMapping.*.ExternalPort']);
    assert.deepEqual(w.port.methods(k), ['GPV Device.NAT.PortMapping.1.ExternalPort']);
  });

  it('a search expression in obj_path', async () => {
    await w.warm();
    const r = await w.ask(addReq(false, [['Device.IP.Interface.[Alias=="wan"].IPv4Address.', [['IPAddress', '100.64.0.11', true]]]]));
    const s = r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!;
    assert.equal(s.instantiatedPath, 'Device.IP.Interface.2.IPv4Address.2.');
    assert.equal(w.sim.get('Device.IP.Interface.2.IPv4Address.2.IPAddress'), '100.64.0.11');
  });

  it('a table that was empty when its names were learned: the first Add learns the new instance', async () => {
    w.sim.deleteInstance('Device.NAT.PortMapping.1.');
    await w.warm();
    const r = await w.ask(addReq(false, [['Device.NAT.PortMapping.', [['ExternalPort', '9090', true]]]]));
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
    assert.equal(r.body.response!.addResp!.createdObjResults[0]!.operStatus!.operSuccess!.instantiatedPath, 'Device.NAT.PortMapping.2.');
    const g = await w.ask(request('getSupportedDm', { objPaths: ['Device.NAT.PortMapping.'], returnParams: true }));
    const params = g.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs[0]!.supportedParams;
    assert.deepEqual(params.find((p) => p.paramName === 'ExternalPort')?.valueType, 'PARAM_UNSIGNED_INT');
  });

  it('a table the device does not let create: 7019, no AddObject', async () => {
    const n = await w.warm();
    const r = await w.ask(addReq(false, [['Device.WiFi.SSID.', []]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7019);
    assert.equal(w.port.count('AddObject', n), 0);
  });

  it('a duplicate Alias is refused before anything is created (7012 on the key)', async () => {
    const n = await w.warm();
    const r = await w.ask(addReq(false, [['Device.NAT.PortMapping.', [['Alias', 'cpe-1', true]]]]));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.paramErrs[0]!.errCode, 7012);
    assert.equal(w.port.count('AddObject', n), 0);
  });

  it('GetInstances and a search right after an Add see the new instance', async () => {
    await w.warm();
    const inst = async () => {
      const r = await w.ask(request('getInstances', { objPaths: ['Device.NAT.PortMapping.'], firstLevelOnly: true }));
      return r.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath);
    };
    assert.deepEqual(await inst(), ['Device.NAT.PortMapping.1.']);
    await w.ask(addReq(false, [['Device.NAT.PortMapping.', []]]));
    assert.deepEqual(await inst(), ['Device.NAT.PortMapping.1.', 'Device.NAT.PortMapping.2.']);
  });
});

describe('interworking Delete', () => {
  let w: World;
  beforeEach(() => {
    w = new World();
  });
  const del = (allowPartial: boolean, objPaths: string[]) => request('delete', { allowPartial, objPaths });

  it('an existing instance: one DeleteObject, affected_paths, the instance forgotten', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.1.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, ['Device.NAT.PortMapping.1.']);
    assert.deepEqual(w.port.methods(n), ['DeleteObject Device.NAT.PortMapping.1.']);
    const r2 = await w.ask(request('getInstances', { objPaths: ['Device.NAT.PortMapping.'], firstLevelOnly: true }));
    assert.deepEqual(r2.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts, []);
    assert.deepEqual(w.port.methods(n), ['DeleteObject Device.NAT.PortMapping.1.']);
  });

  it('DeleteObject per matched instance', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.IP.Interface.*.IPv4Address.*.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, [
      'Device.IP.Interface.1.IPv4Address.1.',
      'Device.IP.Interface.2.IPv4Address.1.',
    ]);
    assert.deepEqual(w.port.methods(n), ['DeleteObject Device.IP.Interface.1.IPv4Address.1.', 'DeleteObject Device.IP.Interface.2.IPv4Address.1.']);
  });

  it('a missing instance: success with empty affected_paths, no DeleteObject', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.7.']));
    assert.deepEqual(r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!.affectedPaths, []);
    assert.equal(w.port.count('DeleteObject', n), 0);
  });

  it('allow_partial true: a non-deletable instance fails alone; false: an Error, nothing deleted', async () => {
    const n = await w.warm();
    const r = await w.ask(del(false, ['Device.NAT.PortMapping.1.', 'Device.WiFi.SSID.1.']));
    assert.equal(r.header.msgType, 'ERROR');
    assert.equal(r.body.error!.errCode, 7024);
    assert.equal(w.port.count('DeleteObject', n), 0);
    const r2 = await w.ask(del(true, ['Device.NAT.PortMapping.1.', 'Device.WiFi.SSID.1.']));
    const [a, b] = r2.body.response!.deleteResp!.deletedObjResults;
    assert.deepEqual(a!.operStatus!.operSuccess!.affectedPaths, ['Device.NAT.PortMapping.1.']);
    assert.equal(b!.operStatus!.operFailure!.errCode, 7024);
  });

  it('the device refuses DeleteObject (9001): 7024 with the CWMP fault in err_msg', async () => {
    await w.warm();
    w.port.faultFor = (rpc) => (rpc.method === 'DeleteObject' ? makeFault(9001) : null);
    const r = await w.ask(del(true, ['Device.NAT.PortMapping.1.']));
    const s = r.body.response!.deleteResp!.deletedObjResults[0]!.operStatus!.operSuccess!;
    assert.equal(s.unaffectedPathErrs[0]!.errCode, 7024);
    assert.match(s.unaffectedPathErrs[0]!.errMsg!, /CWMP fault 9001/);
  });
});

// ------------------------------------------------------------------ GetInstances / GetSupportedDM

describe('interworking GetInstances', () => {
  it('all unique keys of a table in one GPV; first_level_only true and false', async () => {
    const w = new World();
    const first = await w.ask(request('getInstances', { objPaths: ['Device.IP.Interface.'], firstLevelOnly: true }));
    assert.deepEqual(first.body.response!.getInstancesResp!.reqPathResults, [
      {
        requestedPath: 'Device.IP.Interface.',
        currInsts: [
          { instantiatedObjPath: 'Device.IP.Interface.1.', uniqueKeys: { Alias: 'lan', Name: 'br-lan' } },
          { instantiatedObjPath: 'Device.IP.Interface.2.', uniqueKeys: { Alias: 'wan', Name: 'wan' } },
        ],
      },
    ]);
    assert.deepEqual(w.port.methods(), [
      'GPN Device.IP.Interface. true',
      'GPN Device.IP.Interface. false',
      'GPV Device.IP.Interface.1.Alias,Device.IP.Interface.1.Name,Device.IP.Interface.2.Alias,Device.IP.Interface.2.Name',
    ]);
    const all = await w.ask(request('getInstances', { objPaths: ['Device.IP.Interface.'], firstLevelOnly: false }));
    assert.deepEqual(
      all.body.response!.getInstancesResp!.reqPathResults[0]!.currInsts.map((c) => c.instantiatedObjPath),
      ['Device.IP.Interface.1.', 'Device.IP.Interface.1.IPv4Address.1.', 'Device.IP.Interface.2.', 'Device.IP.Interface.2.IPv4Address.1.'],
    );
  });

  it('unique keys from the standard (Hosts.Host: PhysAddress); an empty table has no instances', async () => {
    const w = new World();
    const r = await w.ask(request('getInstances', { objPaths: ['Device.Hosts.Host.', 'Device.IP.Diagnostics.TraceRoute.RouteHops.'], firstLevelOnly: true }));
    const [hosts, hops] = r.body.response!.getInstancesResp!.reqPathResults;
    assert.deepEqual(hosts!.currInsts, [
      { instantiatedObjPath: 'Device.Hosts.Host.1.', uniqueKeys: { PhysAddress: '02:00:00:00:00:11' } },
      { instantiatedObjPath: 'Device.Hosts.Host.2.', uniqueKeys: { PhysAddress: '02:00:00:00:00:12' } },
    ]);
    assert.equal(hops!.errCode ?? 0, 0);
    assert.deepEqual(hops!.currInsts, []);
  });
});

describe('interworking GetSupportedDM', () => {
  const gsdm = (objPaths: string[]) =>
    request('getSupportedDm', { objPaths, firstLevelOnly: false, returnParams: true, returnUniqueKeySets: true, returnCommands: false, returnEvents: false });

  it('Device.WiFi.: objects, types, access; only that subtree is learned', async () => {
    const w = new World();
    const r = await w.ask(gsdm(['Device.WiFi.']));
    const res = r.body.response!.getSupportedDmResp!.reqObjResults[0]!;
    assert.equal(res.errCode ?? 0, 0);
    const objs = new Map(res.supportedObjs.map((o) => [o.supportedObjPath, o]));
    assert.deepEqual(
      [...objs.keys()],
      ['Device.WiFi.', 'Device.WiFi.AccessPoint.{i}.', 'Device.WiFi.AccessPoint.{i}.Security.', 'Device.WiFi.Radio.{i}.', 'Device.WiFi.SSID.{i}.'],
    );
    assert.equal(objs.get('Device.WiFi.SSID.{i}.')!.isMultiInstance, true);
    // The simulated WiFi tables are not writable on the device: read-only tables.
    assert.equal(objs.get('Device.WiFi.SSID.{i}.')!.access ?? 'OBJ_READ_ONLY', 'OBJ_READ_ONLY');
    assert.deepEqual(objs.get('Device.WiFi.SSID.{i}.')!.uniqueKeySets, [{ keyNames: ['Alias'] }, { keyNames: ['Name'] }, { keyNames: ['BSSID'] }]);
    const radio = new Map(objs.get('Device.WiFi.Radio.{i}.')!.supportedParams.map((p) => [p.paramName, [p.valueType, p.access ?? 'PARAM_READ_ONLY']]));
    assert.deepEqual(radio.get('Channel'), ['PARAM_UNSIGNED_INT', 'PARAM_READ_WRITE']);
    assert.deepEqual(radio.get('TransmitPower'), ['PARAM_INT', 'PARAM_READ_WRITE']);
    assert.deepEqual(radio.get('Status'), ['PARAM_STRING', 'PARAM_READ_ONLY']);
    assert.deepEqual(w.port.methods(), ['GPN Device.WiFi. false'], 'types from the standard: no GPV');
  });

  it('writable tables are OBJ_ADD_DELETE; ManagementServer is read-only; empty tables are tables', async () => {
    const w = new World();
    const r = await w.ask(gsdm(['Device.NAT.', 'Device.ManagementServer.', 'Device.IP.Diagnostics.TraceRoute.']));
    const [nat, ms, tr] = r.body.response!.getSupportedDmResp!.reqObjResults;
    const natObjs = new Map(nat!.supportedObjs.map((o) => [o.supportedObjPath, o]));
    assert.equal(natObjs.get('Device.NAT.PortMapping.{i}.')!.access, 'OBJ_ADD_DELETE');
    assert.equal(natObjs.get('Device.NAT.InterfaceSetting.{i}.')!.access ?? 'OBJ_READ_ONLY', 'OBJ_READ_ONLY');
    for (const p of ms!.supportedObjs[0]!.supportedParams) assert.equal(p.access ?? 'PARAM_READ_ONLY', 'PARAM_READ_ONLY', p.paramName);
    const hops = tr!.supportedObjs.find((o) => o.supportedObjPath === 'Device.IP.Diagnostics.TraceRoute.RouteHops.{i}.');
    assert.equal(hops?.isMultiInstance, true);
  });

  it('per device model: a second device of the same model issues no RPC; another firmware is another model', async () => {
    const w = new World();
    await w.ask(gsdm(['Device.WiFi.']));
    const other = w.addDevice('SIM182');
    const n = w.port.sent.length;
    const r = await w.ask(gsdm(['Device.WiFi.']), other.endpointId);
    assert.equal(r.body.response!.getSupportedDmResp!.reqObjResults[0]!.supportedObjs.length, 5);
    // The second device's own names are learned (its rows may differ), the model's types are not asked again.
    assert.deepEqual(w.port.methods(n), ['GPN Device.WiFi. false']);
    const newer = w.addDevice('SIM183', '2.0.0');
    const m = w.port.sent.length;
    await w.ask(gsdm(['Device.WiFi.']), newer.endpointId);
    assert.equal(w.port.count('GetRPCMethods', m), 1, 'another model');
  });
});

// ------------------------------------------------------------------ TR-098 through the mapping

describe('interworking TR-098: the mapping on explicit names', () => {
  it('names learned once per device; GPVs carry only native names the device listed', async () => {
    const w = new World();
    const igd = w.addDevice('IGD1', '1.0.0', 'InternetGatewayDevice');
    const res = await w.get(['Device.WiFi.SSID.*.SSID', 'Device.DeviceInfo.SerialNumber'], undefined, igd.endpointId);
    assert.equal(res[0]!.errCode ?? 0, 0);
    assert.ok(res[0]!.resolvedPathResults.length >= 1);
    const gpn = w.port.methods().filter((m) => m.startsWith('GPN'));
    assert.deepEqual(gpn, ['GPN InternetGatewayDevice. false']);
    w.port.assertExplicitNamesOnly();
    const n = w.port.sent.length;
    await w.get(['Device.WiFi.SSID.*.SSID'], undefined, igd.endpointId);
    assert.ok(
      w.port.methods(n).every((m) => m.startsWith('GPV')),
      w.port.methods(n).join('\n'),
    );
  });

  it('an Add learns the new native instance only (no re-read of the tree)', async () => {
    const w = new World();
    const igd = w.addDevice('IGD2', '1.0.0', 'InternetGatewayDevice');
    await w.get(['Device.NAT.PortMapping.'], undefined, igd.endpointId);
    const n = w.port.sent.length;
    const r = await w.ask(addReq(false, [['Device.NAT.PortMapping.', [['ExternalPort', '9091', true]]]]), igd.endpointId);
    assert.equal(r.header.msgType, 'ADD_RESP', JSON.stringify(r.body));
    const gpn = w.port.methods(n).filter((m) => m.startsWith('GPN'));
    assert.equal(gpn.length, 1, gpn.join('\n'));
    assert.match(gpn[0]!, /^GPN InternetGatewayDevice\..*\.PortMapping\.\d+\. false$/);
  });
});

describe('interworking TR-098: tables that present the same native rows', () => {
  it('a WAN connection is created through Device.IP.Interface only: its Ethernet.Link, NAT.InterfaceSetting and DNS servers are not addable', async () => {
    const w = new World();
    const igd = w.addDevice('IGD3', '1.0.0', 'InternetGatewayDevice');
    const model = await w.iw.tr098.supported(igd.endpointId);
    const access = (p: string) => model.find((o) => o.path === p)?.access;
    for (const t of ['Device.Ethernet.Link.{i}.', 'Device.NAT.InterfaceSetting.{i}.', 'Device.DNS.Client.Server.{i}.', 'Device.WiFi.Radio.{i}.']) {
      if (access(t) !== undefined) assert.equal(access(t), 'readOnly', t);
    }
    assert.ok(
      model.some((o) => o.path === 'Device.NAT.InterfaceSetting.{i}.'),
      'NAT.InterfaceSetting is mapped on the simulated gateway',
    );
    const n = w.port.sent.length;
    const r = await w.ask(addReq(false, [['Device.NAT.InterfaceSetting.', []]]), igd.endpointId);
    assert.equal(r.header.msgType, 'ERROR', JSON.stringify(r.body));
    assert.ok(!w.port.methods(n).some((m) => m.startsWith('AddObject')), 'no native object created');
  });
});

// ------------------------------------------------------------------ a request whose controller is gone

/** A SimPort that, once armed, aborts `ac` after answering `after` GetParameterValues (the controller's connection closing mid-request). */
class ClosingPort extends SimPort {
  private left = -1;
  constructor(readonly ac: AbortController) {
    super(parseQuirks('explicit-names-only'));
  }
  arm(after: number): void {
    this.left = after;
  }
  override async enqueue(deviceKey: string, rpc: AcsRequest): Promise<RpcOutcome> {
    const out = await super.enqueue(deviceKey, rpc);
    if (rpc.method === 'GetParameterValues' && this.left > 0 && --this.left === 0) this.ac.abort(new Error('the controller connection closed'));
    return out;
  }
}

describe('interworking: a request whose answer can no longer be delivered', () => {
  it('a Get stops enqueueing GetParameterValues once its scope is aborted; the same Get otherwise reads everything', async () => {
    const whole = new World({ gpvBatchSize: 4 });
    const n0 = await whole.warm();
    await whole.get(['Device.']);
    const full = whole.port.count('GetParameterValues', n0);
    assert.ok(full > 3, `a Get of Device. takes ${full} GPVs in batches of 4`);

    const ac = new AbortController();
    const port = new ClosingPort(ac);
    const w = new World({ gpvBatchSize: 4, port });
    const n = await w.warm();
    port.arm(2);
    const r = wire((await handle({ ...w.ctx(), scope: { signal: ac.signal, ends: [] } }, wire(request('get', { paramPaths: ['Device.'] }))))!);
    assert.equal(w.port.count('GetParameterValues', n), 2, 'no GPV after the abort');
    const res = r.body.response?.getResp?.reqPathResults[0];
    assert.equal(res?.errCode, 7003, JSON.stringify(r.body));
    assert.match(res?.errMsg ?? '', /GetParameterValues not sent: the controller that asked is gone/);
  });

  it('what changes state is never cancelled: a Set in an aborted scope still sends its SetParameterValues', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    const w = new World();
    const r = wire(
      (await handle({ ...w.ctx(), scope: { signal: ac.signal, ends: [] } }, wire(setReq(false, [['Device.WiFi.Radio.1.', [['TransmitPower', '40', true]]]]))))!,
    );
    assert.equal(r.header.msgType, 'SET_RESP', JSON.stringify(r.body));
    assert.equal(w.sim.get('Device.WiFi.Radio.1.TransmitPower'), '40');
    // Learning shared by requests (the object's names) is not tied to the aborted one either.
    const methods = w.port.methods();
    assert.ok(methods[0]!.startsWith('GPN Device.WiFi.Radio.'), methods.join('\n'));
    assert.deepEqual(methods.slice(1), ['SPV Device.WiFi.Radio.1.TransmitPower=40(xsd:int)']);
  });
});
