/**
 * One simulated CPE: its data model view, its answers to ACS RPCs, and its CWMP session
 * client (TR-069 3.7): Inform -> InformResponse -> own requests -> empty POST -> ACS RPCs
 * until HTTP 204. One session at a time; events that arrive meanwhile go in the next one.
 */
import { EventEmitter } from 'node:events';
import type {
  AcsRequest,
  CwmpMessage,
  CwmpVersion,
  DeviceIdStruct,
  EventStruct,
  Inform,
  ParameterValueStruct,
  SoapEnvelope,
  TransferComplete,
} from '../../cwmp/types.js';
import { CwmpFault } from '../../cwmp/types.js';
import { decodeSoap, detectCwmpVersion, encodeSoap, SoapError } from '../../cwmp/soap.js';
import { cwmpRetryDelayMs } from '../../util/backoff.js';
import { CpeHttpClient, type CpeAuth, type DigestState } from './http-client.js';
import { withEnvelopePrefix } from './envelope-prefix.js';
import { DeviceModel, lastSegment, type ModelTemplate } from './model.js';
import { type QuirkDrop, type QuirkOutcome, type Quirks, quirkOutcome } from './quirks.js';
import { dualStackTemplate, NativeAgent, nativeEndpointId } from './native-agent.js';
import { faultString, handleRpc, makeFault, SUPPORTED_METHODS, type PostAction, type RpcContext } from './rpc.js';

export interface SimTimers {
  /** Reboot / FactoryReset: time "off" before the boot Inform. Default 2000. */
  rebootDelayMs?: number;
  /** Download / Upload: transfer time (added to the request's DelaySeconds). Default 1000. */
  transferDelayMs?: number;
  /** Diagnostics run time before 8 DIAGNOSTICS COMPLETE. Default 1000. */
  diagnosticsDelayMs?: number;
  /** CWMPRetryMinimumWaitInterval for failed sessions (seconds, may be fractional). Default 5. */
  retryMinWaitS?: number;
  /** CWMPRetryIntervalMultiplier (thousandths). Default 2000. */
  retryMultiplier?: number;
  /** Per-HTTP-request timeout toward the ACS. Default 30000. */
  httpTimeoutMs?: number;
}

export const DEFAULT_TIMERS: Required<SimTimers> = {
  rebootDelayMs: 2000,
  transferDelayMs: 1000,
  diagnosticsDelayMs: 1000,
  retryMinWaitS: 5,
  retryMultiplier: 2000,
  httpTimeoutMs: 30000,
};

export interface SessionSummary {
  /** Event codes sent in the Inform. */
  events: string[];
  /** ACS methods received, in order. */
  rpcs: string[];
  ok: boolean;
  error?: string;
  durationMs: number;
}

export interface DeviceStats {
  sessions: number;
  sessionsOk: number;
  sessionsFailed: number;
  rpcsReceived: Record<string, number>;
  connectionRequests: number;
  /** Sessions ended by the device closing the connection instead of answering (quirks). */
  drops: number;
  /** HTTP bytes on the wire toward / from the ACS (headers included). */
  bytesSent: number;
  bytesReceived: number;
  lastSessionError?: string;
}

export interface TransferOptions {
  /** Fetch Download URLs (http/https) and PUT Upload URLs; errors and non-2xx give 9010/9011. Default true. */
  fetch?: boolean;
  /** Make every transfer fail with this fault code (e.g. 9010). */
  failWith?: number;
}

export interface SimDeviceOptions {
  template: ModelTemplate;
  serial: string;
  /** 0-based position in the fleet (used for per-device WAN address). */
  index?: number;
  acsUrl: string;
  auth?: CpeAuth;
  connectionRequestUrl?: string;
  connReqUsername?: string;
  connReqPassword?: string;
  /** undefined: the model's PeriodicInform*; null: no periodic timer; n: interval n seconds. */
  periodicIntervalS?: number | null;
  /** Send 0 BOOTSTRAP with the first boot. Default true. */
  bootstrap?: boolean;
  timers?: SimTimers;
  transfers?: TransferOptions;
  manufacturer?: string;
  oui?: string;
  productClass?: string;
  cwmpVersion?: CwmpVersion;
  /** Behaviours of stricter third-party CPE agents (quirks.ts); none by default. */
  quirks?: Quirks;
  /** Runs a session under a fleet-wide concurrency limit. */
  gate?: <T>(fn: () => Promise<T>) => Promise<T>;
  log?: (msg: string, extra?: object) => void;
}

interface PendingTransfer {
  msg: TransferComplete;
  event: EventStruct;
}

const passThrough = <T>(fn: () => Promise<T>): Promise<T> => fn();

/** The device closed the connection instead of answering (a quirk). */
class SessionDropped extends Error {
  constructor(readonly drop: QuirkDrop) {
    super(`device dropped the connection (${drop.reason})`);
  }
}

/** Forced Inform parameters (TR-069 3.7.1.3 / TR-098 / TR-181), per template. */
const forcedCache = new WeakMap<ModelTemplate, { forced: string[]; wan: string | null }>();

function forcedParams(tpl: ModelTemplate): { forced: string[]; wan: string | null } {
  let f = forcedCache.get(tpl);
  if (f) return f;
  const r = tpl.root;
  const names = [
    'DeviceSummary',
    'RootDataModelVersion',
    'DeviceInfo.HardwareVersion',
    'DeviceInfo.SoftwareVersion',
    'DeviceInfo.ProvisioningCode',
    'DeviceInfo.SpecVersion',
    'ManagementServer.ParameterKey',
    'ManagementServer.ConnectionRequestURL',
  ].map((n) => r + n);
  const forced = names.filter((n) => tpl.node(n) && !tpl.node(n)!.object);
  const wan = findWanParam(tpl);
  if (wan) forced.push(wan);
  f = { forced, wan };
  forcedCache.set(tpl, f);
  return f;
}

const PRIVATE_IP = /^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|0\.0\.0\.0|$)/;

function findWanParam(tpl: ModelTemplate): string | null {
  const cands: string[] = [];
  const re =
    tpl.root === 'InternetGatewayDevice.'
      ? /^InternetGatewayDevice\.WANDevice\.\d+\.WANConnectionDevice\.\d+\.WAN(IP|PPP)Connection\.\d+\.ExternalIPAddress$/
      : /^Device\.IP\.Interface\.\d+\.IPv4Address\.\d+\.IPAddress$/;
  for (const p of tpl.walk()) if (re.test(p)) cands.push(p);
  if (cands.length === 0) return null;
  return cands.find((p) => !PRIVATE_IP.test(tpl.node(p)!.value)) ?? cands[cands.length - 1];
}

/**
 * A simulated CPE. Emits 'session' (SessionSummary) after each session, and 'rpc' (the ACS
 * request, the QuirkOutcome-shaped outcome) for every ACS request it answers or drops.
 */
export class SimDevice extends EventEmitter {
  readonly serial: string;
  readonly deviceId: DeviceIdStruct;
  private crUrl: string;
  readonly model: DeviceModel;
  readonly stats: DeviceStats = {
    sessions: 0,
    sessionsOk: 0,
    sessionsFailed: 0,
    rpcsReceived: {},
    connectionRequests: 0,
    drops: 0,
    bytesSent: 0,
    bytesReceived: 0,
  };
  readonly quirks: Quirks;

  private readonly opts: SimDeviceOptions;
  private readonly timers: Required<SimTimers>;
  private readonly root: string;
  private events: EventStruct[] = [];
  private readonly changed = new Set<string>();
  private transfers: PendingTransfer[] = [];
  private retries = 0;
  private bootTime = Date.now();
  private running = false;
  private next: { promise: Promise<SessionSummary>; resolve: (s: SessionSummary) => void } | null = null;
  private client: CpeHttpClient | null = null;
  private readonly digest: { state: DigestState | null } = { state: null };
  private readonly handles = new Set<NodeJS.Timeout>();
  private retryTimer: NodeJS.Timeout | null = null;
  private periodicTimer: NodeJS.Timeout | null = null;
  private valueChangeTimer: NodeJS.Timeout | null = null;
  private postActions: PostAction[] = [];
  private stopped = false;
  /** True while "rebooting": connection requests are refused. */
  offline = false;
  /** The device's own USP Agent (quirk dual-stack), else null. */
  readonly native: NativeAgent | null = null;

  constructor(opts: SimDeviceOptions) {
    super();
    this.opts = opts;
    this.timers = { ...DEFAULT_TIMERS, ...stripUndefined(opts.timers ?? {}) };
    this.serial = opts.serial;
    this.quirks = opts.quirks ?? {};
    this.model = new DeviceModel(this.quirks.dualStack ? dualStackTemplate(opts.template) : opts.template);
    this.root = opts.template.root;
    const t = opts.template.deviceId;
    this.deviceId = {
      manufacturer: opts.manufacturer ?? t.manufacturer,
      oui: opts.oui ?? t.oui,
      productClass: opts.productClass ?? t.productClass,
      serialNumber: opts.serial,
    };
    this.crUrl = opts.connectionRequestUrl ?? '';
    this.applyIdentity();
    if (this.quirks.dualStack) {
      const native = new NativeAgent(this);
      native.on('warning', (w) => this.log('native agent', w));
      // The agent follows its settings after every session in which the ACS may have changed them.
      this.on('session', () => void native.reconcile(this.offline || this.stopped));
      this.native = native;
    }
  }

  /** Per-device values written over the template (again after a factory reset). */
  private applyIdentity(): void {
    const r = this.root;
    const o = this.opts;
    const put = (p: string, v: string | undefined): void => {
      if (v !== undefined && this.model.node(p) && !this.model.node(p)!.object) this.model.set(p, v);
    };
    put(r + 'DeviceInfo.SerialNumber', this.serial);
    put(r + 'DeviceInfo.ManufacturerOUI', this.deviceId.oui);
    put(r + 'DeviceInfo.ProductClass', this.deviceId.productClass);
    put(r + 'DeviceInfo.Manufacturer', this.deviceId.manufacturer);
    if (this.quirks.dualStack) put(r + 'LocalAgent.EndpointID', nativeEndpointId(this.deviceId.oui, this.serial));
    put(r + 'ManagementServer.URL', o.acsUrl);
    if (o.auth && o.auth.mode !== 'none') {
      put(r + 'ManagementServer.Username', o.auth.username);
      put(r + 'ManagementServer.Password', o.auth.password);
    }
    put(r + 'ManagementServer.ConnectionRequestURL', this.crUrl || undefined);
    put(r + 'ManagementServer.ConnectionRequestUsername', o.connReqUsername);
    put(r + 'ManagementServer.ConnectionRequestPassword', o.connReqPassword);
    if (typeof o.periodicIntervalS === 'number') {
      put(r + 'ManagementServer.PeriodicInformEnable', 'true');
      put(r + 'ManagementServer.PeriodicInformInterval', String(Math.max(1, Math.round(o.periodicIntervalS))));
    }
    const wan = forcedParams(this.opts.template).wan;
    if (wan && o.index !== undefined) {
      const i = o.index + 10;
      put(wan, `100.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`);
    }
  }

  // ---------------------------------------------------------------- public API

  /** ManagementServer.ConnectionRequestURL (known once the fleet's server listens). */
  get connectionRequestUrl(): string {
    return this.crUrl;
  }

  /** Sets the connection request URL (the fleet does this when its server has a port). */
  setConnectionRequestUrl(url: string): void {
    this.crUrl = url;
    const p = this.root + 'ManagementServer.ConnectionRequestURL';
    if (this.model.has(p)) this.model.set(p, url);
  }

  getValue(path: string): string | undefined {
    if (path === this.root + 'DeviceInfo.UpTime') return String(Math.floor((Date.now() - this.bootTime) / 1000));
    return this.model.get(path);
  }

  /**
   * Changes a value as the device itself would (not through the ACS): a parameter with
   * notification 1 (passive) goes in the next Inform with 4 VALUE CHANGE, with 2 (active)
   * a session starts right away (TR-069 3.2.1).
   */
  setValue(path: string, value: string): void {
    const n = this.model.node(path);
    if (!n || n.object) throw new Error(`no such parameter: ${path}`);
    const prev = this.getValue(path);
    this.model.set(path, value);
    if (prev === value || this.quirks.noValueChange) return;
    const notification = this.model.attr(path).notification;
    if (notification === 0) return;
    this.changed.add(path);
    if (notification === 2 && !this.valueChangeTimer) {
      // Coalesce a burst of changes into one session.
      this.valueChangeTimer = setTimeout(() => {
        this.valueChangeTimer = null;
        if (!this.stopped && !this.offline) void this.requestSession();
      }, 0);
    }
  }

  /** Runs one session now with these extra events (queued after the current one). */
  inform(events: string[] = []): Promise<SessionSummary> {
    for (const e of events) this.addEvent(e);
    return this.requestSession();
  }

  /** First start: 0 BOOTSTRAP (once per run, unless disabled) + 1 BOOT; starts the periodic timer. */
  boot(periodicJitter = true): Promise<SessionSummary> {
    this.bootTime = Date.now();
    if (this.opts.bootstrap !== false) this.addEvent('0 BOOTSTRAP');
    this.addEvent('1 BOOT');
    this.schedulePeriodic(periodicJitter);
    return this.requestSession();
  }

  /** A validated connection request (TR-069 3.2.2). False when the device cannot take it now. */
  connectionRequest(): boolean {
    if (this.stopped || this.offline) return false;
    this.stats.connectionRequests++;
    this.addEvent('6 CONNECTION REQUEST');
    void this.requestSession();
    return true;
  }

  /**
   * Answers one ACS request, or says to drop the connection instead (quirks). Also usable
   * directly, without any socket.
   */
  respond(msg: CwmpMessage | { method: string }): QuirkOutcome {
    this.stats.rpcsReceived[msg.method] = (this.stats.rpcsReceived[msg.method] ?? 0) + 1;
    const out = quirkOutcome(this.quirks, this.model, msg) ?? { answer: handleRpc(this.rpcContext, msg) };
    this.emit('rpc', msg, out);
    return out;
  }

  /** The answer to one ACS request; throws where a quirk would drop the connection instead. */
  handleRpc(msg: CwmpMessage | { method: string }): CwmpMessage {
    const out = this.respond(msg);
    if ('drop' in out) throw new SessionDropped(out.drop);
    return out.answer;
  }

  /** Actions the RPCs of the current session asked for (run when it ends). Exposed for tests. */
  takePostActions(): PostAction[] {
    const a = this.postActions;
    this.postActions = [];
    return a;
  }

  /** Runs post-session actions now (what the session loop does when a session ends). */
  runPostActions(): void {
    for (const a of this.takePostActions()) this.runPostAction(a);
  }

  /** Credentials the connection-request server checks. */
  /**
   * What the device authenticates to the ACS with: ManagementServer.Username/Password as they are
   * now (TR-069 3.4.4), so that an ACS setting them (per-device credentials) is obeyed from the
   * next session on.
   */
  get acsAuth(): CpeAuth {
    const a = this.opts.auth ?? { mode: 'none' as const, username: '', password: '' };
    if (a.mode === 'none') return a;
    return {
      ...a,
      username: this.model.get(this.root + 'ManagementServer.Username') ?? a.username,
      password: this.model.get(this.root + 'ManagementServer.Password') ?? a.password,
    };
  }

  get connReqCredentials(): { username: string; password: string } {
    return {
      username: this.model.get(this.root + 'ManagementServer.ConnectionRequestUsername') ?? '',
      password: this.model.get(this.root + 'ManagementServer.ConnectionRequestPassword') ?? '',
    };
  }

  get busy(): boolean {
    return this.running;
  }

  /** Stops timers and aborts any session in flight. */
  stop(): void {
    this.stopped = true;
    for (const h of this.handles) clearTimeout(h);
    this.handles.clear();
    for (const t of [this.retryTimer, this.periodicTimer, this.valueChangeTimer]) if (t) clearTimeout(t);
    this.retryTimer = this.periodicTimer = this.valueChangeTimer = null;
    this.client?.close();
    void this.native?.stop();
  }

  /** Bumps counters with notification on (uptime-like values), as a live device would. */
  tick(): void {
    for (const [p] of this.model.notifiedParams()) {
      const n = this.model.node(p)!;
      if (!/int|long/i.test(n.type) || !/Bytes|Packets|Count|Time|Uptime|Errors/.test(lastSegment(p))) continue;
      const cur = BigInt(this.getValue(p) || '0');
      this.setValue(p, String(cur + BigInt(1 + Math.floor(Math.random() * 1000))));
    }
  }

  // ---------------------------------------------------------------- events and scheduling

  private addEvent(code: string, commandKey = ''): void {
    // Single events (0-8) appear once; M events once per CommandKey (TR-069 3.7.1.5).
    if (this.events.some((e) => e.eventCode === code && e.commandKey === commandKey)) return;
    if (/^\d /.test(code) && this.events.some((e) => e.eventCode === code)) return;
    this.events.push({ eventCode: code, commandKey });
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const h = setTimeout(() => {
      this.handles.delete(h);
      if (!this.stopped) fn();
    }, ms);
    this.handles.add(h);
  }

  private requestSession(): Promise<SessionSummary> {
    if (this.next) return this.next.promise;
    let resolve!: (s: SessionSummary) => void;
    const promise = new Promise<SessionSummary>((r) => (resolve = r));
    this.next = { promise, resolve };
    if (!this.running) void this.drain();
    return promise;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.next) {
        const n = this.next;
        if (this.stopped) {
          this.next = null;
          n.resolve({ events: [], rpcs: [], ok: false, error: 'device stopped', durationMs: 0 });
          continue;
        }
        // Leave `next` set while waiting for the gate so requests made meanwhile join it.
        const gate = this.opts.gate ?? passThrough;
        const summary = await gate(() => {
          if (this.next === n) this.next = null;
          return this.runSession();
        });
        if (this.next === n) this.next = null;
        n.resolve(summary);
        this.emit('session', summary);
      }
    } finally {
      this.running = false;
    }
  }

  private schedulePeriodic(jitter: boolean): void {
    if (this.periodicTimer) clearTimeout(this.periodicTimer);
    this.periodicTimer = null;
    if (this.stopped || this.opts.periodicIntervalS === null) return;
    const enabled = this.model.get(this.root + 'ManagementServer.PeriodicInformEnable') === 'true';
    const interval = Number(this.model.get(this.root + 'ManagementServer.PeriodicInformInterval') ?? 0);
    if (!enabled || !(interval > 0)) return;
    const ms = interval * 1000;
    // Fleet-wide jitter on the first period so a thousand devices do not fire together.
    const first = jitter ? Math.floor(Math.random() * ms) : ms;
    const fire = (): void => {
      this.periodicTimer = setTimeout(fire, ms);
      if (!this.offline) void this.inform(['2 PERIODIC']);
    };
    this.periodicTimer = setTimeout(fire, first);
  }

  // ---------------------------------------------------------------- the session

  private get rpcContext(): RpcContext {
    return { model: this.model, get: (p) => this.getValue(p), post: (a) => this.postActions.push(a) };
  }

  private buildInform(events: EventStruct[], changed: string[]): Inform {
    const params: ParameterValueStruct[] = [];
    const seen = new Set<string>();
    const add = (p: string): void => {
      if (seen.has(p)) return;
      const n = this.model.node(p);
      if (!n || n.object) return;
      seen.add(p);
      params.push({ name: p, value: this.getValue(p) ?? '', type: n.type || 'xsd:string' });
    };
    for (const p of forcedParams(this.opts.template).forced) add(p);
    for (const p of changed) add(p);
    return {
      method: 'Inform',
      deviceId: this.deviceId,
      event: events,
      maxEnvelopes: 1,
      currentTime: new Date().toISOString(),
      retryCount: this.retries,
      parameterList: params,
    };
  }

  private async runSession(): Promise<SessionSummary> {
    const t0 = Date.now();
    if (this.stopped) return { events: [], rpcs: [], ok: false, error: 'device stopped', durationMs: 0 };
    this.stats.sessions++;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const changed = [...this.changed];
    // Events move out of the queue for this session; events arriving meanwhile go in the next one.
    const taken = this.events;
    this.events = [];
    let delivered = false;
    const events = [...taken];
    if (changed.length > 0 && !events.some((e) => e.eventCode === '4 VALUE CHANGE')) events.push({ eventCode: '4 VALUE CHANGE', commandKey: '' });
    const transfers = [...this.transfers];
    if (transfers.length > 0) {
      events.push({ eventCode: '7 TRANSFER COMPLETE', commandKey: '' });
      for (const t of transfers) if (!events.some((e) => e.eventCode === t.event.eventCode && e.commandKey === t.event.commandKey)) events.push(t.event);
    }
    const rpcs: string[] = [];
    const version = this.opts.cwmpVersion ?? '1-0';
    const auth: CpeAuth = this.acsAuth;
    const q = this.quirks;
    const client = new CpeHttpClient(this.opts.acsUrl, auth, this.digest, this.timers.httpTimeoutMs, {
      cookies: !q.noCookies,
      http10: q.http10,
      delayMs: q.slowMs,
      onBytes: (sent, received) => {
        this.stats.bytesSent += sent;
        this.stats.bytesReceived += received;
      },
    });
    this.client = client;
    let idSeq = 0;
    const newId = (): string => `${this.serial}-${this.stats.sessions}-${++idSeq}`;
    const encode = (env: SoapEnvelope): string => (q.soapPrefix === undefined ? encodeSoap(env) : withEnvelopePrefix(encodeSoap(env), q.soapPrefix));
    const exchange = async (env: SoapEnvelope | null): Promise<AcsEnvelope | null> => {
      const res = await client.post(env ? encode(env) : '');
      if (res.status === 204 || (res.status === 200 && res.body.trim() === '')) return null;
      if (res.status !== 200) throw new Error(`ACS answered HTTP ${res.status}`);
      return decodeAcs(res.body);
    };
    let error: string | undefined;
    let dropped: QuirkDrop | undefined;
    try {
      let env = await exchange({ cwmpVersion: version, id: newId(), body: this.buildInform(events, changed) });
      if (!env) throw new Error('ACS ended the session without an InformResponse');
      if (env.body.method === 'Fault' && !env.refused) throw new Error(`ACS answered the Inform with fault ${env.body.faultCode} ${env.body.faultString}`);
      if (env.body.method !== 'InformResponse') throw new Error(`expected InformResponse, got ${env.body.method}`);
      // Delivered: these events and value changes are done (TR-069 3.7.1.5).
      delivered = true;
      for (const p of changed) this.changed.delete(p);
      let hold = !!env.holdRequests;
      // Our own requests (TransferComplete), unless the ACS holds them (cwmp:HoldRequests).
      while (!hold && this.transfers.length > 0) {
        const t = this.transfers[0];
        env = await exchange({ cwmpVersion: version, id: newId(), body: t.msg });
        if (!env) throw new Error('ACS ended the session without a TransferCompleteResponse');
        if (env.body.method === 'TransferCompleteResponse') {
          this.transfers.shift();
          hold = !!env.holdRequests;
        } else if (env.body.method === 'Fault' && !env.refused) {
          this.log('ACS faulted TransferComplete; will retry next session', { code: env.body.faultCode });
          break;
        } else {
          throw new Error(`expected TransferCompleteResponse, got ${env.body.method}`);
        }
      }
      // Empty POST: the ACS may now send its requests, one per response, until 204.
      env = await exchange(null);
      while (env) {
        const method = env.body.method;
        let answer: CwmpMessage;
        if (isAcsRequest(env.body)) {
          rpcs.push(method);
          const out = this.respond(env.body);
          if ('drop' in out) throw new SessionDropped(out.drop);
          answer = out.answer;
        } else if (env.refused) {
          rpcs.push(env.refused);
          this.stats.rpcsReceived[env.refused] = (this.stats.rpcsReceived[env.refused] ?? 0) + 1;
          answer = env.body;
        } else {
          // A response or fault where a request was expected: nothing to answer; keep going.
          this.log('unexpected message from ACS', { method });
          env = await exchange(null);
          continue;
        }
        env = await exchange({ cwmpVersion: env.cwmpVersion, id: env.id, body: answer });
      }
    } catch (e) {
      error = (e as Error).message;
      if (e instanceof SessionDropped) {
        dropped = e.drop;
        this.stats.drops++;
      }
      if (!delivered || dropped?.retry) {
        // Undelivered events are kept for the retry (TR-069 3.2.1.1). A CPE that dropped the
        // connection keeps the session's events and value changes too: such agents clear them
        // only when a session ends with HTTP 204.
        const later = this.events;
        this.events = taken;
        for (const e of later) this.addEvent(e.eventCode, e.commandKey);
        if (delivered) for (const p of changed) this.changed.add(p);
      }
    } finally {
      client.close();
      if (this.client === client) this.client = null;
    }
    const ok = error === undefined;
    if (ok) {
      this.retries = 0;
      this.stats.sessionsOk++;
    } else {
      this.stats.sessionsFailed++;
      this.stats.lastSessionError = error;
      // drop-on: silent until the next periodic Inform or connection request.
      if (dropped && !dropped.retry) this.log('dropped the connection; silent until the next Inform', { reason: dropped.reason });
      else if (!this.stopped) {
        this.retries++;
        const delay = cwmpRetryDelayMs(this.retries, { minWaitS: this.timers.retryMinWaitS, multiplier: this.timers.retryMultiplier });
        this.log('session failed; retrying', { error, retry: this.retries, delayMs: delay });
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          if (!this.stopped && !this.offline) void this.requestSession();
        }, delay);
      }
    }
    // What the ACS asked for happens after the session (the CPE acknowledged it either way).
    this.runPostActions();
    return { events: events.map((e) => e.eventCode), rpcs, ok, error, durationMs: Date.now() - t0 };
  }

  private log(msg: string, extra: object = {}): void {
    this.opts.log?.(msg, { serial: this.serial, ...extra });
  }

  // ---------------------------------------------------------------- after-session actions

  private runPostAction(a: PostAction): void {
    switch (a.kind) {
      case 'reboot':
        this.rebootThen(() => {
          this.addEvent('1 BOOT');
          this.addEvent('M Reboot', a.commandKey);
        });
        break;
      case 'factoryReset':
        this.rebootThen(() => {
          this.model.reset();
          this.applyIdentity();
          this.changed.clear();
          this.transfers = [];
          this.events = [];
          this.digest.state = null;
          this.addEvent('0 BOOTSTRAP');
          this.addEvent('1 BOOT');
        });
        break;
      case 'scheduleInform':
        this.later(a.delaySeconds * 1000, () => {
          this.addEvent('3 SCHEDULED');
          this.addEvent('M ScheduleInform', a.commandKey);
          void this.requestSession();
        });
        break;
      case 'periodicChanged':
        this.schedulePeriodic(false);
        break;
      case 'diagnostics':
        this.later(this.timers.diagnosticsDelayMs, () => {
          this.completeDiagnostics(a.object);
          this.addEvent('8 DIAGNOSTICS COMPLETE');
          void this.requestSession();
        });
        break;
      case 'download':
      case 'upload':
        this.later(a.req.delaySeconds * 1000 + this.timers.transferDelayMs, () => void this.transfer(a));
        break;
    }
  }

  private rebootThen(onBoot: () => void): void {
    this.offline = true;
    void this.native?.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.periodicTimer) clearTimeout(this.periodicTimer);
    this.periodicTimer = null;
    this.later(this.timers.rebootDelayMs, () => {
      this.offline = false;
      this.bootTime = Date.now();
      onBoot();
      this.schedulePeriodic(true);
      void this.requestSession();
    });
  }

  private async transfer(a: Extract<PostAction, { kind: 'download' | 'upload' }>): Promise<void> {
    const isDownload = a.kind === 'download';
    const req = a.req;
    let fault = { faultCode: 0, faultString: '' };
    const failCode = isDownload ? CwmpFault.DownloadFailure : CwmpFault.UploadFailure;
    const t = this.opts.transfers ?? {};
    if (t.failWith) {
      fault = { faultCode: t.failWith, faultString: faultString(t.failWith) };
    } else if (t.fetch !== false && /^https?:\/\//i.test(req.url)) {
      try {
        const headers: Record<string, string> = {};
        if (req.username) headers.Authorization = 'Basic ' + Buffer.from(`${req.username}:${req.password}`).toString('base64');
        const res = await fetch(req.url, {
          method: isDownload ? 'GET' : 'PUT',
          headers,
          body: isDownload ? undefined : this.configDump(),
          signal: AbortSignal.timeout(this.timers.httpTimeoutMs),
        });
        await res.arrayBuffer();
        if (res.status === 401 || res.status === 403)
          fault = { faultCode: CwmpFault.FileTransferAuthFailure, faultString: faultString(CwmpFault.FileTransferAuthFailure) };
        else if (!res.ok) fault = { faultCode: failCode, faultString: `${faultString(failCode)}: HTTP ${res.status}` };
      } catch (e) {
        fault = { faultCode: failCode, faultString: `${faultString(failCode)}: ${(e as Error).message}` };
      }
    }
    if (this.stopped) return;
    const complete = (): void => {
      this.transfers.push({
        msg: { method: 'TransferComplete', commandKey: req.commandKey, fault, startTime: a.startTime, completeTime: new Date().toISOString() },
        event: { eventCode: isDownload ? 'M Download' : 'M Upload', commandKey: req.commandKey },
      });
      void this.requestSession();
    };
    if (a.kind === 'download' && fault.faultCode === 0 && a.req.fileType.startsWith('1 ')) {
      // A firmware image: install it and boot into it (1 BOOT with the TransferComplete).
      const sw = this.root + 'DeviceInfo.SoftwareVersion';
      this.model.set(sw, nextVersion(this.model.get(sw) ?? '', a.req.targetFileName || a.req.url));
      this.rebootThen(() => {
        this.addEvent('1 BOOT');
        complete();
      });
    } else {
      complete();
    }
  }

  private configDump(): string {
    const lines: string[] = [];
    for (const p of this.model.walk(this.root)) if (!p.endsWith('.')) lines.push(`${p}=${this.getValue(p) ?? ''}`);
    return lines.join('\n') + '\n';
  }

  /** Fills plausible results into a diagnostics object (IPPing, TraceRoute, others). */
  private completeDiagnostics(obj: string): void {
    const m = this.model;
    const has = (n: string): boolean => m.has(obj + n);
    const set = (n: string, v: string | number): void => {
      if (has(n)) m.set(obj + n, String(v));
    };
    const host = m.get(obj + 'Host') ?? '';
    if (has('Host') && (host === '' || /invalid|unresolvable/i.test(host))) {
      set('DiagnosticsState', 'Error_CannotResolveHostName');
      return;
    }
    const rtt = (): number => 5 + Math.floor(Math.random() * 25);
    if (has('NumberOfRepetitions')) {
      const n = Math.max(1, Number(m.get(obj + 'NumberOfRepetitions') ?? 1) || 1);
      const times = Array.from({ length: n }, rtt);
      const avg = Math.round(times.reduce((s, x) => s + x, 0) / n);
      set('SuccessCount', n);
      set('FailureCount', 0);
      set('AverageResponseTime', avg);
      set('MinimumResponseTime', Math.min(...times));
      set('MaximumResponseTime', Math.max(...times));
      set('AverageResponseTimeDetailed', avg * 1000);
      set('MinimumResponseTimeDetailed', Math.min(...times) * 1000);
      set('MaximumResponseTimeDetailed', Math.max(...times) * 1000);
      set('IPAddressUsed', this.getValue(forcedParams(this.opts.template).wan ?? '') ?? '');
    }
    const hopsTable = obj + 'RouteHops.';
    if (m.isTable(hopsTable) || has('MaxHopCount')) {
      if (m.has(hopsTable)) {
        for (const i of m.instances(hopsTable)) m.deleteInstance(`${hopsTable}${i}.`);
        const hops = ['100.64.0.1', '198.51.100.1', /^\d+\.\d+\.\d+\.\d+$/.test(host) ? host : '203.0.113.10'];
        for (const [k, addr] of hops.entries()) {
          const i = m.addInstance(hopsTable);
          const inst = `${hopsTable}${i}.`;
          const fields: Array<[string, string, string]> = [
            ['Host', k === hops.length - 1 ? host : addr, 'xsd:string'],
            ['HostAddress', addr, 'xsd:string'],
            ['ErrorCode', '0', 'xsd:unsignedInt'],
            ['RTTimes', [rtt(), rtt(), rtt()].join(','), 'xsd:string'],
          ];
          for (const [name, v, type] of fields) {
            if (m.has(inst + name)) m.set(inst + name, v);
            else m.defineParam(inst + name, v, type);
          }
        }
        m.updateCount(hopsTable);
      }
      set('ResponseTime', rtt() * 3);
    }
    set('DiagnosticsState', 'Complete');
  }
}

/** "1.0.0" -> "1.0.1"; a version in the file name ("fw-2.1.0.bin") wins. */
function nextVersion(cur: string, file: string): string {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const fromFile = /(\d+\.\d+(?:\.\d+)*)/.exec(base);
  if (fromFile && fromFile[1] !== cur) return fromFile[1];
  const m = /^(.*?)(\d+)(\D*)$/.exec(cur);
  return m ? `${m[1]}${Number(m[2]) + 1}${m[3]}` : `${cur}-1`;
}

/** The ACS RPCs a CPE answers (TR-069 A.3.2). */
const ACS_METHODS: ReadonlySet<string> = new Set<string>(SUPPORTED_METHODS);

function isAcsRequest(m: CwmpMessage): m is AcsRequest {
  return ACS_METHODS.has(m.method);
}

/** An ACS envelope; `refused`: a request the codec could not take, whose body is the Fault to answer with. */
type AcsEnvelope = SoapEnvelope & { refused?: string };

/**
 * Decodes an ACS envelope. A request the codec cannot take comes back refused, with the Fault to
 * answer as its body: 9000 for an unknown method, 9003 for a known one with bad arguments.
 */
function decodeAcs(xml: string): AcsEnvelope | null {
  try {
    return decodeSoap(xml).envelope;
  } catch (e) {
    if (!(e instanceof SoapError) || !e.method) throw e;
    const unknown = e.code === 'unsupported-method';
    if (!unknown && !(e.code === 'invalid-message' && ACS_METHODS.has(e.method))) throw e;
    const fault = unknown
      ? makeFault(CwmpFault.MethodNotSupported, `Method not supported: ${e.method}`)
      : makeFault(CwmpFault.InvalidArguments, `Invalid arguments: ${e.message}`);
    return { cwmpVersion: e.cwmpVersion ?? detectCwmpVersion(xml) ?? '1-0', id: e.id ?? null, body: fault, refused: e.method };
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
