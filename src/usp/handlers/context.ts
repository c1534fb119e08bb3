/**
 * What every USP message handler gets: who asks, for which agent, the data model, and what the
 * controller may do there (TR-369 R-SEC.1: permissions are checked before any action).
 * Handlers are pure with respect to transport: (context, request Msg) -> response Msg.
 */
import type { DmRouter, ModelView } from '../dm/router.js';
import { modelPaths } from '../dm/router.js';
import type { LocalAgent } from '../agent/local-agent.js';
import type { Msg, OperationComplete } from '../codec/record.js';
import type { CallScope } from '../request-scope.js';
import type { RequestContext } from '../dm/types.js';
import type { PathBackend } from '../path/index.js';
import { PathError } from '../path/index.js';
import { UspError } from '../errors.js';
import { type Access, accessOf, staticAccess } from '../trust/access.js';
import type { Op } from '../trust/permissions.js';

/** Bounds of one GetResp: its parameters and its encoded bytes (the Record must fit the MTP). */
export interface GetLimits {
  maxParams: number;
  maxBytes: number;
}

/** Bytes kept free for the Record (to_id, from_id, payload framing) around a response Msg. */
export const RECORD_HEADROOM = 16 * 1024;

/** The GetResp bounds of a configuration: usp.maxGetParams, and usp.maxRecordBytes less room for the Record. */
export function getLimits(usp: { maxGetParams: number; maxRecordBytes: number }): GetLimits {
  return { maxParams: usp.maxGetParams, maxBytes: Math.max(usp.maxRecordBytes >> 1, usp.maxRecordBytes - RECORD_HEADROOM) };
}

/** The bounds of the default configuration. */
export const DEFAULT_GET_LIMITS: GetLimits = getLimits({ maxGetParams: 20_000, maxRecordBytes: 5 * 1024 * 1024 });

export interface HandlerContext {
  agentEid: string;
  controllerEid: string;
  /**
   * The endpoint knows the peer is controllerEid, a configured controller that proved (or, without
   * credentials, stated) its Endpoint ID; false: not configured, or not authenticated: it then holds
   * only the UntrustedRole (TR-369 "Special Roles").
   */
  trusted: boolean;
  /** Why an untrusted controller is untrusted, for the messages. */
  untrustedReason?: 'not configured' | 'not authenticated';
  router: DmRouter;
  localAgent: LocalAgent;
  /** Async command finished: the notifier sends OperationComplete to subscribers. */
  operationComplete?(agentEid: string, n: OperationComplete, requestPath: string): void;
  /** A NotifyResp arrived for one of our Notify messages. */
  notifyResp?(agentEid: string, controllerEid: string, msgId: string, subscriptionId: string): void;
  /** USP versions this agent speaks, for GetSupportedProtocolResp. */
  versions: readonly string[];
  /** Bounds of one GetResp (default DEFAULT_GET_LIMITS). */
  limits?: GetLimits;
  /** What the request's data-model calls are made for (src/usp/request-scope.ts): passed to every backend call. */
  scope?: CallScope;
}

/** Every field of T named, optional ones possibly undefined: a literal of this type lists them all (one object shape). */
export type AllFieldsOf<T> = { [K in keyof Required<T>]: T[K] };

/** A request being handled: its context and the controller's rights on this agent for it. */
export interface RequestScope extends HandlerContext {
  access: Access;
}

export type Handler = (ctx: RequestScope, msg: Msg) => Promise<Msg | null>;

/**
 * The controller's rights for this request: its Roles, by-value Targets evaluated now. Compiled
 * rights already known come back without a promise (every request asks; an await costs a turn of
 * the microtask queue).
 */
export function scopeOf(ctx: HandlerContext): RequestScope | Promise<RequestScope> {
  const roles = ctx.localAgent.rolesOf(ctx.agentEid, ctx.controllerEid, ctx.trusted);
  const known = staticAccess(roles);
  if (known) return withAccess(ctx, known);
  return accessOf(roles, () => modelPaths(ctx.router, ctx.agentEid, ctx.scope).backend).then((access) => withAccess(ctx, access));
}

/** The context with its rights, every field written out: one object shape for all requests (a spread is several times slower). */
function withAccess(ctx: HandlerContext, access: Access): RequestScope {
  const scope: AllFieldsOf<RequestScope> = {
    agentEid: ctx.agentEid,
    controllerEid: ctx.controllerEid,
    trusted: ctx.trusted,
    untrustedReason: ctx.untrustedReason,
    router: ctx.router,
    localAgent: ctx.localAgent,
    operationComplete: ctx.operationComplete,
    notifyResp: ctx.notifyResp,
    versions: ctx.versions,
    limits: ctx.limits,
    scope: ctx.scope,
    access,
  };
  return scope;
}

/**
 * PathBackend for the path resolver over the agent's model, and the request's view of the model.
 * A search expression sees only Parameters the controller may read: on the others it matches
 * nothing, as if they were absent (TR-369 R-GIN.0), so values cannot be probed by searching.
 */
export function pathBackendOf(ctx: RequestScope, _paths: readonly string[]): { backend: PathBackend; model: ModelView } {
  const { backend, model } = modelPaths(ctx.router, ctx.agentEid, ctx.scope);
  return {
    backend: { ...backend, getValue: async (p) => (ctx.access.permitted(p, 'Param.r') ? backend.getValue(p) : undefined) },
    model,
  };
}

/** Who asks and what for, as the backends' write calls take it. */
export function requestContext(ctx: RequestScope): RequestContext {
  return { agentEid: ctx.agentEid, controllerEid: ctx.controllerEid, scope: ctx.scope };
}

/** The controller may do `op` on `path`. */
export function may(ctx: RequestScope, path: string, op: Op): boolean {
  return ctx.access.permitted(path, op);
}

/** A 7006 text naming the path and the controller's Roles. */
export function deniedMsg(ctx: RequestScope, what: string, path: string): string {
  return `permission denied: the Roles of controller ${ctx.controllerEid} (${ctx.access.roles.join(', ') || 'none'}) do not allow ${what} ${path}`;
}

/** The Error code of failed parameters: 7006 when permissions alone refused them, else `otherwise`. */
export function paramErrsCode(errs: readonly { errCode?: number }[], otherwise: number): number {
  return errs.length > 0 && errs.every((e) => e.errCode === 7006) ? 7006 : otherwise;
}

/** A response Msg with the request's msg_id. */
export function responseMsg(req: Msg, msgType: Msg['header']['msgType'], response: NonNullable<Msg['body']['response']>): Msg {
  return { header: { msgId: req.header.msgId, msgType }, body: { msgBody: 'response', response } };
}

/** Path errors and UspErrors as (code, message); anything else is an internal error. */
export function codeOf(e: unknown): { errCode: number; errMsg: string } {
  if (e instanceof PathError) return { errCode: e.code, errMsg: e.message };
  if (e instanceof UspError) return { errCode: e.code, errMsg: e.message };
  return { errCode: 7003, errMsg: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

/**
 * The param_errs of an Error for a failed Add/Set/Delete with allow_partial false (TR-369 "Error
 * Fields": param_errs name each Object or Parameter that caused the failure): the parameters the
 * failure carries, or else one entry naming the object path that failed (as obuspa does).
 */
export function errorParamErrs(e: unknown, path: string): { paramPath: string; errCode: number; errMsg: string }[] {
  const { errCode, errMsg } = codeOf(e);
  if (e instanceof UspError && e.paramErrs.length > 0)
    return e.paramErrs.map((p) => ({ paramPath: p.paramPath ?? path, errCode: p.errCode ?? errCode, errMsg: p.errMsg ?? errMsg }));
  return [{ paramPath: path, errCode, errMsg }];
}
