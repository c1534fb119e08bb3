/**
 * ValueChange subscriptions on CPEs that will not notify (issue 12 item 5), driven end to end
 * without sockets: USP Add/Delete of Device.LocalAgent.Subscription rows go through the real
 * handlers into the Local Agent; the EventBridge and its ValueWatch act on them through the
 * Interworking layer, whose RpcPort is the in-repo simulator with per-device quirks (strict:
 * explicit names only, plus `no-spa` or `no-value-change`); Notifies are read back decoded from
 * their wire bytes. A test plays the CPE's sessions: a periodic Inform opens one, the reads the
 * proxy queues ride it, and the port tells which RPCs would have woken the device instead.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/app/config.js';
import { createLogger, silentLogger } from '../../src/app/log.js';
import type { Inform, ParameterValueStruct } from '../../src/cwmp/types.js';
import { EventBridge } from '../../src/interworking/events.js';
import { Interworking } from '../../src/interworking/index.js';
import type { ValueChangePollOptions } from '../../src/interworking/value-watch.js';
import { storedLearned } from '../../src/interworking/stored-learned.js';
import { DeviceWatch } from '../../src/interworking/watch-state.js';
import { PollScheduler } from '../../src/interworking/value-poll.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { add, del } from '../../src/tools/controller/client.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { LocalAgent } from '../../src/usp/agent/local-agent.js';
import { LOCAL_AGENT_PREFIXES } from '../../src/usp/agent/local-agent-schema.js';
import { Notifier } from '../../src/usp/agent/notify.js';
import { decodeMsg, encodeMsg, type Msg, type Notify } from '../../src/usp/codec/record.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { handle } from '../../src/usp/handlers/index.js';
import { SimPort } from '../helpers/sim-port.js';

const CONTROLLER = 'proto::vw-ctl';
const SSID1 = 'Device.WiFi.SSID.1.SSID';
const SSID2 = 'Device.WiFi.SSID.2.';
const PASSPHRASE = 'Device.WiFi.AccessPoint.1.Security.KeyPassphrase';

/** CPE profiles: the strictest seen in the field, with the ValueChange quirks. */
const PROFILES = {
  notifies: 'explicit-names-only',
  'no-spa': 'explicit-names-only,no-spa',
  'no-value-change': 'explicit-names-only,no-value-change',
} as const;
type Profile = keyof typeof PROFILES;

const wire = (m: Msg): Msg => decodeMsg(encodeMsg(m));

interface WorldOptions {
  poll?: Partial<ValueChangePollOptions>;
  /** A restart: the same stores and CPEs. */
  from?: World;
}

class World {
  readonly port: SimPort;
  /** One store, as in the proxy: devices, learned documents and the Local Agent's rows. */
  readonly store: SqliteStore;
  readonly iw: Interworking;
  readonly localAgent: LocalAgent;
  readonly router: DmRouter;
  readonly bridge: EventBridge;
  readonly notifies: Notify[] = [];
  readonly logs: Array<Record<string, unknown>> = [];
  private waiters: { pred: (n: Notify) => boolean; resolve: (n: Notify) => void }[] = [];

  constructor(opts: WorldOptions = {}) {
    this.port = opts.from?.port ?? new SimPort();
    this.store = opts.from?.store ?? openSqliteStore(':memory:');
    const port = this.port;
    this.iw = new Interworking(
      { port, store: this.store, rules: loadDefaultMapping(), log: silentLogger(), inSession: (k) => port.inSession(k) },
      { operationTimeoutMs: 5_000, excludedPrefixes: LOCAL_AGENT_PREFIXES },
    );
    const config = loadConfig({ env: {}, overrides: { controllers: [{ endpointId: CONTROLLER }] } });
    this.localAgent = new LocalAgent(config, this.store, '1.0');
    this.router = new DmRouter([this.localAgent.model, this.iw.backend]);
    const notifier = new Notifier({
      localAgent: this.localAgent,
      endpoint: {
        sendToController: async (_agent, _controller, msg) => {
          const n = wire(msg).body.request!.notify!;
          this.notifies.push(n);
          for (const w of [...this.waiters]) if (w.pred(n)) this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(n);
          return true;
        },
      },
      usp: config.usp,
      log: silentLogger(),
    });
    const log = createLogger('info', { write: (line: string) => void this.logs.push(JSON.parse(line) as Record<string, unknown>) });
    const iw = this.iw;
    this.bridge = new EventBridge(
      {
        localAgent: this.localAgent,
        notifier,
        // No OnBoardRequest on 0 BOOTSTRAP: it is retried until answered, and no controller answers here.
        controllers: () => [],
        deviceByEndpointId: (eid) => this.store.getDeviceByEndpointId(eid),
        readValues: (d, names) => iw.readValues(d, names),
        mapped: { valueChanges: (d, p) => iw.tr098.uspValueChanges(d, p), toNative: (d, p) => iw.tr098.nativePaths(d, p) },
        access: (d, how) => (how === 'ride' ? iw.openInSession(d) : iw.open(d)),
        saveModel: (m) => iw.knowledge.saveModel(m),
        store: this.store,
        log,
      },
      { excludedPrefixes: LOCAL_AGENT_PREFIXES, poll: { enabled: false, intervalS: 0, minIntervalS: 1, maxParameters: 1000, ...opts.poll } },
    );
  }

  /** A restart: the Local Agent restores the stored (persistent) subscriptions, the watch resumes. */
  async restart(): Promise<void> {
    await this.localAgent.restore();
    for (const a of this.localAgent.agentsWithSubscriptions()) this.localAgent.model.tree(a);
    await this.bridge.start();
  }

  /** A CPE of a profile; each profile is its own device model (capabilities are learned per model). */
  device(profile: Profile, serial: string, root: DeviceRecord['rootModel'] = 'Device'): DeviceRecord {
    const productClass = `VW-${profile}${root === 'Device' ? '' : '-098'}`;
    const d: DeviceRecord = {
      deviceKey: `F0AD4E-${productClass}-${serial}`,
      endpointId: `os::F0AD4E-${serial}`,
      deviceId: { manufacturer: 'CWMP-USP-Proxy Simulator', oui: 'F0AD4E', productClass, serialNumber: serial },
      rootModel: root,
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
    void this.store.upsertDevice(d);
    this.port.add(d.deviceKey, parseQuirks(PROFILES[profile]), root === 'Device' ? 'tr181' : 'tr098');
    return d;
  }

  private async ask(d: DeviceRecord, m: Msg): Promise<Msg> {
    const r = await handle(
      { agentEid: d.endpointId, controllerEid: CONTROLLER, trusted: true, router: this.router, localAgent: this.localAgent, versions: ['1.3'] },
      wire(m),
    );
    assert.ok(r);
    return wire(r);
  }

  /** USP Add of a ValueChange subscription; resolves once the proxy set it up on the device. */
  async subscribe(d: DeviceRecord, id: string, referenceList: string): Promise<number> {
    const r = await this.ask(
      d,
      add([
        {
          objPath: 'Device.LocalAgent.Subscription.',
          params: { Enable: 'true', ID: id, NotifType: 'ValueChange', ReferenceList: referenceList, Persistent: 'true' },
        },
      ]),
    );
    const path = r.body.response?.addResp?.createdObjResults[0]?.operStatus?.operSuccess?.instantiatedPath;
    assert.ok(path, JSON.stringify(r.body));
    await this.bridge.watch.idle(d.endpointId);
    return Number(/(\d+)\.$/.exec(path)![1]);
  }

  async unsubscribe(d: DeviceRecord, instance: number): Promise<void> {
    const r = await this.ask(d, del([`Device.LocalAgent.Subscription.${instance}.`]));
    assert.equal(r.header.msgType, 'DELETE_RESP', JSON.stringify(r.body));
    await this.bridge.watch.idle(d.endpointId);
  }

  /** One CWMP session of the device, opened by an Inform with these events; resolves once the proxy's work in it is done. */
  async session(d: DeviceRecord, events: string[], params: ParameterValueStruct[] = []): Promise<void> {
    const inform: Inform = {
      method: 'Inform',
      deviceId: d.deviceId,
      event: events.map((eventCode) => ({ eventCode, commandKey: '' })),
      maxEnvelopes: 1,
      currentTime: new Date().toISOString(),
      retryCount: 0,
      parameterList: params,
    };
    this.port.openSession(d.deviceKey);
    try {
      await this.iw.inform(d, inform);
      this.bridge.inform(d, inform);
      await this.bridge.watch.idle(d.endpointId);
    } finally {
      this.port.closeSession(d.deviceKey);
    }
  }

  periodic(d: DeviceRecord): Promise<void> {
    return this.session(d, ['2 PERIODIC']);
  }

  /** The CPE changes a value itself; if it notifies that parameter, it opens a session with 4 VALUE CHANGE at once. */
  async cpeChange(d: DeviceRecord, path: string, value: string): Promise<void> {
    const m = this.port.model(d.deviceKey);
    m.set(path, value);
    if (this.port.notifies(d.deviceKey, path)) await this.session(d, ['4 VALUE CHANGE'], [{ name: path, value, type: m.node(path)!.type }]);
  }

  valueChanges(): { id: string; path: string; value: string }[] {
    return this.notifies
      .filter((n) => n.valueChange)
      .map((n) => ({ id: n.subscriptionId ?? '', path: n.valueChange!.paramPath ?? '', value: n.valueChange!.paramValue ?? '' }));
  }

  /** The first Notify matching pred (the proxy's poll timers do not hold the process open: this does, meanwhile). */
  nextNotify(pred: (n: Notify) => boolean): Promise<Notify> {
    const seen = this.notifies.find(pred);
    if (seen) return Promise.resolve(seen);
    const hold = setInterval(() => undefined, 1000);
    return new Promise<Notify>((resolve) => this.waiters.push({ pred, resolve })).finally(() => clearInterval(hold));
  }

  async served(d: DeviceRecord): Promise<Record<string, { servedBy: string | null; reason: string; parameters: number; pollIntervalS: number }>> {
    return Object.fromEntries((await this.bridge.watch.describe(d)).map((s) => [s.id, s]));
  }

  servingLogs(): { id: unknown; servedBy: unknown }[] {
    return this.logs
      .filter((l) => typeof l.msg === 'string' && l.msg.startsWith('ValueChange subscription served by'))
      .map((l) => ({ id: l.id, servedBy: l.servedBy }));
  }
}

describe('ValueChange on a CPE that refuses SetParameterAttributes (no-spa)', () => {
  it('compares in the periodic sessions, riding them, with explicit names only', async () => {
    const w = new World();
    const d = w.device('no-spa', 'NOSPA1');
    await w.subscribe(d, 'vc-ssid', SSID1);
    // Set up: the name is learned (one level); GetRPCMethods (asked once per model, riding the
    // same session) does not list SetParameterAttributes, so it is not sent; the baseline is read.
    assert.deepEqual(w.port.methods(d.deviceKey), ['GPN Device.WiFi.SSID.1. true', `GPV ${SSID1}`]);
    const caps = await w.iw.capabilities(d);
    assert.equal(caps.setParameterAttributes, 'no');
    assert.ok(caps.rpcMethods && !caps.rpcMethods.includes('SetParameterAttributes'));
    const s = (await w.served(d))['vc-ssid']!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /the device model does not support SetParameterAttributes/);
    assert.equal(s.parameters, 1);
    assert.deepEqual(w.servingLogs(), [{ id: 'vc-ssid', servedBy: 'periodic-compare' }]);

    // A change on the CPE says nothing by itself; the next periodic session reads and reports it.
    await w.cpeChange(d, SSID1, 'renamed-by-user');
    assert.deepEqual(w.valueChanges(), []);
    let n = w.port.sent.length;
    await w.periodic(d);
    assert.deepEqual(w.valueChanges(), [{ id: 'vc-ssid', path: SSID1, value: 'renamed-by-user' }]);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [`GPV ${SSID1}`]);
    assert.ok(
      w.port.sent.slice(n).every((x) => x.inSession),
      'the reads rode the periodic session',
    );

    // No change: the read finds nothing to report.
    n = w.port.sent.length;
    await w.periodic(d);
    assert.equal(w.valueChanges().length, 1);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [`GPV ${SSID1}`]);

    // Other sessions (a connection request for a USP request) do not read.
    n = w.port.sent.length;
    await w.session(d, ['6 CONNECTION REQUEST']);
    assert.deepEqual(w.port.methods(d.deviceKey, n), []);
    w.port.assertExplicitNamesOnly();
  });

  it('a CPE that lists SetParameterAttributes but faults it 9000 teaches its model the same', async () => {
    const w = new World();
    const d = w.device('notifies', 'FAULT9000');
    w.port.faultFor = (rpc) =>
      rpc.method === 'SetParameterAttributes'
        ? { method: 'Fault', soapFaultCode: 'Server', faultCode: 9000, faultString: 'Method not supported', setParameterValuesFault: [] }
        : null;
    await w.subscribe(d, 'vc', SSID1);
    assert.deepEqual(w.port.methods(d.deviceKey), ['GPN Device.WiFi.SSID.1. true', `SPA ${SSID1}=2`, `GPV ${SSID1}`]);
    assert.equal((await w.iw.capabilities(d)).setParameterAttributes, 'no');
    const s = (await w.served(d)).vc!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /the CPE does not support SetParameterAttributes \(CWMP fault 9000 \(Method not supported\)\)/);
    assert.ok(w.logs.some((l) => l.msg === 'learned whether this device model supports SetParameterAttributes' && l.setParameterAttributes === 'no'));
  });

  it('a model known not to support it is not asked again; a partial path is watched as explicit names', async () => {
    const w = new World();
    const first = w.device('no-spa', 'NOSPA2');
    await w.subscribe(first, 'one', SSID1);
    const other = w.device('no-spa', 'NOSPA3');
    const n = w.port.sent.length;
    await w.subscribe(other, 'table-row', SSID2);
    const m = w.port.methods(other.deviceKey, n);
    assert.ok(!m.some((x) => x.startsWith('SPA')), m.join('\n'));
    assert.equal(m[0], `GPN ${SSID2} false`);
    assert.equal(m.length, 2, m.join('\n'));
    assert.match(m[1]!, /^GPV Device\.WiFi\.SSID\.2\.[A-Za-z]+(,Device\.WiFi\.SSID\.2\.[A-Za-z]+)+$/);
    const s = (await w.served(other))['table-row']!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /the device model does not support SetParameterAttributes/);
    assert.ok(s.parameters > 3);

    await w.cpeChange(other, 'Device.WiFi.SSID.2.SSID', 'guest-5g');
    await w.cpeChange(other, 'Device.WiFi.SSID.2.Enable', 'false');
    await w.periodic(other);
    assert.deepEqual(
      w.valueChanges().sort((a, b) => a.path.localeCompare(b.path)),
      [
        // Booleans as USP writes them, though the CPE sent "0".
        { id: 'table-row', path: 'Device.WiFi.SSID.2.Enable', value: 'false' },
        { id: 'table-row', path: 'Device.WiFi.SSID.2.SSID', value: 'guest-5g' },
      ],
    );
    w.port.assertExplicitNamesOnly();
  });

  it('a search expression watches its column; the change of the matching row is reported', async () => {
    const w = new World();
    const d = w.device('no-spa', 'NOSPA5');
    await w.subscribe(d, 'search', 'Device.WiFi.SSID.[Name=="wl1"].SSID');
    assert.equal((await w.served(d)).search!.parameters, 2);
    await w.cpeChange(d, 'Device.WiFi.SSID.2.SSID', 'by-search');
    await w.periodic(d);
    assert.deepEqual(w.valueChanges(), [{ id: 'search', path: 'Device.WiFi.SSID.2.SSID', value: 'by-search' }]);
    w.port.assertExplicitNamesOnly();
  });

  it('a TR-098 device: the Device:2 path is watched through the mapping on its native name', async () => {
    const w = new World();
    const d = w.device('no-spa', 'IGD1', 'InternetGatewayDevice');
    const native = 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID';
    await w.subscribe(d, 'vc098', SSID1);
    const s = (await w.served(d)).vc098!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.equal(s.parameters, 1);
    await w.cpeChange(d, native, 'igd-renamed');
    const n = w.port.sent.length;
    await w.periodic(d);
    assert.ok(w.port.methods(d.deviceKey, n).includes(`GPV ${native}`), w.port.methods(d.deviceKey, n).join('\n'));
    assert.deepEqual(w.valueChanges(), [{ id: 'vc098', path: SSID1, value: 'igd-renamed' }]);
    w.port.assertExplicitNamesOnly();
  });

  it('a secured parameter is compared but only ever reported as its secured value, and never stored', async () => {
    const w = new World();
    const d = w.device('no-spa', 'NOSPA4');
    await w.subscribe(d, 'psk', PASSPHRASE);
    await w.cpeChange(d, PASSPHRASE, 'hunter2-very-secret');
    await w.periodic(d);
    assert.deepEqual(w.valueChanges(), [{ id: 'psk', path: PASSPHRASE, value: '' }]);
    const stored = (await w.store.getLearned('watch', d.deviceKey)) ?? '';
    assert.ok(stored.includes(PASSPHRASE));
    assert.ok(!stored.includes('hunter2'), stored);
    assert.ok(!JSON.stringify(w.logs).includes('hunter2'));
  });
});

describe('ValueChange on a CPE that takes the attribute but never notifies (no-value-change)', () => {
  it('verifies in the periodic session, reports the change and then serves the subscription by comparison', async () => {
    const w = new World();
    const d = w.device('no-value-change', 'NOVC1');
    await w.subscribe(d, 'vc', SSID2);
    const m = w.port.methods(d.deviceKey);
    // Notification=2 on every explicit name of the row (never the partial path itself).
    assert.equal(m[0], `GPN ${SSID2} false`);
    assert.match(m[1]!, /^SPA (Device\.WiFi\.SSID\.2\.[A-Za-z]+=2,)+Device\.WiFi\.SSID\.2\.[A-Za-z]+=2$/);
    assert.match(m[2]!, /^GPV /);
    assert.equal(w.port.model(d.deviceKey).attr('Device.WiFi.SSID.2.SSID').notification, 2);
    assert.equal((await w.iw.capabilities(d)).setParameterAttributes, 'yes');
    assert.equal((await w.served(d)).vc!.servedBy, 'cpe-notification');

    await w.cpeChange(d, 'Device.WiFi.SSID.2.SSID', 'silent-rename');
    assert.deepEqual(w.valueChanges(), [], 'the CPE reported nothing');
    await w.periodic(d);
    assert.deepEqual(w.valueChanges(), [{ id: 'vc', path: 'Device.WiFi.SSID.2.SSID', value: 'silent-rename' }]);
    const s = (await w.served(d)).vc!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /did not send 4 VALUE CHANGE/);
    assert.deepEqual(w.servingLogs(), [
      { id: 'vc', servedBy: 'cpe-notification' },
      { id: 'vc', servedBy: 'periodic-compare' },
    ]);

    // From now on the change of another name of the row is found the same way.
    await w.cpeChange(d, 'Device.WiFi.SSID.2.Enable', 'false');
    await w.periodic(d);
    assert.deepEqual(w.valueChanges().at(-1), { id: 'vc', path: 'Device.WiFi.SSID.2.Enable', value: 'false' });
    w.port.assertExplicitNamesOnly();
  });
});

describe('ValueChange on a CPE that notifies', () => {
  it('is served by the CPE; once it has reported a change, the periodic sessions read nothing', async () => {
    const w = new World();
    const d = w.device('notifies', 'NOTIFY1');
    await w.subscribe(d, 'vc', SSID1);
    assert.equal((await w.served(d)).vc!.servedBy, 'cpe-notification');
    // Not yet shown to report: verified in the periodic session (one GPV).
    let n = w.port.sent.length;
    await w.periodic(d);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [`GPV ${SSID1}`]);
    assert.deepEqual(w.valueChanges(), []);

    await w.cpeChange(d, SSID1, 'new-name');
    assert.deepEqual(w.valueChanges(), [{ id: 'vc', path: SSID1, value: 'new-name' }]);
    n = w.port.sent.length;
    await w.periodic(d);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [], 'a CPE that reports is not read');
    assert.equal((await w.served(d)).vc!.servedBy, 'cpe-notification');
  });

  it('a forced parameter riding every Inform is a change only when its value moved (kept as hashes)', async () => {
    const w = new World();
    const d = w.device('notifies', 'FORCED1');
    const PC = 'Device.DeviceInfo.ProvisioningCode';
    const SV = 'Device.DeviceInfo.SoftwareVersion';
    await w.subscribe(d, 'vc-pc', PC);
    const forced = (pc: string, sv = '1.0') => [
      { name: PC, value: pc, type: 'xsd:string' },
      { name: SV, value: sv, type: 'xsd:string' },
    ];
    await w.session(d, ['2 PERIODIC'], forced('A'));
    await w.session(d, ['4 VALUE CHANGE'], [...forced('A'), { name: SSID1, value: 'x', type: 'xsd:string' }]);
    assert.deepEqual(w.valueChanges(), [], 'ProvisioningCode rode the Inform unchanged');
    await w.session(d, ['4 VALUE CHANGE'], forced('B'));
    assert.deepEqual(w.valueChanges(), [{ id: 'vc-pc', path: PC, value: 'B' }]);
    // Another forced parameter moving is not a change of this one.
    await w.session(d, ['4 VALUE CHANGE'], forced('B', '1.1'));
    assert.equal(w.valueChanges().length, 1, JSON.stringify(w.valueChanges()));
  });

  it('a change the proxy found first is not sent again when the CPE reports it late', async () => {
    const w = new World();
    const d = w.device('notifies', 'NOTIFY2');
    await w.subscribe(d, 'vc', SSID1);
    // The value changes during a periodic session, before the CPE's own session reports it.
    w.port.model(d.deviceKey).set(SSID1, 'raced');
    await w.periodic(d);
    assert.deepEqual(w.valueChanges(), [{ id: 'vc', path: SSID1, value: 'raced' }]);
    await w.session(d, ['4 VALUE CHANGE'], [{ name: SSID1, value: 'raced', type: 'xsd:string' }]);
    assert.equal(w.valueChanges().length, 1, JSON.stringify(w.valueChanges()));
    // The CPE did report it: the subscription is its again.
    assert.equal((await w.served(d)).vc!.servedBy, 'cpe-notification');
    await w.cpeChange(d, SSID1, 'next');
    assert.deepEqual(w.valueChanges().at(-1), { id: 'vc', path: SSID1, value: 'next' });
  });

  it('a name the CPE refuses active notification for is found by splitting the request, and compared', async () => {
    const w = new World();
    const d = w.device('notifies', 'NOTIFY3');
    // The simulator, as TR-181 CPEs do, refuses active notification of UpTime (9009).
    await w.subscribe(d, 'mixed', `${SSID1},Device.DeviceInfo.UpTime`);
    const spa = w.port.methods(d.deviceKey).filter((x) => x.startsWith('SPA'));
    assert.deepEqual(spa, [`SPA ${SSID1}=2,Device.DeviceInfo.UpTime=2`, `SPA ${SSID1}=2`, 'SPA Device.DeviceInfo.UpTime=2']);
    assert.equal(w.port.model(d.deviceKey).attr(SSID1).notification, 2);
    const s = (await w.served(d)).mixed!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /1 of 2 parameters not notified by the CPE \(the CPE refused active notification \(CWMP fault 9009/);
    assert.equal((await w.iw.capabilities(d)).setParameterAttributes, 'yes');
  });

  it('a factory reset (0 BOOTSTRAP) loses the attributes: they are set again in that session', async () => {
    const w = new World();
    const d = w.device('notifies', 'NOTIFY5');
    await w.subscribe(d, 'vc', SSID1);
    w.port.model(d.deviceKey).setAttr(SSID1, { notification: 0, accessList: [] });
    const n = w.port.sent.length;
    await w.session(d, ['0 BOOTSTRAP', '1 BOOT']);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [`SPA ${SSID1}=2`]);
    assert.ok(w.port.sent.slice(n).every((x) => x.inSession));
    assert.equal(w.port.model(d.deviceKey).attr(SSID1).notification, 2);
    await w.cpeChange(d, SSID1, 'after-reset');
    assert.deepEqual(w.valueChanges().at(-1), { id: 'vc', path: SSID1, value: 'after-reset' });
  });

  it('deleting the subscription sets Notification back to 0 for names no other subscription needs', async () => {
    const w = new World();
    const d = w.device('notifies', 'NOTIFY4');
    const a = await w.subscribe(d, 'a', `${SSID1},Device.WiFi.SSID.1.Enable`);
    await w.subscribe(d, 'b', 'Device.WiFi.SSID.1.Enable');
    const n = w.port.sent.length;
    await w.unsubscribe(d, a);
    assert.deepEqual(w.port.methods(d.deviceKey, n), [`SPA ${SSID1}=0`]);
    assert.equal(w.port.model(d.deviceKey).attr(SSID1).notification, 0);
    assert.equal(w.port.model(d.deviceKey).attr('Device.WiFi.SSID.1.Enable').notification, 2);
    assert.deepEqual(Object.keys(await w.served(d)), ['b']);
  });
});

describe('ValueChange by polling', () => {
  it('a subscription asked to be polled wakes the device every interval and reports the change', async () => {
    const w = new World({ poll: { enabled: true, minIntervalS: 1 } });
    const d = w.device('no-spa', 'POLL1');
    const inst = await w.subscribe(d, 'polled', SSID1);
    await assert.rejects(w.bridge.watch.setPollInterval(d, 99, 5), { status: 404 });
    const s = await w.bridge.watch.setPollInterval(d, inst, 1);
    assert.equal(s.servedBy, 'polling');
    assert.equal(s.pollIntervalS, 1);
    const n = w.port.sent.length;
    const notified = w.nextNotify((x) => x.valueChange?.paramValue === 'polled-value');
    w.port.model(d.deviceKey).set(SSID1, 'polled-value');
    const got = await notified;
    assert.equal(got.subscriptionId, 'polled');
    assert.deepEqual(got.valueChange, { paramPath: SSID1, paramValue: 'polled-value' });
    const polls = w.port.sent.slice(n).filter((x) => x.deviceKey === d.deviceKey);
    assert.ok(polls.length >= 1);
    assert.ok(
      polls.every((x) => x.rpc.method === 'GetParameterValues' && !x.inSession),
      'a poll wakes the device',
    );
    // Stopped on request: back to the periodic sessions.
    assert.equal((await w.bridge.watch.setPollInterval(d, inst, 0)).servedBy, 'periodic-compare');
    w.bridge.close();
  });

  it('polling is bounded: off unless enabled, an interval under the minimum is refused, and the fleet budget is kept', async () => {
    const off = new World();
    const d0 = off.device('no-spa', 'POLL2');
    const i0 = await off.subscribe(d0, 'p', SSID1);
    await assert.rejects(off.bridge.watch.setPollInterval(d0, i0, 60), { status: 409 });

    const w = new World({ poll: { enabled: true, minIntervalS: 30, intervalS: 60, maxParameters: 1 } });
    const a = w.device('no-spa', 'POLL3');
    const b = w.device('no-spa', 'POLL4');
    const ia = await w.subscribe(a, 'pa', SSID1);
    await assert.rejects(w.bridge.watch.setPollInterval(a, ia, 5), { status: 400 });
    // The configured interval applies to every subscription the CPE does not serve.
    assert.deepEqual([(await w.served(a)).pa!.servedBy, (await w.served(a)).pa!.pollIntervalS], ['polling', 60]);
    await w.subscribe(b, 'pb', SSID1);
    const sb = (await w.served(b)).pb!;
    assert.equal(sb.servedBy, 'periodic-compare');
    assert.match(sb.reason, /not polled: 1 parameters are polled already \(interworking\.valueChangePoll\.maxParameters\)/);
    w.bridge.close();
  });
});

describe('ValueChange watch state', () => {
  it('survives a restart: how each subscription is served and the last values, without asking the CPE again', async () => {
    const w = new World();
    const d = w.device('no-spa', 'RESTART1');
    await w.subscribe(d, 'kept', SSID1);
    const before = w.port.sent.length;
    const again = new World({ from: w });
    await again.restart();
    assert.equal((await again.served(d)).kept!.servedBy, 'periodic-compare');
    await again.cpeChange(d, SSID1, 'changed-while-restarting');
    await again.periodic(d);
    assert.deepEqual(again.valueChanges(), [{ id: 'kept', path: SSID1, value: 'changed-while-restarting' }]);
    assert.deepEqual(again.port.methods(d.deviceKey, before), [`GPV ${SSID1}`], 'no SetParameterAttributes, no baseline read');
  });

  it('polling resumes after a restart, before the device informs again', async () => {
    const w = new World({ poll: { enabled: true, intervalS: 1, minIntervalS: 1 } });
    const d = w.device('no-spa', 'RESTART2');
    await w.subscribe(d, 'polled', SSID1);
    assert.equal((await w.served(d)).polled!.servedBy, 'polling');
    w.bridge.close();
    const again = new World({ from: w, poll: { enabled: true, intervalS: 1, minIntervalS: 1 } });
    await again.restart();
    const notified = again.nextNotify((n) => n.valueChange?.paramValue === 'after-restart');
    again.port.model(d.deviceKey).set(SSID1, 'after-restart');
    assert.deepEqual((await notified).valueChange, { paramPath: SSID1, paramValue: 'after-restart' });
    again.bridge.close();
  });

  it('devices --json reads the same from the store alone', async () => {
    const w = new World();
    const d = w.device('no-spa', 'STORED1');
    await w.subscribe(d, 'vc', SSID1);
    const [learned] = await storedLearned(w.store, [d], 32);
    assert.equal(learned!.capabilities!.setParameterAttributes, 'no');
    assert.equal(learned!.capabilities!.partialPaths, 'no');
    assert.equal(learned!.capabilities!.gpvBatchSize, 32);
    assert.equal(learned!.capabilities!.failures, null);
    assert.deepEqual(
      learned!.valueChange.map((s) => [s.subscription, s.id, s.servedBy, s.parameters]),
      [['Device.LocalAgent.Subscription.1.', 'vc', 'periodic-compare', 1]],
    );
  });

  it('a subscription on names or objects the device does not have is no crash and no RPC storm', async () => {
    const w = new World();
    const d = w.device('notifies', 'ODD1');
    await w.subscribe(d, 'absent', 'Device.WiFi.SSID.1.NoSuchParameter,Device.NoSuchObject.');
    const s = (await w.served(d)).absent!;
    assert.equal(s.servedBy, 'periodic-compare');
    assert.match(s.reason, /no parameter of the ReferenceList exists on the device/);
    assert.deepEqual(s.parameters, 0);
    // The partial path is looked for again in the periodic sessions (GetParameterNames only).
    const n = w.port.sent.length;
    await w.periodic(d);
    assert.deepEqual(w.port.methods(d.deviceKey, n), ['GPN Device.NoSuchObject. false']);
    assert.equal(w.port.drops.length, 0, 'no partial path or unknown name ever reached the strict CPE');
  });
});

describe('the stored watch (bad input)', () => {
  it('a malformed or foreign document restores as an empty watch, field by field, and never yields a secured value', () => {
    for (const junk of [null, 42, 'x', [], { v: 2 }, { v: 1, subs: 'no', params: 7 }]) assert.ok(DeviceWatch.fromJSON(junk).empty, JSON.stringify(junk));
    const w = DeviceWatch.fromJSON({
      v: 1,
      subs: [{ i: 3, id: 'a', refs: [SSID1, 5], names: [SSID1], at: 1, by: 'bogus', since: 'x' }, { i: 'x' }, null],
      params: { [SSID1]: ['weird', 'v', 1, 'why', 'xsd:string'], [PASSPHRASE]: ['active', 'leaked', 0, '', ''], bad: 'x' },
      release: ['n', 7],
    });
    assert.deepEqual([...w.subs.keys()], [3]);
    const s = w.subs.get(3)!;
    assert.deepEqual([s.refs, s.servedBy, s.since], [[SSID1], 'periodic-compare', 0]);
    assert.equal(w.params.get(SSID1)!.notification, 'none');
    assert.equal(w.params.get(PASSPHRASE)!.last, undefined, 'a secured value in the store is not taken');
    assert.equal(w.params.has('bad'), false);
    assert.deepEqual([...w.release], ['n']);
  });

  it('round trip: states, last values and poll settings survive; secured values only as an in-memory digest', () => {
    const w = new DeviceWatch();
    w.subs.set(1, {
      instance: 1,
      id: 'x',
      recipient: 'Device.LocalAgent.Controller.1',
      refs: [SSID2],
      names: [`${SSID2}SSID`, PASSPHRASE],
      expandedAt: 5,
      partial: true,
      servedBy: 'polling',
      reason: 'r',
      since: 9,
      askedPollS: 60,
      pollS: 60,
    });
    w.reconcileParams();
    w.compare([
      { name: `${SSID2}SSID`, value: 'a', type: 'xsd:string' },
      { name: PASSPHRASE, value: 'secret-1', type: 'xsd:string' },
    ]);
    assert.deepEqual(w.compare([{ name: PASSPHRASE, value: 'secret-2', type: 'xsd:string' }]).changed.length, 1, 'a secured change is still seen');
    const json = JSON.stringify(w.toJSON());
    assert.ok(!json.includes('secret-'), json);
    const back = DeviceWatch.fromJSON(JSON.parse(json));
    assert.deepEqual(back.toJSON(), w.toJSON());
    assert.equal(back.params.get(`${SSID2}SSID`)!.last, 'a');
  });
});

describe('the poll budget', () => {
  it('counts parameters over devices; a device that does not fit is not polled, and a device re-granted counts once', () => {
    const ticks: string[] = [];
    const p = new PollScheduler(10, async (eid) => void ticks.push(eid));
    assert.equal(p.grant('a', 6, 3_600_000), true);
    assert.equal(p.grant('b', 5, 3_600_000), false);
    assert.equal(p.used, 6);
    assert.equal(p.grant('a', 4, 3_600_000), true, 'its own share is counted out');
    assert.equal(p.grant('b', 6, 3_600_000), true);
    assert.equal(p.used, 10);
    assert.equal(p.grant('a', 5, 3_600_000), false);
    assert.equal(p.used, 6, 'a device refused loses its previous share too');
    p.release('b');
    assert.equal(p.used, 0);
    p.close();
    assert.equal(p.grant('c', 1, 1000), false, 'closed');
    assert.deepEqual(ticks, []);
  });
});
