/**
 * Runs the enabled Bulk Data profiles of every agent: at each ReportingInterval (aligned on
 * TimeReference when set, TR-181 Profile.{i}.TimeReference) it collects the profile's values and
 * delivers the report. USPEventNotif: a Push! event Notify on Device.BulkData.Profile.{i}. with
 * Data = the JSON report (TR-369 "Use of the USP Event Notification"). HTTP: the JSON or CSV body
 * to the collector, retried within the interval (R-BULK.2/3) when RetryEnable, and kept as
 * retained failed reports for the next one (NumberOfRetainedFailedReports, bounded). A collection
 * that fails is logged and counted; the next interval runs anyway.
 */
import { EventEmitter } from 'node:events';
import type { DmRouter } from '../usp/dm/router.js';
import { collectMany } from './collect.js';
import { ConnectionRequestBudget } from './cr-budget.js';
import { PeriodicInforms } from './periodic-informs.js';
import { RetainedReports, type RetainedPort } from './retained.js';
import { collectionScope } from './rpc-scope.js';
import type { CallScope } from '../usp/request-scope.js';
import { type CsvEncoding, encodeCsv, encodeJson, type JsonEncoding, type Report } from './encode.js';
import { type HttpDelivery, retryWaitMs } from './http-delivery.js';
import type { BulkData, ProfileView } from './profiles.js';

export interface EventSink {
  event(agentEid: string, objPath: string, eventName: string, params: Record<string, string>): void;
}

export interface SchedulerLog {
  debug?(o: object, msg: string): void;
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface SchedulerOptions {
  bulkData: BulkData;
  router: DmRouter;
  events: EventSink;
  log: SchedulerLog;
  /** Values per report (MaxNumberOfParameterReferences bounds the references, this their expansion). */
  maxValues?: number;
  /** HTTP delivery (absent: HTTP profiles count as not delivered). */
  http?: HttpDelivery;
  /** Retained failed reports per profile when NumberOfRetainedFailedReports is -1 ("as many as possible"). */
  maxRetained?: number;
  /** Where retained failed reports are kept across a restart (absent: memory only). */
  retainedStore?: RetainedPort;
  /**
   * Several instances run the same timers (src/cluster/): one report per profile and interval slot,
   * taken by the instance that claims it (Coordination.claimOnce). Absent: this instance alone.
   */
  claim?: (key: string, ttlMs: number) => Promise<boolean>;
  /** Profiles of one agent due within this many ms are collected in one Get (default 50). */
  coalesceMs?: number;
  /**
   * Collections that wake a device take a turn of this fleet-wide budget (connection requests per
   * second, bulkdata.connectionRequestsPerSecond); absent: no bound.
   */
  connectionRequestsPerSecond?: number;
  /** How late a periodic Inform may come before its collection wakes the device instead (ms, default 30 s). */
  periodicInformGraceMs?: number;
  /**
   * bulkdata.alignPeriodicInform: sets the device's PeriodicInformInterval to its shortest
   * ReportingInterval (and PeriodicInformTime to that profile's TimeReference), in the session of a
   * collection, so that the next collections ride its periodic Informs. Absent: never.
   */
  alignPeriodicInform?: (agentEid: string, intervalS: number, timeReference: string, scope: CallScope) => Promise<void>;
  /**
   * The CWMP device's identity (its DeviceID struct) for the oui/pc/sn URI parameters of HTTP
   * reports (R-BULK.1); absent or null: eid.
   */
  deviceId?: (agentEid: string) => Promise<{ oui: string; productClass: string; serialNumber: string } | null>;
  now?: () => number;
}

/** How a collection reached the device. */
export type CollectionVia = 'periodic-inform' | 'connection-request';

/** The latest collection of a profile (the admin API's view; docs/bulkdata.md). */
export interface ProfileStatus {
  /** When the profile last fell due, and when its values were read (ISO 8601; collected absent when it failed). */
  due: string;
  collected?: string;
  via?: CollectionVia;
  /** sent, failed, refused, collection_failed, missed, skipped_busy, unsupported. */
  outcome: string;
  lagMs?: number;
  /** Collections missed or failed since start (each also counted in bulkdata_reports_total). */
  missed: number;
  retained: number;
}

export interface SchedulerEvents {
  /** A profile's values were read `lagMs` after it fell due. */
  collected: [{ agentEid: string; protocol: string; via: CollectionVia; lagMs: number }];
}

/** Outcome counters per protocol (the issue's bulkdata_reports_total{protocol,outcome}). */
export type ReportCounts = Record<string, number>;

const UNSET_TIME = Date.parse('0001-01-01T00:00:00Z');

/** Milliseconds to the next report: on the TimeReference grid when set, else one interval on. */
export function nextDelay(now: number, intervalS: number, timeReference: string): number {
  const ms = intervalS * 1000;
  const ref = Date.parse(timeReference);
  if (!Number.isFinite(ref) || ref === UNSET_TIME) return ms;
  const since = (((now - ref) % ms) + ms) % ms;
  return since === 0 ? ms : ms - since;
}

export class BulkDataScheduler extends EventEmitter<SchedulerEvents> {
  /** Per agent, the timer of each enabled profile by "agent|instance|interval|timeReference". */
  private readonly timers = new Map<string, Map<string, NodeJS.Timeout>>();
  private readonly running = new Set<string>();
  /** Profiles due per agent, collected together after coalesceMs, and when the first fell due. */
  private readonly pending = new Map<string, { dueAt: number; instances: Set<number>; now: boolean }>();
  /** The latest collection per "agent|instance" (entries go with their profile). */
  private readonly status = new Map<string, ProfileStatus>();
  /** Per agent, what was last warned of as left out of its reports (references matching nothing, values over maxValues). */
  private readonly warnedUnresolved = new Map<string, string>();
  /** Agents whose PeriodicInformInterval the proxy set, and to what (s). */
  private readonly alignedTo = new Map<string, string>();
  /** When each device's next periodic Inform is expected (fed by informSeen). */
  readonly informs = new PeriodicInforms();
  private readonly budget: ConnectionRequestBudget | null;
  /** Failed HTTP reports per profile, oldest first (kept in the store when a port is given). */
  private readonly retained: RetainedReports;
  private stopped = false;
  readonly counts: ReportCounts = {};
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    super();
    this.now = opts.now ?? Date.now;
    this.retained = new RetainedReports(opts.retainedStore, opts.log);
    this.budget = opts.connectionRequestsPerSecond ? new ConnectionRequestBudget(opts.connectionRequestsPerSecond, this.now) : null;
    opts.bulkData.on('change', (e) => {
      // The extension: "If the EncodingType is modified any outstanding failed reports are deleted."
      const m = /^Device\.BulkData\.Profile\.(\d+)\.$/.exec(e.path);
      if (m && (e.kind === 'delete' || e.changed?.EncodingType !== undefined)) this.retained.delete(e.agentEid, Number(m[1]));
      if (m && e.kind === 'delete') this.status.delete(`${e.agentEid}|${m[1]}`);
      // Only a Profile row or Device.BulkData.Enable moves a timer: an Add of N Parameter rows re-arms nothing.
      if (m || e.path === 'Device.BulkData.') this.rearm(e.agentEid);
    });
    opts.bulkData.on('reloaded', ({ agentEid }) => this.rearm(agentEid));
    opts.bulkData.on('forceCollection', ({ agentEid, instance }) => {
      // "Collect now": no waiting for a periodic Inform.
      if (!this.stopped) this.due(agentEid, instance, true);
    });
  }

  /** Reads the agents' retained reports, then arms their profiles (rows restored from the store). */
  async start(agents: readonly string[]): Promise<void> {
    await this.retained.load(agents);
    for (const a of agents) this.rearm(a);
  }

  /** Resolves when retained reports being stored are written. */
  flushed(): Promise<void> {
    return this.retained.flushed();
  }

  stop(): void {
    this.stopped = true;
    for (const agent of this.timers.values()) for (const t of agent.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Re-arms an agent's profile timers from its current rows. */
  rearm(agentEid: string): void {
    if (this.stopped) return;
    const live = new Set<string>();
    const enabled = this.opts.bulkData.enabled(agentEid);
    for (const p of this.opts.bulkData.timers(agentEid)) {
      if (!enabled || p.values.Enable !== 'true') continue;
      const key = `${agentEid}|${p.instance}|${p.values.ReportingInterval}|${p.values.TimeReference}`;
      live.add(key);
      if (!this.timers.get(agentEid)?.has(key)) this.arm(agentEid, p.instance, key, Number(p.values.ReportingInterval), p.values.TimeReference ?? '');
    }
    const mine = this.timers.get(agentEid);
    for (const [k, t] of mine ?? [])
      if (!live.has(k)) {
        clearTimeout(t);
        mine!.delete(k);
      }
    if (mine?.size === 0) this.timers.delete(agentEid);
  }

  private arm(agentEid: string, instance: number, key: string, intervalS: number, timeReference: string, firing = false): void {
    const t = setTimeout(
      () => {
        if (this.stopped) return;
        this.arm(agentEid, instance, key, intervalS, timeReference, true);
        const slot = Math.round(this.now() / (intervalS * 1000));
        void this.claimed(`bulkdata|${agentEid}|${instance}|${slot}`, intervalS * 2000).then((mine) => mine && this.due(agentEid, instance));
      },
      this.delay(agentEid, intervalS, timeReference, firing),
    );
    t.unref?.();
    let mine = this.timers.get(agentEid);
    if (!mine) this.timers.set(agentEid, (mine = new Map()));
    mine.set(key, t);
  }

  /**
   * Milliseconds to a profile's next collection. With no TimeReference the proxy picks the phase
   * (TR-181 Profile.{i}.TimeReference: unset, the agent chooses it): `leadMs` before one of the
   * device's periodic Informs, so that the collection rides that session with a lag of about
   * `leadMs` instead of waiting for the Inform up to an interval. `firing`: called as a collection
   * falls due, which rides the next Inform if it can; this schedule takes the one after.
   */
  private delay(agentEid: string, intervalS: number, timeReference: string, firing: boolean): number {
    const now = this.now();
    const plain = nextDelay(now, intervalS, timeReference);
    if (isSet(timeReference)) return plain;
    const ms = intervalS * 1000;
    const lead = leadMs(ms);
    const current = this.informs.next(agentEid, now + 1);
    if (current === null) return plain;
    if (!firing) return Math.max(0, current - lead - now);
    // The Inform nearest one interval on, but not the one the collection falling due now rides.
    const taken = current + (this.opts.periodicInformGraceMs ?? 30_000) <= now + ms;
    let target = this.informs.next(agentEid, now + ms / 2)!;
    if (taken && target <= current) target = this.informs.next(agentEid, current + 1)!;
    const d = target - lead - now;
    return d > 0 && d <= 2 * ms ? d : plain;
  }

  private async claimed(key: string, ttlMs: number): Promise<boolean> {
    if (!this.opts.claim) return true;
    try {
      return await this.opts.claim(key, ttlMs);
    } catch (e) {
      this.opts.log.warn({ key, err: (e as Error).message }, 'claiming a bulk data report across instances failed; skipped');
      return false;
    }
  }

  private count(protocol: string, outcome: string): void {
    const k = `${protocol}|${outcome}`;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
  }

  /** A profile's interval came: collected together with the agent's other profiles due now. */
  private due(agentEid: string, instance: number, now = false): void {
    let batch = this.pending.get(agentEid);
    if (!batch) {
      const b = { dueAt: this.now(), instances: new Set<number>(), now };
      batch = b;
      this.pending.set(agentEid, b);
      const t = setTimeout(() => {
        this.pending.delete(agentEid);
        void this.report(agentEid, [...b.instances], b.dueAt, b.now);
      }, this.opts.coalesceMs ?? 50);
      t.unref?.();
    }
    batch.instances.add(instance);
    batch.now ||= now;
  }

  /** An Inform of an agent's device (app/proxy.ts): when its periodic sessions come is learned from these. */
  informSeen(agentEid: string, events: readonly string[], parameters: readonly { name: string; value: string }[]): void {
    this.informs.inform(agentEid, { events, parameters, at: this.now() });
  }

  /** The latest collection of a profile, or undefined before its first. */
  profileStatus(agentEid: string, instance: number): ProfileStatus | undefined {
    const s = this.status.get(`${agentEid}|${instance}`);
    return s && { ...s, retained: this.retainedReports(agentEid, instance) };
  }

  private setStatus(agentEid: string, p: ProfileView, s: Omit<ProfileStatus, 'missed' | 'retained'>, missed: boolean): void {
    const key = `${agentEid}|${p.instance}`;
    const prev = this.status.get(key);
    this.status.set(key, { ...s, missed: (prev?.missed ?? 0) + (missed ? 1 : 0), retained: 0 });
  }

  /**
   * Collects these profiles of an agent in one Get and delivers each report (public for tests and a later ForceCollection()).
   * The Get rides the device's next periodic Inform session when one is expected before the next
   * report falls due (its RPCs queued with no connection request, TR-069 3.2); otherwise, or when
   * that Inform does not come, it wakes the device within the fleet-wide connection-request budget.
   * A collection that cannot be made before the next report is due is counted and shown as missed.
   */
  async report(agentEid: string, instances: readonly number[], dueAt = this.now(), now = true): Promise<void> {
    const all = this.opts.bulkData.profiles(agentEid);
    const due: ProfileView[] = [];
    for (const n of instances) {
      const profile = all.find((p) => p.instance === n);
      if (!profile) continue;
      // A device slower than the interval: no second collection piles up behind the first.
      if (this.running.has(`${agentEid}|${n}`)) {
        this.count(profile.values.Protocol ?? '', 'skipped_busy');
        this.setStatus(agentEid, profile, { due: iso(dueAt), outcome: 'skipped_busy' }, true);
        this.opts.log.warn({ agent: agentEid, profile: profile.path }, 'bulk data collection still running at the next interval; this one is missed');
        continue;
      }
      this.running.add(`${agentEid}|${n}`);
      due.push(profile);
    }
    if (due.length === 0) return;
    try {
      const collected = await this.collect(agentEid, due, dueAt, now);
      if (!collected) return;
      const { reports, via } = collected;
      const lagMs = Math.max(0, this.now() - dueAt);
      for (const p of due) {
        this.setStatus(agentEid, p, { due: iso(dueAt), collected: iso(this.now()), via, outcome: 'collected', lagMs }, false);
        this.emit('collected', { agentEid, protocol: p.values.Protocol ?? '', via, lagMs });
      }
      await Promise.all(
        due.map(async (profile, i) => {
          let outcome: string;
          if (profile.values.Protocol === 'USPEventNotif') {
            this.opts.events.event(agentEid, profile.path, 'Push!', { Data: encodeJson([reports[i]!], jsonEncoding(profile)) });
            this.count('USPEventNotif', 'sent');
            outcome = 'sent';
          } else outcome = await this.deliverHttp(agentEid, profile, reports[i]!);
          const st = this.status.get(`${agentEid}|${profile.instance}`);
          if (st) st.outcome = outcome;
        }),
      );
    } finally {
      for (const p of due) this.running.delete(`${agentEid}|${p.instance}`);
    }
  }

  /** One Get for the due profiles: riding the periodic Inform, else waking the device; null when missed or failed (counted). */
  private async collect(agentEid: string, due: ProfileView[], dueAt: number, now: boolean): Promise<{ reports: Report[]; via: CollectionVia } | null> {
    const intervalMs = Math.min(...due.map((p) => Number(p.values.ReportingInterval) * 1000));
    // The collection of this slot must be over when the next report falls due.
    const deadlineAt = dueAt + intervalMs;
    const grace = this.opts.periodicInformGraceMs ?? 30_000;
    const read = async (scope: CallScope) => {
      const unresolved: { reference: string; why: string }[] = [];
      let dropped = 0;
      const reports = await collectMany(
        this.opts.router,
        agentEid,
        due.map((p) => p.parameters),
        this.now(),
        this.opts.maxValues ?? 10_000,
        (reference, why) => unresolved.length < 100_000 && unresolved.push({ reference, why }),
        (n) => (dropped += n),
        scope,
      );
      this.noted(agentEid, due, unresolved, dropped);
      return reports;
    };
    const fail = (outcome: 'missed' | 'collection_failed', err: string) => {
      for (const p of due) {
        this.count(p.values.Protocol ?? '', outcome);
        this.setStatus(agentEid, p, { due: iso(dueAt), outcome }, true);
      }
      this.opts.log.warn(
        { agent: agentEid, profiles: due.map((p) => p.path), err },
        outcome === 'missed' ? 'bulk data collection missed' : 'bulk data collection failed',
      );
      return null;
    };
    const expected = now ? null : this.informs.next(agentEid, this.now());
    let rideErr = '';
    if (expected !== null && expected + grace <= deadlineAt) {
      try {
        const reports = await read(collectionScope({ wake: false, deadlineAt: expected + grace }));
        await this.align(agentEid, due, expected + grace);
        return { reports, via: 'periodic-inform' };
      } catch (e) {
        if (this.stopped) return null;
        rideErr = (e as Error).message;
        this.opts.log.info({ agent: agentEid, err: rideErr }, 'bulk data collection did not ride a periodic Inform; waking the device');
      }
    }
    // Room left for the session the connection request opens.
    if (!rideErr)
      this.opts.log.debug?.(
        { agent: agentEid, due: iso(dueAt), expectedInform: expected === null ? null : iso(expected) },
        'bulk data collection wakes the device: no periodic Inform expected before the next report',
      );
    if (this.budget && !(await this.budget.take(deadlineAt - Math.min(grace, intervalMs) / 2))) {
      return fail(
        'missed',
        `the connection-request budget (bulkdata.connectionRequestsPerSecond) had no turn before the next report${rideErr ? `; ${rideErr}` : ''}`,
      );
    }
    if (this.stopped) return null;
    try {
      const reports = await read(collectionScope({ wake: true, deadlineAt }));
      await this.align(agentEid, due, deadlineAt);
      return { reports, via: 'connection-request' };
    } catch (e) {
      return fail('collection_failed', (e as Error).message);
    }
  }

  /**
   * References that matched nothing on the device, and values beyond maxValues: one warning per
   * agent when what was left out changes (not one per reference: a profile may hold 100,000).
   */
  private noted(agentEid: string, due: ProfileView[], unresolved: { reference: string; why: string }[], dropped: number): void {
    const key = `${unresolved.length}|${unresolved[0]?.reference ?? ''}|${dropped}`;
    if (this.warnedUnresolved.get(agentEid) === key) return;
    if (this.warnedUnresolved.size >= 10_000) this.warnedUnresolved.clear();
    this.warnedUnresolved.set(agentEid, key);
    if (unresolved.length > 0)
      this.opts.log.warn(
        { agent: agentEid, profiles: due.map((p) => p.path), unresolved: unresolved.length, first: unresolved.slice(0, 5) },
        'bulk data Parameter.Reference matches nothing on the device; left out of the reports',
      );
    if (dropped > 0)
      this.opts.log.warn(
        { agent: agentEid, profiles: due.map((p) => p.path), maxValues: this.opts.maxValues ?? 10_000, dropped },
        'bulk data report holds more values than the proxy sends in one report; the rest are left out',
      );
  }

  /** bulkdata.alignPeriodicInform: the device's periodic Informs set to the shortest ReportingInterval, once per change, in this session. */
  private async align(agentEid: string, due: ProfileView[], deadlineAt: number): Promise<void> {
    if (!this.opts.alignPeriodicInform) return;
    const enabled = this.opts.bulkData.profiles(agentEid).filter((p) => p.values.Enable === 'true');
    const shortest = (enabled.length ? enabled : due).reduce((a, b) => (Number(b.values.ReportingInterval) < Number(a.values.ReportingInterval) ? b : a));
    const intervalS = Number(shortest.values.ReportingInterval);
    const timeReference = shortest.values.TimeReference ?? '';
    const want = `${intervalS}|${timeReference}`;
    if (this.alignedTo.get(agentEid) === want) return;
    // Periodic Informs at least as often as the reports already carry the collections (with no TimeReference to follow).
    const known = this.informs.intervalMs(agentEid);
    if (known > 0 && known <= intervalS * 1000 && !isSet(timeReference)) return;
    try {
      await this.opts.alignPeriodicInform(agentEid, intervalS, timeReference, collectionScope({ wake: false, deadlineAt }));
      this.alignedTo.set(agentEid, want);
      this.informs.aligned(agentEid, intervalS, this.now());
      this.opts.log.info({ agent: agentEid, intervalS, timeReference }, 'PeriodicInformInterval aligned with the bulk data profiles');
    } catch (e) {
      this.opts.log.warn({ agent: agentEid, err: (e as Error).message }, 'aligning PeriodicInformInterval with the bulk data profiles failed');
    }
  }

  /** Failed reports kept for a profile (tests, the admin view). */
  retainedReports(agentEid: string, instance: number): number {
    return this.retained.get(agentEid, instance).length;
  }

  private async deliverHttp(agentEid: string, profile: ProfileView, report: Report): Promise<string> {
    const reports = [...this.retained.get(agentEid, profile.instance), report];
    if (!this.opts.http) {
      this.count('HTTP', 'unsupported');
      return 'unsupported';
    }
    const csv = profile.values.EncodingType === 'CSV';
    const body = csv ? encodeCsv(reports, csvEncoding(profile)) : encodeJson(reports, jsonEncoding(profile));
    const h = profile.http;
    // RequestURIParameter values are read now (extension "Use of the URI Query Parameters"); one that cannot be read is sent empty.
    let query: [string, string][] = [];
    if (profile.uriParameters.length) {
      const values = await this.opts.router
        .get(
          agentEid,
          profile.uriParameters.map((u) => u.reference),
        )
        .catch(() => new Map<string, string>());
      query = profile.uriParameters.map((u) => [u.name, values.get(u.reference) ?? '']);
    }
    const id = (await this.opts.deviceId?.(agentEid).catch(() => null)) ?? null;
    const deviceId = id && id.oui !== '' && id.serialNumber !== '' ? { oui: id.oui, productClass: id.productClass, serialNumber: id.serialNumber } : undefined;
    const send = () =>
      this.opts.http!.send({
        url: h.URL ?? '',
        method: h.Method === 'PUT' ? 'PUT' : 'POST',
        username: h.Username ?? '',
        password: h.Password ?? '',
        gzip: h.Compression === 'GZIP',
        useDateHeader: h.UseDateHeader !== 'false',
        mediaType: csv ? 'text/csv' : 'application/json',
        reportFormat: csv ? csvEncoding(profile).reportFormat : jsonEncoding(profile).reportFormat,
        body,
        agentEid,
        deviceId,
        query,
      });
    // Retries stop when the next interval comes (R-BULK.3): its report carries these along.
    const deadline = this.now() + Number(profile.values.ReportingInterval) * 1000;
    let outcome = await send();
    for (let n = 1; !outcome.ok && !outcome.refused && h.RetryEnable === 'true' && !this.stopped; n++) {
      const wait = retryWaitMs(n, Number(h.RetryMinimumWaitInterval ?? 5), Number(h.RetryIntervalMultiplier ?? 2000));
      if (this.now() + wait >= deadline) break;
      await new Promise((r) => setTimeout(r, wait).unref?.());
      outcome = await send();
    }
    if (outcome.ok) {
      this.retained.delete(agentEid, profile.instance);
      this.count('HTTP', 'sent');
      return 'sent';
    }
    this.count('HTTP', outcome.refused ? 'refused' : 'failed');
    const keep = Number(profile.values.NumberOfRetainedFailedReports ?? 0);
    const max = this.opts.maxRetained ?? 64;
    const limit = keep < 0 ? max : Math.min(keep, max);
    this.retained.set(agentEid, profile.instance, limit > 0 ? reports.slice(-limit) : []);
    this.opts.log.warn(
      { agent: agentEid, profile: profile.path, detail: outcome.detail, retained: Math.min(reports.length, limit) },
      'bulk data report not delivered to the HTTP collector',
    );
    return outcome.refused ? 'refused' : 'failed';
  }
}

/** A TimeReference other than the unknown time (TR-106 0001-01-01T00:00:00Z). */
function isSet(timeReference: string): boolean {
  const ref = Date.parse(timeReference);
  return Number.isFinite(ref) && ref !== UNSET_TIME;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** How long before an expected periodic Inform a collection is queued to ride it (bounded by a tenth of the interval). */
const leadMs = (intervalMs: number) => Math.min(1000, intervalMs / 10);

function csvEncoding(p: ProfileView): CsvEncoding {
  return {
    fieldSeparator: p.csv.FieldSeparator ?? ',',
    rowSeparator: p.csv.RowSeparator ?? '&#13;&#10;',
    escapeCharacter: p.csv.EscapeCharacter ?? '&quot;',
    reportFormat: p.csv.ReportFormat === 'ParameterPerRow' ? 'ParameterPerRow' : 'ParameterPerColumn',
    rowTimestamp: p.csv.RowTimestamp === 'ISO-8601' ? 'ISO-8601' : p.csv.RowTimestamp === 'None' ? 'None' : 'Unix-Epoch',
  };
}

function jsonEncoding(p: ProfileView): JsonEncoding {
  return {
    reportFormat: p.json.ReportFormat === 'NameValuePair' ? 'NameValuePair' : 'ObjectHierarchy',
    reportTimestamp: p.json.ReportTimestamp === 'ISO-8601' ? 'ISO-8601' : p.json.ReportTimestamp === 'None' ? 'None' : 'Unix-Epoch',
  };
}
