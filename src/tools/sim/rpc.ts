/**
 * A simulated CPE's answers to ACS RPCs (TR-069 A.3.2), against its DeviceModel. Pure
 * apart from the model: actions that happen after the session (reboot, transfers,
 * diagnostics, scheduled informs) are handed back to the caller as PostActions.
 */
import {
  CwmpFault,
  type CwmpMessage,
  type Download,
  type Fault,
  type ParameterAttributeStruct,
  type ParameterInfoStruct,
  type ParameterValueStruct,
  type SetParameterValuesFaultStruct,
  type Upload,
} from '../../cwmp/types.js';
import { type DeviceModel, lastSegment, parentOf } from './model.js';

export type PostAction =
  | { kind: 'reboot'; commandKey: string }
  | { kind: 'factoryReset' }
  | { kind: 'download'; req: Download; startTime: string }
  | { kind: 'upload'; req: Upload; startTime: string }
  | { kind: 'scheduleInform'; delaySeconds: number; commandKey: string }
  | { kind: 'diagnostics'; object: string }
  | { kind: 'periodicChanged' };

export interface RpcContext {
  readonly model: DeviceModel;
  /** Current value, including computed ones (UpTime). */
  get(path: string): string | undefined;
  /** Queues something to do once the session has ended. */
  post(action: PostAction): void;
}

export const SUPPORTED_METHODS = [
  'GetRPCMethods',
  'GetParameterNames',
  'GetParameterValues',
  'SetParameterValues',
  'GetParameterAttributes',
  'SetParameterAttributes',
  'AddObject',
  'DeleteObject',
  'Reboot',
  'FactoryReset',
  'Download',
  'Upload',
  'ScheduleInform',
] as const;

/** TR-069 A.5.1 fault strings and SOAP faultcode (Client for request errors, Server otherwise). */
const FAULT_TEXT: Record<number, [string, 'Client' | 'Server']> = {
  9000: ['Method not supported', 'Server'],
  9001: ['Request denied', 'Server'],
  9002: ['Internal error', 'Server'],
  9003: ['Invalid arguments', 'Client'],
  9004: ['Resources exceeded', 'Server'],
  9005: ['Invalid parameter name', 'Client'],
  9006: ['Invalid parameter type', 'Client'],
  9007: ['Invalid parameter value', 'Client'],
  9008: ['Attempt to set a non-writable parameter', 'Client'],
  9009: ['Notification request rejected', 'Server'],
  9010: ['Download failure', 'Server'],
  9011: ['Upload failure', 'Server'],
  9012: ['File transfer server authentication failure', 'Server'],
  9013: ['Unsupported protocol for file transfer', 'Server'],
};

export function faultString(code: number): string {
  return FAULT_TEXT[code]?.[0] ?? 'Fault';
}

export function makeFault(code: number, text?: string, spv: SetParameterValuesFaultStruct[] = []): Fault {
  return {
    method: 'Fault',
    soapFaultCode: FAULT_TEXT[code]?.[1] ?? 'Server',
    faultCode: code,
    faultString: text ?? faultString(code),
    setParameterValuesFault: spv,
  };
}

/** Thrown inside a handler to answer with a Fault. */
class RpcFault extends Error {
  constructor(
    readonly code: number,
    text?: string,
  ) {
    super(text ?? faultString(code));
  }
}

/** Unknown date for transfer times not yet known (TR-069 A.3.2.8). */
export const UNKNOWN_TIME = '0001-01-01T00:00:00Z';

/** Answers one ACS request (by method name; unknown methods get 9000). */
export function handleRpc(ctx: RpcContext, msg: CwmpMessage | { method: string }): CwmpMessage {
  try {
    return dispatch(ctx, msg as CwmpMessage);
  } catch (e) {
    if (e instanceof RpcFault) return makeFault(e.code, e.message);
    return makeFault(CwmpFault.InternalError, `Internal error: ${(e as Error).message}`);
  }
}

function dispatch(ctx: RpcContext, msg: CwmpMessage): CwmpMessage {
  const m = ctx.model;
  switch (msg.method) {
    case 'GetRPCMethods':
      return { method: 'GetRPCMethodsResponse', methodList: [...SUPPORTED_METHODS] };
    case 'GetParameterNames':
      return { method: 'GetParameterNamesResponse', parameterList: getNames(m, msg.parameterPath ?? '', !!msg.nextLevel) };
    case 'GetParameterValues': {
      const out: ParameterValueStruct[] = [];
      for (const name of msg.parameterNames ?? []) {
        for (const p of expandParams(m, name)) {
          const n = m.node(p)!;
          out.push({ name: p, value: ctx.get(p) ?? '', type: n.type || 'xsd:string' });
        }
      }
      return { method: 'GetParameterValuesResponse', parameterList: out };
    }
    case 'SetParameterValues':
      return setValues(ctx, msg.parameterList ?? [], msg.parameterKey ?? '');
    case 'GetParameterAttributes': {
      const out: ParameterAttributeStruct[] = [];
      for (const name of msg.parameterNames ?? []) {
        for (const p of expandParams(m, name)) {
          const a = m.attr(p);
          out.push({ name: p, notification: a.notification, accessList: [...a.accessList] });
        }
      }
      return { method: 'GetParameterAttributesResponse', parameterList: out };
    }
    case 'SetParameterAttributes': {
      // Validate everything first: the request is atomic (A.3.2.4).
      const plan: Array<[string[], (typeof msg.parameterList)[number]]> = [];
      for (const s of msg.parameterList ?? []) {
        const paths = expandParams(m, s.name);
        if (s.notificationChange) {
          if (!Number.isInteger(s.notification) || s.notification < 0 || s.notification > 2) {
            throw new RpcFault(CwmpFault.NotificationRequestRejected, `Notification ${s.notification} not supported for ${s.name}`);
          }
          // TR-181/TR-098: UpTime denies active notification (it changes every second).
          if (s.notification === 2 && paths.some((p) => p.endsWith('DeviceInfo.UpTime'))) {
            throw new RpcFault(CwmpFault.NotificationRequestRejected, `Active notification rejected for ${s.name}`);
          }
        }
        plan.push([paths, s]);
      }
      for (const [paths, s] of plan) {
        for (const p of paths) {
          const cur = m.attr(p);
          m.setAttr(p, {
            notification: s.notificationChange ? s.notification : cur.notification,
            accessList: s.accessListChange ? [...s.accessList] : cur.accessList,
          });
        }
      }
      return { method: 'SetParameterAttributesResponse' };
    }
    case 'AddObject': {
      const t = msg.objectName ?? '';
      if (!t.endsWith('.') || !m.isTable(t)) throw new RpcFault(CwmpFault.InvalidParameterName, `Not a multi-instance object: ${t}`);
      if (!m.node(t)!.writable) throw new RpcFault(CwmpFault.RequestDenied, `Object is not creatable: ${t}`);
      const n = m.addInstance(t);
      setParameterKey(m, msg.parameterKey);
      return { method: 'AddObjectResponse', instanceNumber: n, status: 0 };
    }
    case 'DeleteObject': {
      const o = msg.objectName ?? '';
      const table = parentOf(o);
      if (!o.endsWith('.') || !/^\d+$/.test(lastSegment(o)) || !m.has(o) || !m.isTable(table)) {
        throw new RpcFault(CwmpFault.InvalidParameterName, `No such object instance: ${o}`);
      }
      if (!m.node(table)!.writable && !m.node(o)!.writable) throw new RpcFault(CwmpFault.RequestDenied, `Object is not deletable: ${o}`);
      m.deleteInstance(o);
      setParameterKey(m, msg.parameterKey);
      return { method: 'DeleteObjectResponse', status: 0 };
    }
    case 'Reboot':
      ctx.post({ kind: 'reboot', commandKey: msg.commandKey ?? '' });
      return { method: 'RebootResponse' };
    case 'FactoryReset':
      ctx.post({ kind: 'factoryReset' });
      return { method: 'FactoryResetResponse' };
    case 'Download': {
      checkTransfer(msg.url, msg.fileType, /^[1-6X] /);
      ctx.post({ kind: 'download', req: msg, startTime: new Date().toISOString() });
      return { method: 'DownloadResponse', status: 1, startTime: UNKNOWN_TIME, completeTime: UNKNOWN_TIME };
    }
    case 'Upload': {
      checkTransfer(msg.url, msg.fileType, /^[1-4X] /);
      ctx.post({ kind: 'upload', req: msg, startTime: new Date().toISOString() });
      return { method: 'UploadResponse', status: 1, startTime: UNKNOWN_TIME, completeTime: UNKNOWN_TIME };
    }
    case 'ScheduleInform': {
      const d = Number(msg.delaySeconds);
      if (!Number.isInteger(d) || d < 1) throw new RpcFault(CwmpFault.InvalidArguments, 'DelaySeconds must be at least 1');
      ctx.post({ kind: 'scheduleInform', delaySeconds: d, commandKey: msg.commandKey ?? '' });
      return { method: 'ScheduleInformResponse' };
    }
    default:
      throw new RpcFault(CwmpFault.MethodNotSupported, `Method not supported: ${(msg as { method: string }).method}`);
  }
}

function checkTransfer(url: string | undefined, fileType: string | undefined, types: RegExp): void {
  if (!url) throw new RpcFault(CwmpFault.InvalidArguments, 'URL is required');
  if (!/^(https?|ftp):\/\//i.test(url)) throw new RpcFault(CwmpFault.UnsupportedTransferProtocol);
  if (!fileType || !types.test(fileType)) throw new RpcFault(CwmpFault.InvalidArguments, `Unsupported FileType: ${fileType ?? ''}`);
}

function setParameterKey(m: DeviceModel, key: string | undefined): void {
  const p = m.root + 'ManagementServer.ParameterKey';
  if (m.has(p)) m.set(p, key ?? '');
}

/** GetParameterNames (A.3.2.3). */
export function getNames(m: DeviceModel, path: string, nextLevel: boolean): ParameterInfoStruct[] {
  const info = (p: string): ParameterInfoStruct => ({ name: p, writable: m.node(p)!.writable });
  if (path === '') return nextLevel ? [info(m.root)] : [...m.walk(m.root)].map(info);
  const n = m.node(path);
  if (!n || n.object !== path.endsWith('.')) throw new RpcFault(CwmpFault.InvalidParameterName, `Invalid parameter name: ${path}`);
  if (!n.object) {
    if (nextLevel) throw new RpcFault(CwmpFault.InvalidArguments, 'NextLevel must be false for a parameter name');
    return [info(path)];
  }
  if (nextLevel) return m.children(path).map(info);
  return [...m.walk(path)].map(info);
}

/** A GPV/GPA name: a parameter, or a partial path ("" = everything) expanded to its parameters. */
export function expandParams(m: DeviceModel, name: string): string[] {
  const path = name === '' ? m.root : name;
  const n = m.node(path);
  if (!n || n.object !== path.endsWith('.')) throw new RpcFault(CwmpFault.InvalidParameterName, `Invalid parameter name: ${name}`);
  if (!n.object) return [path];
  const out: string[] = [];
  for (const p of m.walk(path)) if (!p.endsWith('.')) out.push(p);
  return out;
}

// ---------------------------------------------------------------- SetParameterValues

const DIAG_STATES = new Set(['Requested', 'Canceled']);

function setValues(ctx: RpcContext, list: ParameterValueStruct[], parameterKey: string): CwmpMessage {
  const m = ctx.model;
  const faults: SetParameterValuesFaultStruct[] = [];
  const fault = (p: string, code: number, text?: string): void => {
    faults.push({ parameterName: p, faultCode: code, faultString: text ?? faultString(code) });
  };
  const seen = new Set<string>();
  const apply: Array<[string, string]> = [];
  for (const pv of list) {
    const n = m.node(pv.name);
    if (!n || n.object) {
      fault(pv.name, CwmpFault.InvalidParameterName);
      continue;
    }
    if (!n.writable) {
      fault(pv.name, CwmpFault.NonWritableParameter);
      continue;
    }
    if (seen.has(pv.name)) {
      fault(pv.name, CwmpFault.InvalidArguments, 'Parameter appears more than once');
      continue;
    }
    seen.add(pv.name);
    const declared = baseType(n.type);
    const sent = baseType(pv.type);
    if (sent && sent !== 'string' && family(sent) !== family(declared)) {
      fault(pv.name, CwmpFault.InvalidParameterType, `Invalid parameter type: expected xsd:${declared}, got ${pv.type}`);
      continue;
    }
    const value = normalizeValue(declared, pv.value);
    if (value === null) {
      fault(pv.name, CwmpFault.InvalidParameterValue, `Invalid value for xsd:${declared}: ${JSON.stringify(pv.value)}`);
      continue;
    }
    const seg = lastSegment(pv.name);
    if (seg === 'DiagnosticsState' && !DIAG_STATES.has(value)) {
      fault(pv.name, CwmpFault.InvalidParameterValue, 'DiagnosticsState can only be set to Requested or Canceled');
      continue;
    }
    if (seg === 'PeriodicInformInterval' && Number(value) < 1) {
      fault(pv.name, CwmpFault.InvalidParameterValue, 'PeriodicInformInterval must be at least 1');
      continue;
    }
    apply.push([pv.name, value]);
  }
  if (faults.length > 0) return makeFault(CwmpFault.InvalidArguments, faultString(CwmpFault.InvalidArguments), faults);
  let periodic = false;
  for (const [p, v] of apply) {
    m.set(p, v);
    const seg = lastSegment(p);
    if (seg === 'DiagnosticsState' && v === 'Requested') ctx.post({ kind: 'diagnostics', object: parentOf(p) });
    if (seg === 'PeriodicInformInterval' || seg === 'PeriodicInformEnable' || seg === 'PeriodicInformTime') periodic = true;
  }
  if (periodic) ctx.post({ kind: 'periodicChanged' });
  setParameterKey(m, parameterKey);
  return { method: 'SetParameterValuesResponse', status: 0 };
}

/** "xsd:unsignedInt" -> "unsignedInt"; "" -> "" */
export function baseType(t: string | undefined): string {
  if (!t) return '';
  const i = t.indexOf(':');
  return i >= 0 ? t.slice(i + 1) : t;
}

function family(t: string): string {
  switch (t) {
    case 'int':
    case 'unsignedInt':
    case 'long':
    case 'unsignedLong':
      return 'integer';
    case '':
      return 'string';
    default:
      return t;
  }
}

const DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const LIMITS: Record<string, [bigint, bigint]> = {
  int: [-(2n ** 31n), 2n ** 31n - 1n],
  unsignedInt: [0n, 2n ** 32n - 1n],
  long: [-(2n ** 63n), 2n ** 63n - 1n],
  unsignedLong: [0n, 2n ** 64n - 1n],
};

/** The canonical value for a type, or null if the value is not valid for it. */
export function normalizeValue(type: string, v: string): string | null {
  const t = baseType(type) || type;
  switch (t) {
    case 'boolean': {
      const s = v.trim().toLowerCase();
      if (s === 'true' || s === '1') return 'true';
      if (s === 'false' || s === '0') return 'false';
      return null;
    }
    case 'int':
    case 'unsignedInt':
    case 'long':
    case 'unsignedLong': {
      const s = v.trim();
      if (!/^[+-]?\d+$/.test(s)) return null;
      const n = BigInt(s);
      const [lo, hi] = LIMITS[t];
      return n < lo || n > hi ? null : n.toString();
    }
    case 'dateTime': {
      const s = v.trim();
      if (!DATE_RE.test(s)) return null;
      if (!s.startsWith('0001-') && Number.isNaN(Date.parse(s))) return null;
      return s;
    }
    case 'base64':
      return /^[A-Za-z0-9+/\s]*={0,2}$/.test(v) && v.replace(/\s/g, '').length % 4 === 0 ? v : null;
    case 'hexBinary':
      return /^([0-9a-fA-F]{2})*$/.test(v) ? v : null;
    default:
      return v;
  }
}
