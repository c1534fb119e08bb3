/** GetSupportedProtocol: the USP versions this agent speaks, as a comma-separated list (TR-369). */
import type { Msg } from '../codec/record.js';
import { responseMsg, type HandlerContext } from './context.js';

export async function handleGetSupportedProtocol(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  return responseMsg(msg, 'GET_SUPPORTED_PROTO_RESP', {
    respType: 'getSupportedProtocolResp',
    getSupportedProtocolResp: { agentSupportedProtocolVersions: ctx.versions.join(',') },
  });
}
