/**
 * Runs the enabled Bulk Data profiles of every agent: at each ReportingInterval (aligned on
 * TimeReference when set, TR-181 Profile.{i}.TimeReference) it collects the profile's values and
 * delivers the report. USPEventNotif: a Push! event Notify on Device.BulkData.Profile.{i}. with
 * Data = the JSON report (TR-369 "Use of the USP Event Notification"). A collection that fails is
 * logged and counted; the next interval runs anyway.
 */
import type { DmRouter } from '../usp/dm/router.js';
import { collect } from './collect.js';
import { encodeJson, type JsonEncoding } from './encode.js';
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
  private stopped = false;
  readonly counts: ReportCounts = {};
  private readonly now: () => number;

  constructor(private readonly opts: SchedulerOptions) {
    this.now = opts.now ?? Date.now;
    opts.bulkData.on('change', (e) => this.rearm(e.agentEid));
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
        void this.report(agentEid, instance);
      },
      nextDelay(this.now(), intervalS, timeReference),
    );
    t.unref?.();
    this.timers.set(key, t);
  }

  private count(protocol: string, outcome: string): void {
    const k = `${protocol}|${outcome}`;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
  }

  /** One report of a profile (public for tests and a later ForceCollection()). */
  async report(agentEid: string, instance: number): Promise<void> {
    const profile = this.opts.bulkData.profiles(agentEid).find((p) => p.instance === instance);
    if (!profile) return;
    const protocol = profile.values.Protocol ?? '';
    // A device slower than the interval: no second collection piles up behind the first.
    const busy = `${agentEid}|${instance}`;
    if (this.running.has(busy)) {
      this.count(protocol, 'skipped_busy');
      this.opts.log.warn({ agent: agentEid, profile: profile.path }, 'bulk data collection still running at the next interval; this one is missed');
      return;
    }
    this.running.add(busy);
    try {
      const report = await collect(this.opts.router, agentEid, profile.parameters, this.now(), this.opts.maxValues ?? 10_000);
      if (protocol === 'USPEventNotif') {
        this.opts.events.event(agentEid, profile.path, 'Push!', { Data: encodeJson([report], jsonEncoding(profile)) });
        this.count(protocol, 'sent');
      } else {
        // HTTP delivery is not built yet: the report is counted as not delivered.
        this.count(protocol, 'unsupported');
      }
    } catch (e) {
      this.count(protocol, 'collection_failed');
      this.opts.log.warn({ agent: agentEid, profile: profile.path, err: (e as Error).message }, 'bulk data collection failed');
    } finally {
      this.running.delete(busy);
    }
  }
}

function jsonEncoding(p: ProfileView): JsonEncoding {
  return {
    reportFormat: p.json.ReportFormat === 'NameValuePair' ? 'NameValuePair' : 'ObjectHierarchy',
    reportTimestamp: p.json.ReportTimestamp === 'ISO-8601' ? 'ISO-8601' : p.json.ReportTimestamp === 'None' ? 'None' : 'Unix-Epoch',
  };
}
