/**
 * One proxied agent per simulated CPE, built as src/app/proxy.ts builds it but without sockets:
 * the real config loader (with Controller Trust roles), LocalAgent, the Interworking layer (a
 * Device:2 CPE and a TR-098 CPE behind the mapping), DmRouter, Notifier and EventBridge. The
 * CPEs are the in-repo simulator's RPC logic on the bundled models; the Notifier's endpoint
 * records every Notify. Requests and responses go through encodeMsg/decodeMsg.
 */
import { loadConfig, type Config } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import type { Inform } from '../../src/cwmp/types.js';
import { EventBridge } from '../../src/interworking/events.js';
import { Interworking } from '../../src/interworking/index.js';
import { loadDefaultMapping } from '../../src/mapping/load.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import type { DeviceRecord } from '../../src/store/types.js';
import { DeviceModel, loadModel } from '../../src/tools/sim/model.js';
import { parseQuirks } from '../../src/tools/sim/quirks.js';
import { SimPort } from './sim-port.js';
import { LocalAgent, SUPPORTED_USP_VERSIONS } from '../../src/usp/agent/local-agent.js';
import { LOCAL_AGENT_PREFIXES } from '../../src/usp/agent/local-agent-schema.js';
import { Notifier } from '../../src/usp/agent/notify.js';
import { decodeMsg, encodeMsg, type Msg, type MsgType, type Notify, type Request } from '../../src/usp/codec/record.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { getLimits } from '../../src/usp/handlers/context.js';
import { type HandlerContext, handle } from '../../src/usp/handlers/index.js';

export const OPERATOR = 'proto::operator';
export const VIEWER = 'proto::viewer';
export const APP = 'proto::wifi-app';
/** Configured, but with no Role: it holds the UntrustedRole. */
export const NOBODY = 'proto::no-role';

/** The end-user Wi-Fi Role of docs/controller-trust.md, and one more Permission hiding the BSSIDs. */
export const WIFI_ROLE = {
  name: 'end-user-wifi',
  permissions: [
    { order: 1, targets: ['Device.WiFi.'], param: 'r--n', obj: 'r--n', instantiatedObj: 'r--n', commandEvent: 'r---' },
    { order: 2, targets: ['Device.WiFi.SSID.*.SSID', 'Device.WiFi.AccessPoint.*.Security.KeyPassphrase'], param: 'rw-n' },
    { order: 3, targets: ['Device.LocalAgent.Subscription.'], param: 'rw-n', obj: 'rw-n', instantiatedObj: 'rw-n' },
    { order: 4, targets: ['Device.WiFi.SSID.*.BSSID'], param: '----' },
  ],
};

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

export function request<K extends NonNullable<Request['reqType']>>(reqType: K, body: NonNullable<Request[K]>): Msg {
  return { header: { msgId: `trust-${++seq}`, msgType: REQ_TYPE[reqType] }, body: { msgBody: 'request', request: { reqType, [reqType]: body } as Request } };
}

export const wire = (m: Msg): Msg => decodeMsg(encodeMsg(m));

export interface SentNotify {
  controllerEid: string;
  notify: Notify;
}

export class TrustWorld {
  readonly config: Config;
  readonly store: SqliteStore;
  /** The simulated CPE behind the agent (strict profile: explicit names only). */
  readonly port = new SimPort(parseQuirks('explicit-names-only'));
  readonly iw: Interworking;
  readonly localAgent: LocalAgent;
  readonly router: DmRouter;
  readonly notifier: Notifier;
  readonly events: EventBridge;
  readonly sent: SentNotify[] = [];
  readonly device: DeviceRecord;
  readonly sim: DeviceModel;

  /** root 'Device': a TR-181 CPE; 'InternetGatewayDevice': a TR-098 CPE seen through the mapping. */
  constructor(
    readonly root: DeviceRecord['rootModel'],
    opts: { untrustedRole?: string; roles?: unknown[]; usp?: Record<string, unknown> } = {},
  ) {
    this.config = loadConfig({
      env: {},
      overrides: {
        'log.level': 'silent',
        'controllerTrust.roles': opts.roles ?? [WIFI_ROLE],
        'controllerTrust.untrustedRole': opts.untrustedRole ?? '',
        ...Object.fromEntries(Object.entries(opts.usp ?? {}).map(([k, v]) => [`usp.${k}`, v])),
        controllers: [
          { endpointId: OPERATOR, role: 'full' },
          { endpointId: VIEWER, role: 'read-only' },
          { endpointId: APP, role: 'end-user-wifi' },
          { endpointId: NOBODY, role: '' },
        ],
      },
    });
    this.store = openSqliteStore(':memory:');
    const log = silentLogger();
    this.iw = new Interworking(
      { port: this.port, store: this.store, rules: loadDefaultMapping(), log },
      { operationTimeoutMs: 5_000, excludedPrefixes: LOCAL_AGENT_PREFIXES },
    );
    this.localAgent = new LocalAgent(this.config, this.store, '1.0');
    this.router = new DmRouter([this.localAgent.model, this.iw.backend]);
    this.notifier = new Notifier({
      localAgent: this.localAgent,
      router: this.router,
      endpoint: {
        sendToController: async (_agentEid, controllerEid, msg) => {
          const notify = wire(msg).body.request?.notify;
          if (notify) this.sent.push({ controllerEid, notify });
          return true;
        },
      },
      usp: this.config.usp,
      log,
    });
    const objectChange = (e: { kind: 'add' | 'delete'; agentEid: string; path: string; uniqueKeys: Record<string, string> }) =>
      e.kind === 'add' ? this.notifier.objectCreation(e.agentEid, e.path, e.uniqueKeys) : this.notifier.objectDeletion(e.agentEid, e.path);
    this.iw.device2.on('objectChange', objectChange);
    this.iw.tr098.on('objectChange', objectChange);
    const byEid = (eid: string) => this.store.getDeviceByEndpointId(eid);
    this.events = new EventBridge(
      {
        localAgent: this.localAgent,
        notifier: this.notifier,
        controllers: () => this.config.controllers.map((c) => c.endpointId),
        deviceByEndpointId: byEid,
        readValues: (d, names) => this.iw.readValues(d, names),
        mapped: { valueChanges: (d, params) => this.iw.tr098.uspValueChanges(d, params), toNative: (d, paths) => this.iw.tr098.nativePaths(d, paths) },
        access: (d) => this.iw.open(d),
        saveModel: (m) => this.iw.knowledge.saveModel(m),
        store: this.store,
        log,
      },
      { excludedPrefixes: LOCAL_AGENT_PREFIXES, poll: this.config.interworking.valueChangePoll },
    );
    const pc = root === 'Device' ? 'SimGW' : 'SimIGD';
    const serial = root === 'Device' ? 'TRUST181' : 'TRUST098';
    this.device = {
      deviceKey: `F0AD4E-${pc}-${serial}`,
      endpointId: `os::F0AD4E-${serial}`,
      deviceId: { manufacturer: 'CWMP-USP-Proxy Simulator', oui: 'F0AD4E', productClass: pc, serialNumber: serial },
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
    this.sim = new DeviceModel(loadModel(root === 'Device' ? 'tr181' : 'tr098'));
    this.port.devices.set(this.device.deviceKey, this.sim);
  }

  async start(): Promise<this> {
    await this.store.upsertDevice(this.device);
    return this;
  }

  /** A native parameter name of the CPE for a Device:2 one ("Device." or "InternetGatewayDevice." models). */
  native(path: string): string {
    if (this.root === 'Device') return path;
    const map: Record<string, string> = {
      'Device.WiFi.SSID.1.SSID': 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID',
      'Device.WiFi.SSID.1.BSSID': 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.BSSID',
      'Device.WiFi.SSID.1.Enable': 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Enable',
      'Device.WiFi.AccessPoint.1.Security.KeyPassphrase': 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase',
      'Device.ManagementServer.Password': 'InternetGatewayDevice.ManagementServer.Password',
      'Device.ManagementServer.ConnectionRequestPassword': 'InternetGatewayDevice.ManagementServer.ConnectionRequestPassword',
      'Device.DeviceInfo.SerialNumber': 'InternetGatewayDevice.DeviceInfo.SerialNumber',
    };
    const n = map[path];
    if (!n) throw new Error(`no native name known for ${path}`);
    return n;
  }

  ctx(controllerEid: string, trusted = true): HandlerContext {
    return {
      agentEid: this.device.endpointId,
      controllerEid,
      trusted,
      router: this.router,
      localAgent: this.localAgent,
      versions: SUPPORTED_USP_VERSIONS,
      limits: getLimits(this.config.usp),
      operationComplete: (a, n, p) => this.notifier.operationComplete(a, n, p),
      notifyResp: (a, c, id) => this.notifier.acknowledged(a, c, id),
    };
  }

  /** A request as a controller; the response as the controller decodes it. */
  async ask(controllerEid: string, msg: Msg, trusted = true): Promise<Msg> {
    const r = await handle(this.ctx(controllerEid, trusted), wire(msg));
    if (!r) throw new Error('no response');
    return wire(r);
  }

  /** The CPE reports a value change (a "4 VALUE CHANGE" Inform carrying it), as the ACS hands it on. */
  valueChangeInform(nativeName: string, value: string): void {
    this.sim.set(nativeName, value);
    const inform: Inform = {
      method: 'Inform',
      deviceId: this.device.deviceId,
      event: [{ eventCode: '4 VALUE CHANGE', commandKey: '' }],
      maxEnvelopes: 1,
      currentTime: new Date().toISOString(),
      retryCount: 0,
      parameterList: [{ name: nativeName, value, type: 'xsd:string' }],
    };
    this.events.inform(this.device, inform);
  }

  /** Waits until the device's value-watch work (set-up, reported changes) is done. */
  async idle(): Promise<void> {
    await this.events.idle(this.device.endpointId);
    await settle();
  }

  /** Notify Msgs sent to a controller so far. */
  notifiesTo(controllerEid: string): Notify[] {
    return this.sent.filter((s) => s.controllerEid === controllerEid).map((s) => s.notify);
  }

  close(): void {
    this.notifier.stop();
    this.localAgent.close();
  }
}

/** Lets queued promise callbacks (mapping, Notify sends) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
