/**
 * USP Record and Msg codec (TR-369 1.4, schemas proto/usp-record-1-4.proto and
 * proto/usp-msg-1-4.proto). Pure functions: no I/O besides loading the schemas once, no logger.
 *
 * Object shape (protobufjs's, so it reads like the spec):
 * - Field names are protobufjs camelCase: `msgId`, `reqPathResults`, `resultParams`.
 * - proto3 implicit presence, as protobufjs 8 does it: a scalar (string, number, bool, enum) at
 *   its default value ('', 0, false, the enum's 0 name) is never written, and is absent
 *   (`undefined`) after decoding whether or not the peer wrote it. So our bytes are canonical and
 *   equal obuspa's (protobuf-c) for equal content; a peer that writes explicit defaults (protobufjs
 *   7 does) decodes fine and re-encodes without them. Map entries leave an empty key/value out
 *   too, as obuspa does (proto-load.ts). Unknown fields are skipped.
 * - Repeated fields are always arrays and map fields always plain objects (both possibly empty):
 *   decoding fills them in, and the types require them when building. Maps keep insertion order.
 * - oneof: the chosen member is an optional property, and the oneof's own name holds the member's
 *   name, as protobufjs `toObject({oneofs: true})` gives: `body.msgBody === 'request'`,
 *   `body.request.reqType === 'get'`, `body.request.get.paramPaths`. The case is decided by
 *   presence on the wire, so an empty member (`operSuccess: {}`) is a real case. When encoding,
 *   the oneof name key is ignored: the member that is present is written.
 * - Enums are their proto names as strings (`'GET_RESP'`, `'PARAM_READ_WRITE'`). An enum number
 *   we do not know is a decode error (R-ENC.2).
 * - Header is the exception: decodeMsg always fills `msgId` ('' when absent) and `msgType`
 *   ('ERROR' when absent: 0 is the proto3 default, and obuspa's Error Msgs carry no msg_type).
 *   A Msg without a header is a decode error (nothing to answer to).
 *
 * Static code or reflection: bench/usp-codec.ts measures both (protobufjs reflection vs. pbjs
 * static-module from the same proto/) for a GetResp of 50 and of 2,000 params. Static was 5-7%
 * faster (61k vs 57k raw round trips/s at 50 params; 1,517 vs 1,435 at 2,000), within 10%, so we
 * use reflection, the simpler: no generated code to keep in step with proto/. This codec does
 * about 50k GetResp(50) encodeMsg+decodeMsg round trips/s on one core (target 30k).
 * The round trip of every Get (its Record and Msg in, the GetResp Record out) skips protobufjs:
 * wire-fast.ts reads and writes those bytes directly and hands anything else back to it.
 */
import type protobuf from 'protobufjs';
import { UspErrorCode, errorCodeName } from '../errors.js';
import { uspRoot } from './proto-load.js';
import { decodeGetMsg, decodeNoSessionRecord, encodeGetRespRecord } from './wire-fast.js';

// ------------------------------------------------------------------------------------------------
// Msg types

export const MSG_TYPES = [
  'ERROR',
  'GET',
  'GET_RESP',
  'NOTIFY',
  'SET',
  'SET_RESP',
  'OPERATE',
  'OPERATE_RESP',
  'ADD',
  'ADD_RESP',
  'DELETE',
  'DELETE_RESP',
  'GET_SUPPORTED_DM',
  'GET_SUPPORTED_DM_RESP',
  'GET_INSTANCES',
  'GET_INSTANCES_RESP',
  'NOTIFY_RESP',
  'GET_SUPPORTED_PROTO',
  'GET_SUPPORTED_PROTO_RESP',
  'REGISTER',
  'REGISTER_RESP',
  'DEREGISTER',
  'DEREGISTER_RESP',
] as const;
export type MsgType = (typeof MSG_TYPES)[number];
/** `MsgType.GET === 'GET'`: enum-like access to the names. */
export const MsgType = Object.fromEntries(MSG_TYPES.map((t) => [t, t])) as { readonly [K in MsgType]: K };

/** The msg_types of Request Msgs (R-MTP.5 answers only these). */
export const REQUEST_MSG_TYPES: ReadonlySet<MsgType> = new Set<MsgType>([
  'GET',
  'SET',
  'ADD',
  'DELETE',
  'OPERATE',
  'NOTIFY',
  'GET_SUPPORTED_DM',
  'GET_INSTANCES',
  'GET_SUPPORTED_PROTO',
  'REGISTER',
  'DEREGISTER',
]);

export type StringMap = { [key: string]: string };

export interface Header {
  msgId: string;
  msgType: MsgType;
}

export interface Msg {
  header: Header;
  body: Body;
}

export interface Body {
  msgBody?: 'request' | 'response' | 'error';
  request?: Request;
  response?: Response;
  error?: UspErrorMsg;
}

export interface ParamError {
  paramPath?: string;
  errCode?: number;
  errMsg?: string;
}

/** usp.Error: the Error Msg body. */
export interface UspErrorMsg {
  errCode?: number;
  errMsg?: string;
  paramErrs: ParamError[];
}

export interface Request {
  reqType?: 'get' | 'getSupportedDm' | 'getInstances' | 'set' | 'add' | 'delete' | 'operate' | 'notify' | 'getSupportedProtocol' | 'register' | 'deregister';
  get?: Get;
  getSupportedDm?: GetSupportedDM;
  getInstances?: GetInstances;
  set?: SetReq;
  add?: Add;
  delete?: Delete;
  operate?: Operate;
  notify?: Notify;
  getSupportedProtocol?: GetSupportedProtocol;
  register?: Register;
  deregister?: Deregister;
}

export interface Response {
  respType?:
    | 'getResp'
    | 'getSupportedDmResp'
    | 'getInstancesResp'
    | 'setResp'
    | 'addResp'
    | 'deleteResp'
    | 'operateResp'
    | 'notifyResp'
    | 'getSupportedProtocolResp'
    | 'registerResp'
    | 'deregisterResp';
  getResp?: GetResp;
  getSupportedDmResp?: GetSupportedDMResp;
  getInstancesResp?: GetInstancesResp;
  setResp?: SetResp;
  addResp?: AddResp;
  deleteResp?: DeleteResp;
  operateResp?: OperateResp;
  notifyResp?: NotifyResp;
  getSupportedProtocolResp?: GetSupportedProtocolResp;
  registerResp?: RegisterResp;
  deregisterResp?: DeregisterResp;
}

// Get
export interface Get {
  paramPaths: string[];
  maxDepth?: number;
}
export interface GetResp {
  reqPathResults: GetRequestedPathResult[];
}
export interface GetRequestedPathResult {
  requestedPath?: string;
  errCode?: number;
  errMsg?: string;
  resolvedPathResults: GetResolvedPathResult[];
}
export interface GetResolvedPathResult {
  resolvedPath?: string;
  resultParams: StringMap;
}

// GetSupportedDM
export interface GetSupportedDM {
  objPaths: string[];
  firstLevelOnly?: boolean;
  returnCommands?: boolean;
  returnEvents?: boolean;
  returnParams?: boolean;
  returnUniqueKeySets?: boolean;
}
export type ParamAccessType = 'PARAM_READ_ONLY' | 'PARAM_READ_WRITE' | 'PARAM_WRITE_ONLY';
export type ObjAccessType = 'OBJ_READ_ONLY' | 'OBJ_ADD_DELETE' | 'OBJ_ADD_ONLY' | 'OBJ_DELETE_ONLY';
export type ParamValueType =
  | 'PARAM_UNKNOWN'
  | 'PARAM_BASE_64'
  | 'PARAM_BOOLEAN'
  | 'PARAM_DATE_TIME'
  | 'PARAM_DECIMAL'
  | 'PARAM_HEX_BINARY'
  | 'PARAM_INT'
  | 'PARAM_LONG'
  | 'PARAM_STRING'
  | 'PARAM_UNSIGNED_INT'
  | 'PARAM_UNSIGNED_LONG';
export type ValueChangeType = 'VALUE_CHANGE_UNKNOWN' | 'VALUE_CHANGE_ALLOWED' | 'VALUE_CHANGE_WILL_IGNORE';
export type CmdType = 'CMD_UNKNOWN' | 'CMD_SYNC' | 'CMD_ASYNC';

export interface GetSupportedDMResp {
  reqObjResults: RequestedObjectResult[];
}
export interface RequestedObjectResult {
  reqObjPath?: string;
  errCode?: number;
  errMsg?: string;
  dataModelInstUri?: string;
  supportedObjs: SupportedObjectResult[];
}
export interface SupportedObjectResult {
  supportedObjPath?: string;
  access?: ObjAccessType;
  isMultiInstance?: boolean;
  supportedCommands: SupportedCommandResult[];
  supportedEvents: SupportedEventResult[];
  supportedParams: SupportedParamResult[];
  divergentPaths: string[];
  uniqueKeySets: SupportedUniqueKeySet[];
}
export interface SupportedParamResult {
  paramName?: string;
  access?: ParamAccessType;
  valueType?: ParamValueType;
  valueChange?: ValueChangeType;
}
export interface SupportedCommandResult {
  commandName?: string;
  inputArgNames: string[];
  outputArgNames: string[];
  commandType?: CmdType;
}
export interface SupportedEventResult {
  eventName?: string;
  argNames: string[];
}
export interface SupportedUniqueKeySet {
  keyNames: string[];
}

// GetInstances
export interface GetInstances {
  objPaths: string[];
  firstLevelOnly?: boolean;
}
export interface GetInstancesResp {
  reqPathResults: GetInstancesRequestedPathResult[];
}
export interface GetInstancesRequestedPathResult {
  requestedPath?: string;
  errCode?: number;
  errMsg?: string;
  currInsts: CurrInstance[];
}
export interface CurrInstance {
  instantiatedObjPath?: string;
  uniqueKeys: StringMap;
}

// GetSupportedProtocol
export interface GetSupportedProtocol {
  controllerSupportedProtocolVersions?: string;
}
export interface GetSupportedProtocolResp {
  agentSupportedProtocolVersions?: string;
}

/** OperationFailure shape shared by Add/Delete/Register/Deregister responses. */
export interface OperationFailure {
  errCode?: number;
  errMsg?: string;
}
/** Parameter error inside Add/Set responses (`param` is relative to the object). */
export interface ParameterError {
  param?: string;
  errCode?: number;
  errMsg?: string;
}

// Add
export interface Add {
  allowPartial?: boolean;
  createObjs: CreateObject[];
}
export interface CreateObject {
  objPath?: string;
  paramSettings: ParamSetting[];
}
export interface ParamSetting {
  param?: string;
  value?: string;
  required?: boolean;
}
export interface AddResp {
  createdObjResults: CreatedObjectResult[];
}
export interface CreatedObjectResult {
  requestedPath?: string;
  operStatus?: AddOperationStatus;
}
export interface AddOperationStatus {
  operStatus?: 'operFailure' | 'operSuccess';
  operFailure?: OperationFailure;
  operSuccess?: AddOperationSuccess;
}
export interface AddOperationSuccess {
  instantiatedPath?: string;
  paramErrs: ParameterError[];
  uniqueKeys: StringMap;
}

// Delete
export interface Delete {
  allowPartial?: boolean;
  objPaths: string[];
}
export interface DeleteResp {
  deletedObjResults: DeletedObjectResult[];
}
export interface DeletedObjectResult {
  requestedPath?: string;
  operStatus?: DeleteOperationStatus;
}
export interface DeleteOperationStatus {
  operStatus?: 'operFailure' | 'operSuccess';
  operFailure?: OperationFailure;
  operSuccess?: DeleteOperationSuccess;
}
export interface DeleteOperationSuccess {
  affectedPaths: string[];
  unaffectedPathErrs: UnaffectedPathError[];
}
export interface UnaffectedPathError {
  unaffectedPath?: string;
  errCode?: number;
  errMsg?: string;
}

// Set (named SetReq so it does not shadow the global Set)
export interface SetReq {
  allowPartial?: boolean;
  updateObjs: UpdateObject[];
}
export interface UpdateObject {
  objPath?: string;
  paramSettings: ParamSetting[];
}
export interface SetResp {
  updatedObjResults: UpdatedObjectResult[];
}
export interface UpdatedObjectResult {
  requestedPath?: string;
  operStatus?: SetOperationStatus;
}
export interface SetOperationStatus {
  operStatus?: 'operFailure' | 'operSuccess';
  operFailure?: SetOperationFailure;
  operSuccess?: SetOperationSuccess;
}
export interface SetOperationFailure {
  errCode?: number;
  errMsg?: string;
  updatedInstFailures: UpdatedInstanceFailure[];
}
export interface SetOperationSuccess {
  updatedInstResults: UpdatedInstanceResult[];
}
export interface UpdatedInstanceFailure {
  affectedPath?: string;
  paramErrs: ParameterError[];
}
export interface UpdatedInstanceResult {
  affectedPath?: string;
  paramErrs: ParameterError[];
  updatedParams: StringMap;
}

// Operate
export interface Operate {
  command?: string;
  commandKey?: string;
  sendResp?: boolean;
  inputArgs: StringMap;
}
export interface OperateResp {
  operationResults: OperationResult[];
}
export interface OutputArgs {
  outputArgs: StringMap;
}
export interface CommandFailure {
  errCode?: number;
  errMsg?: string;
}
export interface OperationResult {
  executedCommand?: string;
  operationResp?: 'reqObjPath' | 'reqOutputArgs' | 'cmdFailure';
  reqObjPath?: string;
  reqOutputArgs?: OutputArgs;
  cmdFailure?: CommandFailure;
}

// Notify
export interface Notify {
  subscriptionId?: string;
  sendResp?: boolean;
  notification?: 'event' | 'valueChange' | 'objCreation' | 'objDeletion' | 'operComplete' | 'onBoardReq';
  event?: NotifyEvent;
  valueChange?: ValueChange;
  objCreation?: ObjectCreation;
  objDeletion?: ObjectDeletion;
  operComplete?: OperationComplete;
  onBoardReq?: OnBoardRequest;
}
export interface NotifyEvent {
  objPath?: string;
  eventName?: string;
  params: StringMap;
}
export interface ValueChange {
  paramPath?: string;
  paramValue?: string;
}
export interface ObjectCreation {
  objPath?: string;
  uniqueKeys: StringMap;
}
export interface ObjectDeletion {
  objPath?: string;
}
export interface OperationComplete {
  objPath?: string;
  commandName?: string;
  commandKey?: string;
  operationResp?: 'reqOutputArgs' | 'cmdFailure';
  reqOutputArgs?: OutputArgs;
  cmdFailure?: CommandFailure;
}
export interface OnBoardRequest {
  oui?: string;
  productClass?: string;
  serialNumber?: string;
  agentSupportedProtocolVersions?: string;
}
export interface NotifyResp {
  subscriptionId?: string;
}

// Register / Deregister
export interface Register {
  allowPartial?: boolean;
  regPaths: RegistrationPath[];
}
export interface RegistrationPath {
  path?: string;
}
export interface RegisterResp {
  registeredPathResults: RegisteredPathResult[];
}
export interface RegisteredPathResult {
  requestedPath?: string;
  operStatus?: RegisterOperationStatus;
}
export interface RegisterOperationStatus {
  operStatus?: 'operFailure' | 'operSuccess';
  operFailure?: OperationFailure;
  operSuccess?: { registeredPath?: string };
}
export interface Deregister {
  paths: string[];
}
export interface DeregisterResp {
  deregisteredPathResults: DeregisteredPathResult[];
}
export interface DeregisteredPathResult {
  requestedPath?: string;
  operStatus?: DeregisterOperationStatus;
}
export interface DeregisterOperationStatus {
  operStatus?: 'operFailure' | 'operSuccess';
  operFailure?: OperationFailure;
  operSuccess?: { deregisteredPath: string[] };
}

// ------------------------------------------------------------------------------------------------
// Record types

export type PayloadSecurity = 'PLAINTEXT' | 'TLS12';
export type PayloadSARState = 'NONE' | 'BEGIN' | 'INPROCESS' | 'COMPLETE';

export interface SessionContext {
  kind: 'sessionContext';
  sessionId: bigint;
  sequenceId: bigint;
  expectedId: bigint;
  retransmitId: bigint;
  payloadSarState: PayloadSARState;
  payloadrecSarState: PayloadSARState;
  payload: Uint8Array[];
}

export type RecordType =
  | { kind: 'noSessionContext'; payload: Uint8Array }
  | SessionContext
  | { kind: 'websocketConnect' }
  | { kind: 'mqttConnect'; version: 'V3_1_1' | 'V5'; subscribedTopic: string }
  | { kind: 'stompConnect'; version: 'V1_2'; subscribedDestination: string }
  | { kind: 'udsConnect' }
  | { kind: 'disconnect'; reason: string; reasonCode: number };

/**
 * A USP Record. Unlike Msg bodies, Record fields are plain values (defaults filled in on decode,
 * left off the wire on encode), except `payloadSecurity`, `macSignature` and `senderCert`, which
 * are present exactly when they were on the wire (absent payloadSecurity means PLAINTEXT).
 */
export interface UspRecord {
  version: string;
  toId: string;
  fromId: string;
  payloadSecurity?: PayloadSecurity;
  macSignature?: Uint8Array;
  senderCert?: Uint8Array;
  recordType: RecordType;
}

/** The USP version we write in every Record. */
export const USP_VERSION = '1.4';
/** R-ENC / version negotiation: we accept Records of USP 1.0 .. 1.4. */
const ACCEPTED_VERSION = /^1\.[0-4]$/;

// ------------------------------------------------------------------------------------------------
// Errors

export type UspRecordErrorKind = 'malformed-record' | 'unsupported-version' | 'bad-payload-security' | 'malformed-msg';

/**
 * A Record or Msg that cannot be decoded or accepted. `code` is the USP error code to report
 * if R-MTP.5 allows a reply (see recordErrorDecision).
 */
export class UspRecordError extends Error {
  override name = 'UspRecordError';
  readonly kind: UspRecordErrorKind;
  readonly code: number;

  constructor(kind: UspRecordErrorKind, message: string, code?: number) {
    super(message);
    this.kind = kind;
    this.code = code ?? DEFAULT_CODE[kind];
  }
}

const DEFAULT_CODE: Record<UspRecordErrorKind, number> = {
  'malformed-record': UspErrorCode.RECORD_NOT_PARSED,
  'unsupported-version': UspErrorCode.RECORD_FIELD_INVALID,
  'bad-payload-security': UspErrorCode.SECURE_SESSION_NOT_SUPPORTED,
  'malformed-msg': UspErrorCode.RECORD_NOT_PARSED,
};

// ------------------------------------------------------------------------------------------------
// Schema handles

interface Types {
  Record: protobuf.Type;
  Msg: protobuf.Type;
  GsdmResp: protobuf.Type;
  PayloadSecurity: protobuf.Enum;
  SarState: protobuf.Enum;
  MqttVersion: protobuf.Enum;
  StompVersion: protobuf.Enum;
}
let types: Types | undefined;
function t(): Types {
  if (!types) {
    const root = uspRoot();
    types = {
      Record: root.lookupType('usp_record.Record'),
      Msg: root.lookupType('usp.Msg'),
      GsdmResp: root.lookupType('usp.GetSupportedDMResp'),
      PayloadSecurity: root.lookupEnum('usp_record.Record.PayloadSecurity'),
      SarState: root.lookupEnum('usp_record.SessionContextRecord.PayloadSARState'),
      MqttVersion: root.lookupEnum('usp_record.MQTTConnectRecord.MQTTVersion'),
      StompVersion: root.lookupEnum('usp_record.STOMPConnectRecord.STOMPVersion'),
    };
  }
  return types;
}

const MSG_TYPE_NUM: ReadonlyMap<string, number> = new Map(MSG_TYPES.map((n, i) => [n, i]));

const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  arrays: true,
  objects: true,
  oneofs: true,
  defaults: false,
};

const has = (o: object, k: string): boolean => Object.hasOwn(o, k);
type Obj = { [k: string]: unknown };

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** protobufjs hands out Buffers in Node; we expose plain Uint8Array views (no copy). */
function u8(b: Uint8Array | undefined): Uint8Array {
  if (!b) return new Uint8Array(0);
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

// ------------------------------------------------------------------------------------------------
// Msg

/** Decode a usp.Msg (the payload of a NoSessionContext Record). Throws UspRecordError('malformed-msg'). */
export function decodeMsg(bytes: Uint8Array): Msg {
  // A Get request, the most common Msg, is read straight off the wire (wire-fast.ts); anything else by protobufjs.
  const get = decodeGetMsg(bytes);
  if (get) {
    const g: Get = { paramPaths: get.paramPaths };
    if (get.maxDepth !== 0) g.maxDepth = get.maxDepth;
    return { header: { msgId: get.msgId, msgType: 'GET' }, body: { request: { get: g, reqType: 'get' }, msgBody: 'request' } };
  }
  const { Msg } = t();
  let o: Obj;
  try {
    o = Msg.toObject(Msg.decode(bytes), TO_OBJECT) as Obj;
  } catch (e) {
    throw new UspRecordError('malformed-msg', `Msg could not be parsed: ${errText(e)}`);
  }
  const header = o['header'] as { msgId?: string; msgType?: string | number } | undefined;
  if (!header) throw new UspRecordError('malformed-msg', 'Msg has no header');
  const msgType = header.msgType ?? 'ERROR';
  if (typeof msgType !== 'string') {
    // R-ENC.2: unknown enumeration value for a known field.
    throw new UspRecordError('malformed-msg', `unknown msg_type ${msgType}`, UspErrorCode.INVALID_ARGUMENTS);
  }
  const body = (o['body'] as Body | undefined) ?? {};
  const gsdm = body.response?.getSupportedDmResp;
  if (gsdm) checkGsdmEnums(gsdm);
  return { header: { msgId: header.msgId ?? '', msgType: msgType as MsgType }, body };
}

function checkGsdmEnums(r: GetSupportedDMResp): void {
  const bad = (v: unknown, field: string): void => {
    if (typeof v === 'number') {
      throw new UspRecordError('malformed-msg', `unknown ${field} value ${v}`, UspErrorCode.INVALID_ARGUMENTS);
    }
  };
  for (const ro of r.reqObjResults) {
    for (const so of ro.supportedObjs) {
      bad(so.access, 'ObjAccessType');
      for (const p of so.supportedParams) {
        bad(p.access, 'ParamAccessType');
        bad(p.valueType, 'ParamValueType');
        bad(p.valueChange, 'ValueChangeType');
      }
      for (const c of so.supportedCommands) bad(c.commandType, 'CmdType');
    }
  }
}

/** Encode a usp.Msg. Writes the fields present in `m` (see the header comment). */
export function encodeMsg(m: Msg): Uint8Array {
  const { Msg, GsdmResp } = t();
  const header: Obj = {};
  if (m.header.msgId !== '') header['msgId'] = m.header.msgId;
  if (m.header.msgType !== 'ERROR') {
    const n = MSG_TYPE_NUM.get(m.header.msgType);
    if (n === undefined) throw new TypeError(`unknown msgType ${String(m.header.msgType)}`);
    header['msgType'] = n;
  }
  let body: unknown = m.body;
  const gsdm = m.body.response?.getSupportedDmResp;
  if (gsdm) {
    // The only Msg with enums besides the header: let protobufjs turn names into numbers.
    body = { response: { getSupportedDmResp: GsdmResp.fromObject(gsdm) } };
  }
  return u8(Msg.encode({ header, body }).finish());
}

/** An ERROR msg_type (possibly just absent on the wire) without an Error body: a malformed Msg. */
export function isErrorWithoutBody(msg: Msg): boolean {
  return msg.header.msgType === 'ERROR' && !msg.body.error;
}

/** An Error Msg (R-MTP.5, and every request failure that is not a per-path result). */
export function errorMsg(msgId: string, code: number, message?: string, paramErrs: ParamError[] = []): Msg {
  return {
    header: { msgId, msgType: 'ERROR' },
    body: { msgBody: 'error', error: { errCode: code, errMsg: message ?? errorCodeName(code), paramErrs } },
  };
}

// ------------------------------------------------------------------------------------------------
// Record

/**
 * Decode a USP Record and check what the codec can check: exactly one record_type (R-ENC.3),
 * version 1.0..1.4, a known payload_security (R-ENC.2), and no TLS12 payload outside a Session
 * Context (R-E2E.41; we do not implement Secure Message Exchange). Throws UspRecordError.
 */
export function decodeRecord(bytes: Uint8Array): UspRecord {
  // The common Record (NoSessionContext, nothing else) is read straight off the wire (wire-fast.ts).
  const plain = decodeNoSessionRecord(bytes);
  if (plain) return { version: plain.version, toId: plain.toId, fromId: plain.fromId, recordType: { kind: 'noSessionContext', payload: plain.payload } };
  const T = t();
  let r: Obj;
  try {
    r = T.Record.decode(bytes) as Obj;
  } catch (e) {
    throw new UspRecordError('malformed-record', `Record could not be parsed: ${errText(e)}`);
  }
  // protobufjs keeps only the last oneof member; R-ENC.3/R-ENC.4 want such a Record discarded.
  const kinds = scanRecord(bytes).recordTypes.length;
  if (kinds > 1) throw new UspRecordError('malformed-record', `Record has ${kinds} record_types`);
  const recordType = decodeRecordType(r);
  const version = (r['version'] as string | undefined) ?? '';
  if (!ACCEPTED_VERSION.test(version)) {
    throw new UspRecordError('unsupported-version', `unsupported USP Record version ${JSON.stringify(version)} (accepted: 1.0 .. 1.4)`);
  }
  const out: UspRecord = {
    version,
    toId: (r['toId'] as string | undefined) ?? '',
    fromId: (r['fromId'] as string | undefined) ?? '',
    recordType,
  };
  if (has(r, 'payloadSecurity')) {
    const ps = T.PayloadSecurity.valuesById[r['payloadSecurity'] as number];
    if (ps === undefined) {
      throw new UspRecordError('bad-payload-security', `unknown payload_security ${String(r['payloadSecurity'])}`, UspErrorCode.RECORD_FIELD_INVALID);
    }
    out.payloadSecurity = ps as PayloadSecurity;
  }
  if (out.payloadSecurity === 'TLS12' && recordType.kind === 'noSessionContext') {
    // R-E2E.41: TLS12 needs a Session Context, and we do not do Secure Message Exchange anyway.
    // (A Session Context Record decodes: the endpoint answers it with a Disconnect, R-E2E.6a.)
    throw new UspRecordError('bad-payload-security', 'payload_security TLS12: secure message exchange is not supported');
  }
  if (has(r, 'macSignature')) out.macSignature = u8(r['macSignature'] as Uint8Array);
  if (has(r, 'senderCert')) out.senderCert = u8(r['senderCert'] as Uint8Array);
  return out;
}

const RECORD_TYPE_FIELDS = ['noSessionContext', 'sessionContext', 'websocketConnect', 'mqttConnect', 'stompConnect', 'disconnect', 'udsConnect'] as const;

function decodeRecordType(r: Obj): RecordType {
  const T = t();
  const present = RECORD_TYPE_FIELDS.filter((f) => r[f] != null && has(r, f));
  if (present.length !== 1) {
    // R-ENC.3 / R-ENC.4: exactly one record_type, else the Record is discarded.
    throw new UspRecordError(
      'malformed-record',
      present.length === 0 ? 'Record has no record_type' : `Record has ${present.length} record_types (${present.join(', ')})`,
    );
  }
  const kind = present[0]!;
  const v = r[kind] as Obj;
  const enumName = (e: protobuf.Enum, n: unknown, what: string): string => {
    const name = e.valuesById[(n as number | undefined) ?? 0];
    if (name === undefined) throw new UspRecordError('malformed-record', `unknown ${what} ${String(n)}`, UspErrorCode.RECORD_FIELD_INVALID);
    return name;
  };
  switch (kind) {
    case 'noSessionContext':
      return { kind, payload: u8(v['payload'] as Uint8Array | undefined) };
    case 'sessionContext': {
      const big = (x: unknown): bigint => (x == null ? 0n : BigInt(String(x)));
      return {
        kind,
        sessionId: big(v['sessionId']),
        sequenceId: big(v['sequenceId']),
        expectedId: big(v['expectedId']),
        retransmitId: big(v['retransmitId']),
        payloadSarState: enumName(T.SarState, v['payloadSarState'], 'payload_sar_state') as PayloadSARState,
        payloadrecSarState: enumName(T.SarState, v['payloadrecSarState'], 'payloadrec_sar_state') as PayloadSARState,
        payload: ((v['payload'] as Uint8Array[] | undefined) ?? []).map(u8),
      };
    }
    case 'websocketConnect':
    case 'udsConnect':
      return { kind };
    case 'mqttConnect':
      return {
        kind,
        version: enumName(T.MqttVersion, v['version'], 'MQTT version') as 'V3_1_1' | 'V5',
        subscribedTopic: (v['subscribedTopic'] as string | undefined) ?? '',
      };
    case 'stompConnect':
      return {
        kind,
        version: enumName(T.StompVersion, v['version'], 'STOMP version') as 'V1_2',
        subscribedDestination: (v['subscribedDestination'] as string | undefined) ?? '',
      };
    case 'disconnect':
      return { kind, reason: (v['reason'] as string | undefined) ?? '', reasonCode: (v['reasonCode'] as number | undefined) ?? 0 };
  }
}

/** Encode a USP Record. Default values (0, '', V3_1_1, ...) are left off the wire, as obuspa does. */
export function encodeRecord(rec: UspRecord): Uint8Array {
  const T = t();
  const r: Obj = {};
  if (rec.version) r['version'] = rec.version;
  if (rec.toId) r['toId'] = rec.toId;
  if (rec.fromId) r['fromId'] = rec.fromId;
  if (rec.payloadSecurity !== undefined) r['payloadSecurity'] = T.PayloadSecurity.values[rec.payloadSecurity];
  if (rec.macSignature !== undefined) r['macSignature'] = rec.macSignature;
  if (rec.senderCert !== undefined) r['senderCert'] = rec.senderCert;
  const rt = rec.recordType;
  switch (rt.kind) {
    case 'noSessionContext':
      r['noSessionContext'] = rt.payload.length ? { payload: rt.payload } : {};
      break;
    case 'sessionContext': {
      const s: Obj = {};
      // A uint64 as the low and high 32 bits, the shape protobufjs's writer takes (LongBits.from),
      // with or without the long package: exact over the whole range, no Number rounding.
      const long = (x: bigint): { low: number; high: number; unsigned: true } => ({
        low: Number(x & 0xffffffffn) | 0,
        high: Number((x >> 32n) & 0xffffffffn) | 0,
        unsigned: true,
      });
      if (rt.sessionId) s['sessionId'] = long(rt.sessionId);
      if (rt.sequenceId) s['sequenceId'] = long(rt.sequenceId);
      if (rt.expectedId) s['expectedId'] = long(rt.expectedId);
      if (rt.retransmitId) s['retransmitId'] = long(rt.retransmitId);
      if (rt.payloadSarState !== 'NONE') s['payloadSarState'] = T.SarState.values[rt.payloadSarState];
      if (rt.payloadrecSarState !== 'NONE') s['payloadrecSarState'] = T.SarState.values[rt.payloadrecSarState];
      s['payload'] = rt.payload;
      r['sessionContext'] = s;
      break;
    }
    case 'websocketConnect':
    case 'udsConnect':
      r[rt.kind] = {};
      break;
    case 'mqttConnect': {
      const m: Obj = {};
      if (rt.version !== 'V3_1_1') m['version'] = T.MqttVersion.values[rt.version];
      if (rt.subscribedTopic) m['subscribedTopic'] = rt.subscribedTopic;
      r['mqttConnect'] = m;
      break;
    }
    case 'stompConnect': {
      const s: Obj = {}; // version: V1_2 is the only value, 0, left off the wire
      if (rt.subscribedDestination) s['subscribedDestination'] = rt.subscribedDestination;
      r['stompConnect'] = s;
      break;
    }
    case 'disconnect': {
      const d: Obj = {};
      if (rt.reason) d['reason'] = rt.reason;
      if (rt.reasonCode) d['reasonCode'] = rt.reasonCode;
      r['disconnect'] = d;
      break;
    }
  }
  return u8(T.Record.encode(r).finish());
}

// ------------------------------------------------------------------------------------------------
// Builders

/** A NoSessionContext Record carrying `msg` (R-E2E.26), version 1.4, PLAINTEXT (left off the wire). */
export function noSessionRecord(fromId: string, toId: string, msg: Msg): UspRecord {
  return { version: USP_VERSION, toId, fromId, recordType: { kind: 'noSessionContext', payload: encodeMsg(msg) } };
}

/**
 * The bytes of noSessionRecord(fromId, toId, msg): a GetResp, the most common answer, is written
 * with its Record into one buffer (wire-fast.ts, the same bytes); any other Msg through protobufjs.
 */
export function encodeNoSessionRecord(fromId: string, toId: string, msg: Msg): Uint8Array {
  const body = msg.body;
  const response = body.response;
  if (msg.header.msgType === 'GET_RESP' && body.msgBody === 'response' && !body.request && !body.error && response?.getResp && onlyGetResp(response))
    return encodeGetRespRecord(USP_VERSION, fromId, toId, msg.header.msgId, response.getResp.reqPathResults);
  return encodeRecord(noSessionRecord(fromId, toId, msg));
}

/** The Response carries a GetResp and nothing else (protobufjs would write every member present). */
function onlyGetResp(r: Response): boolean {
  for (const k in r) if (k !== 'respType' && k !== 'getResp' && r[k as keyof Response] !== undefined) return false;
  return true;
}

export type ConnectExtra =
  | { kind: 'websocket' }
  | { kind: 'mqtt'; version?: 'V3_1_1' | 'V5'; subscribedTopic: string }
  | { kind: 'stomp'; subscribedDestination: string };

/**
 * The Connect Record an agent sends first on a new MTP channel (R-MTP.6).
 * `extra`: MQTT `{ subscribedTopic, version = 'V5' }`, STOMP `{ subscribedDestination }`.
 */
export function connectRecord(kind: 'websocket', fromId: string, toId: string, extra?: Record<string, never>): UspRecord;
export function connectRecord(kind: 'mqtt', fromId: string, toId: string, extra: { subscribedTopic: string; version?: 'V3_1_1' | 'V5' }): UspRecord;
export function connectRecord(kind: 'stomp', fromId: string, toId: string, extra: { subscribedDestination: string }): UspRecord;
export function connectRecord(
  kind: 'websocket' | 'mqtt' | 'stomp',
  fromId: string,
  toId: string,
  extra: { subscribedTopic?: string; version?: 'V3_1_1' | 'V5'; subscribedDestination?: string } = {},
): UspRecord {
  const base = { version: USP_VERSION, toId, fromId };
  switch (kind) {
    case 'websocket':
      return { ...base, recordType: { kind: 'websocketConnect' } };
    case 'mqtt':
      return { ...base, recordType: { kind: 'mqttConnect', version: extra.version ?? 'V5', subscribedTopic: extra.subscribedTopic ?? '' } };
    case 'stomp':
      return { ...base, recordType: { kind: 'stompConnect', version: 'V1_2', subscribedDestination: extra.subscribedDestination ?? '' } };
  }
}

/** A Disconnect Record (R-MTP.7); reasonCode from the 7100..7199 table (R-MTP.9). */
export function disconnectRecord(fromId: string, toId: string, reason: string, reasonCode: number): UspRecord {
  return { version: USP_VERSION, toId, fromId, recordType: { kind: 'disconnect', reason, reasonCode } };
}

// ------------------------------------------------------------------------------------------------
// R-MTP.5: what to do with a Record we could not parse or handle

/** What the endpoint knows that the bytes do not tell (R-MTP.5's other criteria). */
export interface RecordErrorContext {
  /** "the destination Endpoint ID is its own": one of the proxy's agent EIDs. */
  isOwnEndpointId(id: string): boolean;
  /** "a MTP-specific return path is known": MQTT Response Topic, STOMP reply-to-dest, the WS connection ... */
  returnPathKnown: boolean;
  /** "the source Endpoint ID is valid". Default: the Endpoint ID syntax of TR-369 (scheme:[authority]:instance). */
  isValidSourceId?(id: string): boolean;
}

export type RecordErrorDecision =
  | { action: 'drop'; reason: string }
  /** Send noSessionRecord(fromId, toId, errorMsg(msgId, code, message)) on the same MTP/return path. */
  | { action: 'reply-error'; fromId: string; toId: string; msgId: string; code: number; message: string }
  /** R-E2E.6a: answer a Session Context Record with a Disconnect Record (7106). */
  | { action: 'disconnect'; fromId: string; toId: string; reasonCode: number; reason: string };

const EID_SCHEMES = new Set(['oui', 'cid', 'pen', 'self', 'user', 'os', 'ops', 'uuid', 'imei', 'proto', 'doc', 'fqdn']);

/** TR-369 Endpoint ID syntax: authority-scheme ":" [authority-id] ":" instance-id. */
export function isValidEndpointIdSyntax(id: string): boolean {
  const m = /^([a-z]+):([^:]*):(.+)$/.exec(id);
  if (!m || !EID_SCHEMES.has(m[1]!)) return false;
  // R-ARC.5 restricts instance-id to unreserved characters and %-escapes; be lenient on the
  // character set (peers differ) but refuse control characters and whitespace.
  return !/[\s\x00-\x1f\x7f]/.test(id);
}

/**
 * Decide, per TR-369 R-MTP.5, whether an erroneous Record (one that decodeRecord/decodeMsg
 * rejected, or that failed later with `err`) gets an Error Msg back or is ignored:
 *
 *   R-MTP.5: reply with a Record carrying an Error Msg only if the source Endpoint ID is valid,
 *   the destination Endpoint ID is our own, the Record contains a USP Message of type Request,
 *   the Message ID can be extracted, and an MTP-specific return path is known; otherwise the
 *   Record MUST be ignored.
 *   R-ENC.4: a Record without exactly one record_type MUST be discarded.
 *   R-E2E.6a: a Session Context Record, which we do not support, gets a Disconnect Record with
 *   reason_code 7106 (given an address to send it to).
 *
 * `bytes` is the whole Record as received; it is re-read leniently (field by field, keeping
 * whatever could be read before the damage) to find from_id, to_id, msg_id and msg_type.
 */
export function recordErrorDecision(bytes: Uint8Array, err: unknown, ctx: RecordErrorContext): RecordErrorDecision {
  const scan = scanRecord(bytes);
  const validSource = ctx.isValidSourceId ?? isValidEndpointIdSyntax;
  const drop = (reason: string): RecordErrorDecision => ({ action: 'drop', reason });

  if (scan.recordTypes.length > 1) return drop(`R-ENC.4: Record has ${scan.recordTypes.length} record_types`);
  if (scan.fromId === undefined || !validSource(scan.fromId)) return drop('R-MTP.5: source Endpoint ID missing or invalid');
  if (scan.toId === undefined || !ctx.isOwnEndpointId(scan.toId)) return drop('R-MTP.5: destination Endpoint ID is not ours');
  if (!ctx.returnPathKnown) return drop('R-MTP.5: no MTP return path');
  if (scan.recordTypes[0] === 8) {
    return {
      action: 'disconnect',
      fromId: scan.toId,
      toId: scan.fromId,
      reasonCode: UspErrorCode.SESSION_CONTEXT_NOT_ALLOWED,
      reason: errorCodeName(UspErrorCode.SESSION_CONTEXT_NOT_ALLOWED),
    };
  }
  if (scan.recordTypes.length === 0) return drop('R-ENC.4: Record has no record_type');
  if (scan.recordTypes[0] !== 7 || !scan.payload) return drop('R-MTP.5: Record carries no USP Message');
  const h = scanMsgHeader(scan.payload);
  if (h.msgId === undefined || h.msgId === '') return drop('R-MTP.5: Message ID cannot be extracted');
  const msgType = MSG_TYPES[h.msgType ?? 0];
  if (!msgType || !REQUEST_MSG_TYPES.has(msgType)) return drop(`R-MTP.5: Message is not a Request (msg_type ${msgType ?? h.msgType})`);
  let code: number = UspErrorCode.MESSAGE_FAILED;
  let message = errText(err);
  const errCode: unknown = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  if (err instanceof UspRecordError) code = err.code;
  else if (typeof errCode === 'number') code = errCode;
  else message = message || errorCodeName(code);
  return { action: 'reply-error', fromId: scan.toId, toId: scan.fromId, msgId: h.msgId, code, message };
}

// A lenient protobuf field walker for recordErrorDecision: stops at the first damaged field and
// keeps what it read before.
interface Field {
  no: number;
  wire: number;
  value?: number;
  bytes?: Uint8Array;
}
function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.length) return undefined;
      const b = buf[pos++]!;
      if (shift < 32) v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return undefined;
  };
  while (pos < buf.length) {
    const key = varint();
    if (key === undefined) return;
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (no === 0) return;
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return;
      yield { no, wire, value: v };
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || pos + len > buf.length) return;
      yield { no, wire, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else if (wire === 5) {
      if (pos + 4 > buf.length) return;
      pos += 4;
      yield { no, wire };
    } else if (wire === 1) {
      if (pos + 8 > buf.length) return;
      pos += 8;
      yield { no, wire };
    } else {
      return;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function scanRecord(buf: Uint8Array): { toId?: string; fromId?: string; recordTypes: number[]; payload?: Uint8Array } {
  const out: { toId?: string; fromId?: string; recordTypes: number[]; payload?: Uint8Array } = { recordTypes: [] };
  for (const f of fields(buf)) {
    if (f.wire !== 2 || !f.bytes) continue;
    if (f.no === 2) out.toId = utf8.decode(f.bytes);
    else if (f.no === 3) out.fromId = utf8.decode(f.bytes);
    else if (f.no >= 7 && f.no <= 13) {
      if (!out.recordTypes.includes(f.no)) out.recordTypes.push(f.no);
      if (f.no === 7) {
        for (const g of fields(f.bytes)) if (g.no === 2 && g.bytes) out.payload = g.bytes;
      }
    }
  }
  return out;
}

function scanMsgHeader(buf: Uint8Array): { msgId?: string; msgType?: number } {
  const out: { msgId?: string; msgType?: number } = {};
  for (const f of fields(buf)) {
    if (f.no !== 1 || !f.bytes) continue;
    for (const g of fields(f.bytes)) {
      if (g.no === 1 && g.bytes) out.msgId = utf8.decode(g.bytes);
      else if (g.no === 2 && g.value !== undefined) out.msgType = g.value;
    }
  }
  return out;
}
