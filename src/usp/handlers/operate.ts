/**
 * Operate (TR-369 "The Operate Message"). A sync command answers with its output args; an
 * async one answers with req_obj_path Device.LocalAgent.Request.{i}. and finishes with an
 * OperationComplete Notify to the subscribers (R-OPR.4). The command path may use search
 * expressions: one operation result per matched command.
 * Permissions: each command needs CommandEvent execute (TR-181 Permission.{i}.CommandEvent "x"):
 * a command named in full that the controller may not run is an Error 7006; matched by a search,
 * a cmd_failure 7006 (R-OPR.1), or nothing at all when it may not even read the command.
 */
import { resolvePath } from '../path/index.js';
import type { Msg, OperationResult } from '../codec/record.js';
import { UspError } from '../errors.js';
import { codeOf, deniedMsg, may, pathBackendOf, requestContext, responseMsg, type RequestScope } from './context.js';
import { errorMsg } from '../codec/record.js';

export async function handleOperate(ctx: RequestScope, msg: Msg): Promise<Msg | null> {
  const req = msg.body.request!.operate!;
  const command = req.command ?? '';
  const { backend } = await pathBackendOf(ctx, [command]);
  let resolved: Awaited<ReturnType<typeof resolvePath>>;
  try {
    if (!command.endsWith(')')) throw new UspError(7026, `${command} is not a command path`);
    resolved = await resolvePath(command, backend, { onMissing: 'error' });
    const refused = /[*[+]/.test(command) ? undefined : resolved.find((r) => !may(ctx, r.path, 'CommandEvent.x'));
    if (refused) throw new UspError(7006, deniedMsg(ctx, 'running', refused.path));
  } catch (e) {
    const c = codeOf(e);
    return errorMsg(msg.header.msgId, c.errCode, c.errMsg);
  }
  const operationResults: OperationResult[] = [];
  for (const r of resolved) {
    if (!may(ctx, r.path, 'CommandEvent.x')) {
      if (may(ctx, r.path, 'CommandEvent.r'))
        operationResults.push({ executedCommand: r.path, cmdFailure: { errCode: 7006, errMsg: deniedMsg(ctx, 'running', r.path) } });
      continue;
    }
    const owner = ctx.router.backendFor(r.path);
    if (!owner) {
      operationResults.push({ executedCommand: r.path, cmdFailure: { errCode: 7026, errMsg: `no backend for ${r.path}` } });
      continue;
    }
    const out = await owner.operate(requestContext(ctx), r.path, req.inputArgs ?? {}, req.commandKey ?? '');
    if (out.kind === 'error') {
      // A missing mandatory input argument is a cmd_failure 7027 in the OperateResp (R-OPR.5), never an Error (R-OPR.1).
      operationResults.push({ executedCommand: r.path, cmdFailure: { errCode: out.errCode, errMsg: out.errMsg } });
    } else if (out.kind === 'sync') {
      operationResults.push({ executedCommand: r.path, reqOutputArgs: { outputArgs: out.output } });
    } else {
      const requestPath = await ctx.localAgent.createRequest(ctx.agentEid, ctx.controllerEid, r.path, req.commandKey ?? '');
      operationResults.push({ executedCommand: r.path, reqObjPath: requestPath });
      const dot = r.path.lastIndexOf('.');
      const objPath = r.path.slice(0, dot + 1);
      const commandName = r.path.slice(dot + 1);
      const agentEid = ctx.agentEid;
      void out.completion.then(
        (result) => {
          ctx.localAgent.finishRequest(agentEid, requestPath);
          ctx.operationComplete?.(
            agentEid,
            'output' in result
              ? { objPath, commandName, commandKey: req.commandKey ?? '', reqOutputArgs: { outputArgs: result.output } }
              : { objPath, commandName, commandKey: req.commandKey ?? '', cmdFailure: { errCode: result.errCode, errMsg: result.errMsg } },
            requestPath,
          );
        },
        (e: unknown) => {
          ctx.localAgent.finishRequest(agentEid, requestPath);
          ctx.operationComplete?.(
            agentEid,
            { objPath, commandName, commandKey: req.commandKey ?? '', cmdFailure: { errCode: 7022, errMsg: `command failed: ${(e as Error).message}` } },
            requestPath,
          );
        },
      );
    }
  }
  // send_resp false (proto3: absent): the controller wants no OperateResp (TR-369 Operate.send_resp).
  if (!req.sendResp) return null;
  return responseMsg(msg, 'OPERATE_RESP', { respType: 'operateResp', operateResp: { operationResults } });
}
