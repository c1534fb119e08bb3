/**
 * ValueChange subscriptions on CWMP devices that work whatever the CPE does (TR-369 ValueChange
 * over TR-069 A.3.2.4 SetParameterAttributes and 3.2.1 active notification).
 *
 * A subscription's ReferenceList is expanded into explicit parameter names through the names the
 * proxy learned of the device (never a partial path on the wire), and the proxy asks the CPE for
 * Notification=2 on those names; the answer teaches the device model's `setParameterAttributes`
 * capability. Where the CPE will not notify (it refuses, its model has no SetParameterAttributes,
 * or it took the attribute and a read later finds a change it never reported), the proxy watches
 * the names itself: it reads them in the device's periodic Inform sessions (the RPCs ride that
 * session, they never wake the device), compares them with the last values and sends the change
 * through the same notifier path as a 4 VALUE CHANGE. When polling is on, a subscription may also
 * be read every interval (a connection request each time), within a fleet-wide bound of polled
 * parameters. How each subscription is served is logged (info, once per change), kept in the
 * store, and shown in the admin API.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../app/log.js';
import type { Inform, ParameterValueStruct, SetParameterAttributesStruct } from '../cwmp/types.js';
import type { DeviceRecord, Store } from '../store/types.js';
import type { DeviceAccess } from './device-access.js';
import { describeFault, rpcErrorOf } from './faults.js';
import type { NativeExtension } from './extension.js';
import type { ModelProfile } from './knowledge/model-profile.js';
import type { RpcOutcome } from './rpc-port.js';
import { PollScheduler } from './value-poll.js';
import {
  DeviceWatch,
  describeServing,
  deviceValueChangeSubscriptions,
  isPartialRef,
  SUBSCRIPTION_TABLE,
  sameRefs,
  type SubscriptionRef,
  type SubscriptionServing,
  type WatchedSubscription,
  watchPattern,
} from './watch-state.js';

export interface ValueChangePollOptions {
  /** Polling allowed at all (off by default: on a large fleet every poll is a connection request). */
  enabled: boolean;
  /** Interval (s) for every subscription the CPE does not serve; 0: only those given one through the admin API. */
  intervalS: number;
  /** No subscription is polled more often than this (s). */
  minIntervalS: number;
  /** Parameters polled at once, summed over every device. */
  maxParameters: number;
}

export interface ValueWatchOptions {
  /** Paths the proxy serves itself (Device.LocalAgent. ...): not device parameters. */
  excludedPrefixes: readonly string[];
  poll: ValueChangePollOptions;
  /** Explicit names watched per device at most (a ReferenceList of whole objects is cut there). Default 1000. */
  maxNamesPerDevice?: number;
  /** Devices whose watch is kept in memory (default 10,000); the others are read from the store when needed. */
  cacheSize?: number;
}

export interface ValueWatchDeps {
  /** The agent's Device.LocalAgent.Subscription rows. */
  subscriptions(agentEid: string): { instance: number; values: Record<string, string> }[];
  deviceByEndpointId(eid: string): Promise<DeviceRecord | null>;
  /** A device's RPC access: 'wake' may wake the device; 'ride' only uses a session it has open (else fails as unreachable). */
  access(d: DeviceRecord, how: 'wake' | 'ride'): Promise<DeviceAccess>;
  /** TR-098 devices: Device:2 paths (parameters, objects) -> the native names the device listed. */
  toNative(d: DeviceRecord, uspPaths: readonly string[]): Promise<string[]>;
  /** The extension object (Device.X_<VENDOR>_Native.): its paths are the device's native names. */
  extension?: NativeExtension;
  saveModel(m: ModelProfile): Promise<void>;
  /** Changes, as a 4 VALUE CHANGE carries them, sent to the controllers (ValueChange Notify). */
  report(d: DeviceRecord, changes: readonly ParameterValueStruct[]): Promise<void>;
  /** Learned documents (kind 'watch'), and the stored Subscription rows (read once at start). */
  store: Pick<Store, 'getLearned' | 'putLearned' | 'deleteLearned' | 'listAllSubscriptions'>;
  log: Logger;
  now?: () => number;
}

/** A request of the admin API that cannot be done: HTTP status and message. */
export class WatchRequestError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** Faults that may concern some names of a SetParameterAttributes only: the list is split to find them. */
const SPLIT_FAULTS = new Set([9001, 9003, 9005, 9009]);
/** Extra SetParameterAttributes one split may cost. */
const SPLIT_BUDGET = 32;

export class ValueWatch {
  private readonly cache: LRUCache<string, DeviceWatch>;
  private readonly loading = new Map<string, Promise<DeviceWatch>>();
  /** Work per device runs in order (an Inform's reads, a poll, a subscription change), by Endpoint ID. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly polls: PollScheduler;
  private readonly warned = new LRUCache<string, true>({ max: 10_000 });
  private readonly maxNames: number;
  /**
   * Agents that have (or had since start) Subscription rows: only theirs are looked at, so that an
   * Inform of any other device costs nothing here (reading an agent's rows builds its Local Agent tree).
   */
  private readonly subscribed = new Set<string>();
  private closed = false;

  constructor(
    private readonly deps: ValueWatchDeps,
    private readonly opts: ValueWatchOptions,
  ) {
    this.cache = new LRUCache({ max: opts.cacheSize ?? 10_000 });
    this.polls = new PollScheduler(opts.poll.maxParameters, (eid) => this.pollNow(eid));
    this.maxNames = opts.maxNamesPerDevice ?? 1000;
  }

  private get log(): Logger {
    return this.deps.log;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  // ------------------------------------------------------------------ entry points

  /** Stored subscriptions: polling resumes for those that were polled (no RPC until their devices are due). */
  async start(): Promise<void> {
    const agents = new Set<string>();
    for (const r of await this.deps.store.listAllSubscriptions()) if (r.values.NotifType === 'ValueChange') agents.add(r.agentEid);
    for (const eid of agents) this.subscribed.add(eid);
    // Without polling nothing is due before each device's next Inform.
    if (!this.opts.poll.enabled) return;
    for (const eid of agents) {
      const d = await this.deps.deviceByEndpointId(eid).catch(() => null);
      if (!d) continue;
      await this.run(d.endpointId, async () => {
        const w = await this.load(d.deviceKey);
        this.reconcileSubscriptions(d, w);
        w.reconcileParams();
        this.refresh(d, w);
        await this.save(d, w);
      });
    }
  }

  close(): void {
    this.closed = true;
    this.polls.close();
  }

  /** A Subscription row of the agent was added, changed or deleted: set up or release at once (this may wake the device). */
  subscriptionChanged(agentEid: string): Promise<void> {
    this.subscribed.add(agentEid);
    return this.run(agentEid, async () => {
      const d = await this.deps.deviceByEndpointId(agentEid);
      if (d) await this.sync(d, 'wake', false);
    });
  }

  /**
   * Every Inform. `reported`: the parameters of a 4 VALUE CHANGE (forced ones already left out),
   * sent on unless the proxy already reported that value. Then, riding the session the Inform
   * opened: subscriptions not set up yet are, and on 2 PERIODIC the names the CPE does not
   * notify are read and compared.
   */
  inform(device: DeviceRecord, inform: Inform, reported: readonly ParameterValueStruct[] | null): Promise<void> {
    if (!this.subscribed.has(device.endpointId)) {
      if (!reported?.length) return Promise.resolve();
      return this.deps
        .report(device, reported)
        .catch((e: Error) => this.log.warn({ endpointId: device.endpointId, err: e.message }, 'reporting a VALUE CHANGE failed'));
    }
    const codes = inform.event.map((e) => e.eventCode);
    return this.run(device.endpointId, async () => {
      const w = await this.load(device.deviceKey);
      // TR-069 A.3.2.4: attributes survive a reboot, not a factory reset (0 BOOTSTRAP).
      if (codes.includes('0 BOOTSTRAP')) w.forgetAttributes();
      if (reported?.length) await this.deps.report(device, w.reported(reported));
      await this.sync(device, 'ride', codes.includes('2 PERIODIC'), w);
    });
  }

  /** How each ValueChange subscription of the device's agent is served. */
  async describe(d: DeviceRecord): Promise<SubscriptionServing[]> {
    if (!this.subscribed.has(d.endpointId)) return [];
    const refs = this.desired(d);
    if (refs.length === 0) return [];
    return describeServing(refs, await this.load(d.deviceKey));
  }

  /**
   * A poll interval for one subscription (s; 0: none), asked through the admin API; bounded by
   * interworking.valueChangePoll.minIntervalS and its maxParameters.
   */
  async setPollInterval(d: DeviceRecord, instance: number, seconds: number): Promise<SubscriptionServing> {
    const poll = this.opts.poll;
    if (!Number.isInteger(seconds) || seconds < 0) throw new WatchRequestError(400, 'pollIntervalS must be a non-negative integer');
    if (seconds > 0 && !poll.enabled) throw new WatchRequestError(409, 'polling is off (interworking.valueChangePoll.enabled is false)');
    if (seconds > 0 && seconds < poll.minIntervalS) {
      throw new WatchRequestError(400, `pollIntervalS must be 0 or at least ${poll.minIntervalS} (interworking.valueChangePoll.minIntervalS)`);
    }
    if (!this.subscribed.has(d.endpointId)) throw new WatchRequestError(404, `no ValueChange subscription at ${SUBSCRIPTION_TABLE}${instance}.`);
    let out: SubscriptionServing | undefined;
    await this.run(
      d.endpointId,
      async () => {
        const r = this.desired(d).find((x) => x.instance === instance);
        if (!r) throw new WatchRequestError(404, `no enabled ValueChange subscription on device parameters at ${SUBSCRIPTION_TABLE}${instance}.`);
        const w = await this.load(d.deviceKey);
        let s = w.subs.get(instance);
        if (!s || !sameRefs(s, r)) {
          s = newSubscription(r);
          w.subs.set(instance, s);
        }
        s.askedPollS = seconds;
        w.dirty = true;
        this.refresh(d, w);
        await this.save(d, w);
        out = describeServing([r], w)[0];
      },
      true,
    );
    return out!;
  }

  /** Drops what is held in memory of the agent's device (another instance changed it in the store). */
  forget(agentEid: string): Promise<void> {
    this.subscribed.add(agentEid);
    return this.run(agentEid, async () => {
      const d = await this.deps.deviceByEndpointId(agentEid);
      if (d) this.cache.delete(d.deviceKey);
    });
  }

  /** Resolves once no work is queued for the agent's device (tests). */
  async idle(agentEid: string): Promise<void> {
    for (let p = this.chains.get(agentEid); p; p = this.chains.get(agentEid)) await p;
  }

  // ------------------------------------------------------------------ the work

  private desired(d: DeviceRecord): SubscriptionRef[] {
    return deviceValueChangeSubscriptions(this.deps.subscriptions(d.endpointId), this.opts.excludedPrefixes);
  }

  /** Subscriptions gone or changed are dropped, new ones added (not set up yet). */
  private reconcileSubscriptions(d: DeviceRecord, w: DeviceWatch): SubscriptionRef[] {
    const desired = this.desired(d);
    const byInstance = new Map(desired.map((r) => [r.instance, r]));
    for (const [i, s] of w.subs) {
      const r = byInstance.get(i);
      if (r && sameRefs(s, r)) {
        if (s.id !== r.id || s.recipient !== r.recipient) {
          s.id = r.id;
          s.recipient = r.recipient;
          w.dirty = true;
        }
        continue;
      }
      w.subs.delete(i);
      w.dirty = true;
      if (!r) this.log.info({ endpointId: d.endpointId, subscription: `${SUBSCRIPTION_TABLE}${i}.`, id: s.id }, 'ValueChange subscription no longer watched');
    }
    for (const r of desired) {
      if (w.subs.has(r.instance)) continue;
      w.subs.set(r.instance, newSubscription(r));
      w.dirty = true;
    }
    return desired;
  }

  private async sync(d: DeviceRecord, how: 'wake' | 'ride', periodic: boolean, given?: DeviceWatch): Promise<void> {
    const w = given ?? (await this.load(d.deviceKey));
    this.reconcileSubscriptions(d, w);
    if (w.empty) {
      this.polls.release(d.endpointId);
      await this.save(d, w);
      return;
    }
    const a = await this.deps.access(d, how);
    for (const s of w.subs.values()) if (s.expandedAt === 0 || (periodic && s.partial)) await this.expand(a, d, w, s);
    w.reconcileParams();
    await this.activate(a, d, w);
    // The baseline of new names and, in a periodic session, the names the CPE does not notify: one read.
    const names = [...new Set([...w.withoutBaseline(), ...(periodic ? w.toCompare() : [])])];
    if (names.length) await this.read(a, d, w, names, how === 'ride' ? 'in the periodic session' : 'setting up the subscription');
    this.refresh(d, w);
    await this.save(d, w);
  }

  /** Reads names and sends what changed; a CPE that took Notification=2 and kept silent about a change is marked so. */
  private async read(a: DeviceAccess, d: DeviceRecord, w: DeviceWatch, names: readonly string[], when: string): Promise<void> {
    let values: ParameterValueStruct[];
    try {
      values = await a.gpv(names);
    } catch (e) {
      this.log.debug({ endpointId: d.endpointId, err: (e as Error).message }, `reading ValueChange parameters ${when} failed`);
      return;
    }
    const { changed, silent } = w.compare(values);
    for (const n of silent) {
      w.setNotification(n, 'silent', 'the CPE accepted active notification but did not send 4 VALUE CHANGE when the value changed');
    }
    if (changed.length) await this.deps.report(d, changed);
  }

  /** ReferenceList -> explicit names, learned through the device's names (TR-098: through the mapping). */
  private async expand(a: DeviceAccess, d: DeviceRecord, w: DeviceWatch, s: WatchedSubscription): Promise<void> {
    try {
      // Refs under the extension object name the device's own parameters (a Device:2 device's
      // shadowed LocalAgent., the TR-098 native tree): expanded as the device's names.
      const native: string[] = [];
      const usp: string[] = [];
      for (const r of s.refs) {
        const n = this.deps.extension?.toNative(d.rootModel, r) ?? null;
        if (n === null) usp.push(r);
        else if (d.rootModel === 'Device' && n === 'Device.') native.push(...this.deps.extension!.shadowed);
        else native.push(n);
      }
      const mapped = usp.length === 0 ? [] : d.rootModel === 'Device' ? await this.expandDevice2(a, usp) : await this.deps.toNative(d, usp);
      let names = native.length === 0 ? mapped : [...new Set([...mapped, ...(await this.expandDevice2(a, native))])];
      const others = new Set<string>();
      for (const o of w.subs.values()) if (o !== s) for (const n of o.names) others.add(n);
      const room = this.maxNames - others.size;
      const fresh = names.filter((n) => !others.has(n));
      if (fresh.length > room) {
        const keep = new Set(fresh.slice(0, Math.max(0, room)));
        names = names.filter((n) => others.has(n) || keep.has(n));
        this.warnOnce(
          `${d.deviceKey}|names`,
          { endpointId: d.endpointId, max: this.maxNames },
          'ValueChange subscriptions cover more parameters than the proxy watches per device: the rest are not watched',
        );
      }
      if (s.expandedAt === 0 || names.length !== s.names.length || names.some((n, i) => n !== s.names[i])) w.dirty = true;
      s.names = names;
      s.expandedAt = this.now();
      s.partial = s.refs.some(isPartialRef);
      s.note = undefined;
    } catch (e) {
      if (s.expandedAt === 0) {
        s.note = `the ReferenceList could not be resolved on the device yet (${clip((e as Error).message)}); tried again in its next session`;
        w.dirty = true;
      }
      this.log.debug({ endpointId: d.endpointId, err: (e as Error).message }, 'expanding a ValueChange ReferenceList failed');
    }
  }

  private async expandDevice2(a: DeviceAccess, refs: readonly string[]): Promise<string[]> {
    const out = new Set<string>();
    for (const given of refs) {
      const ref = watchPattern(given);
      if (!isPartialRef(ref)) {
        if (await a.knownParam(ref)) out.add(ref);
        continue;
      }
      const star = ref.indexOf('*');
      const base = star < 0 ? ref : ref.slice(0, star);
      if (!(await a.learnSubtree(base))) continue;
      const under = a.tree.paramsUnder(base);
      if (star < 0) for (const n of under) out.add(n);
      else {
        const re = wildcardPattern(ref);
        for (const n of under) if (re.test(n)) out.add(n);
      }
    }
    return [...out];
  }

  /** SetParameterAttributes Notification=2 for names not asked yet, 0 for names no longer watched (explicit names only). */
  private async activate(a: DeviceAccess, d: DeviceRecord, w: DeviceWatch): Promise<void> {
    const on = w.toActivate();
    if (a.model.caps.setParameterAttributes === 'no') {
      for (const n of on) w.setNotification(n, 'unsupported', 'the device model does not support SetParameterAttributes');
      if (w.release.size) {
        w.release.clear();
        w.dirty = true;
      }
      return;
    }
    const list: SetParameterAttributesStruct[] = [...on.map((n) => attribute(n, 2)), ...[...w.release].map((n) => attribute(n, 0))];
    if (list.length) await this.setAttributes(a, d, w, list, { left: SPLIT_BUDGET });
  }

  private async setAttributes(a: DeviceAccess, d: DeviceRecord, w: DeviceWatch, list: SetParameterAttributesStruct[], budget: { left: number }): Promise<void> {
    const on = list.filter((x) => x.notification === 2).map((x) => x.name);
    const off = list.filter((x) => x.notification === 0).map((x) => x.name);
    const dropOff = (): void => {
      for (const n of off) w.release.delete(n);
      if (off.length) w.dirty = true;
    };
    let out: RpcOutcome;
    try {
      out = await a.callRaw({ method: 'SetParameterAttributes', parameterList: list });
    } catch (e) {
      const f = rpcErrorOf(e);
      const reason = clip(f?.reason ?? (e as Error).message);
      if (f?.choke) {
        // The CPE dropped the connection or never answered: asking again would do the same.
        for (const n of on) w.setNotification(n, 'refused', `the CPE did not answer SetParameterAttributes (${reason})`);
        dropOff();
      } else {
        for (const n of on) w.setNotification(n, 'none', `SetParameterAttributes not delivered (${reason}); asked again in the device's next session`);
      }
      return;
    }
    if (out.kind === 'response' && out.response.method === 'SetParameterAttributesResponse') {
      await this.learnCap(a, d, 'yes');
      for (const n of on) w.setNotification(n, 'active', '');
      dropOff();
      return;
    }
    // A CPE's fault string is its own text: kept short in what is logged and stored.
    const what = clip(out.kind === 'fault' ? describeFault(out.fault) : `an unexpected ${out.response.method}`);
    const code = out.kind === 'fault' ? out.fault.faultCode : 0;
    if (code === 9000) {
      await this.learnCap(a, d, 'no');
      for (const n of on) w.setNotification(n, 'unsupported', `the CPE does not support SetParameterAttributes (${what})`);
      w.release.clear();
      w.dirty = true;
      return;
    }
    if (list.length > 1 && SPLIT_FAULTS.has(code) && budget.left >= 2) {
      // The request is atomic (TR-069 A.3.2.4): one name the CPE will not take fails it all.
      budget.left -= 2;
      const half = Math.ceil(list.length / 2);
      await this.setAttributes(a, d, w, list.slice(0, half), budget);
      await this.setAttributes(a, d, w, list.slice(half), budget);
      return;
    }
    for (const n of on) w.setNotification(n, 'refused', `the CPE refused active notification (${what})`);
    dropOff();
  }

  private async learnCap(a: DeviceAccess, d: DeviceRecord, v: 'yes' | 'no'): Promise<void> {
    if (a.model.caps.setParameterAttributes === v) return;
    a.model.setCap('setParameterAttributes', v);
    this.log.info(
      { endpointId: d.endpointId, model: a.model.key, setParameterAttributes: v },
      'learned whether this device model supports SetParameterAttributes',
    );
    await this.deps.saveModel(a.model).catch((e: Error) => this.log.warn({ err: e.message }, 'storing the device model failed'));
  }

  /** Decides how each subscription is served (logging changes) and arms or stops the device's poll. */
  private refresh(d: DeviceRecord, w: DeviceWatch): void {
    const interval = new Map<number, number>();
    for (const s of w.subs.values()) interval.set(s.instance, this.pollIntervalOf(s));
    const polled = (s: WatchedSubscription): boolean => (interval.get(s.instance) ?? 0) > 0;
    const names = w.toPoll(polled);
    let granted = false;
    let note = '';
    if (names.length) {
      let ms = Number.POSITIVE_INFINITY;
      for (const s of w.subs.values()) if (polled(s) && w.toPoll((x) => x === s).length) ms = Math.min(ms, interval.get(s.instance)! * 1000);
      granted = this.polls.grant(d.endpointId, names.length, ms);
      if (!granted) {
        note = `not polled: ${this.opts.poll.maxParameters} parameters are polled already (interworking.valueChangePoll.maxParameters)`;
        this.warnOnce(
          `${d.deviceKey}|poll-budget`,
          { endpointId: d.endpointId, maxParameters: this.opts.poll.maxParameters },
          'ValueChange polling not granted: the poll budget is used up',
        );
      }
    } else this.polls.release(d.endpointId);
    for (const s of w.subs.values()) {
      const iv = interval.get(s.instance) ?? 0;
      const dec = w.serving(s, granted ? iv : 0, iv > 0 && !granted ? note : '');
      const pollS = dec.servedBy === 'polling' ? iv : 0;
      if (dec.servedBy !== s.servedBy || s.since === 0) {
        s.since = this.now();
        w.dirty = true;
        this.log.info(
          { endpointId: d.endpointId, subscription: `${SUBSCRIPTION_TABLE}${s.instance}.`, id: s.id, servedBy: dec.servedBy, reason: dec.reason },
          `ValueChange subscription served by ${dec.servedBy}`,
        );
      }
      if (dec.servedBy !== s.servedBy || dec.reason !== s.reason || pollS !== s.pollS) {
        s.servedBy = dec.servedBy;
        s.reason = dec.reason;
        s.pollS = pollS;
        w.dirty = true;
      }
    }
  }

  private pollIntervalOf(s: WatchedSubscription): number {
    const p = this.opts.poll;
    if (!p.enabled) return 0;
    const asked = s.askedPollS ?? p.intervalS;
    return asked > 0 ? Math.max(asked, p.minIntervalS) : 0;
  }

  // ------------------------------------------------------------------ polling

  /** One poll: wakes the device and reads the names its polled subscriptions need. */
  private pollNow(agentEid: string): Promise<void> {
    return this.run(agentEid, async () => {
      if (this.closed) return;
      const d = await this.deps.deviceByEndpointId(agentEid);
      if (!d) {
        this.polls.release(agentEid);
        return;
      }
      const w = await this.load(d.deviceKey);
      const names = w.toPoll((s) => this.pollIntervalOf(s) > 0);
      if (names.length) {
        try {
          const a = await this.deps.access(d, 'wake');
          await this.read(a, d, w, names, 'by polling');
        } catch (e) {
          this.warnOnce(`${d.deviceKey}|poll`, { endpointId: agentEid, err: (e as Error).message }, 'a ValueChange poll failed');
        }
      }
      this.refresh(d, w);
      await this.save(d, w);
    });
  }

  // ------------------------------------------------------------------ state

  private load(key: string): Promise<DeviceWatch> {
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit);
    let p = this.loading.get(key);
    if (!p) {
      p = (async () => {
        let raw: string | null = null;
        try {
          raw = await this.deps.store.getLearned('watch', key);
        } catch (e) {
          this.warnOnce(`${key}|load`, { err: (e as Error).message }, 'reading the ValueChange watch of a device failed');
        }
        const w = DeviceWatch.fromJSON(parse(raw));
        this.cache.set(key, w);
        return w;
      })().finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async save(d: DeviceRecord, w: DeviceWatch): Promise<void> {
    if (!w.dirty) return;
    w.dirty = false;
    try {
      if (w.empty) await this.deps.store.deleteLearned('watch', d.deviceKey);
      else await this.deps.store.putLearned('watch', d.deviceKey, JSON.stringify(w.toJSON()));
    } catch (e) {
      this.warnOnce(`${d.deviceKey}|save`, { endpointId: d.endpointId, err: (e as Error).message }, 'storing the ValueChange watch of a device failed');
    }
  }

  /** Runs jobs of one device in order; a failing job is logged (or, with rethrow, handed to the caller). */
  private run(key: string, job: () => Promise<void>, rethrow = false): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const p = prev.then(job);
    const tail = p.catch((e: unknown) => {
      if (!rethrow) this.log.warn({ endpointId: key, err: (e as Error).message }, 'ValueChange watch failed');
    });
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return rethrow ? p : tail;
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.set(key, true);
    this.log.warn(fields, msg);
  }
}

function newSubscription(r: SubscriptionRef): WatchedSubscription {
  return {
    instance: r.instance,
    id: r.id,
    recipient: r.recipient,
    refs: [...r.refs],
    names: [],
    expandedAt: 0,
    partial: r.refs.some(isPartialRef),
    servedBy: 'periodic-compare',
    reason: '',
    since: 0,
    pollS: 0,
  };
}

function attribute(name: string, notification: number): SetParameterAttributesStruct {
  return { name, notificationChange: true, notification, accessListChange: false, accessList: [] };
}

/** "Device.WiFi.SSID.*.SSID" -> names of every instance; an object pattern matches everything below it. */
function wildcardPattern(ref: string): RegExp {
  const body = ref
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('\\d+');
  return new RegExp(ref.endsWith('.') ? `^${body}` : `^${body}$`);
}

function clip(s: string, max = 200): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

function parse(raw: string | null): unknown {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return null;
  }
}
