/**
 * Prometheus metrics (prom-client) and the small in-memory history the admin API's summary
 * shows (per-minute rings for the last hour, recent errors). Everything attaches to the proxy
 * from the outside: engine events, and wrappers around a few instance methods
 * (engine.enqueue, connReq.request, the MTPs' send and the endpoint's record entry). Each
 * Proxy gets its own Registry so tests can run several proxies in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CwmpUspProxy } from '../app/proxy.js';
import type { ConnReqResult } from '../cwmp/connreq.js';
import { RpcError, type RpcOutcome } from '../cwmp/session.js';
import type { AcsRequest } from '../cwmp/types.js';
import type { DeviceRecord } from '../store/types.js';
import type { InboundRecord, MtpDestination } from '../usp/mtp/types.js';
import { decodeMsg, decodeRecord } from '../usp/codec/record.js';

const MINUTES = 60;
const MAX_ERRORS = 50;

/** Counts per minute for the last hour; values() is oldest first, the current minute last. */
export class MinuteRing {
  private readonly slots = new Array<number>(MINUTES).fill(0);
  private minute = Math.floor(Date.now() / 60_000);

  constructor(private readonly now: () => number = Date.now) {
    this.minute = Math.floor(now() / 60_000);
  }

  add(n = 1): void {
    this.advance();
    this.slots[this.minute % MINUTES]! += n;
  }

  values(): number[] {
    this.advance();
    const out: number[] = [];
    for (let i = MINUTES - 1; i >= 0; i--) out.push(this.slots[(this.minute - i) % MINUTES]!);
    return out;
  }

  private advance(): void {
    const m = Math.floor(this.now() / 60_000);
    if (m <= this.minute) return;
    for (let k = this.minute + 1; k <= Math.min(m, this.minute + MINUTES); k++) this.slots[k % MINUTES] = 0;
    this.minute = m;
  }
}

export interface RecentError {
  time: string;
  message: string;
}

/** What the summary needs per device, kept in memory (filled from the store, then from Informs). */
export interface DeviceInfo {
  rootModel: string;
  productClass: string;
  lastInformMs: number | null;
  periodicInformInterval: number | null;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly sessions: Counter<'outcome'>;
  readonly informs: Counter<'event'>;
  readonly rpcs: Counter<'method' | 'outcome'>;
  readonly rpcDuration: Histogram<'method'>;
  readonly connectionRequests: Counter<'outcome'>;
  readonly uspRecords: Counter<'mtp' | 'direction' | 'type'>;
  readonly uspDropped: Counter<'mtp'>;
  readonly translation: Histogram<'msg_type'>;
  readonly queueDepth: Gauge;
  readonly controllersConnected: Gauge<'mtp'>;
  readonly mtpUp: Gauge<'mtp'>;
  readonly devices: Gauge<'root_model'>;
  readonly activeSessions: Gauge;

  readonly informsPerMinute = new MinuteRing();
  readonly uspRequestsPerMinute = new MinuteRing();
  private readonly errors: RecentError[] = [];
  /** deviceKey -> what the summary and the devices gauge need. */
  readonly deviceIndex = new Map<string, DeviceInfo>();
  /** Sources for the gauges, set by instrument(). */
  sources: {
    queueDepth?: () => number;
    activeSessions?: () => number;
    mtps?: () => { mtp: string; connected: boolean; controllers: number }[];
  } = {};

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.sessions = new Counter({
      name: 'cwmp_sessions_total',
      help: 'CWMP sessions ended, by outcome (completed, timeout, superseded, shutdown, other)',
      labelNames: ['outcome'],
      registers,
    });
    this.informs = new Counter({
      name: 'cwmp_informs_total',
      help: 'Informs received, by event code (one per event in the Inform)',
      labelNames: ['event'],
      registers,
    });
    this.rpcs = new Counter({
      name: 'cwmp_rpcs_total',
      help: 'ACS RPCs finished, by method and outcome (success, fault, unreachable, session-timeout, ...)',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.rpcDuration = new Histogram({
      name: 'cwmp_rpc_duration_seconds',
      help: 'Time from enqueueing an ACS RPC to its response or fault (including the connection request and the wait for a session)',
      labelNames: ['method'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.connectionRequests = new Counter({
      name: 'cwmp_connection_requests_total',
      help: 'Connection requests (with retries) by outcome: ok or the failure reason',
      labelNames: ['outcome'],
      registers,
    });
    this.uspRecords = new Counter({
      name: 'usp_records_total',
      help: 'USP Records by MTP, direction (in/out) and type (the Msg type, or the Record type when it carries no Msg)',
      labelNames: ['mtp', 'direction', 'type'],
      registers,
    });
    this.uspDropped = new Counter({
      name: 'usp_records_dropped_total',
      help: 'Inbound USP Records dropped (unknown controller, wrong to_id, undecodable)',
      labelNames: ['mtp'],
      registers,
    });
    this.translation = new Histogram({
      name: 'usp_translation_duration_seconds',
      help: 'Time from receiving a USP request Record to having answered it (translation and the CWMP round trips it needs)',
      labelNames: ['msg_type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const self = this;
    this.queueDepth = new Gauge({
      name: 'cwmp_queue_depth',
      help: 'ACS RPCs queued or in flight, all devices',
      registers,
      collect() {
        const f = self.sources.queueDepth;
        if (f) this.set(f());
      },
    });
    this.activeSessions = new Gauge({
      name: 'cwmp_active_sessions',
      help: 'CWMP sessions open now',
      registers,
      collect() {
        const f = self.sources.activeSessions;
        if (f) this.set(f());
      },
    });
    this.controllersConnected = new Gauge({
      name: 'usp_controllers_connected',
      help: 'Controllers reachable per MTP (WebSocket: open connections; MQTT/STOMP: configured controllers while the broker connection is up)',
      labelNames: ['mtp'],
      registers,
      collect() {
        for (const m of self.sources.mtps?.() ?? []) this.set({ mtp: m.mtp }, m.connected ? m.controllers : 0);
      },
    });
    this.mtpUp = new Gauge({
      name: 'usp_mtp_up',
      help: '1 when the MTP is connected (broker) or listening (WebSocket)',
      labelNames: ['mtp'],
      registers,
      collect() {
        for (const m of self.sources.mtps?.() ?? []) this.set({ mtp: m.mtp }, m.connected ? 1 : 0);
      },
    });
    this.devices = new Gauge({
      name: 'devices',
      help: 'Registered CWMP devices by data model root',
      labelNames: ['root_model'],
      registers,
      collect() {
        this.reset();
        const counts: Record<string, number> = { Device: 0, InternetGatewayDevice: 0 };
        for (const d of self.deviceIndex.values()) counts[d.rootModel] = (counts[d.rootModel] ?? 0) + 1;
        for (const [root, n] of Object.entries(counts)) this.set({ root_model: root }, n);
      },
    });
  }

  error(message: string): void {
    this.errors.push({ time: new Date().toISOString(), message });
    if (this.errors.length > MAX_ERRORS) this.errors.splice(0, this.errors.length - MAX_ERRORS);
  }

  /** The last 50 errors, newest first. */
  recentErrors(): RecentError[] {
    return [...this.errors].reverse();
  }

  noteDevice(d: DeviceRecord): void {
    this.deviceIndex.set(d.deviceKey, {
      rootModel: d.rootModel,
      productClass: d.deviceId.productClass,
      lastInformMs: d.lastInform ? Date.parse(d.lastInform) : null,
      periodicInformInterval: d.periodicInformInterval,
    });
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): ProxyMetrics {
  return new ProxyMetrics(opts);
}

function sessionOutcome(reason: string): string {
  if (reason === 'done') return 'completed';
  if (reason === 'timeout' || reason === 'shutdown') return reason;
  if (reason.startsWith('superseded')) return 'superseded';
  return 'other';
}

/** The Msg type of a Record (or its Record type when it carries no Msg); never throws. */
function recordLabel(bytes: Uint8Array): { type: string; msgType: string | null } {
  try {
    const rec = decodeRecord(bytes);
    if (rec.recordType.kind !== 'noSessionContext') return { type: rec.recordType.kind, msgType: null };
    const msg = decodeMsg(rec.recordType.payload);
    return { type: msg.header.msgType, msgType: msg.header.msgType };
  } catch {
    return { type: 'undecodable', msgType: null };
  }
}

const REQUEST_TYPES = new Set(['GET', 'SET', 'ADD', 'DELETE', 'OPERATE', 'GET_SUPPORTED_DM', 'GET_INSTANCES', 'GET_SUPPORTED_PROTO', 'NOTIFY_RESP']);

export interface Instrumentation {
  /** Resolves when the device index has been loaded from the store. */
  ready: Promise<void>;
  /** Removes listeners and restores wrapped methods. */
  detach(): void;
}

/**
 * Attaches the metrics to a proxy (call before or after proxy.start(); before is better, so
 * restored RPCs and the first records are counted). Idempotent per proxy is not guaranteed:
 * call once.
 */
export function instrument(proxy: CwmpUspProxy, m: ProxyMetrics): Instrumentation {
  const undo: Array<() => void> = [];
  const engine = proxy.engine;

  // Sessions and Informs.
  const onInform = ({ device, inform }: { device: DeviceRecord; inform: { event: { eventCode: string }[] } }): void => {
    for (const e of inform.event) m.informs.inc({ event: e.eventCode });
    if (inform.event.length === 0) m.informs.inc({ event: 'none' });
    m.informsPerMinute.add();
    m.deviceIndex.set(device.deviceKey, {
      rootModel: device.rootModel,
      productClass: device.deviceId.productClass,
      lastInformMs: Date.now(),
      periodicInformInterval: device.periodicInformInterval,
    });
  };
  const onSessionEnd = ({ reason }: { reason: string }): void => m.sessions.inc({ outcome: sessionOutcome(reason) });
  engine.on('inform', onInform);
  engine.on('sessionEnd', onSessionEnd);
  undo.push(() => {
    engine.off('inform', onInform);
    engine.off('sessionEnd', onSessionEnd);
  });

  // RPCs: time every enqueue by method and outcome.
  let pending = 0;
  const enqueue = engine.enqueue;
  engine.enqueue = async function (this: typeof engine, deviceKey: string, rpc: AcsRequest, opts?: Parameters<typeof enqueue>[2]): Promise<RpcOutcome> {
    const end = m.rpcDuration.startTimer({ method: rpc.method });
    pending++;
    try {
      const out = await enqueue.call(engine, deviceKey, rpc, opts);
      end();
      m.rpcs.inc({ method: rpc.method, outcome: out.kind === 'fault' ? 'fault' : 'success' });
      if (out.kind === 'fault') m.error(`${rpc.method} on ${deviceKey}: cwmp Fault ${out.fault.faultCode} ${out.fault.faultString}`);
      return out;
    } catch (e) {
      const reason = e instanceof RpcError ? e.reason : 'error';
      m.rpcs.inc({ method: rpc.method, outcome: reason });
      if (reason !== 'cancelled') m.error(`${rpc.method} on ${deviceKey} failed (${reason}): ${(e as Error).message}`);
      throw e;
    } finally {
      pending--;
    }
  };
  undo.push(() => {
    engine.enqueue = enqueue;
  });

  // Connection requests.
  const connReq = proxy.connReq;
  const request = connReq.request;
  connReq.request = async (deviceKey, url, creds): Promise<ConnReqResult> => {
    const r = await request.call(connReq, deviceKey, url, creds);
    m.connectionRequests.inc({ outcome: r.ok ? 'ok' : r.reason });
    if (!r.ok && r.reason !== 'cancelled') m.error(`connection request to ${deviceKey} failed (${r.reason}): ${r.detail}`);
    return r;
  };
  undo.push(() => {
    connReq.request = request;
  });

  // USP Records out: every MTP's send.
  for (const mtp of proxy.usp.mtps) {
    const send = mtp.send;
    mtp.send = async (from: string, dest: MtpDestination, bytes: Uint8Array): Promise<void> => {
      await send.call(mtp, from, dest, bytes);
      m.uspRecords.inc({ mtp: mtp.kind, direction: 'out', type: recordLabel(bytes).type });
    };
    undo.push(() => {
      mtp.send = send;
    });
  }

  // USP Records in and translation latency: the endpoint's record entry (its MTP listeners call
  // this.onRecord at call time, so an instance property replaces it).
  const ep = proxy.usp.endpoint as unknown as { onRecord?: (r: InboundRecord) => Promise<void> };
  const onRecord = ep.onRecord;
  if (typeof onRecord === 'function') {
    ep.onRecord = async (r: InboundRecord): Promise<void> => {
      const label = recordLabel(r.bytes);
      m.uspRecords.inc({ mtp: r.mtp, direction: 'in', type: label.type });
      const timed = label.msgType !== null && REQUEST_TYPES.has(label.msgType);
      if (timed) m.uspRequestsPerMinute.add();
      const end = timed ? m.translation.startTimer({ msg_type: label.msgType! }) : null;
      try {
        await onRecord.call(proxy.usp.endpoint, r);
      } finally {
        end?.();
      }
    };
    undo.push(() => {
      delete ep.onRecord;
    });
  }
  const onDropped = ({ mtp, reason }: { mtp: string; reason: string }): void => {
    m.uspDropped.inc({ mtp });
    m.error(`USP Record dropped (${mtp}): ${reason}`);
  };
  proxy.usp.endpoint.on('dropped', onDropped);
  undo.push(() => proxy.usp.endpoint.off('dropped', onDropped));

  // Gauges read at scrape time.
  const queues = (engine as unknown as { queues?: unknown }).queues;
  m.sources = {
    queueDepth: () => {
      if (queues instanceof Map) {
        let n = 0;
        for (const q of queues.values()) n += (q as { items?: unknown[] }).items?.length ?? 0;
        return n;
      }
      return pending;
    },
    activeSessions: () => engine.activeSessions,
    mtps: () =>
      proxy.usp.mtps.map((mtp) => {
        const s = mtp.status();
        const controllers =
          mtp.kind === 'websocket' ? s.channels : proxy.config.controllers.filter((c) => (mtp.kind === 'mqtt' ? c.mqtt.topic : c.stomp.destination)).length;
        return { mtp: mtp.kind, connected: s.connected, controllers };
      }),
  };
  undo.push(() => {
    m.sources = {};
  });

  // The device index: everything registered so far (Informs arriving meanwhile win).
  const ready = proxy.store.listDevices().then(
    (all) => {
      for (const d of all) if (!m.deviceIndex.has(d.deviceKey)) m.noteDevice(d);
    },
    () => undefined,
  );

  return {
    ready,
    detach: () => {
      for (const f of undo.reverse()) f();
    },
  };
}
