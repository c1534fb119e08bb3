/**
 * Quirk profiles: switches that make a simulated CPE behave like stricter third-party CPE
 * agents seen in the field (GetParameterValues for full names only, no SetParameterAttributes,
 * HTTP/1.0, other SOAP prefixes, ...). Parsing of the `--quirks` list, and the pure decision
 * of what a quirky CPE does with one ACS request instead of answering it normally.
 */
import { CwmpFault, type CwmpMessage } from '../../cwmp/types.js';
import type { DeviceModel } from './model.js';
import { makeFault, SUPPORTED_METHODS } from './rpc.js';

/** A device's quirks; every field off/absent = a well-behaved CPE. */
export interface Quirks {
  /** GPV/GPA of a partial path or an unknown name: drop the TCP connection, then retry the session. */
  explicitNamesOnly?: boolean;
  /** SetParameterAttributes -> Fault 9000. */
  noSpa?: boolean;
  /** Never sends 4 VALUE CHANGE (attributes are stored, then ignored). */
  noValueChange?: boolean;
  /** Ignores Set-Cookie. */
  noCookies?: boolean;
  /** SOAP envelope prefix; '' = default namespace, no prefix; absent = the codec's soap-env. */
  soapPrefix?: string;
  /** HTTP/1.0 requests with Connection: Keep-Alive. */
  http10?: boolean;
  /** Every HTTP request is sent this many ms after the previous answer arrived. */
  slowMs?: number;
  /** Fault 9004 on a GetParameterValues of more than this many names. */
  maxGpv?: number;
  /** GetParameterNames NextLevel=false on the root object -> Fault 9004. */
  noDeepGpn?: boolean;
  /** On one of these ACS RPCs: close the TCP connection and stay silent until the next periodic Inform or connection request. */
  dropOn?: readonly string[];
  /** A TR-181 CPE with its own USP Agent, started when its LocalAgent/MQTT settings are set (native-agent.ts). */
  dualStack?: boolean;
}

/** The strictest profile seen in the field (preset `strict`); tests and benches use it. */
export const STRICT_QUIRKS: readonly string[] = ['explicit-names-only', 'no-cookies', 'soap-prefix=SOAP-ENV', 'http10'];

/** One line of help per quirk (for `simulate --help` and the sweep). */
export const QUIRK_HELP: ReadonlyArray<readonly [string, string]> = [
  ['explicit-names-only', 'GetParameterValues/Attributes of a partial path or unknown name: drop the connection, retry the session'],
  ['no-spa', 'SetParameterAttributes -> Fault 9000 (and not listed in GetRPCMethods)'],
  ['no-value-change', 'never send 4 VALUE CHANGE (notification attributes are stored but ignored)'],
  ['no-cookies', 'ignore Set-Cookie (never send Cookie)'],
  ['soap-prefix=P', 'SOAP envelope prefix P (SOAP-ENV, soapenv, soap, ...); empty = default namespace, no prefix'],
  ['http10', 'HTTP/1.0 requests with Connection: Keep-Alive'],
  ['slow=MS', 'send every HTTP request MS ms after the previous answer arrived'],
  ['max-gpv=N', 'Fault 9004 on a GetParameterValues of more than N names'],
  ['no-deep-gpn', 'GetParameterNames NextLevel=false on the root object -> Fault 9004'],
  ['drop-on=METHOD', 'on that ACS RPC, close the connection and stay silent until the next periodic Inform or connection request'],
  ['dual-stack', 'TR-181 only: a native USP Agent over MQTT, started when Device.LocalAgent./Device.MQTT.Client.1. are set and enabled'],
  ['strict', `preset: ${STRICT_QUIRKS.join(',')}`],
  ['none', 'no quirks (the default)'],
];

const MAX_SLOW_MS = 600_000;
/** XML NCName (ASCII subset): a namespace prefix. */
const NCNAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses a quirk list ("explicit-names-only,no-cookies", "strict", "none", or the items as an
 * array). Throws an Error naming the offending item for unknown quirks and bad values.
 */
export function parseQuirks(spec: string | readonly string[]): Quirks {
  const items = (typeof spec === 'string' ? spec.split(',') : spec).map((s) => s.trim()).filter((s) => s !== '');
  const q: Quirks = {};
  const dropOn: string[] = [];
  if (items.includes('none')) {
    if (items.length > 1) throw new Error('quirk "none" cannot be combined with other quirks');
    return q;
  }
  for (const item of items) {
    if (item === 'strict') for (const s of STRICT_QUIRKS) apply(q, s, dropOn);
    else apply(q, item, dropOn);
  }
  if (dropOn.length > 0) q.dropOn = dropOn;
  return q;
}

function apply(q: Quirks, item: string, dropOn: string[]): void {
  const eq = item.indexOf('=');
  const key = eq < 0 ? item : item.slice(0, eq);
  const value = eq < 0 ? undefined : item.slice(eq + 1);
  // Flags may repeat (e.g. strict,http10); a valued quirk may not change its value.
  const once = <K extends 'soapPrefix' | 'slowMs' | 'maxGpv'>(k: K, v: NonNullable<Quirks[K]>): void => {
    if (q[k] !== undefined && q[k] !== v) throw new Error(`quirk "${key}" given twice with different values ("${String(q[k])}", "${String(v)}")`);
    q[k] = v;
  };
  const flag = (): true => {
    if (value !== undefined) throw new Error(`quirk "${key}" takes no value (got "${item}")`);
    return true;
  };
  const need = (what: string): string => {
    if (value === undefined) throw new Error(`quirk "${key}" needs a value: ${key}=${what}`);
    return value;
  };
  const int = (what: string, min: number, max: number): number => {
    const v = need(what);
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`quirk "${key}": ${what} must be an integer from ${min} to ${max} (got "${v}")`);
    return n;
  };
  switch (key) {
    case 'explicit-names-only':
      q.explicitNamesOnly = flag();
      break;
    case 'no-spa':
      q.noSpa = flag();
      break;
    case 'no-value-change':
      q.noValueChange = flag();
      break;
    case 'no-cookies':
      q.noCookies = flag();
      break;
    case 'http10':
      q.http10 = flag();
      break;
    case 'no-deep-gpn':
      q.noDeepGpn = flag();
      break;
    case 'dual-stack':
      q.dualStack = flag();
      break;
    case 'soap-prefix': {
      const p = need('PREFIX');
      if (p !== '' && (!NCNAME.test(p) || /^xml/i.test(p))) throw new Error(`quirk "soap-prefix": "${p}" is not a usable XML namespace prefix`);
      once('soapPrefix', p);
      break;
    }
    case 'slow':
      once('slowMs', int('MS', 0, MAX_SLOW_MS));
      break;
    case 'max-gpv':
      once('maxGpv', int('N', 1, 1_000_000));
      break;
    case 'drop-on': {
      const m = need('METHOD');
      if (!(SUPPORTED_METHODS as readonly string[]).includes(m)) {
        throw new Error(`quirk "drop-on": unknown ACS method "${m}" (one of ${SUPPORTED_METHODS.join(', ')})`);
      }
      if (!dropOn.includes(m)) dropOn.push(m);
      break;
    }
    default:
      throw new Error(`unknown quirk "${item}" (known: ${QUIRK_HELP.map(([k]) => k).join(', ')})`);
  }
}

/** The quirk list back as text (e.g. for logs and reports); "none" when there is none. */
export function formatQuirks(q: Quirks): string {
  const out: string[] = [];
  if (q.explicitNamesOnly) out.push('explicit-names-only');
  if (q.noSpa) out.push('no-spa');
  if (q.noValueChange) out.push('no-value-change');
  if (q.noCookies) out.push('no-cookies');
  if (q.soapPrefix !== undefined) out.push(`soap-prefix=${q.soapPrefix}`);
  if (q.http10) out.push('http10');
  if (q.slowMs !== undefined) out.push(`slow=${q.slowMs}`);
  if (q.maxGpv !== undefined) out.push(`max-gpv=${q.maxGpv}`);
  if (q.noDeepGpn) out.push('no-deep-gpn');
  if (q.dualStack) out.push('dual-stack');
  for (const m of q.dropOn ?? []) out.push(`drop-on=${m}`);
  return out.length > 0 ? out.join(',') : 'none';
}

// ---------------------------------------------------------------- behaviour

/** Instead of answering: close the TCP connection. `retry`: start a new session after the retry delay (TR-069 3.2.1.1). */
export interface QuirkDrop {
  retry: boolean;
  reason: string;
}

export type QuirkOutcome = { answer: CwmpMessage } | { drop: QuirkDrop };

/**
 * What a CPE with these quirks does with one ACS request, or null to answer it normally.
 * Pure apart from reading the model.
 */
export function quirkOutcome(q: Quirks, model: DeviceModel, msg: CwmpMessage | { method: string }): QuirkOutcome | null {
  const m = msg as CwmpMessage;
  if (q.dropOn?.includes(m.method)) return { drop: { retry: false, reason: `drop-on=${m.method}` } };
  switch (m.method) {
    case 'GetRPCMethods':
      if (q.noSpa) return { answer: { method: 'GetRPCMethodsResponse', methodList: SUPPORTED_METHODS.filter((x) => x !== 'SetParameterAttributes') } };
      return null;
    case 'SetParameterAttributes':
      return q.noSpa ? { answer: makeFault(CwmpFault.MethodNotSupported, 'Method not supported: SetParameterAttributes') } : null;
    case 'GetParameterValues':
    case 'GetParameterAttributes': {
      const names = m.parameterNames ?? [];
      if (m.method === 'GetParameterValues' && q.maxGpv !== undefined && names.length > q.maxGpv) {
        return { answer: makeFault(CwmpFault.ResourcesExceeded, `Resources exceeded: ${names.length} names, at most ${q.maxGpv}`) };
      }
      if (q.explicitNamesOnly) {
        const bad = names.find((n) => !isExplicitName(model, n));
        if (bad !== undefined) return { drop: { retry: true, reason: `explicit-names-only: ${m.method} of "${bad}"` } };
      }
      return null;
    }
    case 'GetParameterNames': {
      const p = m.parameterPath ?? '';
      if (q.noDeepGpn && !m.nextLevel && (p === '' || p === model.root)) {
        return { answer: makeFault(CwmpFault.ResourcesExceeded, `Resources exceeded: GetParameterNames of ${model.root} with NextLevel false`) };
      }
      return null;
    }
    default:
      return null;
  }
}

/** A full name of a parameter the device has (not a partial path, not an object). */
function isExplicitName(model: DeviceModel, name: string): boolean {
  if (name === '' || name.endsWith('.')) return false;
  const n = model.node(name);
  return n !== undefined && !n.object;
}
