/**
 * Conformance harness (TP-469 agent cases, CONFORMANCE.md): one proxied agent built exactly as
 * src/usp/agent-side.ts builds it, but without sockets: the real config loader (3 configured
 * controllers: two full, one read-only), an in-memory SQLite store, LocalAgent, DmRouter,
 * Notifier. The Notifier's endpoint is a fake whose sendToController records every Notify.
 * Every request and response goes through encodeMsg/decodeMsg so the wire shapes are real.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/app/config.js';
import { silentLogger } from '../../src/app/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { DmRouter } from '../../src/usp/dm/router.js';
import { handle, type HandlerContext } from '../../src/usp/handlers/index.js';
import { LocalAgent, SUPPORTED_USP_VERSIONS } from '../../src/usp/agent/local-agent.js';
import { type DeviceIdentity, Notifier } from '../../src/usp/agent/notify.js';
import { decodeMsg, encodeMsg, type Msg, type MsgType, type Notify, type Request } from '../../src/usp/codec/record.js';

export const AGENT = 'os::012345-SN0001';
export const C1 = 'proto::controller-1';
export const C2 = 'proto::controller-2';
export const RO = 'proto::controller-ro';
export type Who = 'c1' | 'c2' | 'ro';
const EID: Record<Who, string> = { c1: C1, c2: C2, ro: RO };

export interface SentNotify {
  agentEid: string;
  controllerEid: string;
  msg: Msg;
  at: number;
}

export interface HarnessOptions {
  /** Extra `usp.*` configuration (e.g. notifRetryMinWaitS, periodicNotifIntervalS). */
  usp?: Record<string, unknown>;
  /** Store to use (default: a fresh ':memory:' SQLite store). */
  store?: Store;
}

const REQ_TYPE: Record<NonNullable<Request['reqType']>, MsgType> = {
  get: 'GET',
  set: 'SET',
  add: 'ADD',
  delete: 'DELETE',
  operate: 'OPERATE',
  notify: 'NOTIFY',
  getSupportedDm: 'GET_SUPPORTED_DM',
  getInstances: 'GET_INSTANCES',
  getSupportedProtocol: 'GET_SUPPORTED_PROTO',
  register: 'REGISTER',
  deregister: 'DEREGISTER',
};

let seq = 0;

/** A request Msg, e.g. requestMsg('get', { paramPaths: [...] }). */
export function requestMsg<K extends NonNullable<Request['reqType']>>(reqType: K, body: NonNullable<Request[K]>): Msg {
  return { header: { msgId: `conf-${++seq}`, msgType: REQ_TYPE[reqType] }, body: { msgBody: 'request', request: { reqType, [reqType]: body } as Request } };
}

/** Encode and decode: the Msg exactly as the peer would see it (protobufjs toObject, oneofs named). */
export function wire(m: Msg): Msg {
  return decodeMsg(encodeMsg(m));
}

export class Harness {
  readonly config: Config;
  readonly store: Store;
  readonly localAgent: LocalAgent;
  readonly router: DmRouter;
  readonly notifier: Notifier;
  /** Notify Msgs the agent sent (decoded from the wire), oldest first. */
  readonly sent: SentNotify[] = [];
  /** When false, sendToController reports the controller unreachable (the Notify is still recorded). */
  reachable = true;
  /** The device identity OnBoardRequest reports (none: empty fields). */
  identity: DeviceIdentity | null = null;
  private readonly dir: string;

  constructor(opts: HarnessOptions = {}) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'conformance-'));
    const file = path.join(this.dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        usp: { mqtt: { url: 'mqtt://127.0.0.1:1883', topic: '/usp/agent' }, notifRetryMinWaitS: 1, notifRetryMultiplier: 2000, ...(opts.usp ?? {}) },
        controllers: [
          { endpointId: C1, role: 'full', mqtt: { topic: '/usp/controller-1' } },
          { endpointId: C2, role: 'full', mqtt: { topic: '/usp/controller-2' } },
          { endpointId: RO, role: 'read-only', mqtt: { topic: '/usp/controller-ro' } },
        ],
        log: { level: 'silent' },
      }),
    );
    this.config = loadConfig({ file, env: {} });
    this.store = opts.store ?? openSqliteStore(':memory:');
    this.localAgent = new LocalAgent(this.config, this.store, '1.2.3-test');
    this.router = new DmRouter([this.localAgent.model]);
    const endpoint = {
      sendToController: async (agentEid: string, controllerEid: string, msg: Msg): Promise<boolean> => {
        this.sent.push({ agentEid, controllerEid, msg: wire(msg), at: Date.now() });
        return this.reachable;
      },
    };
    this.notifier = new Notifier({
      localAgent: this.localAgent,
      endpoint,
      usp: this.config.usp,
      log: silentLogger(),
      deviceIdentity: async () => this.identity,
    });
  }

  /** As AgentSide.start(): restore stored subscriptions, arm their timers. */
  async start(): Promise<this> {
    await this.localAgent.restore();
    this.notifier.start(this.localAgent.agentsWithSubscriptions());
    return this;
  }

  ctx(who: Who = 'c1'): HandlerContext {
    const controllerEid = EID[who];
    return {
      agentEid: AGENT,
      controllerEid,
      trusted: true,
      role: this.config.controllers.find((c) => c.endpointId === controllerEid)!.role,
      router: this.router,
      localAgent: this.localAgent,
      versions: SUPPORTED_USP_VERSIONS,
      operationComplete: (a, n, p) => this.notifier.operationComplete(a, n, p),
      notifyResp: (a, c, id) => this.notifier.acknowledged(a, c, id),
    };
  }

  /** Sends a request Msg as a controller; the response as decoded from the wire (null: no response). */
  async request(msg: Msg, who: Who = 'c1'): Promise<Msg | null> {
    const resp = await handle(this.ctx(who), wire(msg));
    return resp ? wire(resp) : null;
  }

  /** request() that must answer. */
  async ask(msg: Msg, who: Who = 'c1'): Promise<Msg> {
    const r = await this.request(msg, who);
    if (!r) throw new Error('no response');
    return r;
  }

  /** The controller's NotifyResp to one of our Notify Msgs. */
  async notifyResp(n: SentNotify, who: Who = 'c1'): Promise<void> {
    const sub = n.msg.body.request!.notify!.subscriptionId ?? '';
    const resp: Msg = {
      header: { msgId: n.msg.header.msgId, msgType: 'NOTIFY_RESP' },
      body: { msgBody: 'response', response: { respType: 'notifyResp', notifyResp: { subscriptionId: sub } } },
    };
    await this.request(resp, who);
  }

  notifies(pred: (n: Notify) => boolean = () => true): SentNotify[] {
    return this.sent.filter((s) => s.msg.body.request?.notify && pred(s.msg.body.request.notify));
  }

  // ---------------------------------------------------------------- request shorthands

  get(paramPaths: string[], maxDepth?: number, who: Who = 'c1'): Promise<Msg> {
    return this.ask(requestMsg('get', { paramPaths, ...(maxDepth !== undefined ? { maxDepth } : {}) }), who);
  }

  add(objPath: string, settings: Record<string, string | [string, boolean]>, allowPartial = false, who: Who = 'c1'): Promise<Msg> {
    return this.ask(requestMsg('add', { allowPartial, createObjs: [{ objPath, paramSettings: settingsOf(settings) }] }), who);
  }

  addMany(objs: { objPath: string; settings: Record<string, string | [string, boolean]> }[], allowPartial: boolean, who: Who = 'c1'): Promise<Msg> {
    return this.ask(requestMsg('add', { allowPartial, createObjs: objs.map((o) => ({ objPath: o.objPath, paramSettings: settingsOf(o.settings) })) }), who);
  }

  set(objPath: string, settings: Record<string, string | [string, boolean]>, allowPartial = false, who: Who = 'c1'): Promise<Msg> {
    return this.ask(requestMsg('set', { allowPartial, updateObjs: [{ objPath, paramSettings: settingsOf(settings) }] }), who);
  }

  delete(objPaths: string[], allowPartial = false, who: Who = 'c1'): Promise<Msg> {
    return this.ask(requestMsg('delete', { allowPartial, objPaths }), who);
  }

  /** Adds a Subscription (allow_partial false); its instance path. */
  async subscribe(settings: Record<string, string>, who: Who = 'c1'): Promise<string> {
    const r = await this.add('Device.LocalAgent.Subscription.', settings, false, who);
    const ok = r.body.response?.addResp?.createdObjResults[0]?.operStatus?.operSuccess;
    if (!ok) throw new Error(`subscription not created: ${JSON.stringify(r.body)}`);
    return ok.instantiatedPath!;
  }

  /** Values of one object (Get of its path), as a flat map of relative names. */
  async values(objPath: string, who: Who = 'c1'): Promise<Record<string, string>> {
    const r = await this.get([objPath], 1, who);
    return r.body.response?.getResp?.reqPathResults[0]?.resolvedPathResults[0]?.resultParams ?? {};
  }

  async instances(tablePath: string): Promise<number[]> {
    return (await this.router.instances(AGENT, tablePath)) ?? [];
  }

  close(): void {
    this.notifier.stop();
    this.localAgent.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function settingsOf(settings: Record<string, string | [string, boolean]>): { param: string; value: string; required: boolean }[] {
  return Object.entries(settings).map(([param, v]) => (Array.isArray(v) ? { param, value: v[0], required: v[1] } : { param, value: v, required: true }));
}

export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  return new Harness(opts).start();
}

/** Lets queued promise callbacks (Notify sends) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
