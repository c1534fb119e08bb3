/**
 * The CWMP (TR-069 Amendment 6) SOAP 1.1 codec: envelopes <-> typed messages (types.ts).
 * Pure functions: no I/O, no logger, no mutable globals. Both directions (ACS and CPE side):
 * the ACS decodes CPE envelopes and encodes its own, the simulator does the opposite.
 *
 * Decoding: DOCTYPE/ENTITY rejected first, then a cheap well-formedness scan
 * (soap-wellformed.ts), then one fast-xml-parser pass (module-level parser, fixed options; it
 * keeps no state between parse calls) and one walk of the tree. Namespaces are resolved by URI
 * from the xmlns declarations in scope, never by prefix, so any envelope prefix (soap-env,
 * SOAP-ENV, soapenv, soap) or a default namespace works, and the cwmp namespace may be a prefix
 * or the default namespace of the RPC element. RPC arguments are read by local name, in any
 * order. soap-enc, xsi and xsd need not be declared: arrayType is not read (the children are
 * the array) and an xsi:type value is read by its local name (xs:string, xsd:string and
 * string are all xsd:string). Values keep their exact text.
 *
 * Encoding: template strings with entity escaping (xml-escape.ts), literal prefixes
 * soap-env / soap-enc / xsd / xsi / cwmp, children in schema order (wsdl/cwmp-rpc*.xsd).
 */
import { XMLParser } from 'fast-xml-parser';
import type {
  ArgStruct,
  AutonOpResultStruct,
  CwmpMessage,
  CwmpVersion,
  DeviceIdStruct,
  EventStruct,
  FaultStruct,
  OpResultStruct,
  ParameterAttributeStruct,
  ParameterInfoStruct,
  ParameterValueStruct,
  SetParameterAttributesStruct,
  SetParameterValuesFaultStruct,
  SoapEnvelope,
} from './types.js';
import { CWMP_VERSIONS, cwmpNamespace } from './types.js';
import { escapeXml, unescapeXml, XmlEntityError } from './xml-escape.js';
import { checkWellFormed, DEFAULT_PARSE_BUDGET, ParseBudgetError, rejectDtd, WellFormednessError, type ParseBudget } from './soap-wellformed.js';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP_ENC_NS = 'http://schemas.xmlsoap.org/soap/encoding/';
export const XSD_NS = 'http://www.w3.org/2001/XMLSchema';
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
const SOAP12_ENV_NS = 'http://www.w3.org/2003/05/soap-envelope';

export type SoapErrorCode =
  | 'malformed-xml'
  | 'not-soap'
  | 'unknown-namespace'
  | 'forbidden-dtd'
  | 'unsupported-method'
  | 'invalid-message'
  /** Over the request's ParseBudget (elements, attributes, time): refused, not malformed. */
  | 'over-budget';

/**
 * Bad input to decodeSoap. When the envelope got far enough, cwmpVersion / id / method say
 * what was read, so the caller can still answer with a cwmp Fault (8000 for an unsupported
 * method, 8003 for invalid arguments) that echoes the right cwmp:ID.
 */
export class SoapError extends Error {
  override readonly name = 'SoapError';
  cwmpVersion?: CwmpVersion;
  id?: string | null;
  method?: string;
  constructor(
    readonly code: SoapErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface DecodeResult {
  /** null for an empty body (the CPE's empty POST). */
  envelope: SoapEnvelope | null;
  /** Tolerated deviations from the schema, one sentence each (at most DecodeOptions.maxWarnings). */
  warnings: string[];
  /** Warnings beyond maxWarnings, counted and not kept (a body can carry one per element). */
  warningsDropped?: number;
}

/** Limits of one decode (config acs.limits). */
export interface DecodeOptions {
  budget?: ParseBudget;
  /** Warnings kept; the rest are only counted (warningsDropped). */
  maxWarnings?: number;
}

export const DEFAULT_MAX_WARNINGS = 20;

/** A warnings list that keeps the first `max` and counts the others. */
function cappedList(max: number): { list: string[]; dropped: () => number } {
  const list: string[] = [];
  let dropped = 0;
  list.push = (...items: string[]): number => {
    for (const s of items) {
      if (list.length < max) Array.prototype.push.call(list, s);
      else dropped++;
    }
    return list.length;
  };
  return { list, dropped: () => dropped };
}

// ------------------------------------------------------------------------------- parsing

/** fast-xml-parser node in preserveOrder form: { tag: children, ':@'?: attributes } or text. */
type XNode = Record<string, unknown>;
type Attrs = Record<string, string>;
type Scope = ReadonlyMap<string, string>;

// preserveOrder + jPath:false measured fastest (no node2json pass, no path strings), and it
// gives every list as an array, so single-element arrays need no isArray table.
// processEntities is off: unescapeXml decodes the predefined and numeric references in one
// pass (fast-xml-parser leaves numeric references alone and would decode &amp;#38; twice).
const PARSER = new XMLParser({
  preserveOrder: true,
  jPath: false,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
});

const NS_TO_VERSION: ReadonlyMap<string, CwmpVersion> = new Map(CWMP_VERSIONS.map((v) => [cwmpNamespace(v), v]));
const EMPTY_SCOPE: Scope = new Map();

function tagOf(n: XNode): string {
  for (const k in n) if (k !== ':@') return k;
  return '';
}

const isMarkup = (tag: string): boolean => tag.charCodeAt(0) !== 35; /* not '#text' / '#cdata' */

function localName(q: string): string {
  const i = q.indexOf(':');
  return i === -1 ? q : q.slice(i + 1);
}

function nsOf(q: string, scope: Scope): string | undefined {
  const i = q.indexOf(':');
  return scope.get(i === -1 ? '' : q.slice(0, i));
}

function withDeclarations(attrs: Attrs | undefined, parent: Scope): Scope {
  if (attrs === undefined) return parent;
  let scope: Map<string, string> | undefined;
  for (const k in attrs) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) {
      scope ??= new Map(parent);
      scope.set(k === 'xmlns' ? '' : k.slice(6), unescapeXml(attrs[k]!));
    }
  }
  return scope ?? parent;
}

function childrenOf(n: XNode, tag: string): XNode[] {
  return n[tag] as XNode[];
}

function attrsOf(n: XNode): Attrs | undefined {
  return n[':@'] as Attrs | undefined;
}

/** Exact text content of an element (entities decoded, CDATA verbatim, child elements ignored). */
function textOf(ch: XNode[]): string {
  if (ch.length === 0) return '';
  if (ch.length === 1) {
    const t = ch[0]!['#text'];
    if (typeof t === 'string') return unescapeXml(t);
  }
  let s = '';
  for (const c of ch) {
    const t = c['#text'];
    if (typeof t === 'string') s += unescapeXml(t);
    else if (Array.isArray(c['#cdata'])) for (const d of c['#cdata'] as XNode[]) s += (d['#text'] as string | undefined) ?? '';
  }
  return s;
}

/** Element children only (whitespace text between elements dropped). */
function elementsOf(ch: XNode[]): XNode[] {
  const out: XNode[] = [];
  for (const c of ch) if (isMarkup(tagOf(c))) out.push(c);
  return out;
}

/**
 * XML Schema built-in types a CWMP value may carry (TR-069 A.2.1 names string, int, unsignedInt,
 * long, unsignedLong, boolean, dateTime, base64, hexBinary; the rest appear in the field).
 */
const XSD_BUILTINS = [
  'string',
  'int',
  'unsignedInt',
  'long',
  'unsignedLong',
  'boolean',
  'dateTime',
  'base64',
  'base64Binary',
  'hexBinary',
  'decimal',
  'double',
  'float',
  'integer',
  'short',
  'unsignedShort',
  'byte',
  'unsignedByte',
  'anyURI',
  'anySimpleType',
];
/** "xsd:string" -> itself: the spelling nearly every CPE sends, answered without any string work. */
const XSD_QNAMES: ReadonlyMap<string, string> = new Map(XSD_BUILTINS.map((t) => [`xsd:${t}`, `xsd:${t}`]));
/** Lower-cased local name -> canonical "xsd:<name>" (a CPE sending xsd:unsignedint means unsignedInt). */
const XSD_BY_LOWER: ReadonlyMap<string, string> = new Map(XSD_BUILTINS.map((t) => [t.toLowerCase(), `xsd:${t}`]));

/**
 * xsi:type of a Value, whatever prefix the attribute and its value use (xsi:type="xs:int",
 * q:type="xsd:int", xsi:type="int"), as "xsd:<local>" with the built-in names in their
 * canonical case; "xsd:string" if absent (TR-069 A.2.1: string is the default).
 */
function xsiType(attrs: Attrs | undefined): string {
  if (attrs === undefined) return 'xsd:string';
  for (const k in attrs) {
    if (k === 'xsi:type' || (k.endsWith(':type') && !k.startsWith('xmlns'))) {
      const raw = attrs[k]!;
      const known = XSD_QNAMES.get(raw);
      if (known !== undefined) return known;
      const local = localName(unescapeXml(raw).trim());
      if (local === '') return 'xsd:string';
      return XSD_BY_LOWER.get(local.toLowerCase()) ?? 'xsd:' + local;
    }
  }
  return 'xsd:string';
}

const INT_RE = /^[+-]?\d{1,15}$/;
const TRUE_RE = /^(?:1|true)$/i;
const FALSE_RE = /^(?:0|false)$/i;

/** Named fields of a struct element, by local name (first occurrence wins). */
class Fields {
  private readonly m = new Map<string, XNode>();
  constructor(
    ch: XNode[],
    private readonly where: string,
    private readonly warnings: string[],
    known: readonly string[],
  ) {
    for (const c of ch) {
      const tag = tagOf(c);
      if (!isMarkup(tag)) continue;
      const l = localName(tag);
      if (!known.includes(l)) warnings.push(`${where}: unexpected element ${tag} ignored`);
      else if (this.m.has(l)) warnings.push(`${where}: duplicate element ${tag} ignored`);
      else this.m.set(l, c);
    }
  }

  has(f: string): boolean {
    return this.m.has(f);
  }

  children(f: string): XNode[] | undefined {
    const n = this.m.get(f);
    return n === undefined ? undefined : childrenOf(n, tagOf(n));
  }

  /** Exact text; '' (with a warning) when absent. */
  text(f: string): string {
    const ch = this.children(f);
    if (ch === undefined) {
      this.warnings.push(`${this.where}: missing ${f}, taken as empty`);
      return '';
    }
    return textOf(ch);
  }

  /** Trimmed text: names, paths, times, codes, URLs. */
  token(f: string): string {
    return this.text(f).trim();
  }

  /** Text that must be present and non-empty, else the message is rejected. */
  required(f: string, message = `${this.where} is missing ${f}`): string {
    const ch = this.children(f);
    const v = ch === undefined ? '' : textOf(ch).trim();
    if (v === '') throw new SoapError('invalid-message', message);
    return v;
  }

  int(f: string, dflt = 0): number {
    const ch = this.children(f);
    if (ch === undefined) {
      this.warnings.push(`${this.where}: missing ${f}, taken as ${dflt}`);
      return dflt;
    }
    const v = textOf(ch).trim();
    if (INT_RE.test(v)) return Number(v);
    this.warnings.push(`${this.where}: ${f} "${v}" is not an integer, taken as ${dflt}`);
    return dflt;
  }

  bool(f: string): boolean {
    const ch = this.children(f);
    if (ch === undefined) {
      this.warnings.push(`${this.where}: missing ${f}, taken as false`);
      return false;
    }
    return parseBool(textOf(ch), `${this.where}/${f}`, this.warnings);
  }

  /** Items of a SOAP-encoded array: its element children, whatever arrayType claims. */
  items(f: string): XNode[] {
    const ch = this.children(f);
    if (ch === undefined) {
      this.warnings.push(`${this.where}: missing ${f}, taken as empty`);
      return [];
    }
    return elementsOf(ch);
  }
}

function parseBool(raw: string, where: string, warnings: string[]): boolean {
  const v = raw.trim();
  if (TRUE_RE.test(v)) return true;
  if (FALSE_RE.test(v)) return false;
  warnings.push(`${where}: "${v}" is not a boolean, taken as false`);
  return false;
}

function structOf(item: XNode, where: string, warnings: string[], known: readonly string[]): Fields {
  return new Fields(childrenOf(item, tagOf(item)), where, warnings, known);
}

// Hot path (Inform, GetParameterValuesResponse): no Fields object per struct.
function parameterValueList(items: XNode[], where: string, warnings: string[]): ParameterValueStruct[] {
  const out: ParameterValueStruct[] = [];
  for (const item of items) {
    let name: string | undefined;
    let value = '';
    let type = 'xsd:string';
    for (const c of childrenOf(item, tagOf(item))) {
      const tag = tagOf(c);
      if (tag === 'Name' || (isMarkup(tag) && localName(tag) === 'Name')) name = textOf(childrenOf(c, tag)).trim();
      else if (tag === 'Value' || (isMarkup(tag) && localName(tag) === 'Value')) {
        value = textOf(childrenOf(c, tag));
        type = xsiType(attrsOf(c));
      }
    }
    if (name === undefined) warnings.push(`${where}: ParameterValueStruct without Name ignored`);
    else out.push({ name, value, type });
  }
  return out;
}

function stringList(items: XNode[]): string[] {
  return items.map((i) => textOf(childrenOf(i, tagOf(i))).trim());
}

function faultStruct(f: Fields, where: string, w: string[], field = 'FaultStruct'): FaultStruct {
  const ch = f.children(field);
  if (ch === undefined) {
    w.push(`${where}: missing ${field}, taken as no fault`);
    return { faultCode: 0, faultString: '' };
  }
  const s = new Fields(ch, `${where}/${field}`, w, ['FaultCode', 'FaultString']);
  return { faultCode: s.int('FaultCode'), faultString: s.has('FaultString') ? s.text('FaultString') : '' };
}

function argList(items: XNode[], w: string[]): ArgStruct[] {
  return items.map((i) => {
    const s = structOf(i, 'RequestDownload/ArgStruct', w, ['Name', 'Value']);
    return { name: s.token('Name'), value: s.text('Value') };
  });
}

// FaultStruct: the name TransferComplete uses, which some agents carry over to Fault here.
const OP_RESULT_FIELDS = [
  'UUID',
  'DeploymentUnitRef',
  'Version',
  'CurrentState',
  'Resolved',
  'ExecutionUnitRefList',
  'StartTime',
  'CompleteTime',
  'Fault',
  'FaultStruct',
];
const AUTON_OP_RESULT_FIELDS = [...OP_RESULT_FIELDS, 'OperationPerformed'];

function opResult(s: Fields, where: string, w: string[]): OpResultStruct {
  return {
    uuid: s.token('UUID'),
    deploymentUnitRef: s.token('DeploymentUnitRef'),
    version: s.text('Version'),
    currentState: s.token('CurrentState'),
    resolved: s.bool('Resolved'),
    executionUnitRefList: s.text('ExecutionUnitRefList'),
    startTime: s.token('StartTime'),
    completeTime: s.token('CompleteTime'),
    fault: faultStruct(s, where, w, !s.has('Fault') && s.has('FaultStruct') ? 'FaultStruct' : 'Fault'),
  };
}

/**
 * The Results of a (Autonomous)DUStateChangeComplete and the other arguments. cwmp-1-2.xsd
 * repeats Results, each one OpResultStruct; CPEs also send one SOAP array
 * <Results soap-enc:arrayType="cwmp:OpResultStruct[n]"> of OpResultStruct items. Both are read:
 * a Results holding a UUID is a struct, any other Results is an array of structs.
 */
function duResults(ch: XNode[]): { structs: XNode[][]; rest: XNode[] } {
  const structs: XNode[][] = [];
  const rest: XNode[] = [];
  for (const c of ch) {
    const tag = tagOf(c);
    if (!isMarkup(tag)) continue;
    if (localName(tag) !== 'Results') {
      rest.push(c);
      continue;
    }
    const inner = elementsOf(childrenOf(c, tag));
    if (inner.some((e) => localName(tagOf(e)) === 'UUID')) structs.push(inner);
    else for (const e of inner) structs.push(childrenOf(e, tagOf(e)));
  }
  return { structs, rest };
}

type BodyDecoder = (ch: XNode[], w: string[]) => CwmpMessage;

const f = (ch: XNode[], method: string, w: string[], known: readonly string[]): Fields => new Fields(ch, method, w, known);

/** RPCs without arguments: any child element is reported as a warning. */
function empty(method: CwmpMessage['method']): BodyDecoder {
  return (ch, w) => {
    new Fields(ch, method, w, []);
    return { method } as CwmpMessage;
  };
}

const DECODERS: ReadonlyMap<string, BodyDecoder> = new Map<string, BodyDecoder>([
  [
    'Inform',
    (ch, w) => {
      const m = f(ch, 'Inform', w, ['DeviceId', 'Event', 'MaxEnvelopes', 'CurrentTime', 'RetryCount', 'ParameterList']);
      const idCh = m.children('DeviceId');
      if (idCh === undefined) throw new SoapError('invalid-message', 'Inform is missing DeviceId');
      const d = new Fields(idCh, 'Inform/DeviceId', w, ['Manufacturer', 'OUI', 'ProductClass', 'SerialNumber']);
      const deviceId: DeviceIdStruct = {
        manufacturer: d.token('Manufacturer'),
        oui: d.required('OUI', 'Inform is missing DeviceId/OUI'),
        productClass: d.has('ProductClass') ? d.token('ProductClass') : '',
        serialNumber: d.required('SerialNumber', 'Inform is missing DeviceId/SerialNumber'),
      };
      const event: EventStruct[] = m.items('Event').map((e) => {
        const s = structOf(e, 'Inform/EventStruct', w, ['EventCode', 'CommandKey']);
        return { eventCode: s.token('EventCode'), commandKey: s.has('CommandKey') ? s.text('CommandKey') : '' };
      });
      return {
        method: 'Inform',
        deviceId,
        event,
        maxEnvelopes: m.int('MaxEnvelopes', 1),
        currentTime: m.token('CurrentTime'),
        retryCount: m.int('RetryCount'),
        parameterList: parameterValueList(m.items('ParameterList'), 'Inform', w),
      };
    },
  ],
  [
    'TransferComplete',
    (ch, w) => {
      const m = f(ch, 'TransferComplete', w, ['CommandKey', 'FaultStruct', 'StartTime', 'CompleteTime']);
      return {
        method: 'TransferComplete',
        commandKey: m.text('CommandKey'),
        fault: faultStruct(m, 'TransferComplete', w),
        startTime: m.token('StartTime'),
        completeTime: m.token('CompleteTime'),
      };
    },
  ],
  [
    'AutonomousTransferComplete',
    (ch, w) => {
      const m = f(ch, 'AutonomousTransferComplete', w, [
        'AnnounceURL',
        'TransferURL',
        'IsDownload',
        'FileType',
        'FileSize',
        'TargetFileName',
        'FaultStruct',
        'StartTime',
        'CompleteTime',
      ]);
      return {
        method: 'AutonomousTransferComplete',
        announceURL: m.token('AnnounceURL'),
        transferURL: m.token('TransferURL'),
        isDownload: m.bool('IsDownload'),
        fileType: m.token('FileType'),
        fileSize: m.int('FileSize'),
        targetFileName: m.text('TargetFileName'),
        fault: faultStruct(m, 'AutonomousTransferComplete', w),
        startTime: m.token('StartTime'),
        completeTime: m.token('CompleteTime'),
      };
    },
  ],
  ['GetRPCMethods', empty('GetRPCMethods')],
  [
    'RequestDownload',
    (ch, w) => {
      const m = f(ch, 'RequestDownload', w, ['FileType', 'FileTypeArg']);
      return { method: 'RequestDownload', fileType: m.token('FileType'), fileTypeArg: argList(m.items('FileTypeArg'), w) };
    },
  ],
  [
    'Kicked',
    (ch, w) => {
      const m = f(ch, 'Kicked', w, ['Command', 'Referer', 'Arg', 'Next']);
      return { method: 'Kicked', command: m.token('Command'), referer: m.token('Referer'), arg: m.text('Arg'), next: m.token('Next') };
    },
  ],
  [
    'DUStateChangeComplete',
    (ch, w) => {
      const { structs, rest } = duResults(ch);
      const m = f(rest, 'DUStateChangeComplete', w, ['CommandKey']);
      const where = 'DUStateChangeComplete/OpResultStruct';
      if (structs.length === 0) w.push('DUStateChangeComplete: no Results');
      return {
        method: 'DUStateChangeComplete',
        results: structs.map((r) => opResult(new Fields(r, where, w, OP_RESULT_FIELDS), where, w)),
        // Optional (cwmp-1-2.xsd minOccurs 0): absent means the ChangeDUState had none.
        commandKey: m.has('CommandKey') ? m.text('CommandKey') : '',
      };
    },
  ],
  [
    'AutonomousDUStateChangeComplete',
    (ch, w) => {
      const { structs, rest } = duResults(ch);
      f(rest, 'AutonomousDUStateChangeComplete', w, []);
      const where = 'AutonomousDUStateChangeComplete/AutonOpResultStruct';
      if (structs.length === 0) w.push('AutonomousDUStateChangeComplete: no Results');
      return {
        method: 'AutonomousDUStateChangeComplete',
        results: structs.map((r): AutonOpResultStruct => {
          const s = new Fields(r, where, w, AUTON_OP_RESULT_FIELDS);
          return { ...opResult(s, where, w), operationPerformed: s.token('OperationPerformed') };
        }),
      };
    },
  ],
  [
    'GetParameterNames',
    (ch, w) => {
      const m = f(ch, 'GetParameterNames', w, ['ParameterPath', 'NextLevel']);
      return { method: 'GetParameterNames', parameterPath: m.token('ParameterPath'), nextLevel: m.bool('NextLevel') };
    },
  ],
  [
    'GetParameterValues',
    (ch, w) => {
      const m = f(ch, 'GetParameterValues', w, ['ParameterNames']);
      return { method: 'GetParameterValues', parameterNames: stringList(m.items('ParameterNames')) };
    },
  ],
  [
    'SetParameterValues',
    (ch, w) => {
      const m = f(ch, 'SetParameterValues', w, ['ParameterList', 'ParameterKey']);
      return {
        method: 'SetParameterValues',
        parameterList: parameterValueList(m.items('ParameterList'), 'SetParameterValues', w),
        parameterKey: m.text('ParameterKey'),
      };
    },
  ],
  [
    'GetParameterAttributes',
    (ch, w) => {
      const m = f(ch, 'GetParameterAttributes', w, ['ParameterNames']);
      return { method: 'GetParameterAttributes', parameterNames: stringList(m.items('ParameterNames')) };
    },
  ],
  [
    'SetParameterAttributes',
    (ch, w) => {
      const m = f(ch, 'SetParameterAttributes', w, ['ParameterList']);
      const parameterList: SetParameterAttributesStruct[] = m.items('ParameterList').map((i) => {
        const s = structOf(i, 'SetParameterAttributesStruct', w, ['Name', 'NotificationChange', 'Notification', 'AccessListChange', 'AccessList']);
        return {
          name: s.token('Name'),
          notificationChange: s.bool('NotificationChange'),
          notification: s.int('Notification'),
          accessListChange: s.bool('AccessListChange'),
          accessList: stringList(s.items('AccessList')),
        };
      });
      return { method: 'SetParameterAttributes', parameterList };
    },
  ],
  [
    'AddObject',
    (ch, w) => {
      const m = f(ch, 'AddObject', w, ['ObjectName', 'ParameterKey']);
      return { method: 'AddObject', objectName: m.token('ObjectName'), parameterKey: m.text('ParameterKey') };
    },
  ],
  [
    'DeleteObject',
    (ch, w) => {
      const m = f(ch, 'DeleteObject', w, ['ObjectName', 'ParameterKey']);
      return { method: 'DeleteObject', objectName: m.token('ObjectName'), parameterKey: m.text('ParameterKey') };
    },
  ],
  ['Reboot', (ch, w) => ({ method: 'Reboot', commandKey: f(ch, 'Reboot', w, ['CommandKey']).text('CommandKey') })],
  ['FactoryReset', empty('FactoryReset')],
  [
    'Download',
    (ch, w) => {
      const m = f(ch, 'Download', w, [
        'CommandKey',
        'FileType',
        'URL',
        'Username',
        'Password',
        'FileSize',
        'TargetFileName',
        'DelaySeconds',
        'SuccessURL',
        'FailureURL',
      ]);
      return {
        method: 'Download',
        commandKey: m.text('CommandKey'),
        fileType: m.token('FileType'),
        url: m.token('URL'),
        username: m.text('Username'),
        password: m.text('Password'),
        fileSize: m.int('FileSize'),
        targetFileName: m.text('TargetFileName'),
        delaySeconds: m.int('DelaySeconds'),
        successURL: m.token('SuccessURL'),
        failureURL: m.token('FailureURL'),
      };
    },
  ],
  [
    'Upload',
    (ch, w) => {
      const m = f(ch, 'Upload', w, ['CommandKey', 'FileType', 'URL', 'Username', 'Password', 'DelaySeconds']);
      return {
        method: 'Upload',
        commandKey: m.text('CommandKey'),
        fileType: m.token('FileType'),
        url: m.token('URL'),
        username: m.text('Username'),
        password: m.text('Password'),
        delaySeconds: m.int('DelaySeconds'),
      };
    },
  ],
  [
    'ScheduleInform',
    (ch, w) => {
      const m = f(ch, 'ScheduleInform', w, ['DelaySeconds', 'CommandKey']);
      return { method: 'ScheduleInform', delaySeconds: m.int('DelaySeconds'), commandKey: m.text('CommandKey') };
    },
  ],
  [
    'InformResponse',
    (ch, w) => ({
      method: 'InformResponse',
      maxEnvelopes: f(ch, 'InformResponse', w, ['MaxEnvelopes']).int('MaxEnvelopes', 1),
    }),
  ],
  ['TransferCompleteResponse', empty('TransferCompleteResponse')],
  ['AutonomousTransferCompleteResponse', empty('AutonomousTransferCompleteResponse')],
  ['RequestDownloadResponse', empty('RequestDownloadResponse')],
  ['KickedResponse', (ch, w) => ({ method: 'KickedResponse', nextURL: f(ch, 'KickedResponse', w, ['NextURL']).token('NextURL') })],
  ['DUStateChangeCompleteResponse', empty('DUStateChangeCompleteResponse')],
  ['AutonomousDUStateChangeCompleteResponse', empty('AutonomousDUStateChangeCompleteResponse')],
  [
    'GetRPCMethodsResponse',
    (ch, w) => ({
      method: 'GetRPCMethodsResponse',
      methodList: stringList(f(ch, 'GetRPCMethodsResponse', w, ['MethodList']).items('MethodList')),
    }),
  ],
  [
    'GetParameterNamesResponse',
    (ch, w) => {
      const m = f(ch, 'GetParameterNamesResponse', w, ['ParameterList']);
      const parameterList: ParameterInfoStruct[] = m.items('ParameterList').map((i) => {
        const s = structOf(i, 'ParameterInfoStruct', w, ['Name', 'Writable']);
        return { name: s.token('Name'), writable: s.bool('Writable') };
      });
      return { method: 'GetParameterNamesResponse', parameterList };
    },
  ],
  [
    'GetParameterValuesResponse',
    (ch, w) => ({
      method: 'GetParameterValuesResponse',
      parameterList: parameterValueList(f(ch, 'GetParameterValuesResponse', w, ['ParameterList']).items('ParameterList'), 'GetParameterValuesResponse', w),
    }),
  ],
  [
    'SetParameterValuesResponse',
    (ch, w) => ({
      method: 'SetParameterValuesResponse',
      status: f(ch, 'SetParameterValuesResponse', w, ['Status']).int('Status'),
    }),
  ],
  [
    'GetParameterAttributesResponse',
    (ch, w) => {
      const m = f(ch, 'GetParameterAttributesResponse', w, ['ParameterList']);
      const parameterList: ParameterAttributeStruct[] = m.items('ParameterList').map((i) => {
        const s = structOf(i, 'ParameterAttributeStruct', w, ['Name', 'Notification', 'AccessList']);
        return { name: s.token('Name'), notification: s.int('Notification'), accessList: stringList(s.items('AccessList')) };
      });
      return { method: 'GetParameterAttributesResponse', parameterList };
    },
  ],
  ['SetParameterAttributesResponse', empty('SetParameterAttributesResponse')],
  [
    'AddObjectResponse',
    (ch, w) => {
      const m = f(ch, 'AddObjectResponse', w, ['InstanceNumber', 'Status']);
      return { method: 'AddObjectResponse', instanceNumber: m.int('InstanceNumber'), status: m.int('Status') };
    },
  ],
  [
    'DeleteObjectResponse',
    (ch, w) => ({
      method: 'DeleteObjectResponse',
      status: f(ch, 'DeleteObjectResponse', w, ['Status']).int('Status'),
    }),
  ],
  ['RebootResponse', empty('RebootResponse')],
  ['FactoryResetResponse', empty('FactoryResetResponse')],
  [
    'DownloadResponse',
    (ch, w) => {
      const m = f(ch, 'DownloadResponse', w, ['Status', 'StartTime', 'CompleteTime']);
      return { method: 'DownloadResponse', status: m.int('Status'), startTime: m.token('StartTime'), completeTime: m.token('CompleteTime') };
    },
  ],
  [
    'UploadResponse',
    (ch, w) => {
      const m = f(ch, 'UploadResponse', w, ['Status', 'StartTime', 'CompleteTime']);
      return { method: 'UploadResponse', status: m.int('Status'), startTime: m.token('StartTime'), completeTime: m.token('CompleteTime') };
    },
  ],
  ['ScheduleInformResponse', empty('ScheduleInformResponse')],
]);

/** Method names decodeSoap understands (every CwmpMethod). */
export const DECODABLE_METHODS: readonly string[] = [...DECODERS.keys(), 'Fault'];

interface HeaderInfo {
  id: string | null;
  idNs: string | undefined;
  holdRequests?: boolean;
  noMoreRequests?: boolean;
}

/** Header elements of later CWMP versions that we read past without a warning. */
const SILENT_HEADERS: ReadonlySet<string> = new Set(['SessionTimeout', 'SupportedCWMPVersions', 'UseCWMPVersion']);

function decodeHeader(ch: XNode[], scope: Scope, w: string[]): HeaderInfo {
  const h: HeaderInfo = { id: null, idNs: undefined };
  for (const c of ch) {
    const tag = tagOf(c);
    if (!isMarkup(tag)) continue;
    const attrs = attrsOf(c);
    const s = withDeclarations(attrs, scope);
    const ns = nsOf(tag, s);
    const l = localName(tag);
    const known = ns?.startsWith('urn:dslforum-org:cwmp-');
    if (known && l === 'ID') {
      h.id = textOf(childrenOf(c, tag));
      h.idNs = ns;
    } else if (known && l === 'HoldRequests') {
      h.holdRequests = parseBool(textOf(childrenOf(c, tag)), 'Header/HoldRequests', w);
    } else if (known && l === 'NoMoreRequests') {
      h.noMoreRequests = parseBool(textOf(childrenOf(c, tag)), 'Header/NoMoreRequests', w);
    } else if (known && SILENT_HEADERS.has(l)) {
      // Defined by CWMP 1.3/1.4 (cwmp-1-2 namespace) but not used by this codec.
    } else {
      const mu = attrs === undefined ? undefined : mustUnderstand(attrs, s);
      w.push(`Header: unknown header element ${tag}${mu ? ' with mustUnderstand="1"' : ''} ignored`);
    }
  }
  return h;
}

function mustUnderstand(attrs: Attrs, scope: Scope): boolean {
  for (const k in attrs) {
    if (localName(k) === 'mustUnderstand' && nsOf(k, scope) === SOAP_ENV_NS) return attrs[k]!.trim() === '1';
  }
  return false;
}

function versionOfNs(ns: string | undefined, what: string): CwmpVersion {
  const v = ns === undefined ? undefined : NS_TO_VERSION.get(ns);
  if (v !== undefined) return v;
  if (ns === undefined) throw new SoapError('unknown-namespace', `${what} has no cwmp namespace`);
  throw new SoapError('unknown-namespace', `unknown cwmp namespace ${ns}`);
}

function decodeFault(ch: XNode[], scope: Scope, w: string[]): { body: CwmpMessage; ns: string | undefined } {
  let soapCode = '';
  let detail: XNode[] | undefined;
  let detailScope = scope;
  for (const c of ch) {
    const tag = tagOf(c);
    if (!isMarkup(tag)) continue;
    const l = localName(tag);
    if (l === 'faultcode') soapCode = localName(textOf(childrenOf(c, tag)).trim());
    else if (l === 'detail') {
      detail = childrenOf(c, tag);
      detailScope = withDeclarations(attrsOf(c), scope);
    }
  }
  let soapFaultCode: 'Client' | 'Server' = 'Server';
  if (soapCode === 'Client') soapFaultCode = 'Client';
  else if (soapCode !== 'Server') w.push(`Fault: faultcode "${soapCode}" read as Server`);
  let cwmpFault: XNode | undefined;
  let cwmpScope = detailScope;
  for (const c of detail ?? []) {
    const tag = tagOf(c);
    if (!isMarkup(tag) || localName(tag) !== 'Fault') continue;
    cwmpScope = withDeclarations(attrsOf(c), detailScope);
    cwmpFault = c;
    break;
  }
  if (cwmpFault === undefined) {
    w.push('Fault: SOAP Fault without cwmp:Fault detail, read as 9002 Internal error');
    return {
      body: { method: 'Fault', soapFaultCode, faultCode: 9002, faultString: soapFaultString(ch), setParameterValuesFault: [] },
      ns: undefined,
    };
  }
  const tag = tagOf(cwmpFault);
  const m = new Fields(
    childrenOf(cwmpFault, tag).filter((c) => localName(tagOf(c)) !== 'SetParameterValuesFault'),
    'Fault',
    w,
    ['FaultCode', 'FaultString'],
  );
  const spvf: SetParameterValuesFaultStruct[] = [];
  for (const c of childrenOf(cwmpFault, tag)) {
    const t = tagOf(c);
    if (!isMarkup(t) || localName(t) !== 'SetParameterValuesFault') continue;
    const s = new Fields(childrenOf(c, t), 'SetParameterValuesFault', w, ['ParameterName', 'FaultCode', 'FaultString']);
    spvf.push({
      parameterName: s.token('ParameterName'),
      faultCode: s.int('FaultCode'),
      faultString: s.has('FaultString') ? s.text('FaultString') : '',
    });
  }
  return {
    body: {
      method: 'Fault',
      soapFaultCode,
      faultCode: m.int('FaultCode'),
      faultString: m.has('FaultString') ? m.text('FaultString') : '',
      setParameterValuesFault: spvf,
    },
    ns: nsOf(tag, cwmpScope),
  };
}

function soapFaultString(ch: XNode[]): string {
  for (const c of ch) {
    const tag = tagOf(c);
    if (isMarkup(tag) && localName(tag) === 'faultstring') return textOf(childrenOf(c, tag));
  }
  return '';
}

/** Index of the first character that is not whitespace or a byte order mark; s.length if none. */
function contentStart(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9 && c !== 0xfeff) return i;
  }
  return s.length;
}

/** End of the text without trailing NUL characters (C stacks that count the terminator in Content-Length). */
function contentEnd(s: string): number {
  let e = s.length;
  while (e > 0 && s.charCodeAt(e - 1) === 0) e--;
  return e;
}

/**
 * Decodes one CWMP SOAP envelope (either direction). Returns envelope null for an empty body.
 * Throws SoapError (and nothing else) for input it cannot accept.
 *
 * Read past, as CPEs send them: a byte order mark, whitespace (CRLF or LF) before the XML
 * declaration, and NUL characters after the envelope (a warning each for the NULs).
 */
export function decodeSoap(xml: string, opts: DecodeOptions = {}): DecodeResult {
  const started = performance.now();
  if (typeof xml !== 'string') throw new SoapError('malformed-xml', 'body is not text');
  const start = contentStart(xml);
  if (start === xml.length) return { envelope: null, warnings: [] };
  const end = xml.charCodeAt(xml.length - 1) === 0 ? contentEnd(xml) : xml.length;
  const text = start === 0 && end === xml.length ? xml : xml.slice(start, end);
  const budget = opts.budget ?? DEFAULT_PARSE_BUDGET;
  const capped = cappedList(opts.maxWarnings ?? DEFAULT_MAX_WARNINGS);
  const warnings = capped.list;
  if (end < xml.length) warnings.push(`${xml.length - end} NUL character(s) after the envelope ignored`);
  let tree: XNode[];
  try {
    rejectDtd(text);
    checkWellFormed(text, budget, started);
    tree = PARSER.parse(text) as XNode[];
  } catch (e) {
    if (e instanceof ParseBudgetError) throw new SoapError('over-budget', e.message);
    if (e instanceof WellFormednessError) throw new SoapError(e.dtd ? 'forbidden-dtd' : 'malformed-xml', e.message);
    throw new SoapError('malformed-xml', `XML parser: ${(e as Error).message}`);
  }
  // The parser cannot be stopped midway; the element and attribute budgets bound its time.
  if (performance.now() - started > budget.maxMs) throw new SoapError('over-budget', `decoding took more than ${budget.maxMs} ms (acs.limits.parse.maxMs)`);
  try {
    const envelope = decodeTree(tree, warnings);
    // A plain copy: the capped list's own push would not cross to the main thread (decode-pool.ts).
    const dropped = capped.dropped();
    return dropped > 0 ? { envelope, warnings: warnings.slice(), warningsDropped: dropped } : { envelope, warnings: warnings.slice() };
  } catch (e) {
    if (e instanceof SoapError) throw e;
    if (e instanceof XmlEntityError) throw new SoapError('malformed-xml', e.message);
    throw new SoapError('invalid-message', `cannot decode envelope: ${(e as Error).message}`);
  }
}

function decodeTree(tree: XNode[], w: string[]): SoapEnvelope {
  let root: XNode | undefined;
  for (const n of tree)
    if (isMarkup(tagOf(n)) && !tagOf(n).startsWith('?')) {
      root = n;
      break;
    }
  if (root === undefined) throw new SoapError('malformed-xml', 'no root element');
  const rootTag = tagOf(root);
  const envScope = withDeclarations(attrsOf(root), EMPTY_SCOPE);
  const rootNs = nsOf(rootTag, envScope);
  if (localName(rootTag) !== 'Envelope' || rootNs !== SOAP_ENV_NS) {
    if (rootNs === SOAP12_ENV_NS) throw new SoapError('not-soap', 'SOAP 1.2 envelopes are not supported (CWMP uses SOAP 1.1)');
    throw new SoapError('not-soap', `root element ${rootTag} is not a SOAP 1.1 Envelope`);
  }
  let header: HeaderInfo = { id: null, idNs: undefined };
  let body: XNode | undefined;
  let bodyScope = envScope;
  for (const c of childrenOf(root, rootTag)) {
    const tag = tagOf(c);
    if (!isMarkup(tag)) continue;
    const s = withDeclarations(attrsOf(c), envScope);
    const ns = nsOf(tag, s);
    const l = localName(tag);
    if (ns === SOAP_ENV_NS && l === 'Header') header = decodeHeader(childrenOf(c, tag), s, w);
    else if (ns === SOAP_ENV_NS && l === 'Body') {
      if (body !== undefined) w.push('Envelope: second Body ignored');
      else {
        body = c;
        bodyScope = s;
      }
    } else w.push(`Envelope: unexpected element ${tag} ignored`);
  }
  if (body === undefined) throw new SoapError('not-soap', 'SOAP Envelope has no Body');
  let msg: XNode | undefined;
  for (const c of childrenOf(body, tagOf(body))) {
    if (!isMarkup(tagOf(c))) continue;
    if (msg === undefined) msg = c;
    else w.push(`Body: extra element ${tagOf(c)} ignored (one message per envelope)`);
  }
  if (msg === undefined) {
    const e = new SoapError('invalid-message', 'SOAP Body is empty');
    e.id = header.id;
    throw e;
  }
  const msgTag = tagOf(msg);
  const msgScope = withDeclarations(attrsOf(msg), bodyScope);
  const msgNs = nsOf(msgTag, msgScope);
  const method = localName(msgTag);
  let cwmpVersion: CwmpVersion;
  let decoded: CwmpMessage;
  try {
    if (msgNs === SOAP_ENV_NS && method === 'Fault') {
      const fault = decodeFault(childrenOf(msg, msgTag), msgScope, w);
      decoded = fault.body;
      const ns = fault.ns ?? header.idNs ?? anyCwmpNs(envScope);
      if (ns === undefined) w.push('Fault: no cwmp namespace anywhere, read as cwmp-1-0');
      cwmpVersion = ns === undefined ? '1-0' : versionOfNs(ns, 'cwmp:Fault');
    } else {
      cwmpVersion = versionOfNs(msgNs, `body element ${msgTag}`);
      const decoder = DECODERS.get(method);
      if (decoder === undefined) {
        const e = new SoapError('unsupported-method', `unsupported cwmp method ${method}`);
        e.cwmpVersion = cwmpVersion;
        throw e;
      }
      decoded = decoder(childrenOf(msg, msgTag), w);
    }
  } catch (e) {
    if (e instanceof SoapError) {
      e.id ??= header.id;
      e.method ??= method;
    }
    throw e;
  }
  if (header.idNs !== undefined && header.idNs !== cwmpNamespace(cwmpVersion)) {
    w.push(`Header: cwmp:ID namespace ${header.idNs} differs from the body's ${cwmpNamespace(cwmpVersion)}`);
  }
  return {
    cwmpVersion,
    id: header.id,
    ...(header.holdRequests !== undefined ? { holdRequests: header.holdRequests } : {}),
    ...(header.noMoreRequests !== undefined ? { noMoreRequests: header.noMoreRequests } : {}),
    body: decoded,
  };
}

function anyCwmpNs(scope: Scope): string | undefined {
  for (const ns of scope.values()) if (NS_TO_VERSION.has(ns)) return ns;
  return undefined;
}

/** The cwmp version an envelope uses, from the namespaces it declares (no full decode). */
export function detectCwmpVersion(xml: string): CwmpVersion | null {
  const m = /urn:dslforum-org:cwmp-(\d+-\d+)/.exec(xml);
  return m !== null && (CWMP_VERSIONS as readonly string[]).includes(m[1]!) ? (m[1] as CwmpVersion) : null;
}

// ------------------------------------------------------------------------------- encoding

const ENVELOPE_OPEN: ReadonlyMap<CwmpVersion, string> = new Map(
  CWMP_VERSIONS.map((v) => [
    v,
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<soap-env:Envelope xmlns:soap-env="${SOAP_ENV_NS}" xmlns:soap-enc="${SOAP_ENC_NS}" ` +
      `xmlns:xsd="${XSD_NS}" xmlns:xsi="${XSI_NS}" xmlns:cwmp="${cwmpNamespace(v)}">`,
  ]),
);
const ENVELOPE_CLOSE = '</soap-env:Body></soap-env:Envelope>';

const x = escapeXml;
const bool = (b: boolean): string => (b ? '1' : '0');
/** Integers only: a non-finite or fractional number would make an invalid envelope. */
const int = (n: number): string => (Number.isFinite(n) ? String(Math.trunc(n)) : '0');
const el = (name: string, text: string): string => `<${name}>${x(text)}</${name}>`;
const num = (name: string, n: number): string => `<${name}>${int(n)}</${name}>`;

function pvsList(list: readonly ParameterValueStruct[]): string {
  let s = `<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[${list.length}]">`;
  for (const p of list) {
    s += `<ParameterValueStruct><Name>${x(p.name)}</Name><Value xsi:type="${x(p.type || 'xsd:string')}">${x(p.value)}</Value></ParameterValueStruct>`;
  }
  return s + '</ParameterList>';
}

function strings(name: string, list: readonly string[]): string {
  let s = `<${name} soap-enc:arrayType="xsd:string[${list.length}]">`;
  for (const v of list) s += `<string>${x(v)}</string>`;
  return s + `</${name}>`;
}

function fault(f: FaultStruct, name = 'FaultStruct'): string {
  return `<${name}>${num('FaultCode', f.faultCode)}${el('FaultString', f.faultString)}</${name}>`;
}

/** One Results element per operation, in cwmp-1-2.xsd form (OpResultStruct, AutonOpResultStruct). */
function opResults(list: readonly (OpResultStruct | AutonOpResultStruct)[]): string {
  let s = '';
  for (const r of list) {
    s +=
      `<Results>${el('UUID', r.uuid)}${el('DeploymentUnitRef', r.deploymentUnitRef)}${el('Version', r.version)}` +
      `${el('CurrentState', r.currentState)}<Resolved>${bool(r.resolved)}</Resolved>${el('ExecutionUnitRefList', r.executionUnitRefList)}` +
      `${el('StartTime', r.startTime)}${el('CompleteTime', r.completeTime)}${fault(r.fault, 'Fault')}`;
    if ('operationPerformed' in r) s += el('OperationPerformed', r.operationPerformed);
    s += '</Results>';
  }
  return s;
}

/** Body element content, children in schema order; '' for an empty RPC element. */
function encodeBody(m: CwmpMessage): string {
  switch (m.method) {
    case 'Inform': {
      let ev = `<Event soap-enc:arrayType="cwmp:EventStruct[${m.event.length}]">`;
      for (const e of m.event) ev += `<EventStruct>${el('EventCode', e.eventCode)}${el('CommandKey', e.commandKey)}</EventStruct>`;
      ev += '</Event>';
      const d = m.deviceId;
      return (
        `<DeviceId>${el('Manufacturer', d.manufacturer)}${el('OUI', d.oui)}${el('ProductClass', d.productClass)}` +
        `${el('SerialNumber', d.serialNumber)}</DeviceId>${ev}${num('MaxEnvelopes', m.maxEnvelopes)}` +
        `${el('CurrentTime', m.currentTime)}${num('RetryCount', m.retryCount)}${pvsList(m.parameterList)}`
      );
    }
    case 'TransferComplete':
      return `${el('CommandKey', m.commandKey)}${fault(m.fault)}${el('StartTime', m.startTime)}${el('CompleteTime', m.completeTime)}`;
    case 'AutonomousTransferComplete':
      return (
        `${el('AnnounceURL', m.announceURL)}${el('TransferURL', m.transferURL)}<IsDownload>${bool(m.isDownload)}</IsDownload>` +
        `${el('FileType', m.fileType)}${num('FileSize', m.fileSize)}${el('TargetFileName', m.targetFileName)}${fault(m.fault)}` +
        `${el('StartTime', m.startTime)}${el('CompleteTime', m.completeTime)}`
      );
    case 'RequestDownload': {
      let s = `${el('FileType', m.fileType)}<FileTypeArg soap-enc:arrayType="cwmp:ArgStruct[${m.fileTypeArg.length}]">`;
      for (const a of m.fileTypeArg) s += `<ArgStruct>${el('Name', a.name)}${el('Value', a.value)}</ArgStruct>`;
      return s + '</FileTypeArg>';
    }
    case 'Kicked':
      return `${el('Command', m.command)}${el('Referer', m.referer)}${el('Arg', m.arg)}${el('Next', m.next)}`;
    case 'DUStateChangeComplete':
      return opResults(m.results) + el('CommandKey', m.commandKey);
    case 'AutonomousDUStateChangeComplete':
      return opResults(m.results);
    case 'KickedResponse':
      return el('NextURL', m.nextURL);
    case 'GetParameterNames':
      return `${el('ParameterPath', m.parameterPath)}<NextLevel>${bool(m.nextLevel)}</NextLevel>`;
    case 'GetParameterValues':
    case 'GetParameterAttributes':
      return strings('ParameterNames', m.parameterNames);
    case 'SetParameterValues':
      return `${pvsList(m.parameterList)}${el('ParameterKey', m.parameterKey)}`;
    case 'SetParameterAttributes': {
      let s = `<ParameterList soap-enc:arrayType="cwmp:SetParameterAttributesStruct[${m.parameterList.length}]">`;
      for (const p of m.parameterList) {
        s +=
          `<SetParameterAttributesStruct>${el('Name', p.name)}<NotificationChange>${bool(p.notificationChange)}</NotificationChange>` +
          `${num('Notification', p.notification)}<AccessListChange>${bool(p.accessListChange)}</AccessListChange>` +
          `${strings('AccessList', p.accessList)}</SetParameterAttributesStruct>`;
      }
      return s + '</ParameterList>';
    }
    case 'AddObject':
    case 'DeleteObject':
      return `${el('ObjectName', m.objectName)}${el('ParameterKey', m.parameterKey)}`;
    case 'Reboot':
      return el('CommandKey', m.commandKey);
    case 'Download':
      return (
        `${el('CommandKey', m.commandKey)}${el('FileType', m.fileType)}${el('URL', m.url)}${el('Username', m.username)}` +
        `${el('Password', m.password)}${num('FileSize', m.fileSize)}${el('TargetFileName', m.targetFileName)}` +
        `${num('DelaySeconds', m.delaySeconds)}${el('SuccessURL', m.successURL)}${el('FailureURL', m.failureURL)}`
      );
    case 'Upload':
      return (
        `${el('CommandKey', m.commandKey)}${el('FileType', m.fileType)}${el('URL', m.url)}${el('Username', m.username)}` +
        `${el('Password', m.password)}${num('DelaySeconds', m.delaySeconds)}`
      );
    case 'ScheduleInform':
      return `${num('DelaySeconds', m.delaySeconds)}${el('CommandKey', m.commandKey)}`;
    case 'InformResponse':
      return num('MaxEnvelopes', m.maxEnvelopes);
    case 'GetRPCMethodsResponse':
      return strings('MethodList', m.methodList);
    case 'GetParameterNamesResponse': {
      let s = `<ParameterList soap-enc:arrayType="cwmp:ParameterInfoStruct[${m.parameterList.length}]">`;
      for (const p of m.parameterList) s += `<ParameterInfoStruct>${el('Name', p.name)}<Writable>${bool(p.writable)}</Writable></ParameterInfoStruct>`;
      return s + '</ParameterList>';
    }
    case 'GetParameterValuesResponse':
      return pvsList(m.parameterList);
    case 'GetParameterAttributesResponse': {
      let s = `<ParameterList soap-enc:arrayType="cwmp:ParameterAttributeStruct[${m.parameterList.length}]">`;
      for (const p of m.parameterList) {
        s +=
          `<ParameterAttributeStruct>${el('Name', p.name)}${num('Notification', p.notification)}` +
          `${strings('AccessList', p.accessList)}</ParameterAttributeStruct>`;
      }
      return s + '</ParameterList>';
    }
    case 'SetParameterValuesResponse':
    case 'DeleteObjectResponse':
      return num('Status', m.status);
    case 'AddObjectResponse':
      return `${num('InstanceNumber', m.instanceNumber)}${num('Status', m.status)}`;
    case 'DownloadResponse':
    case 'UploadResponse':
      return `${num('Status', m.status)}${el('StartTime', m.startTime)}${el('CompleteTime', m.completeTime)}`;
    case 'GetRPCMethods':
    case 'FactoryReset':
    case 'TransferCompleteResponse':
    case 'AutonomousTransferCompleteResponse':
    case 'RequestDownloadResponse':
    case 'DUStateChangeCompleteResponse':
    case 'AutonomousDUStateChangeCompleteResponse':
    case 'SetParameterAttributesResponse':
    case 'RebootResponse':
    case 'FactoryResetResponse':
    case 'ScheduleInformResponse':
      return '';
    case 'Fault':
      throw new TypeError('Fault is encoded by encodeFault');
    default: {
      const never: never = m;
      throw new TypeError(`cannot encode unknown method ${(never as { method: string }).method}`);
    }
  }
}

function encodeFault(m: Extract<CwmpMessage, { method: 'Fault' }>): string {
  let d = `${num('FaultCode', m.faultCode)}${el('FaultString', m.faultString)}`;
  for (const p of m.setParameterValuesFault) {
    d +=
      `<SetParameterValuesFault>${el('ParameterName', p.parameterName)}${num('FaultCode', p.faultCode)}` +
      `${el('FaultString', p.faultString)}</SetParameterValuesFault>`;
  }
  return (
    `<soap-env:Fault><faultcode>${m.soapFaultCode === 'Client' ? 'Client' : 'Server'}</faultcode>` +
    `<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>${d}</cwmp:Fault></detail></soap-env:Fault>`
  );
}

/**
 * Builds the envelope for any CwmpMessage. The Header carries cwmp:ID (mustUnderstand="1")
 * when env.id is not null, then HoldRequests / NoMoreRequests when set; with none of them
 * the Header is left out (a request without ID is legal, TR-069 3.4.1, and decodes back to
 * id null). RPC elements without children are written <cwmp:X/>.
 */
export function encodeSoap(env: SoapEnvelope): string {
  const open = ENVELOPE_OPEN.get(env.cwmpVersion);
  if (open === undefined) throw new TypeError(`unknown cwmp version ${String(env.cwmpVersion)}`);
  let header = '';
  if (env.id !== null) header += `<cwmp:ID soap-env:mustUnderstand="1">${x(env.id)}</cwmp:ID>`;
  if (env.holdRequests !== undefined) header += `<cwmp:HoldRequests soap-env:mustUnderstand="1">${bool(env.holdRequests)}</cwmp:HoldRequests>`;
  if (env.noMoreRequests !== undefined) header += `<cwmp:NoMoreRequests>${bool(env.noMoreRequests)}</cwmp:NoMoreRequests>`;
  const m = env.body;
  let body: string;
  if (m.method === 'Fault') body = encodeFault(m);
  else {
    const inner = encodeBody(m);
    body = inner === '' ? `<cwmp:${m.method}/>` : `<cwmp:${m.method}>${inner}</cwmp:${m.method}>`;
  }
  return `${open}${header === '' ? '' : `<soap-env:Header>${header}</soap-env:Header>`}<soap-env:Body>${body}${ENVELOPE_CLOSE}`;
}
