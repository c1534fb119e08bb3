/**
 * What the proxy knows of the ValueChange subscriptions of one CWMP device (TR-369 ValueChange,
 * TR-069 A.3.2.4 SetParameterAttributes): for each subscription the explicit parameter names it
 * covers and how it is served; for each name whether the CPE took active notification for it,
 * and the last value seen. Pure data and decisions, no I/O: the ValueWatch does the RPCs.
 *
 * A subscription is served
 * - 'cpe-notification' when the CPE accepted Notification=2 for every name (it sends 4 VALUE CHANGE);
 * - 'periodic-compare' when it did not (refused, the model has no SetParameterAttributes, or the CPE
 *   took the attribute and never reported a change a read found): the proxy reads the names in the
 *   device's periodic Inform sessions and compares them with the last values;
 * - 'polling' as 'periodic-compare', and the proxy also wakes the device every interval to read them.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { ParameterValueStruct } from '../cwmp/types.js';
import { splitReferenceList } from '../usp/path/index.js';
import { isSecret, toUspValue } from './values.js';

export type ServedBy = 'cpe-notification' | 'periodic-compare' | 'polling';

/**
 * Active notification of one name on the CPE: 'none' not asked (or not answered) yet, 'active'
 * accepted, 'refused' the CPE faulted it, 'unsupported' the model has no SetParameterAttributes,
 * 'silent' accepted, but the CPE never reported a change that a read found.
 */
export type NotificationState = 'none' | 'active' | 'refused' | 'unsupported' | 'silent';

export interface WatchedParam {
  notification: NotificationState;
  /** Why the CPE does not notify it (for the log and the admin API). */
  why: string;
  /** A 4 VALUE CHANGE of it arrived: the CPE notifies it, reads need not verify that. */
  confirmed: boolean;
  /** Last value as USP reads it (undefined: not read yet). Never held for secured parameters. */
  last?: string;
  /** Secured parameters: a keyed digest of the last value, in memory only. */
  digest?: string;
  /** xsi:type of the last value (booleans, the secured value's type). */
  type?: string;
}

export interface WatchedSubscription {
  /** Instance number of the Device.LocalAgent.Subscription row. */
  instance: number;
  id: string;
  recipient: string;
  /** The ReferenceList entries on device parameters, as the controller wrote them. */
  refs: string[];
  /** Explicit parameter names the refs cover on this device (native names on a TR-098 device). */
  names: string[];
  /** When the refs were last expanded into names (0: not yet: the device was not reachable). */
  expandedAt: number;
  /** A ref is a partial path or has a wildcard: expanded again in the periodic sessions (tables change). */
  partial: boolean;
  /** Why the refs could not be expanded, while expandedAt is 0. */
  note?: string;
  servedBy: ServedBy;
  reason: string;
  /** Epoch ms servedBy was last set. */
  since: number;
  /** Poll interval asked through the admin API (s; 0: no polling); undefined: the configured default. */
  askedPollS?: number;
  /** Interval it is polled at (s), 0 when not polled. */
  pollS: number;
}

/** A ValueChange subscription row as the Local Agent holds it, reduced to what the watch needs. */
export interface SubscriptionRef {
  instance: number;
  id: string;
  recipient: string;
  refs: string[];
}

export const SUBSCRIPTION_TABLE = 'Device.LocalAgent.Subscription.';

/** Reference following cannot be turned into names ahead of time. */
const UNRESOLVABLE = /[+#]/;

/**
 * The ValueChange subscriptions of an agent that concern device parameters (the proxy's own
 * Device.LocalAgent. and other excluded objects are watched by the Local Agent itself).
 */
export function deviceValueChangeSubscriptions(
  rows: readonly { instance: number; values: Record<string, string> }[],
  excludedPrefixes: readonly string[],
): SubscriptionRef[] {
  const out: SubscriptionRef[] = [];
  for (const { instance, values } of rows) {
    if (values.NotifType !== 'ValueChange' || values.Enable !== 'true') continue;
    const refs = splitReferenceList(values.ReferenceList ?? '').filter(
      (p) => p.startsWith('Device.') && p !== 'Device.' && !excludedPrefixes.some((x) => p.startsWith(x)) && !UNRESOLVABLE.test(p),
    );
    if (refs.length) out.push({ instance, id: values.ID ?? '', recipient: values.Recipient ?? '', refs });
  }
  return out;
}

/** A ref that names more than one parameter (an object path, a wildcard or a search expression). */
export function isPartialRef(ref: string): boolean {
  return ref.endsWith('.') || ref.includes('*') || ref.includes('[');
}

/**
 * The names a ref may cover, as a wildcard path: a search expression watches its whole column
 * ("Device.WiFi.SSID.[Enable==true].SSID" -> "Device.WiFi.SSID.*.SSID"); the notifier matches a
 * change against the ReferenceList as it does for the CPE's own (TR-369 R-NOT.1).
 */
export function watchPattern(ref: string): string {
  return ref.replace(/\[[^\]]*\]/g, '*');
}

/** Per process: digests of secured values never match across restarts, and never leave memory. */
const DIGEST_KEY = randomBytes(32);
const digestOf = (v: string): string => createHmac('sha256', DIGEST_KEY).update(v, 'utf8').digest('base64');

export interface CompareResult {
  /** Values that differ from the last ones, as the CPE sent them (for the notifier path). */
  changed: ParameterValueStruct[];
  /** Names the CPE took active notification for and never reported although they changed. */
  silent: string[];
}

export interface ServingDecision {
  servedBy: ServedBy;
  reason: string;
}

export class DeviceWatch {
  readonly subs = new Map<number, WatchedSubscription>();
  readonly params = new Map<string, WatchedParam>();
  /** Names with Notification=2 on the CPE that no subscription needs any more: set back to 0. */
  readonly release = new Set<string>();
  /** The persisted form is out of date. */
  dirty = false;

  get empty(): boolean {
    return this.subs.size === 0 && this.params.size === 0 && this.release.size === 0;
  }

  /** Every name some subscription covers. */
  names(): Set<string> {
    const out = new Set<string>();
    for (const s of this.subs.values()) for (const n of s.names) out.add(n);
    return out;
  }

  /**
   * Brings the per-name records in line with the subscriptions' names: new names start at
   * 'none'; names no longer covered are forgotten, and set back to Notification=0 on the CPE
   * when they were active.
   */
  reconcileParams(): void {
    const wanted = this.names();
    for (const [n, p] of this.params) {
      if (wanted.has(n)) continue;
      if (p.notification === 'active' || p.notification === 'silent') this.release.add(n);
      this.params.delete(n);
      this.dirty = true;
    }
    for (const n of wanted) {
      if (this.params.has(n)) continue;
      this.params.set(n, { notification: 'none', why: 'SetParameterAttributes not answered yet', confirmed: false });
      this.release.delete(n);
      this.dirty = true;
    }
  }

  /** Names to ask Notification=2 for. */
  toActivate(): string[] {
    return [...this.params].filter(([, p]) => p.notification === 'none').map(([n]) => n);
  }

  setNotification(name: string, state: NotificationState, why: string): void {
    const p = this.params.get(name);
    if (!p || (p.notification === state && p.why === why)) return;
    p.notification = state;
    p.why = why;
    if (state !== 'active') p.confirmed = false;
    this.dirty = true;
  }

  /** 0 BOOTSTRAP: the CPE lost every attribute (a factory reset); ask again. */
  forgetAttributes(): void {
    for (const p of this.params.values()) {
      if (p.notification === 'active' || p.notification === 'silent') {
        p.notification = 'none';
        p.why = 'the CPE was reset (0 BOOTSTRAP): SetParameterAttributes asked again';
        p.confirmed = false;
        this.dirty = true;
      }
    }
    this.release.clear();
  }

  /** Names without a last value (read once, without notifying: the baseline). */
  withoutBaseline(): string[] {
    return [...this.params].filter(([, p]) => p.last === undefined && p.digest === undefined).map(([n]) => n);
  }

  /**
   * Names to read in a periodic session: those the CPE does not notify, and those it took
   * active notification for but has not yet shown it reports.
   */
  toCompare(): string[] {
    return [...this.params].filter(([, p]) => p.notification !== 'active' || !p.confirmed).map(([n]) => n);
  }

  /** Names the CPE does not notify in the subscriptions `polled` selects (what a poll reads). */
  toPoll(polled: (s: WatchedSubscription) => boolean): string[] {
    const out = new Set<string>();
    for (const s of this.subs.values()) {
      if (!polled(s)) continue;
      for (const n of s.names) if (this.params.get(n)?.notification !== 'active') out.add(n);
    }
    return [...out];
  }

  /**
   * Values read from the device (GetParameterValues). The first value of a name is its baseline;
   * after that a different value is a change. A change of a name the CPE took active notification
   * for, which it did not report, marks the CPE silent for that name (TR-069 3.2.1: with
   * Notification=2 the CPE starts a session to report it).
   */
  compare(values: readonly ParameterValueStruct[]): CompareResult {
    const changed: ParameterValueStruct[] = [];
    const silent: string[] = [];
    for (const v of values) {
      const p = this.params.get(v.name);
      if (!p) continue;
      if (!this.remember(p, v)) continue;
      changed.push(v);
      if (p.notification === 'active') silent.push(v.name);
    }
    return { changed, silent };
  }

  /**
   * Changes the CPE reported (4 VALUE CHANGE). Returns those to send on: a watched name whose
   * value is the one the proxy already has (it found and reported the change itself) is not sent
   * twice. A name the CPE reports is one it notifies.
   */
  reported(values: readonly ParameterValueStruct[]): ParameterValueStruct[] {
    const out: ParameterValueStruct[] = [];
    for (const v of values) {
      const p = this.params.get(v.name);
      if (!p) {
        out.push(v);
        continue;
      }
      if (p.notification === 'silent') {
        p.notification = 'active';
        p.why = '';
        this.dirty = true;
      }
      if (p.notification === 'active' && !p.confirmed) {
        p.confirmed = true;
        this.dirty = true;
      }
      const known = p.last !== undefined || p.digest !== undefined;
      if (this.remember(p, v) || !known) out.push(v);
    }
    return out;
  }

  /** Records a value; true when it differs from a known last value. */
  private remember(p: WatchedParam, v: ParameterValueStruct): boolean {
    const value = toUspValue(v.type, v.value);
    if (v.type) p.type = v.type;
    if (isSecret(v.name)) {
      const d = digestOf(value);
      const differs = p.digest !== undefined && p.digest !== d;
      p.digest = d;
      return differs;
    }
    const differs = p.last !== undefined && p.last !== value;
    if (p.last !== value) {
      p.last = value;
      this.dirty = true;
    }
    return differs;
  }

  /**
   * How a subscription is served, and why, from its names' notification states. `pollS`: the
   * interval it is polled at (0: not polled); `pollNote`: why polling was not granted, if it was asked.
   */
  serving(s: WatchedSubscription, pollS: number, pollNote = ''): ServingDecision {
    if (s.expandedAt === 0) {
      return { servedBy: 'periodic-compare', reason: s.note ?? 'the ReferenceList is resolved in the device session' };
    }
    if (s.names.length === 0) {
      return {
        servedBy: 'periodic-compare',
        reason: `no parameter of the ReferenceList exists on the device${s.partial ? ' (looked for again in its periodic sessions)' : ''}`,
      };
    }
    const unserved = s.names.filter((n) => this.params.get(n)?.notification !== 'active');
    if (unserved.length === 0) {
      return { servedBy: 'cpe-notification', reason: `the CPE accepted active notification (Notification=2) for ${count(s.names.length)}` };
    }
    const first = this.params.get(unserved[0]!);
    const base = `${unserved.length} of ${count(s.names.length)} not notified by the CPE (${first?.why || 'SetParameterAttributes not answered yet'})`;
    if (pollS > 0) return { servedBy: 'polling', reason: `${base}: read every ${pollS} s and in the device's periodic Inform sessions` };
    return { servedBy: 'periodic-compare', reason: `${base}: read in the device's periodic Inform sessions${pollNote ? `; ${pollNote}` : ''}` };
  }

  // ------------------------------------------------------------------ persistence

  toJSON(): WatchJson {
    const params: WatchJson['params'] = {};
    for (const [n, p] of this.params) params[n] = [p.notification, p.last ?? null, p.confirmed ? 1 : 0, p.why, p.type ?? ''];
    return {
      v: 1,
      subs: [...this.subs.values()].map((s) => ({
        i: s.instance,
        id: s.id,
        r: s.recipient,
        refs: s.refs,
        names: s.names,
        at: s.expandedAt,
        partial: s.partial,
        note: s.note,
        by: s.servedBy,
        why: s.reason,
        since: s.since,
        ask: s.askedPollS,
        poll: s.pollS,
      })),
      params,
      release: [...this.release],
    };
  }

  /** Restores a stored watch; anything malformed is left out (the watch sets it up again). */
  static fromJSON(json: unknown): DeviceWatch {
    const w = new DeviceWatch();
    if (!json || typeof json !== 'object' || (json as WatchJson).v !== 1) return w;
    const j = json as WatchJson;
    const strs = (x: unknown): string[] => (Array.isArray(x) ? x.filter((e): e is string => typeof e === 'string') : []);
    for (const s of Array.isArray(j.subs) ? j.subs : []) {
      if (!s || typeof s !== 'object' || !Number.isInteger(s.i)) continue;
      w.subs.set(s.i, {
        instance: s.i,
        id: String(s.id ?? ''),
        recipient: String(s.r ?? ''),
        refs: strs(s.refs),
        names: strs(s.names),
        expandedAt: typeof s.at === 'number' ? s.at : 0,
        partial: s.partial === true,
        note: typeof s.note === 'string' ? s.note : undefined,
        servedBy: SERVED_BY.includes(s.by as ServedBy) ? (s.by as ServedBy) : 'periodic-compare',
        reason: String(s.why ?? ''),
        since: typeof s.since === 'number' ? s.since : 0,
        askedPollS: Number.isInteger(s.ask) && (s.ask as number) >= 0 ? s.ask : undefined,
        pollS: Number.isInteger(s.poll) ? (s.poll as number) : 0,
      });
    }
    for (const [n, v] of Object.entries(j.params && typeof j.params === 'object' ? j.params : {})) {
      if (!Array.isArray(v)) continue;
      const state = STATES.includes(v[0] as NotificationState) ? (v[0] as NotificationState) : 'none';
      w.params.set(n, {
        notification: state,
        last: typeof v[1] === 'string' && !isSecret(n) ? v[1] : undefined,
        confirmed: v[2] === 1,
        why: typeof v[3] === 'string' ? v[3] : '',
        type: typeof v[4] === 'string' && v[4] !== '' ? v[4] : undefined,
      });
    }
    for (const n of strs(j.release)) w.release.add(n);
    return w;
  }
}

const SERVED_BY: readonly ServedBy[] = ['cpe-notification', 'periodic-compare', 'polling'];
const STATES: readonly NotificationState[] = ['none', 'active', 'refused', 'unsupported', 'silent'];

const count = (n: number): string => `${n} parameter${n === 1 ? '' : 's'}`;

/** The stored form (store kind 'watch', key deviceKey). Values of secured parameters are never in it. */
export interface WatchJson {
  v: 1;
  subs: {
    i: number;
    id?: string;
    r?: string;
    refs?: string[];
    names?: string[];
    at?: number;
    partial?: boolean;
    note?: string;
    by?: string;
    why?: string;
    since?: number;
    ask?: number;
    poll?: number;
  }[];
  /** name -> [notification state, last value or null, confirmed 1/0, why, xsi:type] */
  params: Record<string, [string, string | null, number, string, string]>;
  release: string[];
}

/** How one ValueChange subscription of an agent is served, for the admin API and `devices --json`. */
export interface SubscriptionServing {
  /** The Subscription row ("Device.LocalAgent.Subscription.3."). */
  subscription: string;
  id: string;
  recipient: string;
  /** Its ReferenceList entries on device parameters. */
  referenceList: string[];
  /** Explicit parameter names they cover on the device. */
  parameters: number;
  /** null: not set up yet (the device has not been in session since the subscription was made). */
  servedBy: ServedBy | null;
  reason: string;
  /** When servedBy last changed (ISO 8601), null when not set up. */
  since: string | null;
  /** Interval it is polled at (s), 0 when not polled. */
  pollIntervalS: number;
}

/** The subscriptions of an agent (its rows) with what the watch recorded of each. */
export function describeServing(subs: readonly SubscriptionRef[], w: DeviceWatch | null): SubscriptionServing[] {
  return subs.map((r) => {
    const s = w?.subs.get(r.instance);
    // since 0: never decided yet (being set up right now, or waiting for the device's session).
    const same = s && sameRefs(s, r) && s.since !== 0;
    return {
      subscription: `${SUBSCRIPTION_TABLE}${r.instance}.`,
      id: r.id,
      recipient: r.recipient,
      referenceList: r.refs,
      parameters: same ? s.names.length : 0,
      servedBy: same ? s.servedBy : null,
      reason: same ? s.reason : 'not set up yet: the proxy sets it up in the device session',
      since: same && s.since ? new Date(s.since).toISOString() : null,
      pollIntervalS: same ? s.pollS : 0,
    };
  });
}

/** The watched subscription still matches the row (same ReferenceList). */
export function sameRefs(s: Pick<WatchedSubscription, 'refs'>, r: Pick<SubscriptionRef, 'refs'>): boolean {
  return s.refs.length === r.refs.length && s.refs.every((x, i) => x === r.refs[i]);
}
