/**
 * What every USP message handler gets: who asks, for which agent, and the data model.
 * Handlers are pure with respect to transport: (context, request Msg) -> response Msg.
 */
import type { DmRouter, ModelView } from '../dm/router.js';
import { modelView } from '../dm/router.js';
import type { LocalAgent } from '../agent/local-agent.js';
import type { Msg, OperationComplete } from '../codec/record.js';
import type { PathBackend } from '../path/index.js';
import { PathError } from '../path/index.js';
import { UspError } from '../errors.js';

export interface HandlerContext {
  agentEid: string;
  controllerEid: string;
  /** The controller is configured and proved (or, without credentials, stated) its Endpoint ID; false: the Untrusted Role applies. */
  trusted: boolean;
  /** Why an untrusted controller is untrusted, for the messages. */
  untrustedReason?: 'not configured' | 'not authenticated';
  role: 'full' | 'read-only';
  router: DmRouter;
  localAgent: LocalAgent;
  /** Async command finished: the notifier sends OperationComplete to subscribers. */
  operationComplete?(agentEid: string, n: OperationComplete, requestPath: string): void;
  /** A NotifyResp arrived for one of our Notify messages. */
  notifyResp?(agentEid: string, controllerEid: string, msgId: string, subscriptionId: string): void;
  /** USP versions this agent speaks, for GetSupportedProtocolResp. */
  versions: readonly string[];
}

export type Handler = (ctx: HandlerContext, msg: Msg) => Promise<Msg | null>;

/**
 * PathBackend for the path resolver over the agent's model, and the request's view of the model.
 * The view asks each backend only about the paths the request touches (a CWMP device learns just
 * those names), so a request on Device.LocalAgent. never wakes the device.
 */
export async function pathBackendOf(ctx: HandlerContext, _paths: readonly string[]): Promise<{ backend: PathBackend; model: ModelView }> {
  const model = modelView(ctx.router, ctx.agentEid);
  const backend: PathBackend = {
    instances: (p) => ctx.router.instances(ctx.agentEid, p),
    exists: (p) => model.exists(p),
    getValue: (p) => ctx.router.searchValue(ctx.agentEid, p),
  };
  return { backend, model };
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
