/**
 * The data-model backend contract between the USP message handlers and whatever owns a
 * subtree of an agent's Device: model: the proxy's own Device.LocalAgent. (agent/local-agent.ts)
 * and the CWMP device (src/interworking/).
 * Handlers resolve paths and build the exact TR-369 responses; backends only know objects,
 * instances and parameter values. Paths here are always concrete (instance numbers, no
 * wildcards or search expressions); supported-model paths use "{i}".
 */

import type { CallScope } from '../request-scope.js';

/** TR-106 / TR-369 parameter types as GetSupportedDMResp names them (ParamValueType without PARAM_). */
export type ParamType = 'string' | 'base64' | 'hexBinary' | 'dateTime' | 'decimal' | 'int' | 'long' | 'unsignedInt' | 'unsignedLong' | 'boolean';

export type ParamAccess = 'readOnly' | 'readWrite' | 'writeOnly';
/** GetSupportedDMResp ObjAccessType: a table's Add/Delete rights. */
export type ObjAccess = 'readOnly' | 'addDelete' | 'addOnly' | 'deleteOnly';

export interface ParamSchema {
  name: string;
  type: ParamType;
  access: ParamAccess;
  /** ValueChange notifications: 'allowed' or 'willIgnore' (GetSupportedDMResp ValueChangeType). */
  valueChange?: 'allowed' | 'willIgnore';
  /** Value used when an Add does not set it. */
  default?: string;
  enumeration?: readonly string[];
  /** Comma-separated list of values (TR-106 list). */
  list?: boolean;
  /** Can be set once (by Add or a first Set), never changed after (e.g. Subscription.Alias). */
  writeOnce?: boolean;
  /** Can be set only by Add, never by Set (e.g. Subscription.ID once created). */
  immutable?: boolean;
}

export interface ArgSchema {
  name: string;
  type?: ParamType;
  mandatory?: boolean;
}

export interface CommandSchema {
  /** With the parentheses: "SendOnBoardRequest()". */
  name: string;
  async: boolean;
  input: readonly ArgSchema[];
  output: readonly ArgSchema[];
}

export interface EventSchema {
  /** With the bang: "Periodic!". */
  name: string;
  args: readonly ArgSchema[];
}

export interface ObjectSchema {
  /** Supported path, e.g. "Device.LocalAgent.Subscription.{i}." */
  path: string;
  multiInstance: boolean;
  access: ObjAccess;
  params: readonly ParamSchema[];
  commands: readonly CommandSchema[];
  events: readonly EventSchema[];
  /** Unique key sets (each a list of parameter names), for tables. */
  uniqueKeys: readonly (readonly string[])[];
}

/** A parameter setting of Set or Add (TR-369 Set.UpdateParamSetting / Add.CreateParamSetting). */
export interface ParamSetting {
  param: string;
  value: string;
  required: boolean;
}

/** A failed parameter (becomes param_errs / updated_inst_failures). */
export interface ParamError {
  param: string;
  errCode: number;
  errMsg: string;
}

export type SetOutcome =
  | { ok: true; updated: Record<string, string>; paramErrs: ParamError[] }
  | { ok: false; errCode: number; errMsg: string; paramErrs: ParamError[] };

/** setAtomic: several objects of one backend changed all-or-nothing (one CWMP SetParameterValues). */
export type AtomicSetOutcome =
  | { ok: true; results: { objectPath: string; updated: Record<string, string>; paramErrs: ParamError[] }[] }
  | { ok: false; errCode: number; errMsg: string; failures: { objectPath: string; paramErrs: ParamError[] }[] };

export type AddOutcome =
  | { ok: true; instance: number; uniqueKeys: Record<string, string>; paramErrs: ParamError[] }
  | { ok: false; errCode: number; errMsg: string; paramErrs: ParamError[] };

/** deleted false: the instance was already gone (success with nothing affected). */
export type DeleteOutcome = { ok: true; deleted?: boolean } | { ok: false; errCode: number; errMsg: string };

/** Operate: a sync command answers at once; an async one reports completion later. */
export type OperateOutcome =
  | { kind: 'sync'; output: Record<string, string> }
  | { kind: 'async'; completion: Promise<{ output: Record<string, string> } | { errCode: number; errMsg: string }> }
  | { kind: 'error'; errCode: number; errMsg: string };

/** Who asks: the controller (for permissions, Recipient defaults) and the agent; what for (src/usp/request-scope.ts). */
export interface RequestContext {
  agentEid: string;
  controllerEid: string;
  scope?: CallScope;
}

/**
 * Model queries that learn only what they are asked: a backend whose supported model is costly to
 * learn (a CWMP device: its names come from GetParameterNames) answers these instead of building
 * its whole model for every request. Paths are supported paths ("{i}" for instance numbers).
 */
export interface LazyModel {
  /** Whether a supported path (object, parameter, command "X()", event "X!") exists. */
  exists(agentEid: string, supportedPath: string, scope?: CallScope): Promise<boolean>;
  /** The supported object ("Device.WiFi.", "Device.WiFi.SSID.{i}."), or null. */
  object(agentEid: string, supportedObjectPath: string, scope?: CallScope): Promise<ObjectSchema | null>;
  /** Supported objects at and below an object path; `types`: resolve every parameter type (GetSupportedDM). */
  objectsBelow(agentEid: string, supportedObjectPath: string, opts?: { types?: boolean }, scope?: CallScope): Promise<readonly ObjectSchema[]>;
}

/** Get options a backend may use to read less (the handler applies them to the answer anyway). */
export interface GetOptions {
  /** TR-369 max_depth for object paths (dm/depth.ts); 0 or absent: no limit. */
  maxDepth?: number;
}

/**
 * Every call that may cause CWMP RPCs takes the scope it is made for as its last argument (or in
 * RequestContext.scope); backends that cause none ignore it.
 */
export interface DmBackend {
  /** Object paths this backend serves, e.g. "Device.LocalAgent." (longest prefix wins). */
  readonly prefixes: readonly string[];
  /** The supported model under the prefixes. */
  supported(agentEid: string, scope?: CallScope): Promise<readonly ObjectSchema[]>;
  /**
   * The supported model by "{i}" path when it is the same for every agent and never changes (the
   * proxy's own subtrees): a request's view reads it as is instead of copying supported() into a map.
   */
  readonly staticModel?: ReadonlyMap<string, ObjectSchema>;
  /** Present when the backend learns its model lazily; handlers then ask it path by path. */
  readonly lazy?: LazyModel;
  /** Instance numbers of a concrete table path ("Device.LocalAgent.Subscription."), ascending. null: no such table. */
  instances(agentEid: string, tablePath: string, scope?: CallScope): Promise<number[] | null>;
  /**
   * Values of concrete parameter paths and of every parameter below concrete object paths
   * (recursively). Paths that do not exist are absent from the result.
   */
  get(agentEid: string, paths: readonly string[], opts?: GetOptions, scope?: CallScope): Promise<Map<string, string>>;
  /** A value read to evaluate a search expression; may be served from a request-lived cache. */
  searchValue?(agentEid: string, paramPath: string, scope?: CallScope): Promise<string | undefined>;
  /** Sets parameters of one concrete object, all-or-nothing for required ones. */
  set(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<SetOutcome>;
  /** Sets parameters of several objects as one all-or-nothing change (CWMP: one SetParameterValues). */
  setAtomic?(ctx: RequestContext, objects: readonly { objectPath: string; settings: readonly ParamSetting[] }[]): Promise<AtomicSetOutcome>;
  /** The errors a set() would report, without changing anything (for allow_partial=false across objects). */
  validateSet?(ctx: RequestContext, objectPath: string, settings: readonly ParamSetting[]): Promise<ParamError[]>;
  add(ctx: RequestContext, tablePath: string, settings: readonly ParamSetting[]): Promise<AddOutcome>;
  delete(ctx: RequestContext, instancePath: string): Promise<DeleteOutcome>;
  operate(ctx: RequestContext, commandPath: string, input: Record<string, string>, commandKey: string): Promise<OperateOutcome>;
}
