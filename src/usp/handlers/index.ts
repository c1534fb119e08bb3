/**
 * Dispatch of a request Msg to its handler: an exhaustive switch over the request types.
 * `handle(ctx, msg)` is the one entry point the endpoint calls; it never throws: problems become
 * USP Error Msgs. The controller's rights are worked out here, once per request (TR-369 R-SEC.1).
 */
import type { Msg } from '../codec/record.js';
import { codeOf, type HandlerContext, scopeOf } from './context.js';
import { errorMsg } from '../codec/record.js';
import { handleGet } from './get.js';
import { handleSet } from './set.js';
import { handleAdd } from './add.js';
import { handleDelete } from './delete.js';
import { handleGetInstances } from './get-instances.js';
import { handleGetSupportedDM } from './supported-dm.js';
import { handleGetSupportedProtocol } from './supported-proto.js';
import { handleOperate } from './operate.js';

export type { HandlerContext, RequestScope } from './context.js';

export async function handle(context: HandlerContext, msg: Msg): Promise<Msg | null> {
  const body = msg.body;
  if (body.msgBody === 'response') {
    // Responses to our own requests: NotifyResp ends a Notify retry (R-NOT.9); only from the
    // controller itself, not from a peer merely claiming its Endpoint ID.
    if (context.trusted && body.response?.respType === 'notifyResp')
      context.notifyResp?.(context.agentEid, context.controllerEid, msg.header.msgId, body.response.notifyResp?.subscriptionId ?? '');
    return null;
  }
  if (body.msgBody === 'error') return null; // an Error from the controller answers a Notify: nothing to do
  const req = body.request;
  if (!req?.reqType) return errorMsg(msg.header.msgId, 7004, 'the Msg has no request body');
  try {
    const scope = scopeOf(context);
    const ctx = scope instanceof Promise ? await scope : scope;
    if (ctx.access.empty) {
      // TR-369 "Special Roles": a controller not authorised for another Role has the UntrustedRole's rights (default: none).
      const why = context.trusted
        ? `its Roles (${ctx.access.roles.join(', ') || 'none'}) grant nothing`
        : `${context.controllerEid} is ${context.untrustedReason ?? 'not trusted'}, not a trusted controller of this agent (the untrusted role grants nothing)`;
      return errorMsg(msg.header.msgId, 7006, `permission denied: controller ${context.controllerEid} is not authorised: ${why}`);
    }
    switch (req.reqType) {
      case 'get':
        return await handleGet(ctx, msg);
      case 'set':
        return await handleSet(ctx, msg);
      case 'add':
        return await handleAdd(ctx, msg);
      case 'delete':
        return await handleDelete(ctx, msg);
      case 'getInstances':
        return await handleGetInstances(ctx, msg);
      case 'getSupportedDm':
        return await handleGetSupportedDM(ctx, msg);
      case 'getSupportedProtocol':
        return await handleGetSupportedProtocol(ctx, msg);
      case 'operate':
        return await handleOperate(ctx, msg);
      case 'notify':
        return errorMsg(msg.header.msgId, 7001, 'an Agent does not accept Notify');
      case 'register':
      case 'deregister':
        return errorMsg(msg.header.msgId, 7001, `${req.reqType} is not supported: this agent has no USP Services`);
      default: {
        const never: never = req.reqType;
        return errorMsg(msg.header.msgId, 7001, `unsupported request ${String(never)}`);
      }
    }
  } catch (e) {
    // A UspError (e.g. 7002 device unreachable while loading the model) keeps its code.
    const c = codeOf(e);
    return errorMsg(msg.header.msgId, c.errCode, c.errMsg);
  }
}
