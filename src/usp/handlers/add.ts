/**
 * Add (TR-369 "The Add Message"). obj_path is a table path, possibly under a search/unique-key
 * path. allow_partial false: all objects or none (created ones are deleted again on a failure,
 * R-ADD.2); allow_partial true: per-object oper_failure/oper_success. A failed non-required
 * param_setting is reported in param_errs of the success (R-ADD.5).
 * Permissions: the table needs Obj write (TR-181 Permission.{i}.Obj "w"), each setting Param write
 * on the new row's parameter; a setting it may not write fails with 7006 like any other failed
 * setting ("Add Message" note: omitted ones take their defaults, given ones follow the required
 * rules). unique_keys shows only what the controller may read (R-ADD.6).
 */
import { resolvePath } from '../path/index.js';
import type { CreatedObjectResult, Msg } from '../codec/record.js';
import type { ParamError, ParamSetting } from '../dm/types.js';
import { UspError } from '../errors.js';
import { codeOf, deniedMsg, errorParamErrs, may, paramErrsCode, pathBackendOf, requestContext, responseMsg, type RequestScope } from './context.js';
import { errorMsg } from '../codec/record.js';

export async function handleAdd(ctx: RequestScope, msg: Msg): Promise<Msg> {
  const req = msg.body.request!.add!;
  const allowPartial = req.allowPartial ?? false;
  const { backend, model } = await pathBackendOf(
    ctx,
    req.createObjs.map((c) => c.objPath ?? ''),
  );
  const rctx = requestContext(ctx);
  const created: string[] = [];
  const results: CreatedObjectResult[] = [];

  const rolledBack: string[] = [];
  const rollback = async (): Promise<void> => {
    for (const path of created.reverse()) {
      await ctx.router.backendFor(path)?.delete(rctx, path);
      rolledBack.push(path);
    }
  };
  // Notifications wait for the outcome: rolled-back objects never existed (no ObjectCreation).
  ctx.localAgent.hold();
  try {
    return await addAll();
  } finally {
    ctx.localAgent.release(ctx.agentEid, rolledBack);
  }

  async function addAll(): Promise<Msg> {
    for (const c of req.createObjs) {
      const requestedPath = c.objPath ?? '';
      const settings = c.paramSettings.map((s) => ({ param: s.param ?? '', value: s.value ?? '', required: s.required ?? false }));
      // The object a failure is about (an Error's param_errs name it): the requested path until resolved.
      let failedPath = requestedPath;
      try {
        if (!requestedPath.endsWith('.')) throw new UspError(7026, `obj_path ${requestedPath} must end with "." (a table path)`);
        const resolved = await resolvePath(requestedPath, backend, { onMissing: 'error' });
        if (resolved.length === 0) throw new UspError(7016, `${requestedPath} matches no object`);
        for (const r of resolved) {
          failedPath = r.path;
          if (!(await model.isTable(r.path))) throw new UspError(7018, `${r.path} is not a multi-instance object`);
          if (!may(ctx, r.path, 'Obj.w')) throw new UspError(7006, deniedMsg(ctx, 'adding to', r.path));
          const owner = ctx.router.backendFor(r.path);
          if (!owner) throw new UspError(7026, `no backend for ${r.path}`);
          // The new row's parameters, as the Supported Data Model names them: its instance number is not known yet.
          const allowed: ParamSetting[] = [];
          const denied: ParamError[] = [];
          // A unique key the controller gives is required whatever its flag says: falling back to a
          // default would give the row a key the controller did not choose, or an empty one
          // (R-ADD.5, TR-181 Alias; TP-469 1.88).
          const keys = new Set((await model.object(`${r.path}{i}.`))?.uniqueKeys.flat() ?? []);
          for (const s0 of settings) {
            const s = keys.has(s0.param) ? { ...s0, required: true } : s0;
            const path = `${r.path}{i}.${s.param}`;
            if (may(ctx, path, 'Param.w')) allowed.push(s);
            else if (s.required)
              throw new UspError(7006, deniedMsg(ctx, 'writing', path), [{ paramPath: path, errCode: 7006, errMsg: deniedMsg(ctx, 'writing', path) }]);
            else denied.push({ param: s.param, errCode: 7006, errMsg: deniedMsg(ctx, 'writing', path) });
          }
          const out = await owner.add(rctx, r.path, allowed);
          if (!out.ok) {
            const e = new UspError(
              out.errCode,
              out.errMsg,
              out.paramErrs.map((p) => ({ paramPath: `${r.path}{i}.${p.param}`, errCode: p.errCode, errMsg: p.errMsg })),
            );
            throw e;
          }
          const instantiatedPath = `${r.path}${out.instance}.`;
          created.push(instantiatedPath);
          results.push({
            requestedPath,
            operStatus: {
              operSuccess: {
                instantiatedPath,
                paramErrs: [...out.paramErrs, ...denied].map((p) => ({ param: p.param, errCode: p.errCode, errMsg: p.errMsg })),
                uniqueKeys: Object.fromEntries(Object.entries(out.uniqueKeys).filter(([k]) => may(ctx, instantiatedPath + k, 'Param.r'))),
              },
            },
          });
        }
      } catch (e) {
        const { errCode, errMsg } = codeOf(e);
        if (!allowPartial) {
          await rollback();
          const given = e instanceof UspError && e.paramErrs.length > 0;
          const paramErrs = errorParamErrs(e, failedPath);
          return errorMsg(msg.header.msgId, given ? paramErrsCode(paramErrs, 7004) : errCode, errMsg, paramErrs);
        }
        results.push({ requestedPath, operStatus: { operFailure: { errCode, errMsg } } });
      }
    }
    return responseMsg(msg, 'ADD_RESP', { respType: 'addResp', addResp: { createdObjResults: results } });
  }
}
