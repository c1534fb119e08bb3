/**
 * Dispatch of a request Msg to its handler: an exhaustive switch over the request types
 * (DESIGN section 9.4). `handle(ctx, msg)` is the one entry point the endpoint calls; it never
 * throws: problems become USP Error Msgs.
 */
import type { Msg } from '../codec/record.js';
import { codeOf, type HandlerContext } from './context.js';
import { errorMsg } from '../codec/record.js';
import { handleGet } from './get.js';
import { handleSet } from './set.js';
import { handleAdd } from './add.js';
import { handleDelete } from './delete.js';
import { handleGetInstances } from './get-instances.js';
import { handleGetSupportedDM } from './supported-dm.js';
import { handleGetSupportedProtocol } from './supported-proto.js';
import { handleOperate } from './operate.js';

export type { HandlerContext } from './context.js';

const WRITES = new Set(['set', 'add', 'delete', 'operate']);

export async function handle(ctx: HandlerContext, msg: Msg): Promise<Msg | null> {
  const body = msg.body;
  if (body.msgBody === 'response') {
    // Responses to our own requests: NotifyResp ends a Notify retry (R-NOT.9).
    if (body.response?.respType === 'notifyResp')
      ctx.notifyResp?.(ctx.agentEid, ctx.controllerEid, msg.header.msgId, body.response.notifyResp?.subscriptionId ?? '');
    return null;
  }
  if (body.msgBody === 'error') return null; // an Error from the controller answers a Notify: nothing to do
  const req = body.request;
  if (!req?.reqType) return errorMsg(msg.header.msgId, 7004, 'the Msg has no request body');
  // PLACEHOLDER until the Controller Trust roles are merged (they replace this with the UntrustedRole,
  // default no access): an untrusted controller is refused everything (TR-369 R-SEC.1).
  if (!ctx.trusted) {
    return errorMsg(
      msg.header.msgId,
      7006,
      `permission denied: controller ${ctx.controllerEid} is ${ctx.untrustedReason ?? 'not trusted'} (untrusted role: no access)`,
    );
  }
  if (ctx.role === 'read-only' && WRITES.has(req.reqType)) {
    return errorMsg(msg.header.msgId, 7006, `permission denied: controller ${ctx.controllerEid} has a read-only role`);
  }
  try {
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
