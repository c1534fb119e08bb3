/**
 * Prometheus metrics (prom-client) and the small in-memory history the admin API's summary
 * shows (per-minute rings for the last hour, recent errors). The metrics subscribe to the typed
 * events the components emit (the session engine's Informs, sessions and RPCs, the connection
 * requester's results, the endpoint's Records) and read a few gauges at scrape time; they hold
 * no reference to the proxy. Each proxy gets its own Registry so tests can run several proxies
 * in one process.
 */
import { deviceStrings } from '../util/intern.js';
import { FastHistogram } from './fast-histogram.js';
import type { AcsServerEvents } from '../cwmp/acs-server.js';
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControllerConfig } from '../app/config.js';
import type { ConnReqDispatcherEvents } from '../cwmp/connreq-dispatch.js';
import type { SchedulerEvents as BulkDataSchedulerEvents } from '../bulkdata/scheduler.js';
import type { SessionEngineEvents } from '../cwmp/session.js';
import type { DeviceRecord } from '../store/types.js';
import type { EndpointEvents } from '../usp/agent/endpoint.js';
import type { MtpStatus } from '../usp/mtp/types.js';

const MINUTES = 60;
const MAX_ERRORS = 50;

/** Seconds, from 0.1 ms: an in-session Get is answered in about a millisecond, so coarser buckets hide where it goes. */
const FINE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

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
  /** The device it concerns (device key or agent Endpoint ID), when one does. */
  device?: string;
  /** The controller whose USP request it answered, when one did. */
  fromId?: string;
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
  readonly connectionRequests: Counter<'transport' | 'outcome'>;
  readonly uspRecords: Counter<'mtp' | 'direction' | 'type'>;
  readonly uspDropped: Counter<'mtp'>;
  /** Observed on every USP request and every Record sent: FastHistogram, same exposition as prom-client's. */
  readonly translation: FastHistogram;
  readonly mtpSend: FastHistogram;
  readonly acsRequest: Histogram<'status'>;
  /** usp_records_total by "mtp|direction|type" (a bounded set: MTPs x 2 x Msg and Record types). */
  private readonly recordCounts = new Map<string, number>();
  readonly queueDepth: Gauge;
  readonly controllersConnected: Gauge<'mtp'>;
  readonly mtpUp: Gauge<'mtp'>;
  readonly devices: Gauge<'root_model'>;
  readonly activeSessions: Gauge;
  readonly peerRefusals: Counter<'reason'>;
  readonly bulkDataReports: Counter<'protocol' | 'outcome'>;
  readonly bulkDataLag: Histogram<'protocol' | 'via'>;

  readonly informsPerMinute = new MinuteRing();
  readonly uspRequestsPerMinute = new MinuteRing();
  private readonly errors: RecentError[] = [];
  /** deviceKey -> what the summary and the devices gauge need. */
  readonly deviceIndex = new Map<string, DeviceInfo>();
  /** RPCs enqueued and not settled yet (the queue depth gauge). */
  private rpcsOpen = 0;
  /** Sources for the gauges, read at scrape time (instrument()). */
  private sources: GaugeSources | null = null;

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
      help: 'Informs received, by event code (one per event in the Inform; codes outside TR-069 Table 7 counted as other, vendor methods as M other)',
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
      buckets: [...FINE_BUCKETS, 60, 300],
      registers,
    });
    this.connectionRequests = new Counter({
      name: 'cwmp_connection_requests_total',
      help: 'Connection requests (with retries) by transport (http, udp; a fallback counts once per transport tried) and outcome: ok or the failure reason',
      labelNames: ['transport', 'outcome'],
      registers,
    });
    const recordCounts = this.recordCounts;
    this.uspRecords = new Counter({
      name: 'usp_records_total',
      help: 'USP Records by MTP, direction (in/out) and type (the Msg type, or the Record type when it carries no Msg)',
      labelNames: ['mtp', 'direction', 'type'],
      registers,
      collect() {
        // Counted per Record in recordCounts (a Map lookup, not prom-client's label hashing); a scrape copies them.
        this.reset();
        for (const [key, n] of recordCounts) {
          const [mtp = '', direction = '', type = ''] = key.split('|');
          this.inc({ mtp, direction, type }, n);
        }
      },
    });
    this.uspDropped = new Counter({
      name: 'usp_records_dropped_total',
      help: 'Inbound USP Records dropped (unknown controller, wrong to_id, undecodable)',
      labelNames: ['mtp'],
      registers,
    });
    this.translation = new FastHistogram(
      'usp_translation_duration_seconds',
      'Time from receiving a USP request Record to having answered it (translation and the CWMP round trips it needs)',
      'msg_type',
      FINE_BUCKETS,
      registers,
    );
    this.acsRequest = new Histogram({
      name: 'cwmp_acs_request_duration_seconds',
      help: "Time the ACS takes with one CPE HTTP request, from its arrival to the answer's last byte handed to the socket (body read, decode, session step, encode), by HTTP status",
      labelNames: ['status'],
      buckets: FINE_BUCKETS,
      registers,
    });
    this.mtpSend = new FastHistogram(
      'usp_mtp_send_duration_seconds',
      'Time an MTP takes to send one outbound USP Record (MQTT/STOMP at QoS 1: until the broker acknowledged it), by MTP',
      'mtp',
      FINE_BUCKETS,
      registers,
    );
    const self = this;
    this.queueDepth = new Gauge({
      name: 'cwmp_queue_depth',
      help: 'ACS RPCs queued or in flight, all devices',
      registers,
      collect() {
        if (self.sources) this.set(self.rpcsOpen);
      },
    });
    this.activeSessions = new Gauge({
      name: 'cwmp_active_sessions',
      help: 'CWMP sessions open now',
      registers,
      collect() {
        if (self.sources) this.set(self.sources.engine.activeSessions);
      },
    });
    this.peerRefusals = new Counter({
      name: 'cwmp_peer_refusals_total',
      help: 'ACS requests and connections refused by acs.limits: parse-budget (413), connections (reset), new-sessions (503)',
      labelNames: ['reason'],
      registers,
      collect() {
        const r = self.sources?.refusals?.();
        if (!r) return;
        // The counts live in the ACS server; a scrape copies them (they only grow).
        this.reset();
        for (const [reason, n] of Object.entries(r)) this.inc({ reason }, n);
      },
    });
    this.bulkDataReports = new Counter({
      name: 'bulkdata_reports_total',
      help: 'Bulk Data profile reports (Device.BulkData.) by protocol (HTTP, USPEventNotif) and outcome (sent, failed, refused, collection_failed, skipped_busy)',
      labelNames: ['protocol', 'outcome'],
      registers,
      collect() {
        const r = self.sources?.bulkDataReports?.();
        if (!r) return;
        // The counts live in the scheduler; a scrape copies them (they only grow).
        this.reset();
        for (const [k, n] of Object.entries(r)) {
          const [protocol = '', outcome = ''] = k.split('|');
          this.inc({ protocol, outcome }, n);
        }
      },
    });
    this.bulkDataLag = new Histogram({
      name: 'bulkdata_collection_lag_seconds',
      help: "Time from a Bulk Data profile falling due to its values being read, by protocol and via (periodic-inform: rode the CPE's own session; connection-request: woke it)",
      labelNames: ['protocol', 'via'],
      // A collection riding a periodic Inform may wait up to its ReportingInterval.
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.controllersConnected = new Gauge({
      name: 'usp_controllers_connected',
      help: 'Controllers reachable per MTP (WebSocket: open connections; MQTT/STOMP: configured controllers while the broker connection is up)',
      labelNames: ['mtp'],
      registers,
      collect() {
        for (const m of self.mtpGauges()) this.set({ mtp: m.mtp }, m.connected ? m.controllers : 0);
      },
    });
    this.mtpUp = new Gauge({
      name: 'usp_mtp_up',
      help: '1 when the MTP is connected (broker) or listening (WebSocket)',
      labelNames: ['mtp'],
      registers,
      collect() {
        for (const m of self.mtpGauges()) this.set({ mtp: m.mtp }, m.connected ? 1 : 0);
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

  /**
   * Subscribes to the components' events and reads their gauges from now on (attach before the
   * proxy starts, so that restored work and the first records are counted). Once per ProxyMetrics.
   */
  attach(src: MetricsSources): Instrumentation {
    if (this.sources) throw new Error('these metrics are attached already');
    this.sources = src;
    const onInform: Listener<SessionEngineEvents, 'inform'> = ({ device, inform }) => {
      for (const e of inform.event) this.informs.inc({ event: informEventLabel(e.eventCode) });
      if (inform.event.length === 0) this.informs.inc({ event: 'none' });
      this.informsPerMinute.add();
      this.deviceIndex.set(device.deviceKey, {
        rootModel: device.rootModel,
        productClass: device.deviceId.productClass,
        lastInformMs: Date.now(),
        periodicInformInterval: device.periodicInformInterval,
      });
    };
    const onSessionEnd: Listener<SessionEngineEvents, 'sessionEnd'> = ({ reason }) => this.sessions.inc({ outcome: sessionOutcome(reason) });
    const onRpcQueued: Listener<SessionEngineEvents, 'rpcQueued'> = () => void this.rpcsOpen++;
    const onRpcSettled: Listener<SessionEngineEvents, 'rpcSettled'> = ({ deviceKey, method, outcome, error, ms }) => {
      this.rpcsOpen = Math.max(0, this.rpcsOpen - 1);
      const result = outcome ? (outcome.kind === 'fault' ? 'fault' : 'success') : (error?.reason ?? 'error');
      this.rpcs.inc({ method, outcome: result });
      if (outcome) this.rpcDuration.observe({ method }, ms / 1000);
      if (outcome?.kind === 'fault')
        this.error(`${method} on ${deviceKey}: cwmp Fault ${outcome.fault.faultCode} ${outcome.fault.faultString}`, { device: deviceKey });
      else if (error && error.reason !== 'cancelled') this.error(`${method} on ${deviceKey} failed (${error.reason}): ${error.message}`, { device: deviceKey });
    };
    const onConnReqAttempt: Listener<ConnReqDispatcherEvents, 'attempt'> = ({ transport, outcome }) => this.connectionRequests.inc({ transport, outcome });
    const onConnReq: Listener<ConnReqDispatcherEvents, 'result'> = ({ deviceKey, result: r }) => {
      if (!r.ok && r.reason !== 'cancelled') this.error(`connection request to ${deviceKey} failed (${r.reason}): ${r.detail}`, { device: deviceKey });
    };
    const onRecord: Listener<EndpointEvents, 'record'> = ({ mtp, direction, msgType, ms }) => {
      const key = `${mtp}|${direction}|${msgType}`;
      this.recordCounts.set(key, (this.recordCounts.get(key) ?? 0) + 1);
      if (direction === 'out') this.mtpSend.observe(mtp, ms / 1000);
      else if (REQUEST_TYPES.has(msgType)) {
        this.uspRequestsPerMinute.add();
        this.translation.observe(msgType, ms / 1000);
      }
    };
    const onDropped: Listener<EndpointEvents, 'dropped'> = ({ mtp, reason }) => {
      this.uspDropped.inc({ mtp });
      this.error(`USP Record dropped (${mtp}): ${reason}`);
    };
    src.engine.on('inform', onInform);
    src.engine.on('sessionEnd', onSessionEnd);
    src.engine.on('rpcQueued', onRpcQueued);
    src.engine.on('rpcSettled', onRpcSettled);
    src.connectionRequests.on('result', onConnReq);
    src.connectionRequests.on('attempt', onConnReqAttempt);
    src.endpoint.on('record', onRecord);
    src.endpoint.on('dropped', onDropped);
    const onCollected: Listener<BulkDataSchedulerEvents, 'collected'> = ({ protocol, via, lagMs }) => this.bulkDataLag.observe({ protocol, via }, lagMs / 1000);
    src.bulkData?.on('collected', onCollected);
    const onHandled: Listener<AcsServerEvents, 'handled'> = ({ status, ms }) => this.acsRequest.observe({ status: String(status) }, ms / 1000);
    src.acs?.on('handled', onHandled);
    // The device index: everything registered so far (Informs arriving meanwhile win).
    const ready = src.listDevices().then(
      (all) => {
        for (const d of all) if (!this.deviceIndex.has(d.deviceKey)) this.noteDevice(d);
      },
      () => undefined,
    );
    return {
      ready,
      detach: () => {
        src.engine.off('inform', onInform);
        src.engine.off('sessionEnd', onSessionEnd);
        src.engine.off('rpcQueued', onRpcQueued);
        src.engine.off('rpcSettled', onRpcSettled);
        src.connectionRequests.off('result', onConnReq);
        src.connectionRequests.off('attempt', onConnReqAttempt);
        src.endpoint.off('record', onRecord);
        src.endpoint.off('dropped', onDropped);
        src.bulkData?.off('collected', onCollected);
        src.acs?.off('handled', onHandled);
        this.sources = null;
      },
    };
  }

  /** Controllers reachable per MTP: WebSocket its open connections, a broker its configured controllers. */
  private mtpGauges(): { mtp: string; connected: boolean; controllers: number }[] {
    const src = this.sources;
    if (!src) return [];
    return src.mtps().map((s) => {
      const controllers = s.mtp === 'websocket' ? s.channels : src.controllers.filter((c) => (s.mtp === 'mqtt' ? c.mqtt.topic : c.stomp.destination)).length;
      return { mtp: s.mtp, connected: s.connected, controllers };
    });
  }

  error(message: string, about: { device?: string; fromId?: string } = {}): void {
    this.errors.push({ time: new Date().toISOString(), message, ...about });
    if (this.errors.length > MAX_ERRORS) this.errors.splice(0, this.errors.length - MAX_ERRORS);
  }

  /** The last 50 errors, newest first. */
  recentErrors(): RecentError[] {
    return [...this.errors].reverse();
  }

  noteDevice(d: DeviceRecord): void {
    this.deviceIndex.set(d.deviceKey, {
      // One copy of these strings for all devices of a model (util/intern.ts).
      rootModel: deviceStrings.of(d.rootModel),
      productClass: deviceStrings.of(d.deviceId.productClass),
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

/**
 * The standard EventCodes (TR-069 Amendment 6 Table 7) and the "M <method>" codes of the ACS
 * methods that define one. Metric labels come only from this set: an EventCode is peer input,
 * and 100,000 distinct vendor codes made 100,000 series (issue 14 item 9).
 */
export const STANDARD_EVENT_CODES: ReadonlySet<string> = new Set([
  '0 BOOTSTRAP',
  '1 BOOT',
  '2 PERIODIC',
  '3 SCHEDULED',
  '4 VALUE CHANGE',
  '5 KICKED',
  '6 CONNECTION REQUEST',
  '7 TRANSFER COMPLETE',
  '8 DIAGNOSTICS COMPLETE',
  '9 REQUEST DOWNLOAD',
  '10 AUTONOMOUS TRANSFER COMPLETE',
  '11 DU STATE CHANGE COMPLETE',
  '12 AUTONOMOUS DU STATE CHANGE COMPLETE',
  '13 WAKEUP',
  '14 HEARTBEAT',
  'M Reboot',
  'M ScheduleInform',
  'M Download',
  'M ScheduleDownload',
  'M Upload',
  'M ChangeDUState',
]);

/** The label of an EventCode: itself when standard, "M other" for other methods, else "other" (X vendor codes too). */
export function informEventLabel(code: string): string {
  if (STANDARD_EVENT_CODES.has(code)) return code;
  return code.startsWith('M ') ? 'M other' : 'other';
}

function sessionOutcome(reason: string): string {
  if (reason === 'done') return 'completed';
  if (reason === 'timeout' || reason === 'shutdown') return reason;
  if (reason.startsWith('superseded')) return 'superseded';
  return 'other';
}

const REQUEST_TYPES = new Set(['GET', 'SET', 'ADD', 'DELETE', 'OPERATE', 'GET_SUPPORTED_DM', 'GET_INSTANCES', 'GET_SUPPORTED_PROTO', 'NOTIFY_RESP']);

/** Just the subscription side of a component's typed events. */
type Events<T extends Record<keyof T, unknown[]>> = Pick<EventEmitter<T>, 'on' | 'off'>;
type Listener<T extends Record<keyof T, unknown[]>, K extends keyof T> = (...args: T[K]) => void;

/** What the gauges read at scrape time. */
interface GaugeSources {
  engine: { readonly activeSessions: number };
  mtps: () => MtpStatus[];
  controllers: readonly ControllerConfig[];
  /** Refusals by the per-peer limits since start (acs.limits), by reason. */
  refusals?: () => Record<'parse-budget' | 'connections' | 'new-sessions', number>;
  /** Bulk Data reports since start, by "protocol|outcome". */
  bulkDataReports?: () => Record<string, number>;
}

/** The components the metrics listen to and read: a narrow view, not the proxy. */
export interface MetricsSources extends GaugeSources {
  engine: Events<SessionEngineEvents> & { readonly activeSessions: number };
  connectionRequests: Events<ConnReqDispatcherEvents>;
  endpoint: Events<EndpointEvents>;
  /** Bulk Data collections (the lag histogram). */
  bulkData?: Events<BulkDataSchedulerEvents>;
  /** The ACS's HTTP requests (the handling histogram). */
  acs?: Events<AcsServerEvents>;
  /** The registered devices, to fill the device index at start. */
  listDevices: () => Promise<DeviceRecord[]>;
}

export interface Instrumentation {
  /** Resolves when the device index has been loaded from the store. */
  ready: Promise<void>;
  /** Removes the listeners. */
  detach(): void;
}
