/**
 * Delete (TR-369 "The Delete Message"). A missing instance or an unmatched search is success
 * with no affected paths (R-DEL.1, as obuspa does); an invalid path or a non-deletable object
 * is an Error (allow_partial false, nothing deleted) or oper_failure (allow_partial true).
 * Permissions: each instance needs InstantiatedObj write (TR-181 Permission.{i}.InstantiatedObj
 * "w"); without it: allow_partial false an Error 7006, nothing deleted (R-DEL.1); allow_partial true
 * an unaffected_path_err 7006. Instances the controller may not read are never named (R-DEL.2, R-DEL.4).
 */
import { resolvePath } from '../path/index.js';
import type { DeletedObjectResult, Msg } from '../codec/record.js';
import { UspError } from '../errors.js';
import { codeOf, deniedMsg, errorParamErrs, may, pathBackendOf, requestContext, responseMsg, type RequestScope } from './context.js';
import { errorMsg } from '../codec/record.js';

export async function handleDelete(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.delete!;
  const allowPartial = req.allowPartial ?? false;
  const { backend, model } = await pathBackendOf(ctx, req.objPaths);
  const rctx = requestContext(ctx);

  // Resolve everything first: with allow_partial false an invalid path deletes nothing.
  const plans: { requestedPath: string; instances: string[]; denied: string[]; error?: { errCode: number; errMsg: string } }[] = [];
  for (const requestedPath of req.objPaths) {
    let failedPath = requestedPath;
    try {
      if (!requestedPath.endsWith('.')) throw new UspError(7026, `${requestedPath} is not an object path`);
      const resolved = await resolvePath(requestedPath, backend);
      const instances: string[] = [];
      const denied: string[] = [];
      for (const r of resolved) {
        failedPath = r.path;
        if (await model.isTable(r.path)) {
          throw new UspError(7018, `${r.path} is a table, not an instance (use ${r.path}*. to delete every instance)`);
        }
        const o = await model.object(r.path);
        if (!o?.multiInstance) throw new UspError(7018, `${r.path} is not a multi-instance object`);
        if (o.access === 'readOnly' || o.access === 'addOnly') throw new UspError(7024, `${r.path} cannot be deleted (object is not deletable)`);
        if (may(ctx, r.path, 'InstantiatedObj.w')) instances.push(r.path);
        else if (!allowPartial) throw new UspError(7006, deniedMsg(ctx, 'deleting', r.path));
        else denied.push(r.path);
      }
      plans.push({ requestedPath, instances, denied });
    } catch (e) {
      const c = codeOf(e);
      if (!allowPartial) return errorMsg(msg.header.msgId, c.errCode, c.errMsg, errorParamErrs(e, failedPath));
      plans.push({ requestedPath, instances: [], denied: [], error: c });
    }
  }

  const deletedObjResults: DeletedObjectResult[] = [];
  for (const p of plans) {
    if (p.error) {
      deletedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operFailure: p.error } });
      continue;
    }
    const affectedPaths: string[] = [];
    const unaffectedPathErrs: { unaffectedPath: string; errCode: number; errMsg: string }[] = p.denied
      .filter((d) => may(ctx, d, 'Obj.r'))
      .map((d) => ({ unaffectedPath: d, errCode: 7006, errMsg: deniedMsg(ctx, 'deleting', d) }));
    for (const inst of p.instances) {
      const r = await ctx.router.backendFor(inst)!.delete(rctx, inst);
      if (r.ok) {
        if (r.deleted !== false && may(ctx, inst, 'Obj.r')) affectedPaths.push(inst);
      } else if (!allowPartial) return errorMsg(msg.header.msgId, r.errCode, r.errMsg, [{ paramPath: inst, errCode: r.errCode, errMsg: r.errMsg }]);
      else if (may(ctx, inst, 'Obj.r')) unaffectedPathErrs.push({ unaffectedPath: inst, errCode: r.errCode, errMsg: r.errMsg });
    }
    deletedObjResults.push({ requestedPath: p.requestedPath, operStatus: { operSuccess: { affectedPaths, unaffectedPathErrs } } });
  }
  return responseMsg(msg, 'DELETE_RESP', { respType: 'deleteResp', deleteResp: { deletedObjResults } });
}
