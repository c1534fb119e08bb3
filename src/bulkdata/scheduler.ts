/**
 * Runs the enabled Bulk Data profiles of every agent: at each ReportingInterval (aligned on
 * TimeReference when set, TR-181 Profile.{i}.TimeReference) it collects the profile's values and
 * delivers the report. USPEventNotif: a Push! event Notify on Device.BulkData.Profile.{i}. with
 * Data = the JSON report (TR-369 "Use of the USP Event Notification"). HTTP: the JSON or CSV body
 * to the collector, retried within the interval (R-BULK.2/3) when RetryEnable, and kept as
 * retained failed reports for the next one (NumberOfRetainedFailedReports, bounded). A collection
 * that fails is logged and counted; the next interval runs anyway.
 */
import type { DmRouter } from '../usp/dm/router.js';
import { collectMany } from './collect.js';
import { type CsvEncoding, encodeCsv, encodeJson, type JsonEncoding, type Report } from './encode.js';
import { type HttpDelivery, retryWaitMs } from './http-delivery.js';
import type { BulkData, ProfileView } from './profiles.js';

export interface EventSink {
  event(agentEid: string, objPath: string, eventName: string, params: Record<string, string>): void;
}

export interface SchedulerLog {
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
  /**
   * Several instances run the same timers (src/cluster/): one report per profile and interval slot,
   * taken by the instance that claims it (Coordination.claimOnce). Absent: this instance alone.
   */
  claim?: (key: string, ttlMs: number) => Promise<boolean>;
  /** Profiles of one agent due within this many ms are collected in one Get (default 50). */
  coalesceMs?: number;
  now?: () => number;
}

/** Outcome counters per protocol (the bulkdata_reports_total{protocol,outcome}). */
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

export class BulkDataScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<string>();
  /** Profiles due per agent, collected together after coalesceMs. */
  private readonly pending = new Map<string, Set<number>>();
  /** Failed HTTP reports per "agent|instance", oldest first. */
  private readonly retained = new Map<string, Report[]>();
  private stopped = false;
  readonly counts: ReportCounts = {};
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? Date.now;
    opts.bulkData.on('change', (e) => {
      // The extension: "If the EncodingType is modified any outstanding failed reports are deleted."
      const m = /^Device\.BulkData\.Profile\.(\d+)\.$/.exec(e.path);
      if (m && (e.kind === 'delete' || e.changed?.EncodingType !== undefined)) this.retained.delete(`${e.agentEid}|${m[1]}`);
      this.rearm(e.agentEid);
    });
    opts.bulkData.on('reloaded', ({ agentEid }) => this.rearm(agentEid));
    opts.bulkData.on('forceCollection', ({ agentEid, instance }) => {
      if (!this.stopped) this.due(agentEid, instance);
    });
  }

  /** Arms the profiles of agents whose rows were restored from the store. */
  start(agents: readonly string[]): void {
    for (const a of agents) this.rearm(a);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Re-arms an agent's profile timers from its current rows. */
  rearm(agentEid: string): void {
    if (this.stopped) return;
    const live = new Set<string>();
    const enabled = this.opts.bulkData.enabled(agentEid);
    for (const p of this.opts.bulkData.profiles(agentEid)) {
      if (!enabled || p.values.Enable !== 'true') continue;
      const key = `${agentEid}|${p.instance}|${p.values.ReportingInterval}|${p.values.TimeReference}`;
      live.add(key);
      if (!this.timers.has(key)) this.arm(agentEid, p.instance, key, Number(p.values.ReportingInterval), p.values.TimeReference ?? '');
    }
    for (const [k, t] of this.timers)
      if (k.startsWith(`${agentEid}|`) && !live.has(k)) {
        clearTimeout(t);
        this.timers.delete(k);
      }
  }

  private arm(agentEid: string, instance: number, key: string, intervalS: number, timeReference: string): void {
    const t = setTimeout(
      () => {
        if (this.stopped) return;
        this.arm(agentEid, instance, key, intervalS, timeReference);
        const slot = Math.round(this.now() / (intervalS * 1000));
        void this.claimed(`bulkdata|${agentEid}|${instance}|${slot}`, intervalS * 2000).then((mine) => mine && this.due(agentEid, instance));
      },
      nextDelay(this.now(), intervalS, timeReference),
    );
    t.unref?.();
    this.timers.set(key, t);
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
  private due(agentEid: string, instance: number): void {
    let batch = this.pending.get(agentEid);
    if (!batch) {
      batch = new Set();
      this.pending.set(agentEid, batch);
      const t = setTimeout(() => {
        this.pending.delete(agentEid);
        void this.report(agentEid, [...batch!]);
      }, this.opts.coalesceMs ?? 50);
      t.unref?.();
    }
    batch.add(instance);
  }

  /** Collects these profiles of an agent in one Get and delivers each report (public for tests and a later ForceCollection()). */
  async report(agentEid: string, instances: readonly number[]): Promise<void> {
    const all = this.opts.bulkData.profiles(agentEid);
    const due: ProfileView[] = [];
    for (const n of instances) {
      const profile = all.find((p) => p.instance === n);
      if (!profile) continue;
      // A device slower than the interval: no second collection piles up behind the first.
      if (this.running.has(`${agentEid}|${n}`)) {
        this.count(profile.values.Protocol ?? '', 'skipped_busy');
        this.opts.log.warn({ agent: agentEid, profile: profile.path }, 'bulk data collection still running at the next interval; this one is missed');
        continue;
      }
      this.running.add(`${agentEid}|${n}`);
      due.push(profile);
    }
    if (due.length === 0) return;
    try {
      let reports: Report[];
      try {
        reports = await collectMany(
          this.opts.router,
          agentEid,
          due.map((p) => p.parameters),
          this.now(),
          this.opts.maxValues ?? 10_000,
        );
      } catch (e) {
        for (const p of due) this.count(p.values.Protocol ?? '', 'collection_failed');
        this.opts.log.warn({ agent: agentEid, profiles: due.map((p) => p.path), err: (e as Error).message }, 'bulk data collection failed');
        return;
      }
      await Promise.all(
        due.map(async (profile, i) => {
          if (profile.values.Protocol === 'USPEventNotif') {
            this.opts.events.event(agentEid, profile.path, 'Push!', { Data: encodeJson([reports[i]!], jsonEncoding(profile)) });
            this.count('USPEventNotif', 'sent');
          } else await this.deliverHttp(agentEid, profile, reports[i]!);
        }),
      );
    } finally {
      for (const p of due) this.running.delete(`${agentEid}|${p.instance}`);
    }
  }

  /** Failed reports kept for a profile (tests, the admin view). */
  retainedReports(agentEid: string, instance: number): number {
    return this.retained.get(`${agentEid}|${instance}`)?.length ?? 0;
  }

  private async deliverHttp(agentEid: string, profile: ProfileView, report: Report): Promise<void> {
    const key = `${agentEid}|${profile.instance}`;
    const reports = [...(this.retained.get(key) ?? []), report];
    if (!this.opts.http) {
      this.count('HTTP', 'unsupported');
      return;
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
      this.retained.delete(key);
      this.count('HTTP', 'sent');
      return;
    }
    this.count('HTTP', outcome.refused ? 'refused' : 'failed');
    const keep = Number(profile.values.NumberOfRetainedFailedReports ?? 0);
    const max = this.opts.maxRetained ?? 64;
    const limit = keep < 0 ? max : Math.min(keep, max);
    if (limit > 0) this.retained.set(key, reports.slice(-limit));
    else this.retained.delete(key);
    this.opts.log.warn(
      { agent: agentEid, profile: profile.path, detail: outcome.detail, retained: Math.min(reports.length, limit) },
      'bulk data report not delivered to the HTTP collector',
    );
  }
}

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
