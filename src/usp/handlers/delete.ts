/**
 * Delete (TR-369 "The Delete Message"). A missing instance or an unmatched search is success
 * with no affected paths (R-DEL.1, as obuspa does); an invalid path or a non-deletable object
 * is an Error (allow_partial false, nothing deleted) or oper_failure (allow_partial true).
 */
import { resolvePath } from '../path/index.js';
import type { DeletedObjectResult, Msg } from '../codec/record.js';
import { UspError } from '../errors.js';
import { codeOf, pathBackendOf, responseMsg, type HandlerContext } from './context.js';
import { errorMsg } from '../codec/record.js';

export async function handleDelete(ctx: HandlerContext, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.delete!;
  const allowPartial = req.allowPartial ?? false;
  const { backend, model } = await pathBackendOf(ctx, req.objPaths);
  const rctx = { agentEid: ctx.agentEid, controllerEid: ctx.controllerEid };

  // Resolve everything first: with allow_partial false an invalid path deletes nothing.
  const plans: { requestedPath: string; instances: string[]; error?: { errCode: number; errMsg: string } }[] = [];
  for (const requestedPath of req.objPaths) {
    try {
      if (!requestedPath.endsWith('.')) throw new UspError(7026, `${requestedPath} is not an object path`);
      const resolved = await resolvePath(requestedPath, backend);
      const instances: string[] = [];
      for (const r of resolved) {
        if (await model.isTable(r.path)) {
          throw new UspError(7018, `${r.path} is a table, not an instance (use ${r.path}*. to delete every instance)`);
        }
        const o = await model.object(r.path);
        if (!o?.multiInstance) throw new UspError(7018, `${r.path} is not a multi-instance object`);
        if (o.access === 'readOnly' || o.access === 'addOnly') throw new UspError(7024, `${r.path} cannot be deleted (object is not deletable)`);
        instances.push(r.path);
      }
      plans.push({ requestedPath, instances });
    } catch (e) {
      const c = codeOf(e);
      if (!allowPartial) return errorMsg(msg.header.msgId, c.errCode, c.errMsg);
      plans.push({ requestedPath, instances: [], error: c });
    }
  }

  const deletedObjResults: DeletedObjectResult[] = [];
  for (const p of plans) {
    if (p.error) {
      deletedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operFailure: p.error } });
      continue;
    }
    const affectedPaths: string[] = [];
    const unaffectedPathErrs: { unaffectedPath: string; errCode: number; errMsg: string }[] = [];
    for (const inst of p.instances) {
      const r = await ctx.router.backendFor(inst)!.delete(rctx, inst);
      if (r.ok) {
        if (r.deleted !== false) affectedPaths.push(inst);
      } else if (!allowPartial) return errorMsg(msg.header.msgId, r.errCode, r.errMsg);
      else unaffectedPathErrs.push({ unaffectedPath: inst, errCode: r.errCode, errMsg: r.errMsg });
    }
    deletedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operSuccess: { affectedPaths, unaffectedPathErrs } } });
  }
  return responseMsg(msg, 'DELETE_RESP', { respType: 'deleteResp', deleteResp: { deletedObjResults } });
}
