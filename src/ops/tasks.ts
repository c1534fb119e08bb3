/**
 * Northbound tasks (docs/nbi.md): work an operator queues for one device over the admin API
 * (POST /api/devices/{key}/tasks): writes and commands as raw CWMP RPCs through the session
 * engine's enqueue() (the queue the USP side uses: a device offline now gets them in its next
 * session), reads through the interworking layer's device access, and connection requests. Tasks live in memory only, bounded in count and age;
 * a restart forgets them (the RPCs they queued stay queued in the store).
 */
import { randomUUID } from 'node:crypto';
import type { RpcOutcome } from '../cwmp/session-types.js';
import type { AcsRequest, CpeResponse, Fault, ParameterValueStruct } from '../cwmp/types.js';
import { isSecret, securedValue } from '../interworking/values.js';

export const TASK_TYPES = ['get', 'set', 'add', 'delete', 'reboot', 'factoryReset', 'download', 'refresh', 'connectionRequest'] as const;
export type TaskType = (typeof TASK_TYPES)[number];
export type TaskStatus = 'queued' | 'running' | 'done' | 'failed';

/** A task as the API shows it: never a password (a Download's credentials are not kept here). */
export interface TaskView {
  id: string;
  deviceKey: string;
  type: TaskType;
  status: TaskStatus;
  createdAt: string;
  finishedAt: string | null;
  /** The CWMP RPC sent (none for connectionRequest). */
  method: AcsRequest['method'] | null;
  result?: unknown;
  /** The CPE's cwmp Fault (TR-069 A.5). */
  fault?: { faultCode: number; faultString: string; parameters?: Array<{ name: string; faultCode: number; faultString: string }> };
  /** Why the task could not be carried out (device unreachable at the deadline, cancelled, ...). */
  error?: string;
}

/** A malformed task request: HTTP 400 with this message. */
export class TaskRequestError extends Error {}

/** What a parsed task does: an RPC for the engine, or a connection request. */
export type TaskAction = { kind: 'rpc'; rpc: AcsRequest } | { kind: 'read'; what: ReadWhat } | { kind: 'connectionRequest' };

/** What a read task reads: parameters by name (get) or a whole subtree learned again (refresh). */
export type ReadWhat = { names: string[] } | { object: string };

/** What the task list needs from the proxy (a narrow port, not the proxy). */
export interface TaskPorts {
  /** SessionEngine.enqueue: resolves with the CPE's response or Fault, rejects with RpcError. */
  enqueue(deviceKey: string, rpc: AcsRequest, opts: { deadlineMs: number }): Promise<RpcOutcome>;
  /**
   * Reads through the interworking layer's device access (names learned with GetParameterNames,
   * explicit-name GetParameterValues in batches: ARCHITECTURE.md). Rejects with a UspError (code
   * 7002: unreachable) or an RpcError.
   */
  read(deviceKey: string, what: ReadWhat): Promise<ParameterValueStruct[]>;
  /** Calls the listener with the device key of every Inform (a device offline before is back). */
  onInform(listener: (deviceKey: string) => void): void;
  /** Whether the device is in a CWMP session now (a queued RPC is then about to be sent). */
  inSession(deviceKey: string): Promise<boolean>;
  /** Wakes the device; resolves with whether it answered. */
  connectionRequest(deviceKey: string): Promise<{ ok: boolean; detail?: string }>;
}

export interface TaskListOptions {
  /** Tasks kept (finished ones are dropped oldest first beyond this; a full list of unfinished ones refuses new tasks). */
  maxTasks: number;
  /** A finished task is forgotten this long after it finished (ms). */
  keepMs: number;
  /** An RPC not sent within this long fails as unreachable (ms; the device never came back). */
  deadlineMs: number;
}

export const DEFAULT_TASK_OPTIONS: TaskListOptions = { maxTasks: 10_000, keepMs: 24 * 3600_000, deadlineMs: 24 * 3600_000 };

const MAX_NAMES = 256;
const MAX_PATH = 512;
const MAX_VALUE = 65_536;
const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.([A-Za-z_][A-Za-z0-9_-]*|\d+))*\.?$/;
const XSD = /^xsd:[A-Za-z]+$/;

function pathArg(v: unknown, what: string, object: boolean): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PATH || !PATH.test(v)) throw new TaskRequestError(`${what} must be a parameter path`);
  if (object && !v.endsWith('.')) throw new TaskRequestError(`${what} must be an object path ending in "."`);
  return v;
}

function strArg(body: Record<string, unknown>, key: string, def: string, max = 1024): string {
  const v = body[key];
  if (v === undefined) return def;
  if (typeof v !== 'string' || v.length > max) throw new TaskRequestError(`${key} must be a string of at most ${max} characters`);
  return v;
}

function uintArg(body: Record<string, unknown>, key: string, def: number): number {
  const v = body[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TaskRequestError(`${key} must be an unsigned integer`);
  return v;
}

/**
 * The RPC of a task request ({type, ...args}, docs/nbi.md). Paths are the device's own CWMP
 * paths (Device. or InternetGatewayDevice.). `types` gives the xsi:type of a Set value the
 * request leaves out (learned from the device model; else xsd:string).
 */
export function parseTask(raw: unknown, types: ReadonlyMap<string, string> = new Map()): { type: TaskType; action: TaskAction } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TaskRequestError('body: {"type": one of ' + TASK_TYPES.join('|') + ', ...}');
  const body = raw as Record<string, unknown>;
  const type = body.type as TaskType;
  if (!TASK_TYPES.includes(type)) throw new TaskRequestError(`type must be one of ${TASK_TYPES.join(', ')}`);
  const rpc = (r: AcsRequest): { type: TaskType; action: TaskAction } => ({ type, action: { kind: 'rpc', rpc: r } });
  const key = () => strArg(body, 'parameterKey', '', 32);
  switch (type) {
    case 'get': {
      const names = body.names;
      if (!Array.isArray(names) || names.length === 0 || names.length > MAX_NAMES)
        throw new TaskRequestError(`names must be a list of 1 to ${MAX_NAMES} paths`);
      return { type, action: { kind: 'read', what: { names: names.map((n, i) => pathArg(n, `names[${i}]`, false)) } } };
    }
    case 'refresh':
      return { type, action: { kind: 'read', what: { object: pathArg(body.object, 'object', true) } } };
    case 'set': {
      const values = body.values;
      if (!Array.isArray(values) || values.length === 0 || values.length > MAX_NAMES)
        throw new TaskRequestError(`values must be a list of 1 to ${MAX_NAMES} {"name", "value", "type"?}`);
      const parameterList: ParameterValueStruct[] = values.map((v, i) => {
        if (typeof v !== 'object' || v === null) throw new TaskRequestError(`values[${i}] must be {"name", "value", "type"?}`);
        const { name, value, type: t } = v as Record<string, unknown>;
        const n = pathArg(name, `values[${i}].name`, false);
        if (n.endsWith('.')) throw new TaskRequestError(`values[${i}].name must be a parameter, not an object`);
        const val = typeof value === 'number' || typeof value === 'boolean' ? String(value) : value;
        if (typeof val !== 'string' || val.length > MAX_VALUE) throw new TaskRequestError(`values[${i}].value must be a string`);
        if (t !== undefined && (typeof t !== 'string' || !XSD.test(t)))
          throw new TaskRequestError(`values[${i}].type must be an xsd type such as "xsd:boolean"`);
        return { name: n, value: val, type: (t as string | undefined) ?? types.get(n) ?? 'xsd:string' };
      });
      return rpc({ method: 'SetParameterValues', parameterList, parameterKey: key() });
    }
    case 'add':
      return rpc({ method: 'AddObject', objectName: pathArg(body.object, 'object', true), parameterKey: key() });
    case 'delete':
      return rpc({ method: 'DeleteObject', objectName: pathArg(body.object, 'object', true), parameterKey: key() });
    case 'reboot':
      return rpc({ method: 'Reboot', commandKey: strArg(body, 'commandKey', '', 32) });
    case 'factoryReset':
      return rpc({ method: 'FactoryReset' });
    case 'download': {
      const url = strArg(body, 'url', '');
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new TaskRequestError('url must be an absolute http(s) or ftp URL');
      }
      if (!['http:', 'https:', 'ftp:'].includes(parsed.protocol)) throw new TaskRequestError('url must be an absolute http(s) or ftp URL');
      return rpc({
        method: 'Download',
        commandKey: strArg(body, 'commandKey', '', 32),
        fileType: strArg(body, 'fileType', '1 Firmware Upgrade Image', 64),
        url,
        username: strArg(body, 'username', '', 256),
        password: strArg(body, 'password', '', 256),
        fileSize: uintArg(body, 'fileSize', 0),
        targetFileName: strArg(body, 'targetFileName', '', 256),
        delaySeconds: uintArg(body, 'delaySeconds', 0),
        successURL: '',
        failureURL: '',
      });
    }
    case 'connectionRequest':
      return { type, action: { kind: 'connectionRequest' } };
  }
}

/** A response as the API shows it; secured parameters read as their null value (TR-069 A.3.2.2). */
export function taskResult(r: CpeResponse): unknown {
  switch (r.method) {
    case 'GetParameterValuesResponse':
      return { parameters: r.parameterList.map((p) => ({ name: p.name, value: isSecret(p.name) ? securedValue(p.type) : p.value, type: p.type })) };
    case 'SetParameterValuesResponse':
    case 'DeleteObjectResponse':
      return { status: r.status };
    case 'AddObjectResponse':
      return { instanceNumber: r.instanceNumber, status: r.status };
    case 'DownloadResponse':
      return { status: r.status, startTime: r.startTime, completeTime: r.completeTime };
    default:
      return {};
  }
}

function faultView(f: Fault): NonNullable<TaskView['fault']> {
  const out: NonNullable<TaskView['fault']> = { faultCode: f.faultCode, faultString: f.faultString };
  if (f.setParameterValuesFault.length > 0)
    out.parameters = f.setParameterValuesFault.map((p) => ({ name: p.parameterName, faultCode: p.faultCode, faultString: p.faultString }));
  return out;
}

interface Entry {
  view: TaskView;
  /** Epoch ms when finished; 0 while unfinished. */
  finishedMs: number;
}

/** The tasks of all devices, newest last (a Map keeps insertion order). */
export class TaskList {
  private readonly tasks = new Map<string, Entry>();
  /** Read tasks waiting for their device's next Inform, per device key. */
  private readonly informWaiters = new Map<string, Set<(ok: boolean) => void>>();
  private readonly opts: TaskListOptions;

  constructor(
    private readonly ports: TaskPorts,
    opts: Partial<TaskListOptions> = {},
  ) {
    this.opts = { ...DEFAULT_TASK_OPTIONS, ...opts };
    ports.onInform((deviceKey) => {
      for (const f of [...(this.informWaiters.get(deviceKey) ?? [])]) f(true);
    });
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Starts a task; throws TaskRequestError (HTTP 429 in the API) when maxTasks unfinished tasks are pending. */
  start(deviceKey: string, type: TaskType, action: TaskAction): TaskView {
    this.prune(Date.now());
    if (this.tasks.size >= this.opts.maxTasks) throw new TaskListFull(`${this.tasks.size} tasks are pending (admin.tasks.max)`);
    const view: TaskView = {
      id: randomUUID(),
      deviceKey,
      type,
      status: 'queued',
      createdAt: new Date().toISOString(),
      finishedAt: null,
      method: action.kind === 'rpc' ? action.rpc.method : action.kind === 'read' ? 'GetParameterValues' : null,
    };
    const entry: Entry = { view, finishedMs: 0 };
    this.tasks.set(view.id, entry);
    const finish = (patch: Partial<TaskView>) => {
      Object.assign(view, patch, { finishedAt: new Date().toISOString() });
      entry.finishedMs = Date.now();
    };
    if (action.kind === 'connectionRequest') {
      view.status = 'running';
      this.ports.connectionRequest(deviceKey).then(
        (r) => finish(r.ok ? { status: 'done', result: { ok: true } } : { status: 'failed', error: `connection request failed: ${r.detail ?? 'no answer'}` }),
        (e: Error) => finish({ status: 'failed', error: e.message }),
      );
    } else if (action.kind === 'read') {
      this.read(deviceKey, action.what, Date.now() + this.opts.deadlineMs).then(
        (list) => finish({ status: 'done', result: taskResult({ method: 'GetParameterValuesResponse', parameterList: list }) }),
        (e: Error & { code?: number; reason?: string }) =>
          finish({ status: 'failed', error: e.code ? `USP ${e.code}: ${e.message}` : e.reason ? `${e.reason}: ${e.message}` : e.message }),
      );
    } else {
      this.ports.enqueue(deviceKey, action.rpc, { deadlineMs: this.opts.deadlineMs }).then(
        (o) => finish(o.kind === 'response' ? { status: 'done', result: taskResult(o.response) } : { status: 'failed', fault: faultView(o.fault) }),
        (e: Error & { reason?: string }) => finish({ status: 'failed', error: e.reason ? `${e.reason}: ${e.message}` : e.message }),
      );
    }
    return { ...view };
  }

  /**
   * A read with the deadline of a queued RPC: the device access gives up at the connection-request
   * deadline, so an unreachable device's read waits for its next Inform and is tried again (until
   * the task's deadline).
   */
  private async read(deviceKey: string, what: ReadWhat, deadline: number): Promise<ParameterValueStruct[]> {
    for (;;) {
      const informed = this.nextInform(deviceKey, deadline);
      try {
        const out = await this.ports.read(deviceKey, what);
        informed.cancel();
        return out;
      } catch (e) {
        const err = e as { code?: number; reason?: string };
        if (err.code !== 7002 && err.reason !== 'unreachable') {
          informed.cancel();
          throw e;
        }
        if (!(await informed.promise)) throw new Error(`unreachable: the device did not connect within admin.tasks.deadlineS`);
      }
    }
  }

  /** Resolves true at the device's next Inform, false at the deadline. */
  private nextInform(deviceKey: string, deadline: number): { promise: Promise<boolean>; cancel(): void } {
    let done: (ok: boolean) => void = () => undefined;
    const promise = new Promise<boolean>((resolve) => (done = resolve));
    const set = this.informWaiters.get(deviceKey) ?? new Set();
    this.informWaiters.set(deviceKey, set);
    const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
    timer.unref();
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      set.delete(finish);
      if (set.size === 0 && this.informWaiters.get(deviceKey) === set) this.informWaiters.delete(deviceKey);
      done(ok);
    };
    set.add(finish);
    return { promise, cancel: () => finish(false) };
  }

  /** A task's state; 'running' while its RPC's device is in session. Null when unknown or forgotten. */
  async get(id: string): Promise<TaskView | null> {
    this.prune(Date.now());
    const e = this.tasks.get(id);
    if (!e) return null;
    const v = { ...e.view };
    if (v.status === 'queued' && (await this.ports.inSession(v.deviceKey)) && e.view.status === 'queued') v.status = 'running';
    return v;
  }

  /** The tasks of one device, oldest first. */
  async forDevice(deviceKey: string): Promise<TaskView[]> {
    this.prune(Date.now());
    const ids = [...this.tasks.values()].filter((e) => e.view.deviceKey === deviceKey).map((e) => e.view.id);
    return (await Promise.all(ids.map((id) => this.get(id)))).filter((v): v is TaskView => v !== null);
  }

  /** Drops finished tasks older than keepMs, then the oldest finished ones beyond maxTasks. */
  private prune(now: number): void {
    let over = this.tasks.size - this.opts.maxTasks + 1;
    for (const [id, e] of this.tasks) {
      if (e.finishedMs === 0) continue;
      if (now - e.finishedMs > this.opts.keepMs || over > 0) {
        this.tasks.delete(id);
        over--;
      }
    }
  }
}

/** maxTasks unfinished tasks are pending: HTTP 429. */
export class TaskListFull extends Error {}
