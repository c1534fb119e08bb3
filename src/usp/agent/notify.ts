/**
 * Subscriptions and Notify (TR-369 "Notifications and Subscription Mechanism"): matches events
 * against each agent's enabled Device.LocalAgent.Subscription rows and sends Notify to the
 * Recipient controller; NotifRetry subscriptions use send_resp and are retried with the
 * controller's USPNotifRetryMinimumWaitInterval/IntervalMultiplier until a NotifyResp arrives
 * or NotifExpiration passes; TimeToLive removes a subscription; Periodic! fires every
 * PeriodicNotifInterval. OnBoardRequest is sent with send_resp and never expires (R-NOT.6 note).
 * Other sides (the CWMP interworking) raise device events through event()/valueChange().
 * A Notify goes out only when the Recipient's Roles let it read and be notified of what it is
 * about (TR-181 Permission.{i} "n" flags); what it carries is cut to what the Recipient may read.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../app/config.js';
import type { Logger } from '../../app/log.js';
import { cwmpRetryDelayMs } from '../../util/backoff.js';
import type { ChangeEvent, Row } from '../dm/memory.js';
import { type Coordination, SingleInstance } from './coordination.js';
import { type LocalAgent, SUBSCRIPTION_TABLE, SUPPORTED_USP_VERSIONS } from './local-agent.js';
import { matchesInstantiated, parsePath, splitReferenceList, type UspPath } from '../path/index.js';
import { decodeMsg, encodeMsg, type Msg, type Notify, type OperationComplete } from '../codec/record.js';
import type { PendingNotify, Store } from '../../store/types.js';
import { type DmRouter, modelPaths } from '../dm/router.js';
import { type Access, accessOf } from '../trust/access.js';
import { type NotifType, notificationAllowed } from '../trust/notifications.js';

interface Pending {
  agentEid: string;
  controllerEid: string;
  msg: Msg;
  attempt: number;
  expiresAt: number;
  timer: NodeJS.Timeout | null;
}

export interface DeviceIdentity {
  oui: string;
  productClass: string;
  serialNumber: string;
}

/** How a Notify leaves: the endpoint's agent-initiated send (true when some MTP, or another instance, took it). */
export interface NotifySender {
  sendToController(agentEid: string, controllerEid: string, msg: Msg): Promise<boolean>;
}

export interface NotifierOptions {
  localAgent: LocalAgent;
  endpoint: NotifySender;
  /** Defaults of the retry and Periodic! parameters (a Controller row's own values win). */
  usp: Pick<Config['usp'], 'notifRetryMinWaitS' | 'notifRetryMultiplier' | 'periodicNotifIntervalS'>;
  log: Logger;
  /** Keeps unanswered send_resp Notifies across restarts; none: they live in memory only. */
  store?: Store | null;
  /** Several instances sharing one store (default: this one alone). */
  coordination?: Coordination;
  /** OUI/ProductClass/Serial for OnBoardRequest (the device's Inform DeviceId); default: unknown (empty). */
  deviceIdentity?: (agentEid: string) => Promise<DeviceIdentity | null>;
  /** The agents' models, to evaluate Role Targets that select instances by value; none: such Targets match nothing. */
  router?: DmRouter;
  /** Notifications an agent does not send (a device handed over to its native agent, docs/migration.md). */
  quiet?: (agentEid: string, type: NotifType, path: string) => boolean;
}

export class Notifier {
  private seq = 0;
  /** Per process: msg_ids stay unique across instances and restarts (NotifyResp matching). */
  private readonly idBase = randomBytes(3).toString('hex');
  private readonly pending = new Map<string, Pending>();
  /** TimeToLive timers per "agent|instance". */
  private readonly ttl = new Map<string, NodeJS.Timeout>();
  /** Periodic! timers per "agent|controllerEid". */
  private readonly periodic = new Map<string, NodeJS.Timeout>();
  private readonly refCache = new Map<string, UspPath | null>();
  private stopped = false;
  private readonly localAgent: LocalAgent;
  private readonly endpoint: NotifySender;
  private readonly usp: NotifierOptions['usp'];
  private readonly log: Logger;
  private readonly store: Store | null;
  private readonly coordination: Coordination;
  private readonly deviceIdentity: (agentEid: string) => Promise<DeviceIdentity | null>;
  private readonly router: DmRouter | null;
  private readonly quiet: NonNullable<NotifierOptions['quiet']>;

  constructor(opts: NotifierOptions) {
    this.quiet = opts.quiet ?? (() => false);
    this.localAgent = opts.localAgent;
    this.endpoint = opts.endpoint;
    this.usp = opts.usp;
    this.log = opts.log;
    this.store = opts.store ?? null;
    this.coordination = opts.coordination ?? new SingleInstance();
    this.deviceIdentity = opts.deviceIdentity ?? (async () => null);
    this.router = opts.router ?? null;
    this.localAgent.on('change', (e) => this.onChange(e));
    this.localAgent.on('onBoardRequest', ({ agentEid, controllerEid }) => void this.onBoardRequest(agentEid, controllerEid));
    // Another instance re-seeded the agent's rows: its timers follow the rows as stored now.
    this.localAgent.on('reloaded', ({ agentEid }) => this.rearm(agentEid));
    // Several instances: the NotifyResp for a Notify retried here may reach another instance.
    this.coordination.on('notifyResp', ({ agentEid, controllerEid, msgId }) => this.delivered(agentEid, controllerEid, msgId));
  }

  /** Arms TimeToLive and Periodic! timers for agents whose subscriptions were restored, and resumes unanswered Notify retries. */
  async start(agents: readonly string[]): Promise<void> {
    for (const a of agents) {
      this.localAgent.model.tree(a);
      this.rearm(a);
    }
    this.resume((await this.store?.listPendingNotifies()) ?? []);
  }

  /** Retries unanswered send_resp Notifies (after a restart, or taken over from a stopped instance). */
  resume(list: readonly PendingNotify[]): void {
    for (const n of list) {
      let msg: Msg;
      try {
        msg = decodeMsg(n.msg);
      } catch {
        void this.store?.deletePendingNotify(n.msgId).catch(() => undefined);
        continue;
      }
      const p: Pending = { agentEid: n.agentEid, controllerEid: n.controllerEid, msg, attempt: n.attempt, expiresAt: n.expiresAt ?? Infinity, timer: null };
      this.pending.set(n.msgId, p);
      this.scheduleRetry(n.msgId, p);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    for (const t of this.ttl.values()) clearTimeout(t);
    for (const t of this.periodic.values()) clearTimeout(t);
    this.pending.clear();
    this.ttl.clear();
    this.periodic.clear();
  }

  /** A NotifyResp arrived (R-NOT.9): the notification is delivered. */
  acknowledged(agentEid: string, controllerEid: string, msgId: string): void {
    // Several instances: the NotifyResp may reach another instance than the one retrying.
    if (!this.delivered(agentEid, controllerEid, msgId)) this.coordination.relayNotifyResp(agentEid, controllerEid, msgId);
  }

  /** Stops retrying the Notify msgId; false when this instance does not retry it. */
  private delivered(agentEid: string, controllerEid: string, msgId: string): boolean {
    const p = this.pending.get(msgId);
    if (!p) return false;
    if (p.agentEid !== agentEid || p.controllerEid !== controllerEid) return true;
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(msgId);
    void this.store?.deletePendingNotify(msgId).catch(() => undefined);
    return true;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** A parameter of the agent's model changed value (ValueChange subscriptions). */
  valueChange(agentEid: string, paramPath: string, value: string): void {
    this.fire(agentEid, 'ValueChange', paramPath, { notification: 'valueChange', valueChange: { paramPath, paramValue: value } });
  }

  /** An event of the agent's model (Boot!, TransferComplete!, Periodic!...). */
  event(agentEid: string, objPath: string, eventName: string, params: Record<string, string>): void {
    this.fire(agentEid, 'Event', objPath + eventName, { notification: 'event', event: { objPath, eventName, params } });
  }

  objectCreation(agentEid: string, objPath: string, uniqueKeys: Record<string, string>): void {
    this.fire(agentEid, 'ObjectCreation', objPath, { notification: 'objCreation', objCreation: { objPath, uniqueKeys } });
  }

  objectDeletion(agentEid: string, objPath: string): void {
    this.fire(agentEid, 'ObjectDeletion', objPath, { notification: 'objDeletion', objDeletion: { objPath } });
  }

  operationComplete(agentEid: string, n: OperationComplete, _requestPath: string): void {
    this.fire(agentEid, 'OperationComplete', `${n.objPath}${n.commandName}`, { notification: 'operComplete', operComplete: n });
  }

  // ------------------------------------------------------------------ internals

  private onChange(e: ChangeEvent): void {
    if (e.schemaPath === 'Device.LocalAgent.Subscription.{i}.') this.rearm(e.agentEid);
    if (
      e.schemaPath === 'Device.LocalAgent.Controller.{i}.' &&
      e.kind === 'set' &&
      e.changed &&
      ('PeriodicNotifInterval' in e.changed || 'PeriodicNotifTime' in e.changed)
    )
      this.rearm(e.agentEid);
    if (e.kind === 'add') {
      const keys = this.uniqueKeysOf(e.agentEid, e.path);
      this.objectCreation(e.agentEid, e.path, keys);
    } else if (e.kind === 'delete') this.objectDeletion(e.agentEid, e.path);
    else if (e.changed) for (const [k, v] of Object.entries(e.changed)) this.valueChange(e.agentEid, e.path + k, v);
  }

  private uniqueKeysOf(agentEid: string, path: string): Record<string, string> {
    const o = this.localAgent.model.objects.get(path.replace(/\.\d+\./g, '.{i}.').replace(/\.\d+\./g, '.{i}.'));
    const values = this.localAgent.model.objectValues(agentEid, path) ?? {};
    const out: Record<string, string> = {};
    for (const set of o?.uniqueKeys ?? []) for (const k of set) out[k] = values[k] ?? '';
    return out;
  }

  private ref(text: string): UspPath | null {
    let r = this.refCache.get(text);
    if (r === undefined) {
      try {
        r = parsePath(text);
      } catch {
        r = null;
      }
      if (this.refCache.size > 10_000) this.refCache.clear();
      this.refCache.set(text, r);
    }
    return r;
  }

  /** Does a ReferenceList entry cover this path? Object entries cover everything below them. */
  private covers(ref: string, path: string): boolean {
    if (ref === path) return true;
    const ast = this.ref(ref);
    if (!ast) return false;
    if (ast.kind === 'object') {
      // "Device.LocalAgent.Subscription." covers its instances ("...Subscription.3.").
      return matchesInstantiated(ast, path.endsWith('.') || path.endsWith(')') || path.endsWith('!') ? path : path, {
        mode: 'prefix',
        searchMatchesAnyInstance: true,
      });
    }
    return matchesInstantiated(ast, path, { mode: 'exact', searchMatchesAnyInstance: true });
  }

  private fire(agentEid: string, type: NotifType, path: string, body: Omit<Notify, 'subscriptionId' | 'sendResp'>): void {
    if (this.stopped || this.quiet(agentEid, type, path)) return;
    for (const { instance, values } of this.localAgent.subscriptions(agentEid)) {
      if (values.Enable !== 'true' || values.NotifType !== type) continue;
      // A Subscription is active once it exists: its own creation is not news to it (TP-469 1.57).
      if (type === 'ObjectCreation' && path === `${SUBSCRIPTION_TABLE}${instance}.`) continue;
      const refs = splitReferenceList(values.ReferenceList ?? '');
      if (!refs.some((r) => this.covers(r, path))) continue;
      void this.deliver(agentEid, values, type, path, body);
    }
  }

  private async deliver(agentEid: string, sub: Row, type: NotifType, path: string, body: Omit<Notify, 'subscriptionId' | 'sendResp'>): Promise<void> {
    const controllerEid = this.localAgent.controllerEidOfRow(agentEid, sub.Recipient ?? '');
    if (!controllerEid) return;
    // The Recipient's rights now (its Roles may have changed since it subscribed).
    const access = await this.accessOf(agentEid, controllerEid);
    if (!notificationAllowed((p, op) => access.permitted(p, op), type, path)) {
      this.log.debug({ agentEid, controllerEid, type, path }, 'Notify not sent: the Recipient may not read or be notified of it');
      return;
    }
    body = readableBody(access, body);
    const sendResp = sub.NotifRetry === 'true';
    const exp = Number(sub.NotifExpiration ?? '0');
    await this.send(agentEid, controllerEid, { subscriptionId: sub.ID ?? '', sendResp, ...body }, sendResp, exp > 0 ? Date.now() + exp * 1000 : Infinity);
  }

  private async send(agentEid: string, controllerEid: string, notify: Notify, retry: boolean, expiresAt: number): Promise<void> {
    const msgId = `notify-${this.idBase}-${Date.now().toString(36)}-${++this.seq}`;
    const msg: Msg = { header: { msgId, msgType: 'NOTIFY' }, body: { msgBody: 'request', request: { reqType: 'notify', notify } } };
    const ok = await this.endpoint.sendToController(agentEid, controllerEid, msg);
    if (!ok) this.log.warn({ agentEid, controllerEid }, 'Notify could not be sent now');
    if (!retry) return;
    const p: Pending = { agentEid, controllerEid, msg, attempt: 1, expiresAt, timer: null };
    this.pending.set(msgId, p);
    await this.persist(msgId, p);
    this.scheduleRetry(msgId, p);
  }

  /** TR-369 Notify retry: m*(k/1000)^(n-1) .. m*(k/1000)^n seconds, per the Recipient's row. */
  private scheduleRetry(msgId: string, p: Pending): void {
    const row = this.localAgent.controllerValues(p.agentEid, p.controllerEid);
    const minWaitS = Number(row?.USPNotifRetryMinimumWaitInterval ?? this.usp.notifRetryMinWaitS);
    const multiplier = Number(row?.USPNotifRetryIntervalMultiplier ?? this.usp.notifRetryMultiplier);
    const delay = cwmpRetryDelayMs(p.attempt, { minWaitS, multiplier });
    if (Date.now() + delay > p.expiresAt) {
      this.pending.delete(msgId);
      void this.store?.deletePendingNotify(msgId).catch(() => undefined);
      return;
    }
    p.timer = setTimeout(() => {
      if (!this.pending.has(msgId) || this.stopped) return;
      p.attempt++;
      void this.persist(msgId, p);
      void this.endpoint.sendToController(p.agentEid, p.controllerEid, p.msg).then(() => this.scheduleRetry(msgId, p));
    }, delay);
  }

  /** Stored so that an unanswered send_resp Notify is retried after a restart. */
  private async persist(msgId: string, p: Pending): Promise<void> {
    if (!this.store) return;
    await this.store
      .putPendingNotify({
        msgId,
        agentEid: p.agentEid,
        controllerEid: p.controllerEid,
        msg: encodeMsg(p.msg),
        attempt: p.attempt,
        expiresAt: Number.isFinite(p.expiresAt) ? p.expiresAt : null,
      })
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'storing a pending Notify failed'));
  }

  private async onBoardRequest(agentEid: string, controllerEid: string): Promise<void> {
    const id = await this.deviceIdentity(agentEid);
    await this.send(
      agentEid,
      controllerEid,
      {
        subscriptionId: '',
        sendResp: true,
        notification: 'onBoardReq',
        onBoardReq: {
          oui: id?.oui ?? '',
          productClass: id?.productClass ?? '',
          serialNumber: id?.serialNumber ?? '',
          agentSupportedProtocolVersions: SUPPORTED_USP_VERSIONS.join(','),
        },
      },
      true,
      Infinity,
    );
  }

  /** Re-arms an agent's TimeToLive and Periodic! timers from its current subscriptions. */
  rearm(agentEid: string): void {
    if (this.stopped) return;
    for (const [k, t] of this.ttl) if (k.startsWith(agentEid + '|')) clearTimeout(t), this.ttl.delete(k);
    for (const [k, t] of this.periodic) if (k.startsWith(agentEid + '|')) clearTimeout(t), this.periodic.delete(k);
    const subs = this.localAgent.subscriptions(agentEid);
    for (const { instance, values } of subs) {
      const ttl = Number(values.TimeToLive ?? '0');
      if (ttl > 0) {
        const created = Date.parse(values.CreationDate ?? '') || Date.now();
        const ms = Math.max(0, created + ttl * 1000 - Date.now());
        this.ttl.set(
          `${agentEid}|${instance}`,
          setTimeout(() => {
            this.ttl.delete(`${agentEid}|${instance}`);
            void this.claimed(`ttl|${agentEid}|${instance}|${values.CreationDate ?? ''}`, 60_000).then(async (mine) => {
              if (mine) await this.localAgent.expireSubscription(agentEid, instance);
            });
          }, ms),
        );
      }
    }
    // Periodic!: per Recipient with an enabled Event subscription on Device.LocalAgent.Periodic!
    const recipients = new Set<string>();
    for (const { values } of subs) {
      if (
        values.Enable === 'true' &&
        values.NotifType === 'Event' &&
        splitReferenceList(values.ReferenceList ?? '').some((r) => this.covers(r, 'Device.LocalAgent.Periodic!'))
      ) {
        const eid = this.localAgent.controllerEidOfRow(agentEid, values.Recipient ?? '');
        if (eid) recipients.add(eid);
      }
    }
    for (const eid of recipients) {
      const row = this.localAgent.controllerValues(agentEid, eid);
      const intervalS = Number(row?.PeriodicNotifInterval ?? this.usp.periodicNotifIntervalS);
      if (!(intervalS > 0)) continue;
      const tick = (): void => {
        this.periodic.set(`${agentEid}|${eid}`, setTimeout(tick, intervalS * 1000));
        // One Periodic! per interval slot across instances (each instance runs this timer).
        const slot = Math.floor(Date.now() / (intervalS * 1000));
        void this.claimed(`periodic|${agentEid}|${eid}|${slot}`, intervalS * 2000).then((mine) => mine && this.periodicFor(agentEid, eid));
      };
      this.periodic.set(`${agentEid}|${eid}`, setTimeout(tick, intervalS * 1000));
    }
  }

  /** A Recipient's rights on an agent (a configured controller: trusted). */
  private accessOf(agentEid: string, controllerEid: string): Promise<Access> {
    const router = this.router;
    return accessOf(this.localAgent.rolesOf(agentEid, controllerEid, true), router ? () => modelPaths(router, agentEid).backend : null);
  }

  private async claimed(key: string, ttlMs: number): Promise<boolean> {
    try {
      return await this.coordination.claimOnce(key, ttlMs);
    } catch (e) {
      this.log.warn({ key, err: (e as Error).message }, 'claiming a timer across instances failed; skipped');
      return false;
    }
  }

  private periodicFor(agentEid: string, controllerEid: string): void {
    if (this.quiet(agentEid, 'Event', 'Device.LocalAgent.Periodic!')) return;
    const row = this.localAgent.controllerRow(agentEid, controllerEid);
    for (const { values } of this.localAgent.subscriptions(agentEid)) {
      if (values.Enable !== 'true' || values.NotifType !== 'Event' || values.Recipient !== row) continue;
      if (!splitReferenceList(values.ReferenceList ?? '').some((r) => this.covers(r, 'Device.LocalAgent.Periodic!'))) continue;
      void this.deliver(agentEid, values, 'Event', 'Device.LocalAgent.Periodic!', {
        notification: 'event',
        event: { objPath: 'Device.LocalAgent.', eventName: 'Periodic!', params: {} },
      });
    }
  }
}

/**
 * What a Notify may carry to this Recipient: ObjectCreation unique keys it may read (as R-ADD.6 for
 * AddResp); the Boot! ParameterMap entries it may read (TR-181 Boot!: values of BootParameters).
 */
function readableBody(access: Access, body: Omit<Notify, 'subscriptionId' | 'sendResp'>): Omit<Notify, 'subscriptionId' | 'sendResp'> {
  if (body.notification === 'objCreation' && body.objCreation) {
    const { objPath, uniqueKeys } = body.objCreation;
    const keys = Object.fromEntries(Object.entries(uniqueKeys ?? {}).filter(([k]) => access.permitted(`${objPath}${k}`, 'Param.r')));
    return { ...body, objCreation: { ...body.objCreation, uniqueKeys: keys } };
  }
  if (body.notification === 'event' && body.event?.eventName === 'Boot!' && body.event.params?.ParameterMap) {
    let map: unknown = null;
    try {
      map = JSON.parse(body.event.params.ParameterMap);
    } catch {
      // not checkable, so not sent
    }
    const entries = map !== null && typeof map === 'object' && !Array.isArray(map) ? Object.entries(map) : [];
    const kept = Object.fromEntries(entries.filter(([p]) => access.permitted(p, 'Param.r')));
    return { ...body, event: { ...body.event, params: { ...body.event.params, ParameterMap: JSON.stringify(kept) } } };
  }
  return body;
}

export { SUBSCRIPTION_TABLE };
