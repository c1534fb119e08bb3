/**
 * The sweep's checks on one registered device, as a USP Controller over a real MTP: each check
 * sends real USP requests through the proxy, compares the answers with what the device model
 * says (expected.ts), and looks at what reached the simulated CPE (its RPCs and bytes).
 * A check never throws: it ends ok, FAIL with a short reason, or skip when the model has
 * nothing to check.
 */
import type { Msg, Response } from '../../usp/codec/record.js';
import { add, del, get, getInstances, getSupportedDM, operate, set, type UspControllerClient } from '../controller/client.js';
import type { SessionSummary, SimDevice } from '../sim/device.js';
import type { CwmpMessage } from '../../cwmp/types.js';
import type { ExpectedModel } from './expected.js';

export const CHECKS = [
  'register',
  'get-one',
  'get-again',
  'deviceinfo',
  'supported-dm',
  'wifi-ssid',
  'hosts',
  'ipv4-address',
  'set-ssid',
  'add-delete',
  'reboot',
  'value-change',
] as const;
export type CheckName = (typeof CHECKS)[number];

export interface CheckResult {
  status: 'ok' | 'FAIL' | 'skip';
  reason?: string;
  ms: number;
}

/** What one USP request cost at the CPE: the CWMP RPCs it received and the bytes on the wire. */
export interface WireCost {
  rpcs: Record<string, number>;
  bytes: number;
  ms: number;
}

/** The CSV's identity values (DeviceInfo), compared with the Get of Device.DeviceInfo. */
export interface CsvIdentity {
  SerialNumber: string;
  Manufacturer: string;
  ModelName: string;
  SoftwareVersion: string;
}

export interface ModelChecks {
  checks: Partial<Record<CheckName, CheckResult>>;
  firstGet?: WireCost;
  steadyGet?: WireCost;
}

/** A failed expectation (the check's short reason). */
class Fail extends Error {}
class Skip extends Error {}

const ONE_PARAM = 'Device.DeviceInfo.SoftwareVersion';
const SSID_TABLE = 'Device.WiFi.SSID.';
const HOST_TABLE = 'Device.Hosts.Host.';
const IP_TABLE = 'Device.IP.Interface.';
const SUB_ID = 'sweep-vc';

export interface ModelRunDeps {
  client: UspControllerClient;
  device: SimDevice;
  expected: ExpectedModel;
  csv: CsvIdentity;
  /** Short model name, used in the values the sweep writes. */
  tag: string;
  /** Longest wait for a device-side effect (reboot, notification), ms. */
  waitMs: number;
}

/** Runs every check after `register` on one device; results in CHECKS order. */
export async function runChecks(d: ModelRunDeps, progress?: (check: CheckName, r: CheckResult) => void): Promise<ModelChecks> {
  const out: ModelChecks = { checks: {} };
  const r = new Runner(d);
  const steps: Array<[CheckName, () => Promise<string | undefined>]> = [
    ['get-one', () => r.getOne((c) => (out.firstGet = c))],
    ['get-again', () => r.getOne((c) => (out.steadyGet = c))],
    ['deviceinfo', () => r.deviceInfo()],
    ['supported-dm', () => r.supportedDm()],
    ['wifi-ssid', () => r.table(SSID_TABLE, `${SSID_TABLE}*.SSID`)],
    ['hosts', () => r.table(HOST_TABLE, `${HOST_TABLE}*.`)],
    ['ipv4-address', () => r.table(IP_TABLE, `${IP_TABLE}*.IPv4Address.*.IPAddress`)],
    ['set-ssid', () => r.setSsid()],
    ['add-delete', () => r.addDelete()],
    ['reboot', () => r.reboot()],
    ['value-change', () => r.valueChange()],
  ];
  for (const [name, fn] of steps) {
    const t0 = performance.now();
    let res: CheckResult;
    try {
      const note = await fn();
      res = { status: 'ok', ms: 0, ...(note ? { reason: note } : {}) };
    } catch (e) {
      res = { status: e instanceof Skip ? 'skip' : 'FAIL', reason: oneLine((e as Error).message), ms: 0 };
    }
    res.ms = Math.round(performance.now() - t0);
    out.checks[name] = res;
    progress?.(name, res);
  }
  return out;
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

/** The response body of a Msg; a USP Error Msg is a failure. */
function responseOf(m: Msg): Response {
  if (m.body.msgBody === 'error') {
    const e = m.body.error;
    const p = e?.paramErrs[0];
    throw new Fail(`USP Error ${e?.errCode ?? '?'} ${e?.errMsg ?? ''}${p ? ` (${p.paramPath}: ${p.errCode} ${p.errMsg ?? ''})` : ''}`);
  }
  if (!m.body.response) throw new Fail(`unexpected ${m.header.msgType}`);
  return m.body.response;
}

/** "a, b, c (+4 more)" */
function some(list: readonly string[], n = 3): string {
  return list.length <= n ? list.join(', ') : `${list.slice(0, n).join(', ')} (+${list.length - n} more)`;
}

/** Differences between two path -> value maps, or '' when equal. */
export function diffValues(got: ReadonlyMap<string, string>, want: ReadonlyMap<string, string>): string {
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  const wrong = [...want].filter(([k, v]) => got.has(k) && got.get(k) !== v).map(([k, v]) => `${k}=${JSON.stringify(got.get(k))} (want ${JSON.stringify(v)})`);
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${some(missing)}`);
  if (wrong.length) parts.push(`wrong ${some(wrong, 2)}`);
  if (extra.length) parts.push(`unexpected ${some(extra)}`);
  return parts.join('; ');
}

function numericOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

class Runner {
  private seen: Array<CwmpMessage | { method: string }> = [];

  constructor(private readonly d: ModelRunDeps) {
    d.device.on('rpc', (msg: CwmpMessage) => this.seen.push(msg));
  }

  private req(m: Msg, timeoutMs?: number): Promise<Msg> {
    return this.d.client.request(m, timeoutMs);
  }

  /** The ACS RPCs the device received while fn ran. */
  private async watch<T>(fn: () => Promise<T>): Promise<{ result: T; rpcs: Array<CwmpMessage | { method: string }> }> {
    const from = this.seen.length;
    const result = await fn();
    return { result, rpcs: this.seen.slice(from) };
  }

  /** Flattened values of one Get path: concrete path -> value. */
  private async getValues(path: string): Promise<Map<string, string>> {
    const r = responseOf(await this.req(get([path])));
    const rp = r.getResp?.reqPathResults[0];
    if (!rp) throw new Fail(`Get ${path}: no result`);
    if (rp.errCode) throw new Fail(`Get ${path}: USP ${rp.errCode} ${rp.errMsg ?? ''}`);
    const out = new Map<string, string>();
    for (const res of rp.resolvedPathResults) for (const [k, v] of Object.entries(res.resultParams)) out.set((res.resolvedPath ?? '') + k, v);
    return out;
  }

  /** A Get of one parameter; what it cost at the CPE goes to `cost`, answered or not. */
  async getOne(cost: (c: WireCost) => void): Promise<string> {
    const st = this.d.device.stats;
    const before = { rpcs: { ...st.rpcsReceived }, bytes: st.bytesSent + st.bytesReceived };
    const t0 = performance.now();
    let error: unknown;
    let got: Map<string, string> | undefined;
    try {
      got = await this.getValues(ONE_PARAM);
    } catch (e) {
      error = e;
    }
    const rpcs: Record<string, number> = {};
    for (const [m, n] of Object.entries(st.rpcsReceived)) if (n - (before.rpcs[m] ?? 0) > 0) rpcs[m] = n - (before.rpcs[m] ?? 0);
    const c = { rpcs, bytes: st.bytesSent + st.bytesReceived - before.bytes, ms: Math.round(performance.now() - t0) };
    cost(c);
    if (error) throw error;
    const v = got!.get(ONE_PARAM);
    if (v !== this.d.csv.SoftwareVersion) throw new Fail(`${ONE_PARAM}=${JSON.stringify(v)}, want ${JSON.stringify(this.d.csv.SoftwareVersion)}`);
    return describeCost(c);
  }

  async deviceInfo(): Promise<undefined> {
    const got = await this.getValues('Device.DeviceInfo.');
    const bad: string[] = [];
    for (const [k, want] of Object.entries(this.d.csv)) {
      const v = got.get(`Device.DeviceInfo.${k}`);
      if (v !== want) bad.push(`${k}=${JSON.stringify(v)} (want ${JSON.stringify(want)})`);
    }
    if (bad.length) throw new Fail(bad.join('; '));
    return undefined;
  }

  async supportedDm(): Promise<string> {
    const r = responseOf(await this.req(getSupportedDM(['Device.'])));
    const ro = r.getSupportedDmResp?.reqObjResults[0];
    if (!ro) throw new Fail('no result');
    if (ro.errCode) throw new Fail(`USP ${ro.errCode} ${ro.errMsg ?? ''}`);
    const objs = new Set(ro.supportedObjs.map((o) => o.supportedObjPath ?? ''));
    const want = ['Device.DeviceInfo.'];
    for (const t of [SSID_TABLE, HOST_TABLE, IP_TABLE]) if (this.d.expected.instances(t) !== null) want.push(`${t}{i}.`);
    const missing = want.filter((w) => !objs.has(w));
    if (missing.length) throw new Fail(`not in the supported model: ${some(missing)}`);
    const params = ro.supportedObjs.reduce((n, o) => n + o.supportedParams.length, 0);
    return `${objs.size} objects, ${params} parameters`;
  }

  /** GetInstances of a table (and the tables below it) and a Get of `pattern`, against the model. */
  async table(table: string, pattern: string): Promise<string> {
    const want = this.d.expected.instances(table);
    if (want === null) throw new Skip(`the model has no ${table}`);
    const r = responseOf(await this.req(getInstances([table], false)));
    const rp = r.getInstancesResp?.reqPathResults[0];
    if (!rp) throw new Fail('GetInstances: no result');
    if (rp.errCode) throw new Fail(`GetInstances ${table}: USP ${rp.errCode} ${rp.errMsg ?? ''}`);
    const got = rp.currInsts.map((c) => c.instantiatedObjPath ?? '').sort(numericOrder);
    const wantSorted = [...want].sort(numericOrder);
    const missing = wantSorted.filter((p) => !got.includes(p));
    const extra = got.filter((p) => !wantSorted.includes(p));
    if (missing.length || extra.length) {
      throw new Fail(
        `GetInstances ${table}: ${[missing.length ? `missing ${some(missing)}` : '', extra.length ? `unexpected ${some(extra)}` : ''].filter(Boolean).join('; ')}`,
      );
    }
    const values = await this.getValues(pattern);
    const diff = diffValues(values, this.d.expected.values(pattern));
    if (diff) throw new Fail(`Get ${pattern}: ${diff}`);
    return `${got.length} instances, ${values.size} values`;
  }

  private firstSsid(): string | null {
    const l = (this.d.expected.instances(SSID_TABLE) ?? []).filter((p) => /^Device\.WiFi\.SSID\.\d+\.$/.test(p)).sort(numericOrder);
    return l[0] ?? null;
  }

  async setSsid(): Promise<undefined> {
    const inst = this.firstSsid();
    if (!inst) throw new Skip('the model has no Device.WiFi.SSID. instance');
    const path = `${inst}SSID`;
    const value = `sweep-${this.d.tag}`.slice(0, 32);
    let native: Array<{ path: string; value: string }>;
    try {
      native = this.d.expected.nativeSet(path, value);
    } catch (e) {
      throw new Skip(`${path} is not writable on this model (${(e as Error).message})`);
    }
    const { result, rpcs } = await this.watch(async () => responseOf(await this.req(set([{ objPath: inst, params: { SSID: value }, required: true }]))));
    const st = result.setResp?.updatedObjResults[0]?.operStatus;
    if (st?.operStatus !== 'operSuccess') {
      const f = st?.operFailure;
      throw new Fail(
        `Set: ${f ? `USP ${f.errCode} ${f.errMsg ?? ''} ${f.updatedInstFailures[0]?.paramErrs.map((p) => `${p.param}: ${p.errCode} ${p.errMsg ?? ''}`).join(', ') ?? ''}` : 'no result'}`,
      );
    }
    const spv = rpcs.filter((m): m is Extract<CwmpMessage, { method: 'SetParameterValues' }> => m.method === 'SetParameterValues');
    const sent = new Map(spv.flatMap((m) => m.parameterList.map((p) => [p.name, p.value] as const)));
    for (const n of native) {
      if (!sent.has(n.path)) throw new Fail(`the CPE got no SetParameterValues of ${n.path} (got ${some([...sent.keys()]) || 'none'})`);
      if (sent.get(n.path) !== n.value) throw new Fail(`the CPE got ${n.path}=${JSON.stringify(sent.get(n.path))}, want ${JSON.stringify(n.value)}`);
      const held = this.d.device.getValue(n.path);
      if (held !== n.value) throw new Fail(`the CPE holds ${n.path}=${JSON.stringify(held)}`);
    }
    const back = await this.getValues(path);
    if (back.get(path) !== value) throw new Fail(`read back ${path}=${JSON.stringify(back.get(path))}, want ${JSON.stringify(value)}`);
    return undefined;
  }

  async addDelete(): Promise<string> {
    const t = this.d.expected.writableTable();
    if (!t) throw new Skip('the model has no writable table');
    const added = await this.watch(async () => responseOf(await this.req(add([{ objPath: t.usp, params: {} }]))));
    const st = added.result.addResp?.createdObjResults[0]?.operStatus;
    if (st?.operStatus !== 'operSuccess' || !st.operSuccess?.instantiatedPath) {
      throw new Fail(`Add ${t.usp}: ${st?.operFailure ? `USP ${st.operFailure.errCode} ${st.operFailure.errMsg ?? ''}` : 'no result'}`);
    }
    const inst = st.operSuccess.instantiatedPath;
    const ao = added.rpcs.find((m): m is Extract<CwmpMessage, { method: 'AddObject' }> => m.method === 'AddObject');
    if (!ao) throw new Fail(`Add ${t.usp}: the CPE got no AddObject`);
    if (!t.accepts(ao.objectName)) throw new Fail(`Add ${t.usp}: the CPE got AddObject ${ao.objectName}, want ${t.native}`);
    const listed = responseOf(await this.req(getInstances([t.usp], true))).getInstancesResp?.reqPathResults[0];
    if (!listed?.currInsts.some((c) => c.instantiatedObjPath === inst)) {
      throw new Fail(
        `Add ${t.usp} answered ${inst}, which GetInstances does not list (${some(listed?.currInsts.map((c) => c.instantiatedObjPath ?? '') ?? []) || 'none'})`,
      );
    }
    const deleted = await this.watch(async () => responseOf(await this.req(del([inst]))));
    const ds = deleted.result.deleteResp?.deletedObjResults[0]?.operStatus;
    if (ds?.operStatus !== 'operSuccess')
      throw new Fail(`Delete ${inst}: ${ds?.operFailure ? `USP ${ds.operFailure.errCode} ${ds.operFailure.errMsg ?? ''}` : 'no result'}`);
    if (!ds.operSuccess?.affectedPaths.includes(inst)) throw new Fail(`Delete ${inst}: affected paths ${some(ds.operSuccess?.affectedPaths ?? []) || 'none'}`);
    const dob = deleted.rpcs.find((m): m is Extract<CwmpMessage, { method: 'DeleteObject' }> => m.method === 'DeleteObject');
    if (!dob) throw new Fail(`Delete ${inst}: the CPE got no DeleteObject`);
    if (!dob.objectName.startsWith(ao.objectName)) throw new Fail(`Delete ${inst}: the CPE got DeleteObject ${dob.objectName}, not in ${ao.objectName}`);
    if (this.d.device.model.has(dob.objectName)) throw new Fail(`Delete ${inst}: ${dob.objectName} is still on the CPE`);
    return `${inst} (${ao.objectName})`;
  }

  async reboot(): Promise<undefined> {
    const dev = this.d.device;
    const booted = this.nextSession((s) => s.events.includes('M Reboot'));
    try {
      const from = this.seen.length;
      const result = responseOf(await this.req(operate('Device.Reboot()', {}, { commandKey: 'sweep-reboot' })));
      const op = result.operateResp?.operationResults[0];
      if (!op) throw new Fail('Operate: no result');
      if (op.operationResp === 'cmdFailure') throw new Fail(`Operate: USP ${op.cmdFailure?.errCode} ${op.cmdFailure?.errMsg ?? ''}`);
      if (!(await this.received('Reboot', from))) throw new Fail(`the CPE got no Reboot within ${this.d.waitMs} ms`);
      const s = await booted.wait(this.d.waitMs);
      if (!s) throw new Fail(`the CPE did not come back with M Reboot within ${this.d.waitMs} ms (sessions ${dev.stats.sessions})`);
    } finally {
      booted.cancel();
    }
    return undefined;
  }

  async valueChange(): Promise<string> {
    const inst = this.firstSsid();
    const path = inst ? `${inst}SSID` : 'Device.DeviceInfo.ProvisioningCode';
    const native = this.d.expected.nativeParam(path);
    if (!native) throw new Skip(`${path} is not on this model`);
    const dev = this.d.device;
    const c = this.d.client;
    const value = `sweep-vc-${this.d.tag}`.slice(0, 32);
    let onNotify: ((m: Msg) => void) | undefined;
    const notified = new Promise<Msg>((resolve) => {
      onNotify = (m: Msg) => {
        const n = m.body.request?.notify;
        if (n?.subscriptionId === SUB_ID && n.valueChange?.paramPath === path && n.valueChange.paramValue === value) resolve(m);
      };
      c.on('notify', onNotify);
    });
    let subPath: string | undefined;
    try {
      const r = responseOf(
        await this.req(
          add([{ objPath: 'Device.LocalAgent.Subscription.', params: { Enable: 'true', ID: SUB_ID, NotifType: 'ValueChange', ReferenceList: path } }]),
        ),
      );
      const st = r.addResp?.createdObjResults[0]?.operStatus;
      if (st?.operStatus !== 'operSuccess') throw new Fail(`subscription Add: USP ${st?.operFailure?.errCode} ${st?.operFailure?.errMsg ?? ''}`);
      subPath = st.operSuccess?.instantiatedPath;
      // Give the proxy time to arm the CPE (SetParameterAttributes); one that watches by polling arms nothing.
      const armBy = Date.now() + Math.min(5000, this.d.waitMs);
      while (dev.model.attr(native).notification === 0 && Date.now() < armBy) await sleep(100);
      const armed = dev.model.attr(native).notification;
      dev.setValue(native, value);
      const half = Math.round(this.d.waitMs / 2);
      let got = await within(notified, half);
      if (!got) {
        // A proxy that compares values in the periodic sessions sees the change at the next one.
        await dev.inform(['2 PERIODIC']);
        got = await within(notified, half);
      }
      if (!got) throw new Fail(`no ValueChange Notify for ${path} within ${this.d.waitMs} ms (CPE notification attribute ${armed})`);
      return armed > 0 ? `CPE notification ${armed}` : 'without CPE notification';
    } finally {
      if (onNotify) c.off('notify', onNotify);
      if (subPath) await this.req(del([subPath])).catch(() => undefined);
    }
  }

  /** Resolves with the next session summary matching pred (null after timeout). */
  private nextSession(pred: (s: SessionSummary) => boolean): { wait(ms: number): Promise<SessionSummary | null>; cancel(): void } {
    const dev = this.d.device;
    let on: ((s: SessionSummary) => void) | undefined;
    const p = new Promise<SessionSummary>((resolve) => {
      on = (s) => {
        if (pred(s)) resolve(s);
      };
      dev.on('session', on);
    });
    return { wait: (ms) => within(p, ms), cancel: () => void (on && dev.off('session', on)) };
  }

  /** Whether the device received this RPC since `from`, waiting for it a while (an Operate may be answered before its RPC goes out). */
  private async received(method: string, from: number): Promise<boolean> {
    const until = Date.now() + this.d.waitMs;
    while (Date.now() < until) {
      if (this.seen.slice(from).some((m) => m.method === method)) return true;
      await sleep(100);
    }
    return this.seen.slice(from).some((m) => m.method === method);
  }
}

/** "3 RPCs (GetParameterNames 1, GetParameterValues 2), 1.2 MB, 850 ms" */
export function describeCost(c: WireCost): string {
  const n = Object.values(c.rpcs).reduce((a, b) => a + b, 0);
  const list = Object.entries(c.rpcs)
    .map(([m, k]) => `${m} ${k}`)
    .join(', ');
  return `${n} RPC${n === 1 ? '' : 's'}${list ? ` (${list})` : ''}, ${formatBytes(c.bytes)}, ${c.ms} ms`;
}

export function formatBytes(b: number): string {
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} kB`;
  return `${(b / 1024 / 1024).toFixed(2)} MB`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The promise's value, or null when it takes longer than ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]).finally(() => clearTimeout(timer));
}
