/**
 * The dual-stack simulator (quirk `dual-stack`): a TR-181 CPE that has its own USP Agent beside
 * its CWMP client, as recent gateways do. The agent's settings live in the CWMP data model
 * (TR-181 Device.LocalAgent., Device.MQTT.Client.{i}.); when the ACS sets them and enables the
 * agent, the device starts a native USP Agent over MQTT (TR-369 "MQTT Binding") built on the
 * project's own USP codec and MQTT MTP. It answers Get and Set on the same parameter store
 * the CWMP side shows, under its own Endpoint ID (Device.LocalAgent.EndpointID).
 */
import { EventEmitter } from 'node:events';
import {
  connectRecord,
  decodeMsg,
  decodeRecord,
  encodeRecord,
  errorMsg,
  type GetRequestedPathResult,
  type Msg,
  noSessionRecord,
  type UpdatedObjectResult,
} from '../../usp/codec/record.js';
import { MqttMtp } from '../../usp/mtp/mqtt.js';
import type { InboundRecord } from '../../usp/mtp/types.js';
import type { DeviceModel, ModelRow, ModelTemplate } from './model.js';

const LA = 'Device.LocalAgent.';
const CLIENT = 'Device.MQTT.Client.1.';
const CTRL = `${LA}Controller.1.`;
const AGENT_MTP = `${LA}MTP.1.`;

const row = (name: string, value: string, type = 'xsd:string', writable = true): ModelRow => ({
  name,
  object: false,
  writable,
  value,
  type,
  notification: 0,
  accessList: [],
});
const obj = (name: string, writable = false): ModelRow => ({ name, object: true, writable, value: '', type: '', notification: 0, accessList: [] });

/**
 * The TR-181 objects of a device's own USP Agent (Device:2.15 LocalAgent, MQTT.Client), shaped
 * like the TP-Link EX220 dump: one MQTT client, one agent MTP and one controller, all disabled
 * until an ACS configures them.
 */
export const DUAL_STACK_ROWS: readonly ModelRow[] = [
  obj(LA),
  row(`${LA}EndpointID`, '', 'xsd:string', false),
  row(`${LA}SupportedProtocols`, 'MQTT', 'xsd:string', false),
  row(`${LA}MTPNumberOfEntries`, '1', 'xsd:unsignedInt', false),
  row(`${LA}ControllerNumberOfEntries`, '1', 'xsd:unsignedInt', false),
  obj(`${LA}MTP.`, true),
  obj(AGENT_MTP, true),
  row(`${AGENT_MTP}Alias`, 'cpe-1'),
  row(`${AGENT_MTP}Enable`, 'false', 'xsd:boolean'),
  row(`${AGENT_MTP}Protocol`, 'MQTT'),
  obj(`${AGENT_MTP}MQTT.`),
  row(`${AGENT_MTP}MQTT.Reference`, CLIENT),
  row(`${AGENT_MTP}MQTT.ResponseTopicConfigured`, ''),
  obj(`${LA}Controller.`, true),
  obj(CTRL, true),
  row(`${CTRL}Alias`, 'cpe-1'),
  row(`${CTRL}Enable`, 'false', 'xsd:boolean'),
  row(`${CTRL}EndpointID`, ''),
  row(`${CTRL}MTPNumberOfEntries`, '1', 'xsd:unsignedInt', false),
  obj(`${CTRL}MTP.`, true),
  obj(`${CTRL}MTP.1.`, true),
  row(`${CTRL}MTP.1.Enable`, 'true', 'xsd:boolean'),
  row(`${CTRL}MTP.1.Protocol`, 'MQTT'),
  obj(`${CTRL}MTP.1.MQTT.`),
  row(`${CTRL}MTP.1.MQTT.Reference`, CLIENT),
  row(`${CTRL}MTP.1.MQTT.Topic`, ''),
  obj('Device.MQTT.'),
  row('Device.MQTT.ClientNumberOfEntries', '1', 'xsd:unsignedInt', false),
  obj('Device.MQTT.Client.', true),
  obj(CLIENT, true),
  row(`${CLIENT}Alias`, 'cpe-1'),
  row(`${CLIENT}Enable`, 'false', 'xsd:boolean'),
  row(`${CLIENT}Status`, 'Disabled', 'xsd:string', false),
  row(`${CLIENT}BrokerAddress`, ''),
  row(`${CLIENT}BrokerPort`, '1883', 'xsd:unsignedInt'),
  row(`${CLIENT}TransportProtocol`, 'TCP/IP'),
  row(`${CLIENT}ProtocolVersion`, '5.0'),
  row(`${CLIENT}ClientID`, ''),
  row(`${CLIENT}Username`, ''),
  row(`${CLIENT}Password`, ''),
  row(`${CLIENT}KeepAliveTime`, '60', 'xsd:unsignedInt'),
  row(`${CLIENT}ConnectRetryTime`, '1', 'xsd:unsignedInt'),
  row(`${CLIENT}ConnectRetryMaxInterval`, '30', 'xsd:unsignedInt'),
];

const templates = new WeakMap<ModelTemplate, ModelTemplate>();

/** The template with the USP Agent objects added (a TR-181 model that has them is kept as it is). */
export function dualStackTemplate(tpl: ModelTemplate): ModelTemplate {
  if (tpl.root !== 'Device.') throw new Error('quirk dual-stack needs a TR-181 (Device.) model');
  if (tpl.node(`${LA}EndpointID`) && tpl.node(`${CLIENT}BrokerAddress`)) return tpl;
  let t = templates.get(tpl);
  if (!t) {
    t = tpl.withRows(DUAL_STACK_ROWS);
    templates.set(tpl, t);
  }
  return t;
}

/** TR-369 "Endpoint Identifier": the OUI-serial authority scheme `os::<OUI>-<serial>`. */
export function nativeEndpointId(oui: string, serial: string): string {
  return `os::${oui}-${serial}`;
}

/** What the native agent runs with, read from the data model; `null` with a reason while it should not run. */
export interface NativeAgentSettings {
  endpointId: string;
  url: string;
  protocolVersion: 5 | 4;
  clientId: string;
  username: string;
  password: string;
  keepaliveS: number;
  retryS: number;
  retryMaxS: number;
  agentTopic: string;
  controllerEid: string;
  controllerTopic: string;
}

/** Reads the settings (pure over `get`). The agent runs when the client, the agent MTP and the controller are enabled and complete. */
export function readNativeSettings(get: (p: string) => string | undefined): NativeAgentSettings | { off: string } {
  const on = (p: string): boolean => get(p) === 'true' || get(p) === '1';
  if (!on(`${CLIENT}Enable`)) return { off: 'Device.MQTT.Client.1.Enable is false' };
  if (!on(`${AGENT_MTP}Enable`)) return { off: 'Device.LocalAgent.MTP.1.Enable is false' };
  if (!on(`${CTRL}Enable`)) return { off: 'Device.LocalAgent.Controller.1.Enable is false' };
  const host = get(`${CLIENT}BrokerAddress`) ?? '';
  const eid = get(`${LA}EndpointID`) ?? '';
  const controllerEid = get(`${CTRL}EndpointID`) ?? '';
  const controllerTopic = get(`${CTRL}MTP.1.MQTT.Topic`) ?? '';
  if (!host || !eid || !controllerEid || !controllerTopic) return { off: 'broker address, EndpointID, controller EndpointID or topic is empty' };
  const tls = /TLS/i.test(get(`${CLIENT}TransportProtocol`) ?? '');
  const port = Number(get(`${CLIENT}BrokerPort`) ?? 1883) || 1883;
  const num = (p: string, d: number): number => {
    const n = Number(get(p));
    return Number.isFinite(n) && n > 0 ? n : d;
  };
  return {
    endpointId: eid,
    url: `${tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    protocolVersion: (get(`${CLIENT}ProtocolVersion`) ?? '5.0').startsWith('5') ? 5 : 4,
    clientId: get(`${CLIENT}ClientID`) ?? '',
    username: get(`${CLIENT}Username`) ?? '',
    password: get(`${CLIENT}Password`) ?? '',
    keepaliveS: num(`${CLIENT}KeepAliveTime`, 60),
    retryS: num(`${CLIENT}ConnectRetryTime`, 1),
    retryMaxS: num(`${CLIENT}ConnectRetryMaxInterval`, 30),
    agentTopic: get(`${AGENT_MTP}MQTT.ResponseTopicConfigured`) || `/usp/agent/${eid}`,
    controllerEid,
    controllerTopic,
  };
}

/** The parameter store both stacks share: the simulated device. */
export interface NativeStore {
  readonly model: DeviceModel;
  getValue(path: string): string | undefined;
  /** A change made by the device itself (CWMP sees it, with its notification attribute). */
  setValue(path: string, value: string): void;
}

/** Parameters whose values a USP Agent never reads back (TR-181 "secured" passwords and keys). */
const SECURED = /(Password|Passphrase|PreSharedKey|WEPKey)$/;

/** Paths of `pattern` (a full or partial path, `*` for any instance) among the device's paths. */
function resolve(store: NativeStore, pattern: string): string[] {
  const root = store.model.root;
  if (!pattern.startsWith(root)) return [];
  if (!pattern.includes('*')) {
    if (!store.model.has(pattern)) return [];
    return pattern.endsWith('.') ? [...store.model.walk(pattern)].filter((p) => !p.endsWith('.')) : [pattern];
  }
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\\\.\*\\\./g, '\\.\\d+\\.')}${pattern.endsWith('.') ? '' : '$'}`);
  return [...store.model.walk(root)].filter((p) => !p.endsWith('.') && re.test(p));
}

const parentOf = (p: string): string => p.slice(0, p.lastIndexOf('.') + 1);

/** The GetResp of one Get (TR-369 "Get"): values grouped by their object, secured ones empty. */
export function answerGet(store: NativeStore, paths: readonly string[], disagree: ReadonlySet<string> = new Set()): GetRequestedPathResult[] {
  return paths.map((requestedPath) => {
    const found = resolve(store, requestedPath);
    if (found.length === 0 && !requestedPath.includes('*'))
      return { requestedPath, errCode: 7026, errMsg: `invalid path: ${requestedPath} does not exist`, resolvedPathResults: [] };
    const byObj = new Map<string, Record<string, string>>();
    for (const p of found) {
      const o = parentOf(p);
      const params = byObj.get(o) ?? {};
      const v = SECURED.test(p) ? '' : (store.getValue(p) ?? '');
      params[p.slice(o.length)] = disagree.has(p) ? `${v}+native` : v;
      byObj.set(o, params);
    }
    return { requestedPath, errCode: 0, errMsg: '', resolvedPathResults: [...byObj].map(([resolvedPath, resultParams]) => ({ resolvedPath, resultParams })) };
  });
}

/** The SetResp of one Set, or an Error Msg when allow_partial is false and something failed (TR-369 "Set"). */
export function answerSet(store: NativeStore, msg: Msg): Msg {
  const req = msg.body.request?.set;
  const allowPartial = req?.allowPartial ?? false;
  const results: UpdatedObjectResult[] = [];
  const errs: { paramPath: string; errCode: number; errMsg: string }[] = [];
  const plans: { obj: string; writes: [string, string][] }[] = [];
  for (const u of req?.updateObjs ?? []) {
    const objPath = u.objPath ?? '';
    const own: typeof errs = [];
    const node = store.model.node(objPath);
    if (!node?.object) own.push({ paramPath: objPath, errCode: 7026, errMsg: `invalid path: ${objPath} is not an object` });
    const writes: [string, string][] = [];
    for (const s of u.paramSettings) {
      const p = objPath + (s.param ?? '');
      const n = store.model.node(p);
      if (!n || n.object) own.push({ paramPath: p, errCode: 7026, errMsg: `invalid path: ${p}` });
      else if (!n.writable) own.push({ paramPath: p, errCode: 7200, errMsg: `${p} is not writable` });
      else writes.push([p, s.value ?? '']);
    }
    if (own.length > 0) {
      errs.push(...own);
      results.push({
        requestedPath: objPath,
        operStatus: { operStatus: 'operFailure', operFailure: { errCode: 7000, errMsg: own[0].errMsg, updatedInstFailures: [] } },
      });
    } else {
      plans.push({ obj: objPath, writes });
      results.push({ requestedPath: objPath });
    }
  }
  if (!allowPartial && errs.length > 0) return errorMsg(msg.header.msgId, 7004, `set failed: ${errs[0].errMsg}`, errs);
  for (const plan of plans) {
    for (const [p, v] of plan.writes) store.setValue(p, v);
    const r = results.find((x) => x.requestedPath === plan.obj && !x.operStatus)!;
    const updatedParams = Object.fromEntries(plan.writes.map(([p, v]) => [p.slice(plan.obj.length), v]));
    r.operStatus = { operStatus: 'operSuccess', operSuccess: { updatedInstResults: [{ affectedPath: plan.obj, paramErrs: [], updatedParams }] } };
  }
  return {
    header: { msgId: msg.header.msgId, msgType: 'SET_RESP' },
    body: { msgBody: 'response', response: { respType: 'setResp', setResp: { updatedObjResults: results } } },
  };
}

export interface NativeAgentEvents {
  /** The agent connected to its broker and sent its Connect Record and Boot!. */
  up: [{ endpointId: string; url: string }];
  down: [{ reason: string }];
  /** A request answered: its type and the controller. */
  request: [{ msgType: string; from: string }];
  warning: [{ message: string }];
}

/**
 * The device's native agent, supervised: `reconcile()` reads the settings and starts, restarts
 * (the settings changed) or stops the agent. The simulated device calls it after every CWMP
 * session, and stops it while it is off (reboot).
 */
export class NativeAgent extends EventEmitter<NativeAgentEvents> {
  private mtp: MqttMtp | null = null;
  private running: NativeAgentSettings | null = null;
  private key = '';
  private chain: Promise<void> = Promise.resolve();
  /** The MQTT connection is up and the Boot! went out. */
  connected = false;
  /**
   * Parameters this agent reports differently from the CWMP side (value + "+native"): a fault
   * injected by tests, as a native agent whose data model disagrees with its CWMP client's.
   */
  readonly disagree = new Set<string>();

  constructor(private readonly store: NativeStore) {
    super();
  }

  /** The settings the agent runs with now (null: stopped). */
  get settings(): NativeAgentSettings | null {
    return this.running;
  }

  /** Applies the data model's settings (serialised: a burst of sessions restarts the agent once per change). */
  reconcile(offline = false): Promise<void> {
    this.chain = this.chain.then(() => this.apply(offline)).catch((e: Error) => void this.emit('warning', { message: e.message }));
    return this.chain;
  }

  stop(): Promise<void> {
    return this.reconcile(true);
  }

  private async apply(offline: boolean): Promise<void> {
    const s = offline ? { off: 'device off' } : readNativeSettings((p) => this.store.getValue(p));
    const key = 'off' in s ? '' : JSON.stringify(s);
    if (key === this.key) return;
    await this.halt('off' in s ? s.off : 'settings changed');
    this.key = key;
    if ('off' in s) return;
    this.running = s;
    const mtp = new MqttMtp({
      url: s.url,
      protocolVersion: s.protocolVersion,
      clientId: s.clientId || undefined,
      username: s.username || undefined,
      password: s.password || undefined,
      keepaliveS: s.keepaliveS,
      agentTopic: s.agentTopic,
      connectEndpointId: s.endpointId,
      maxRecordBytes: 1024 * 1024,
      backoff: { baseMs: s.retryS * 1000, maxMs: s.retryMaxS * 1000 },
      connectTimeoutMs: 5000,
    });
    this.mtp = mtp;
    mtp.on('warning', (w) => this.emit('warning', { message: w.message }));
    mtp.on('channelOpen', () => void this.announce(mtp, s));
    mtp.on('channelClose', () => this.setStatus(mtp, 'Disconnected'));
    mtp.on('record', (r) => void this.onRecord(mtp, s, r));
    this.setStatus(mtp, 'Connecting');
    await mtp.start();
  }

  private setStatus(mtp: MqttMtp, status: string): void {
    if (this.mtp !== mtp) return;
    this.connected = status === 'Connected';
    this.store.model.set(`${CLIENT}Status`, status);
  }

  private async halt(reason: string): Promise<void> {
    const m = this.mtp;
    if (!m) return;
    this.mtp = null;
    this.running = null;
    this.connected = false;
    this.store.model.set(`${CLIENT}Status`, 'Disabled');
    await m.stop();
    this.emit('down', { reason });
  }

  /** R-MTP.6: the MQTTConnect Record first, then Boot! (TR-181 Device.Boot!) to the controller. */
  private async announce(mtp: MqttMtp, s: NativeAgentSettings): Promise<void> {
    const dest = { mtp: 'mqtt' as const, address: s.controllerTopic };
    try {
      await mtp.send(
        s.endpointId,
        dest,
        encodeRecord(
          connectRecord('mqtt', s.endpointId, s.controllerEid, { subscribedTopic: mtp.replyTopic, version: s.protocolVersion === 5 ? 'V5' : 'V3_1_1' }),
        ),
      );
      const boot: Msg = {
        header: { msgId: `boot-${Date.now()}`, msgType: 'NOTIFY' },
        body: {
          msgBody: 'request',
          request: {
            reqType: 'notify',
            notify: {
              subscriptionId: '',
              sendResp: false,
              notification: 'event',
              event: { objPath: 'Device.', eventName: 'Boot!', params: { CommandKey: '', Cause: 'LocalReboot', FirmwareUpdated: 'false', ParameterMap: '{}' } },
            },
          },
        },
      };
      await mtp.send(s.endpointId, dest, encodeRecord(noSessionRecord(s.endpointId, s.controllerEid, boot)));
      this.setStatus(mtp, 'Connected');
      this.emit('up', { endpointId: s.endpointId, url: s.url });
    } catch (e) {
      this.emit('warning', { message: `announce failed: ${(e as Error).message}` });
    }
  }

  private async onRecord(mtp: MqttMtp, s: NativeAgentSettings, r: InboundRecord): Promise<void> {
    let reply: Msg | null;
    let from: string;
    try {
      const rec = decodeRecord(r.bytes);
      if (rec.toId !== s.endpointId || rec.recordType.kind !== 'noSessionContext') return;
      from = rec.fromId;
      const msg = decodeMsg(rec.recordType.payload);
      reply = this.answer(s, from, msg);
    } catch (e) {
      this.emit('warning', { message: `bad Record dropped: ${(e as Error).message}` });
      return;
    }
    if (!reply) return;
    const dest = r.replyTo ?? { mtp: 'mqtt' as const, address: s.controllerTopic };
    await mtp
      .send(s.endpointId, dest, encodeRecord(noSessionRecord(s.endpointId, from, reply)))
      .catch((e: Error) => this.emit('warning', { message: e.message }));
  }

  private answer(s: NativeAgentSettings, from: string, msg: Msg): Msg | null {
    if (msg.body.msgBody !== 'request') return null;
    const req = msg.body.request;
    this.emit('request', { msgType: msg.header.msgType, from });
    // Only the configured controller (Device.LocalAgent.Controller.1.EndpointID) is trusted; others hold no rights (TR-369 "Special Roles").
    if (from !== s.controllerEid) return errorMsg(msg.header.msgId, 7006, `permission denied: ${from} is not a controller of this agent`);
    if (req?.reqType === 'get')
      return {
        header: { msgId: msg.header.msgId, msgType: 'GET_RESP' },
        body: {
          msgBody: 'response',
          response: { respType: 'getResp', getResp: { reqPathResults: answerGet(this.store, req.get?.paramPaths ?? [], this.disagree) } },
        },
      };
    if (req?.reqType === 'set') return answerSet(this.store, msg);
    return errorMsg(msg.header.msgId, 7001, `${req?.reqType ?? 'this message'} is not supported by the simulated native agent (Get and Set only)`);
  }
}
